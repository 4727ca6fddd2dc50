//! The value rules of the configuration, as pure functions from text to a typed value or to
//! the message shown after `file:line: field: `. Where in the file a value sits is not their
//! business (see `raw`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::protocol::{TicketCopy, TicketFormat};

/// Shortest allowed terminal answer deadline.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest allowed terminal answer deadline.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Shortest allowed static till token.
pub const MIN_TOKEN_LEN: usize = 16;
/// Static tokens shorter than this are accepted with a warning (contract §7.5).
pub const WEAK_TOKEN_LEN: usize = 24;
/// Token values shipped in the example configuration: anyone can read them.
pub const PLACEHOLDER_TOKENS: [&str; 1] = ["replace-with-a-long-random-secret"];
/// Most connections per address the configuration may ask for.
pub const MAX_CONNECTIONS_PER_ADDRESS: i64 = 10_000;

/// A terminal or till name: `[a-z0-9_-]{1,32}`.
pub fn name(value: &str) -> Result<String, String> {
    let ok = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} must match [a-z0-9_-]{{1,32}}"))
    }
}

/// The agent's name in receipts (`[server] name`, their `iss`): 1–64 printable characters.
pub fn agent_name(value: &str) -> Result<String, String> {
    let printable = value.chars().all(|c| !c.is_control());
    if (1..=64).contains(&value.chars().count()) && printable && value.trim() == value {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} must be 1 to 64 printable characters, no leading or trailing space"
        ))
    }
}

/// A webhook URL: `https://…`, or `http://` to a loopback host only (a secret-signed body
/// in clear text must not cross a network). Returns it unchanged.
pub fn webhook_url(value: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{value:?} {why}");
    let uri: axum::http::Uri = value.parse().map_err(|_| bad("is not a URL"))?;
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad(
            "must not carry credentials (the secret signs each delivery)",
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(value.to_owned()),
        Some("http") if loopback_host(authority.host()) => Ok(value.to_owned()),
        Some("http") => Err(bad(
            "uses http:// to a host that is not loopback; use https:// (http:// only to 127.0.0.1, ::1 or localhost)",
        )),
        _ => Err(bad("must start with https:// (or http:// to a loopback address)")),
    }
}

fn loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A Standard Webhooks secret: `whsec_` then base64 of 16 to 64 bytes. Returns the key bytes.
pub fn webhook_secret(value: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let hint = "must be \"whsec_\" followed by base64 of 16 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))";
    let key = value
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|key| (16..=64).contains(&key.len()));
    key.ok_or_else(|| hint.to_owned())
}

/// Which changes a webhook receives: `final` (default) or `all`.
pub fn webhook_events(value: &str) -> Result<bool, String> {
    match value {
        "final" => Ok(false),
        "all" => Ok(true),
        _ => Err(format!("{value:?} must be \"final\" or \"all\"")),
    }
}

/// A listen address: an IP and a port, no name (nothing is resolved at load).
pub fn listen(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} must be IP:port, e.g. \"127.0.0.1:8443\""))
}

/// A terminal address: "host:port" where host is a DNS name, an IPv4 or a bracketed IPv6.
pub fn address(value: &str) -> Result<String, String> {
    let bad = || format!("{value:?} must be host:port with a port in 1-65535");
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    port_number(port).ok_or_else(bad)?;
    if !host_part(host) {
        return Err(bad());
    }
    Ok(value.to_owned())
}

/// A Caisse-AP POS number (tag CA): two digits.
pub fn pos_number(value: &str) -> Result<String, String> {
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} must be two digits, e.g. \"01\""))
    }
}

/// A terminal's `ticket`: "none", "customer", "merchant" or "both".
pub fn ticket(value: &str) -> Result<Option<TicketCopy>, String> {
    match value {
        "none" => Ok(None),
        "customer" => Ok(Some(TicketCopy::Customer)),
        "merchant" => Ok(Some(TicketCopy::Merchant)),
        "both" => Ok(Some(TicketCopy::Both)),
        _ => Err(format!(
            "{value:?} must be \"none\", \"customer\", \"merchant\" or \"both\""
        )),
    }
}

/// A terminal's `ticket_format`: "text" or "html".
pub fn ticket_format(value: &str) -> Result<TicketFormat, String> {
    match value {
        "text" => Ok(TicketFormat::Text),
        "html" => Ok(TicketFormat::Html),
        _ => Err(format!("{value:?} must be \"text\" or \"html\"")),
    }
}

/// A terminal answer deadline in humantime syntax, between 1 s and 10 min.
pub fn timeout(value: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(value)
        .map_err(|_| format!("{value:?} must be a duration such as \"180s\" or \"3m\""))?;
    if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&parsed) {
        Ok(parsed)
    } else {
        Err(format!("{value:?} must be between 1s and 10m"))
    }
}

/// The possible-duplicate window in humantime syntax, from `0s` (off) to 24 h.
pub fn window(value: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(value)
        .map_err(|_| format!("{value:?} must be a duration such as \"60s\" or \"0s\" (off)"))?;
    if parsed <= Duration::from_secs(24 * 3600) {
        Ok(parsed)
    } else {
        Err(format!("{value:?} must be at most 24h"))
    }
}

