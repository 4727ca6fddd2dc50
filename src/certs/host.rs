//! The host facts a leaf must name (hostname, non-loopback addresses) and the set of subject
//! alternative names wanted from them. Detection is separate from use so tests can inject
//! facts, e.g. an address appearing.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The hostname and the non-loopback IP addresses of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    hostname: String,
    ips: Vec<IpAddr>,
}

impl HostNames {
    /// Host facts given explicitly (tests, or a caller that knows better).
    pub fn new(hostname: &str, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let ips: BTreeSet<IpAddr> = ips.into_iter().filter(|ip| !ip.is_loopback()).collect();
        HostNames {
            hostname: hostname.trim().to_ascii_lowercase(),
            ips: ips.into_iter().collect(),
        }
    }

    /// Reads the system hostname and interface addresses; a failure leaves that fact empty
    /// (logged), since `localhost` still works.
    pub fn detect() -> Self {
        let hostname = hostname::get()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot read the hostname");
                String::new()
            });
        let ips = if_addrs::get_if_addrs()
            .map(|interfaces| interfaces.iter().map(|i| i.ip()).collect())
            .unwrap_or_else(|err| {
                tracing::warn!(%err, "cannot list network interfaces");
                Vec::new()
            });
        HostNames::new(&hostname, ips)
    }

    /// The hostname, lowercase (may be empty if unknown).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The non-loopback addresses, sorted, without duplicates.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// The hostname's DNS names (`name` and `label.local`), if it is a usable DNS name.
    pub(crate) fn dns_names(&self) -> Vec<String> {
        let name = &self.hostname;
        let usable = !name.is_empty()
            && name != "localhost"
            && !name.starts_with(['.', '-'])
            && !name.ends_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !usable {
            return Vec::new();
        }
        let label = name.split('.').next().unwrap_or(name);
        vec![name.clone(), format!("{label}.local")]
    }
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SanName {
    /// A DNS name, lowercase.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl SanName {
    /// An IP SAN if `name` is an IP address, else a DNS SAN.
    pub fn parse(name: &str) -> Self {
        match name.trim().parse::<IpAddr>() {
            Ok(ip) => SanName::Ip(ip),
            Err(_) => SanName::Dns(name.trim().to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for SanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanName::Dns(name) => f.write_str(name),
            SanName::Ip(ip) => ip.fmt(f),
        }
    }
}

/// Every name the leaf must carry: loopback names, the host's names and addresses, and the
/// configured extra names.
pub(crate) fn wanted_names(host: &HostNames, extra_names: &[String]) -> BTreeSet<SanName> {
    let loopback = [
        SanName::Dns("localhost".into()),
        SanName::Ip(Ipv4Addr::LOCALHOST.into()),
        SanName::Ip(Ipv6Addr::LOCALHOST.into()),
    ];
    let host_dns = host.dns_names().into_iter().map(SanName::Dns);
    let host_ips = host.ips().iter().copied().map(SanName::Ip);
    let extra = extra_names.iter().map(|name| SanName::parse(name));
    loopback
        .into_iter()
        .chain(host_dns)
        .chain(host_ips)
        .chain(extra)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_names_cover_loopback_host_and_extras() {
        let host = HostNames::new("Till-1", ["192.168.1.20".parse().unwrap()]);
        let extra = vec!["caisse.shop.lan".to_string(), "10.0.0.7".to_string()];
        let names: Vec<String> = wanted_names(&host, &extra)
            .iter()
            .map(ToString::to_string)
            .collect();
        for expected in [
            "localhost",
            "127.0.0.1",
            "::1",
            "till-1",
            "till-1.local",
            "192.168.1.20",
            "caisse.shop.lan",
            "10.0.0.7",
        ] {
            assert!(
                names.contains(&expected.to_string()),
                "{expected} in {names:?}"
            );
        }
        assert_eq!(names.len(), 8);
    }

    #[test]
    fn loopback_addresses_are_not_host_addresses() {
        let host = HostNames::new("h", ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]);
        assert!(host.ips().is_empty());
    }

    #[test]
    fn unusable_hostnames_add_no_dns_name() {
        assert!(HostNames::new("", []).dns_names().is_empty());
        assert!(HostNames::new("bad_name", []).dns_names().is_empty());
        assert_eq!(
            HostNames::new("pos.shop.lan", []).dns_names(),
            ["pos.shop.lan", "pos.local"]
        );
    }

    #[test]
    fn extra_names_become_ip_or_dns() {
        assert_eq!(
            SanName::parse("10.1.2.3"),
            SanName::Ip([10, 1, 2, 3].into())
        );
        assert_eq!(
            SanName::parse("Caisse.LAN"),
            SanName::Dns("caisse.lan".into())
        );
    }
}
