//! Finding Caisse-AP terminals on the shop's LAN (api.md §11), safe by construction.
//!
//! No terminal announces itself, so a sweep is the only way: TCP connects to every address
//! of a checked subnet ([`range`]: private or loopback, at most a /22), at most
//! [`PARALLEL`] at once and [`CONNECT_TIMEOUT`] each, closed at once without a byte sent;
//! then an identification (CD=I) to each open port, **one at a time**, each bounded by
//! [`IDENTIFY_DEADLINE`]. An address that is a configured terminal is not touched at all,
//! not even connected to: it may be in a payment (some terminals take one connection at a
//! time), and it is known anyway. The whole sweep is thus bounded by [`time_bound`]. Used
//! by `caisse-ap-relay discover` and the operator page (`discover`, in `web::discovery`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::net::TcpStream;

use crate::protocol::answer::Identity;
use crate::terminal::{self, ProbeError, Timeouts};

pub mod range;

/// The Caisse-AP port most terminals listen on.
pub const DEFAULT_PORT: u16 = 8888;
/// One TCP connect of the sweep.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Connects in flight at once.
pub const PARALLEL: usize = 64;
/// One identification, connect to answer; a terminal answers CD=I at once.
pub const IDENTIFY_DEADLINE: Duration = Duration::from_secs(2);
/// The POS number of the identification; terminals answer any.
const POS_NUMBER: &str = "01";

/// What one open port said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A Caisse-AP terminal answered AE=10.
    Terminal(Identity),
    /// A Caisse-AP terminal answered, but not AE=10 (e.g. busy).
    Refused(String),
    /// Open, but no Caisse-AP answer in time (another service, or a stuck terminal).
    NoAnswer(String),
    /// A configured terminal (this name): not identified, it may be in a payment.
    Configured(String),
}

/// One open port and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The address.
    pub address: SocketAddr,
    /// Its answer.
    pub answer: Answer,
}

/// The longest a sweep of `hosts` addresses with `open` open ports may take.
pub fn time_bound(hosts: usize, open: usize) -> Duration {
    let rounds = u32::try_from(hosts.div_ceil(PARALLEL)).unwrap_or(u32::MAX);
    let identifications = u32::try_from(open).unwrap_or(u32::MAX);
    CONNECT_TIMEOUT * rounds + (IDENTIFY_DEADLINE + CONNECT_TIMEOUT) * identifications
}

/// Sweeps `hosts` on `port`; `configured` names the addresses of configured terminals.
/// The caller has checked the hosts with [`range`].
pub async fn sweep(
    hosts: &[Ipv4Addr],
    port: u16,
    configured: &[(SocketAddr, String)],
) -> Vec<Finding> {
    let name_of = |address: SocketAddr| {
        let found = configured.iter().find(|(a, _)| *a == address);
        found.map(|(_, name)| name.clone())
    };
    let addresses = hosts
        .iter()
        .map(|ip| SocketAddr::new(IpAddr::V4(*ip), port));
    let (known, unknown): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addresses.partition(|a| name_of(*a).is_some());
    let mut open: Vec<SocketAddr> = stream::iter(unknown)
        .map(|address| async move {
            let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address));
            matches!(connect.await, Ok(Ok(_))).then_some(address)
        })
        .buffer_unordered(PARALLEL)
        .filter_map(|found| async move { found })
        .collect()
        .await;
    open.extend(known);
    open.sort();
    let mut findings = Vec::with_capacity(open.len());
    for address in open {
        let answer = match name_of(address) {
            Some(name) => Answer::Configured(name),
            None => identify(address).await,
        };
        findings.push(Finding { address, answer });
    }
    findings
}

/// One identification (CD=I), bounded.
async fn identify(address: SocketAddr) -> Answer {
    let timeouts = Timeouts {
        connect: CONNECT_TIMEOUT,
        deadline: IDENTIFY_DEADLINE,
        ..Timeouts::default()
    };
    match terminal::probe(&address.to_string(), POS_NUMBER, &timeouts).await {
        Ok(identity) => Answer::Terminal(identity),
        Err(ProbeError::Refused(refused)) => Answer::Refused(refused.to_string()),
        Err(other) => Answer::NoAnswer(other.to_string()),
    }
}

/// The addresses of configured terminals given as `IP:port` or resolvable names.
pub async fn configured_addresses(terminals: &[(String, String)]) -> Vec<(SocketAddr, String)> {
    let mut out = Vec::new();
    for (name, address) in terminals {
        // Bounded: a name that does not resolve must not hold the sweep.
        let lookup = tokio::time::timeout(Duration::from_secs(1), tokio::net::lookup_host(address));
        if let Ok(Ok(found)) = lookup.await {
            out.extend(found.map(|a| (a, name.clone())));
        }
    }
    out
}

/// The ready-to-paste `[[terminal]]` block of an identified terminal.
pub fn block(finding: &Finding) -> Option<String> {
    let address = finding.address;
    matches!(finding.answer, Answer::Terminal(_)).then(|| {
        let name = format!("tpe-{}", address.ip()).replace('.', "-");
        format!("[[terminal]]\nname = \"{name}\"\naddress = \"{address}\"\npos_number = \"01\"\n")
    })
}

/// A ready-to-paste `[[terminal]]` block for an identified terminal, else a comment line.
pub fn describe(finding: &Finding) -> String {
    let address = finding.address;
    match &finding.answer {
        Answer::Terminal(identity) => {
            let cj = identity.pos_id.as_deref().unwrap_or("-");
            let block = block(finding).unwrap_or_default();
            format!(
                "# {address}: Caisse-AP terminal, protocol {}, CJ {cj}\n{block}",
                identity.version
            )
        }
        Answer::Refused(detail) => {
            format!("# {address}: Caisse-AP answer but not ready ({detail}); try again later\n")
        }
        Answer::NoAnswer(detail) => format!("# {address}: open, no Caisse-AP answer ({detail})\n"),
        Answer::Configured(name) => {
            format!("# {address}: already configured as \"{name}\" (not probed)\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_bound_counts_rounds_of_connects_and_each_identification() {
        assert_eq!(time_bound(0, 0), Duration::ZERO);
        assert_eq!(time_bound(64, 0), CONNECT_TIMEOUT);
        assert_eq!(time_bound(65, 1), CONNECT_TIMEOUT * 3 + IDENTIFY_DEADLINE);
        assert!(time_bound(range::MAX_HOSTS as usize, 0) <= Duration::from_secs(5));
    }

    #[test]
    fn blocks_are_valid_terminal_entries() {
        let finding = Finding {
            address: "192.168.1.23:8888".parse().unwrap(),
            answer: Answer::Terminal(Identity {
                version: "0301".into(),
                pos_id: Some("330538600404".into()),
            }),
        };
        let text = describe(&finding);
        assert!(text.contains("protocol 0301, CJ 330538600404"), "{text}");
        assert!(text.contains("name = \"tpe-192-168-1-23\""), "{text}");
        assert!(text.contains("address = \"192.168.1.23:8888\""), "{text}");
    }
}
