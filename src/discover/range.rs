//! Which addresses a sweep may touch: private (RFC 1918) or loopback IPv4 subnets of at
//! most [`MAX_HOSTS`] addresses, nothing else. The check is the whole of the safety
//! argument, so it is a pure function with its own unit tests.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use thiserror::Error;

/// Most addresses one sweep covers (a /22): with 64 connects of ≤ 300 ms at once, the
/// connect phase lasts at most 16 × 300 ms ≈ 5 s.
pub const MAX_HOSTS: u32 = 1024;

/// The ranges a sweep may cover: loopback and the three private blocks.
const ALLOWED: [&str; 4] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
];

/// A subnet a sweep must not cover.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RangeError {
    /// Not `a.b.c.d/n`.
    #[error("{0:?} is not an IPv4 subnet such as 192.168.1.0/24")]
    Syntax(String),
    /// Outside loopback and the private ranges.
    #[error(
        "{0} is not a private or loopback range (10/8, 172.16/12, 192.168/16, 127/8): refused"
    )]
    NotPrivate(Ipv4Net),
    /// More than [`MAX_HOSTS`] addresses.
    #[error("{0} has more than {MAX_HOSTS} addresses: sweep a /22 or smaller")]
    TooLarge(Ipv4Net),
}

/// Parses and checks a subnet (`a.b.c.d/n`; the host bits are ignored).
pub fn subnet(text: &str) -> Result<Ipv4Net, RangeError> {
    let net: Ipv4Net = text
        .parse()
        .map_err(|_| RangeError::Syntax(text.to_string()))?;
    check(net.trunc())
}

/// Checks that `net` lies inside one allowed range and is small enough.
pub fn check(net: Ipv4Net) -> Result<Ipv4Net, RangeError> {
    let allowed = ALLOWED
        .iter()
        .filter_map(|a| a.parse::<Ipv4Net>().ok())
        .any(|range| range.contains(&net));
    if !allowed {
        return Err(RangeError::NotPrivate(net));
    }
    if net.prefix_len() < 22 {
        return Err(RangeError::TooLarge(net));
    }
    Ok(net)
}

/// The addresses to sweep: every host address of `net` (all of a /31 or /32).
pub fn hosts(net: Ipv4Net) -> Vec<Ipv4Addr> {
    net.hosts().collect()
}

/// The host's own private /24s (loopback left out), the default sweep.
pub fn local_subnets() -> Vec<Ipv4Net> {
    let mut nets: Vec<Ipv4Net> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|iface| match iface.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_loopback() => Ipv4Net::new(ip, 24).ok(),
            _ => None,
        })
        .map(|net| net.trunc())
        .filter(|net| check(*net).is_ok())
        .collect();
    nets.sort();
    nets.dedup();
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_subnets_pass() {
        for ok in [
            "192.168.1.0/24",
            "10.0.0.0/22",
            "172.16.5.0/24",
            "172.31.255.0/24",
            "127.0.0.0/24",
            "127.0.0.2/32",
            "192.168.1.77/24",
        ] {
            assert!(subnet(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            subnet("192.168.1.77/24").unwrap().to_string(),
            "192.168.1.0/24"
        );
    }

    #[test]
    fn public_and_special_ranges_are_refused() {
        for public in [
            "8.8.8.0/24",
            "1.1.1.1/32",
            "100.64.0.0/24",
            "169.254.1.0/24",
            "172.32.0.0/24",
            "172.15.255.0/24",
            "192.169.0.0/24",
            "0.0.0.0/24",
            "224.0.0.0/24",
            "255.255.255.255/32",
            "11.0.0.0/24",
        ] {
            assert!(
                matches!(subnet(public), Err(RangeError::NotPrivate(_))),
                "{public}"
            );
        }
    }

    #[test]
    fn straddling_and_oversize_subnets_are_refused() {
        // Wider than the private block it starts in.
        assert!(matches!(
            subnet("172.0.0.0/10"),
            Err(RangeError::NotPrivate(_))
        ));
        assert!(matches!(
            subnet("0.0.0.0/0"),
            Err(RangeError::NotPrivate(_))
        ));
        assert!(matches!(subnet("10.0.0.0/8"), Err(RangeError::TooLarge(_))));
        assert!(matches!(
            subnet("192.168.0.0/21"),
            Err(RangeError::TooLarge(_))
        ));
        for bad in [
            "",
            "192.168.1.0",
            "192.168.1.0/33",
            "::1/128",
            "fe80::/64",
            "x/24",
        ] {
            assert!(matches!(subnet(bad), Err(RangeError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn hosts_leave_out_network_and_broadcast() {
        let net = subnet("127.0.0.0/30").unwrap();
        assert_eq!(
            hosts(net),
            [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)]
        );
        assert_eq!(hosts(subnet("127.0.0.9/32").unwrap()).len(), 1);
        assert!(hosts(subnet("192.168.1.0/24").unwrap()).len() <= MAX_HOSTS as usize);
    }

    #[test]
    fn local_subnets_are_all_allowed() {
        for net in local_subnets() {
            assert!(check(net).is_ok(), "{net}");
        }
    }
}
