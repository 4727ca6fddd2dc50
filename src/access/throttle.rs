//! At most one log line a minute per client address, with how many events it stands for, so
//! a flood of refused attempts cannot flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::net::address_key;

/// One line per address and period.
pub const PERIOD: Duration = Duration::from_secs(60);
/// Above this many tracked addresses, quiet ones are forgotten (bounds memory).
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug)]
struct Seen {
    logged: Instant,
    /// Events since the last line.
    count: u32,
}

/// Per-address event counts between log lines.
#[derive(Debug, Default)]
pub struct LogThrottle(Mutex<HashMap<IpAddr, Seen>>);

impl LogThrottle {
    /// Counts one event from `peer`; `Some(n)` when a line should be written now, for the
    /// `n` events since the last one (this one included).
    pub fn hit(&self, peer: IpAddr) -> Option<u32> {
        self.hit_at(peer, Instant::now())
    }

    fn hit_at(&self, peer: IpAddr, now: Instant) -> Option<u32> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > PRUNE_ABOVE {
            seen.retain(|_, s| now.duration_since(s.logged) < PERIOD);
        }
        match seen.get_mut(&address_key(peer)) {
            Some(s) if now.duration_since(s.logged) < PERIOD => {
                s.count += 1;
                None
            }
            Some(s) => {
                let count = s.count + 1;
                *s = Seen {
                    logged: now,
                    count: 0,
                };
                Some(count)
            }
            None => {
                seen.insert(
                    address_key(peer),
                    Seen {
                        logged: now,
                        count: 0,
                    },
                );
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_minute_per_address_with_the_count() {
        let throttle = LogThrottle::default();
        let (a, b) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let start = Instant::now();
        assert_eq!(throttle.hit_at(a, start), Some(1));
        for _ in 0..9 {
            assert_eq!(throttle.hit_at(a, start + Duration::from_secs(1)), None);
        }
        assert_eq!(throttle.hit_at(b, start), Some(1));
        assert_eq!(throttle.hit_at(a, start + PERIOD), Some(10));
    }
}
