//! Per-address limit on wrong codes and tokens, so guessing them is pointless. Addresses
//! count as [`address_key`] says: IPv6 per /64.
//!
//! A fixed window per peer IP: the first failure opens a one-minute window; after
//! `MAX_FAILURES` failures in it, every attempt from that address, right or wrong, is refused
//! until the window ends. Successes do not reset the count: interleaving a known token with
//! guesses buys nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::net::address_key;

/// Failures allowed per address and window.
pub const MAX_FAILURES: u32 = 5;
/// Length of the window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked addresses, finished windows are forgotten (bounds memory).
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: SystemTime,
    count: u32,
}

impl Failures {
    fn is_over(&self, now: SystemTime) -> bool {
        now.duration_since(self.since).unwrap_or_default() >= WINDOW
    }
}

/// Failure counts per peer address.
#[derive(Debug, Default)]
pub struct RateLimiter {
    peers: HashMap<IpAddr, Failures>,
}

impl RateLimiter {
    /// Whether `peer` may try now.
    pub fn allows(&self, peer: IpAddr, now: SystemTime) -> bool {
        self.peers
            .get(&address_key(peer))
            .is_none_or(|f| f.is_over(now) || f.count < MAX_FAILURES)
    }

    /// Counts one wrong attempt from `peer`.
    pub fn record_failure(&mut self, peer: IpAddr, now: SystemTime) {
        if self.peers.len() > PRUNE_ABOVE {
            self.peers.retain(|_, f| !f.is_over(now));
        }
        let entry = self.peers.entry(address_key(peer)).or_insert(Failures {
            since: now,
            count: 0,
        });
        if entry.is_over(now) {
            *entry = Failures {
                since: now,
                count: 0,
            };
        }
        entry.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);

    #[test]
    fn five_failures_block_until_the_window_ends() {
        let mut limiter = RateLimiter::default();
        let start = SystemTime::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.allows(A, start));
            limiter.record_failure(A, start);
        }
        assert!(!limiter.allows(A, start + Duration::from_secs(59)));
        assert!(limiter.allows(B, start));
        assert!(limiter.allows(A, start + WINDOW));
    }

    #[test]
    fn a_new_window_starts_from_zero() {
        let mut limiter = RateLimiter::default();
        let start = SystemTime::now();
        for _ in 0..MAX_FAILURES {
            limiter.record_failure(A, start);
        }
        let later = start + WINDOW;
        limiter.record_failure(A, later);
        assert!(limiter.allows(A, later));
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let mut limiter = RateLimiter::default();
        let now = SystemTime::now();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            limiter.record_failure(mapped, now);
        }
        assert!(!limiter.allows(A, now));
    }
}
