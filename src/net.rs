//! Client addresses as the agent's limits see them, and the local ranges.
//!
//! Limits count per [`address_key`]: an IPv4 address, or an IPv6 /64 (one host easily holds
//! a whole /64, so counting full IPv6 addresses would limit nothing). [`LOCAL_RANGES`] are
//! the loopback, private and link-local ranges: `/metrics` answers them by default and a
//! name-constrained CA may certify them.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// Loopback, private and link-local ranges (IPv4 and IPv6).
pub const LOCAL_RANGES: [&str; 8] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
];

/// [`LOCAL_RANGES`] parsed.
pub fn local_ranges() -> Vec<IpNet> {
    LOCAL_RANGES
        .iter()
        .map(|range| range.parse().expect("constant range"))
        .collect()
}

/// What a per-address limit counts `peer` as: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by
/// its /64 prefix.
pub fn address_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:127.0.0.9"), key("127.0.0.9"));
        assert_ne!(key("127.0.0.9"), key("127.0.0.10"));
    }

    #[test]
    fn local_ranges_parse_and_hold_loopback() {
        let ranges = local_ranges();
        assert!(ranges
            .iter()
            .any(|r| r.contains(&"127.3.4.5".parse::<IpAddr>().unwrap())));
        assert!(!ranges
            .iter()
            .any(|r| r.contains(&"8.8.8.8".parse::<IpAddr>().unwrap())));
    }
}
