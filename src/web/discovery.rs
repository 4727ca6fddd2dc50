//! The operator page's "Chercher des terminaux" (contract §11): the `discover` message runs
//! the sweep of `caisse-ap-relay discover` ([`crate::discover`]: the same range check, time
//! bound and care for configured terminals) for operator tills only, at most one per
//! [`WebOptions::discover_interval`](super::WebOptions) per agent (a minute), counted from
//! the end of the last sweep, and never two at once.
//!
//! A sweep takes seconds, so the session answers it twice: [`Discovery::admit`] checks the
//! request and takes the agent's turn at once (`discovering`, or an immediate refusal), and
//! [`Sweep::run`] gives the `discovered` message when done.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use super::messages::{DiscoveredTerminal, ServerMessage};
use crate::access::Till;
use crate::config::Role;
use crate::discover::{self, range};
use crate::engine::{ApiError, ErrorCode, TerminalStatus};

/// The agent's sweeps: when the last one ended, and whether one runs.
#[derive(Debug)]
pub struct Discovery {
    interval: Duration,
    turn: Arc<Mutex<Turn>>,
}

#[derive(Debug, Default)]
struct Turn {
    running: bool,
    ended: Option<Instant>,
}

/// An admitted sweep; its end starts the next interval.
#[derive(Debug)]
pub struct Sweep {
    turn: Arc<Mutex<Turn>>,
    subnets: Vec<Ipv4Net>,
    port: u16,
    configured: Vec<(String, String)>,
}

impl Discovery {
    /// Sweeps at most once per `interval`.
    pub fn new(interval: Duration) -> Discovery {
        Discovery {
            interval,
            turn: Arc::default(),
        }
    }

    /// Checks `till`'s request (`subnet`: private or loopback, default the host's private
    /// /24s; `port`: default 8888) and takes the agent's turn; `terminals` are the
    /// configured ones, never touched.
    pub fn admit(
        &self,
        till: &Till,
        subnet: Option<&str>,
        port: Option<u16>,
        terminals: &[TerminalStatus],
    ) -> Result<Sweep, ApiError> {
        if till.role != Role::Operator {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "searching for terminals is for operator tills, and till {} is a {}",
                    till.name,
                    till.role.as_str()
                ),
            ));
        }
        let subnets = match subnet {
            Some(text) => {
                vec![range::subnet(text).map_err(|e| ApiError::bad_request(e.to_string()))?]
            }
            None => range::local_subnets(),
        };
        if subnets.is_empty() {
            return Err(ApiError::bad_request(
                "this host has no private IPv4 address: give a subnet such as 192.168.1.0/24",
            ));
        }
        self.take_turn()?;
        Ok(Sweep {
            turn: Arc::clone(&self.turn),
            subnets,
            port: port.unwrap_or(discover::DEFAULT_PORT),
            configured: terminals
                .iter()
                .map(|t| (t.name.clone(), t.address.clone()))
                .collect(),
        })
    }

    fn take_turn(&self) -> Result<(), ApiError> {
        let mut turn = lock(&self.turn);
        if turn.running {
            return Err(rate_limited(
                "a terminal search is already running: its result comes on the page that asked"
                    .into(),
                None,
            ));
        }
        let left = turn.ended.map_or(Duration::ZERO, |ended| {
            self.interval.saturating_sub(ended.elapsed())
        });
        if !left.is_zero() {
            let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(rate_limited(
                format!("one terminal search a minute: try again in {seconds} s"),
                Some(seconds),
            ));
        }
        turn.running = true;
        Ok(())
    }
}

/// The turn's lock; every section leaves it consistent, so a poisoned one is taken as is.
fn lock(turn: &Mutex<Turn>) -> MutexGuard<'_, Turn> {
    turn.lock().unwrap_or_else(|e| e.into_inner())
}

fn rate_limited(message: String, retry_after: Option<u64>) -> ApiError {
    ApiError {
        retry_after,
        ..ApiError::new(ErrorCode::RateLimited, message)
    }
}

impl Sweep {
    /// The immediate answer: `discovering`, naming what will be swept.
    pub fn started(&self) -> ServerMessage {
        ServerMessage::Discovering {
            subnets: self.subnet_names(),
            port: self.port,
        }
    }

    /// Sweeps each subnet in turn; the `discovered` message.
    pub async fn run(self) -> ServerMessage {
        let configured = discover::configured_addresses(&self.configured).await;
        let mut found = Vec::new();
        for net in &self.subnets {
            let hosts = range::hosts(*net);
            let findings = discover::sweep(&hosts, self.port, &configured).await;
            found.extend(findings.iter().map(DiscoveredTerminal::from));
        }
        let subnets = self.subnet_names();
        tracing::info!(
            ?subnets,
            port = self.port,
            found = found.len(),
            "terminal search done"
        );
        ServerMessage::Discovered {
            subnets,
            port: self.port,
            found,
        }
    }

    fn subnet_names(&self) -> Vec<String> {
        self.subnets.iter().map(ToString::to_string).collect()
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        let mut turn = lock(&self.turn);
        turn.running = false;
        turn.ended = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn till(role: Role) -> Till {
        Till {
            name: "t".into(),
            role,
            terminals: None,
        }
    }

    #[test]
    fn only_operators_sweep_and_a_bad_subnet_takes_no_turn() {
        let discovery = Discovery::new(Duration::from_secs(60));
        let subnet = Some("127.0.0.0/30");
        for role in [Role::Cashier, Role::Display] {
            let refused = discovery.admit(&till(role), subnet, None, &[]).unwrap_err();
            assert_eq!(refused.code, ErrorCode::Forbidden);
        }
        let public = discovery.admit(&till(Role::Operator), Some("127.0.0.0/16"), None, &[]);
        assert_eq!(public.unwrap_err().code, ErrorCode::BadRequest);
        let sweep = discovery
            .admit(&till(Role::Operator), subnet, None, &[])
            .unwrap();
        assert_eq!((sweep.port, sweep.subnets.len()), (8888, 1));
        let running = discovery.admit(&till(Role::Operator), subnet, None, &[]);
        assert!(running.unwrap_err().message.contains("already running"));
        drop(sweep);
        let soon = discovery
            .admit(&till(Role::Operator), subnet, None, &[])
            .unwrap_err();
        assert_eq!(soon.code, ErrorCode::RateLimited);
        assert!(
            soon.message.contains("try again in 60 s"),
            "{}",
            soon.message
        );
    }

    #[test]
    fn a_new_sweep_is_admitted_once_the_interval_is_over() {
        let discovery = Discovery::new(Duration::ZERO);
        let operator = till(Role::Operator);
        drop(discovery.admit(&operator, Some("127.0.0.0/30"), Some(20002), &[]));
        let again = discovery.admit(&operator, Some("127.0.0.0/30"), Some(20002), &[]);
        assert_eq!(again.unwrap().port, 20002);
    }
}