/// The journal retention in humantime syntax, at least 1 s.
pub fn retention(value: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(value)
        .map_err(|_| format!("{value:?} must be a duration such as \"30days\" or \"90d\""))?;
    if parsed >= Duration::from_secs(1) {
        Ok(parsed)
    } else {
        Err(format!("{value:?} must be at least 1s"))
    }
}

/// A static till token: at least 16 characters, and not a placeholder of the shipped
/// example. The value never appears in the message.
pub fn token(value: &str) -> Result<String, String> {
    if PLACEHOLDER_TOKENS.contains(&value) {
        Err(
            "is the example's placeholder, which anyone can read: put a random secret \
             of 24+ characters (e.g. `openssl rand -hex 16`), or remove it and pair the till"
                .to_owned(),
        )
    } else if value.chars().count() >= MIN_TOKEN_LEN {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "must be at least {MIN_TOKEN_LEN} characters (value not shown)"
        ))
    }
}

/// A client range: CIDR (`192.168.0.0/16`) or one address.
pub fn cidr(value: &str) -> Result<ipnet::IpNet, String> {
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{value:?} must be a range like \"192.168.0.0/16\" or an address"))
}

/// A connection count per address: 1 to 10 000.
pub fn connections(value: i64) -> Result<usize, String> {
    if (1..=MAX_CONNECTIONS_PER_ADDRESS).contains(&value) {
        Ok(usize::try_from(value).unwrap_or(1))
    } else {
        Err(format!(
            "{value} must be between 1 and {MAX_CONNECTIONS_PER_ADDRESS}"
        ))
    }
}

/// An allowed origin, compared by exact string match with the browser's `Origin` header, so it
/// must look exactly like one: `http(s)://host[:port]`, lowercase, no path, no trailing slash.
pub fn origin(value: &str) -> Result<String, String> {
    let bad =
        |why: &str| format!("{value:?} must be an origin like \"https://pos.example.com\" ({why})");
    let (scheme, rest) = value.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme != "https" && scheme != "http" {
        return Err(bad("scheme must be https or http"));
    }
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("no path, query or trailing slash"));
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("browsers send it lowercase"));
    }
    if !host_with_optional_port(rest) {
        return Err(bad("bad host or port"));
    }
    Ok(value.to_owned())
}

/// An extra certificate name: a DNS name or an IP address.
pub fn extra_name(value: &str) -> Result<String, String> {
    if value.parse::<IpAddr>().is_ok() || dns_name(value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} must be a DNS name or an IP address"))
    }
}

fn host_with_optional_port(value: &str) -> bool {
    if host_part(value) {
        return true;
    }
    match value.rsplit_once(':') {
        Some((host, port)) => host_part(host) && port_number(port).is_some(),
        None => false,
    }
}

fn port_number(port: &str) -> Option<u16> {
    port.parse::<u16>().ok().filter(|p| *p != 0)
}

fn host_part(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    dns_name(host)
}

/// Letters, digits, dots and hyphens; also covers dotted IPv4.
fn dns_name(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions() {
        assert_eq!(retention("30days"), Ok(Duration::from_secs(30 * 24 * 3600)));
        assert_eq!(retention("1s"), Ok(Duration::from_secs(1)));
        assert!(retention("0s").unwrap_err().contains("at least 1s"));
        assert!(retention("soon")
            .unwrap_err()
            .contains("a duration such as"));
    }

    #[test]
    fn addresses() {
        for ok in [
            "127.0.0.1:8888",
            "tpe-1.shop.lan:8888",
            "[::1]:1",
            "localhost:65535",
        ] {
            assert_eq!(address(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "host:0",
            "host:65536",
            ":80",
            "::1:80",
            "a b:80",
            "h:x",
        ] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        for ok in [
            "https://pos.example.com",
            "http://localhost:8080",
            "https://[::1]:8443",
        ] {
            assert_eq!(origin(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "https://pos.example.com/",
            "https://pos.example.com/app",
            "pos.example.com",
            "ftp://pos.example.com",
            "https://POS.example.com",
            "https://pos.example.com:0",
            "https://user@pos.example.com",
            "https://",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout("180s"), Ok(Duration::from_secs(180)));
        assert_eq!(timeout("10m"), Ok(MAX_TIMEOUT));
        assert_eq!(timeout("1s"), Ok(MIN_TIMEOUT));
        for bad in ["999ms", "601s", "soon", "180"] {
            assert!(timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_numbers() {
        assert!(name("tpe_1-a").is_ok());
        assert!(name(&"a".repeat(32)).is_ok());
        for bad in ["", "TPE", "tpe 1", "é", &"a".repeat(33)] {
            assert!(name(bad).is_err(), "{bad}");
        }
        assert!(pos_number("07").is_ok());
        for bad in ["1", "001", "a1"] {
            assert!(pos_number(bad).is_err(), "{bad}");
        }
        assert!(extra_name("caisse.shop.lan").is_ok());
        assert!(extra_name("::1").is_ok());
        assert!(extra_name("bad name").is_err());
    }

    #[test]
    fn ticket_settings() {
        assert_eq!(ticket("none"), Ok(None));
        assert_eq!(ticket("both"), Ok(Some(TicketCopy::Both)));
        assert!(ticket("yes").unwrap_err().contains("\"customer\""));
        assert_eq!(ticket_format("html"), Ok(TicketFormat::Html));
        assert!(ticket_format("pdf").is_err());
    }
}
