//! The configured `allowed_origins` (contract §4, §7.4), in their one home.
//!
//! A reload replaces the list here, and both readers take it from here: the `/ws` origin
//! check (with the agent's own origin, see [`super::App::is_own_origin`]) and the CORS
//! headers of `/client.js`, `/client.d.ts` and `/lna-probe`. Origins match as exact strings.

use std::sync::RwLock;

/// The origins besides the agent's own whose pages may use it.
#[derive(Debug, Default)]
pub struct AllowedOrigins(RwLock<Vec<String>>);

impl AllowedOrigins {
    /// Holds `origins`.
    pub fn new(origins: Vec<String>) -> AllowedOrigins {
        AllowedOrigins(RwLock::new(origins))
    }

    /// Whether `origin` is listed (exact match).
    pub fn contains(&self, origin: &str) -> bool {
        let origins = self.0.read().unwrap_or_else(|e| e.into_inner());
        origins.iter().any(|o| o == origin)
    }

    /// Makes `origins` the list (a reload); `true` when it differs from the one before.
    pub fn replace(&self, origins: Vec<String>) -> bool {
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        let changed = *current != origins;
        *current = origins;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_list_is_the_one_matched_exactly() {
        let origins = AllowedOrigins::new(vec!["https://pos.example.com".into()]);
        assert!(origins.contains("https://pos.example.com"));
        assert!(!origins.contains("https://pos.example.com/"));
        assert!(!origins.replace(vec!["https://pos.example.com".into()]));
        assert!(origins.replace(vec!["https://other.example.com".into()]));
        assert!(!origins.contains("https://pos.example.com"));
        assert!(origins.contains("https://other.example.com"));
    }
}
