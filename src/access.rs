//! INTERFACE SKETCH (owned by the secure-access work; static tokens work today).
//!
//! Who may connect: tills with a static token from the config, or paired tills whose token
//! hash lives in `data_dir`. Tokens are compared in constant time and never logged.

use std::net::IpAddr;

use subtle::ConstantTimeEq;

use crate::config::{Role, TillConfig};

/// An authenticated till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Till {
    /// Till name.
    pub name: String,
    /// Cashier or display.
    pub role: Role,
    /// Terminals this till may use; `None` = all.
    pub terminals: Option<Vec<String>>,
}

impl Till {
    /// Whether this till may use (pay on, watch) `terminal`.
    pub fn may_use(&self, terminal: &str) -> bool {
        self.terminals
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == terminal))
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong token or code: the till must pair again or fix its token.
    #[error("unknown token")]
    Unauthorized,
    /// Too many wrong attempts from this address: wait a minute.
    #[error("too many attempts, wait a minute")]
    RateLimited,
}

/// The tills allowed to connect.
#[derive(Debug)]
pub struct Access {
    tills: Vec<TillConfig>,
}

impl Access {
    /// Builds the access list from the configured tills.
    pub fn new(tills: &[TillConfig]) -> Access {
        Access {
            tills: tills.to_vec(),
        }
    }

    /// Finds the till holding `token`.
    pub fn authenticate(&self, token: &str, _peer: IpAddr) -> Result<Till, AuthError> {
        let mut found = None;
        for till in &self.tills {
            let Some(secret) = &till.token else { continue };
            if bool::from(secret.0.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(Till {
                    name: till.name.clone(),
                    role: till.role,
                    terminals: till.terminals.clone(),
                });
            }
        }
        found.ok_or(AuthError::Unauthorized)
    }
}
