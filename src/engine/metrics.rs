//! Prometheus metrics for `/metrics`, in the OpenMetrics text format Prometheus scrapes.
//!
//! Counters and histograms are fed as things happen: the engine reports each transaction's
//! final state and the journal each sync. Gauges (terminal reachability, open sessions) are
//! read from the engine and the presence at scrape time, so they never drift from the
//! state they describe. This module keeps no transaction state and opens no socket; the
//! route that serves it is in `web/routes.rs`. It sits in the engine, which feeds it, and
//! imports only the engine's record and terminal types.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `relay_transactions_total` | counter | `terminal`, `state` (final states) |
//! | `relay_transaction_duration_seconds` | histogram | `terminal` (accepted → final) |
//! | `relay_terminal_up` | gauge | `terminal` (1 reachable, 0 unreachable) |
//! | `relay_ws_clients` | gauge | `role` (open authenticated sessions) |
//! | `relay_journal_fsync_seconds` | histogram | — (each journal write + fdatasync) |
//! | `relay_webhook_pending` | gauge | `webhook` (deliveries owed, not yet acknowledged) |
//! | `relay_webhook_deliveries_total` | counter | `webhook`, `result` (`delivered`, `refused`, `timeout`, `failed`: each attempt) |

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::record::{Record, State};
use super::registry::{TerminalState, TerminalStatus};
use crate::config::Role;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Transaction duration buckets, seconds: a declined card in 50 ms up to the 180 s default
/// terminal deadline and beyond.
const DURATION_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The final states, each counted from zero so that rates work from the first scrape.
const FINAL_STATES: [State; 4] = [
    State::Approved,
    State::Declined,
    State::NotSent,
    State::Unknown,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    terminal: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TerminalLabels {
    terminal: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    webhook: String,
    result: &'static str,
}

type HistogramFamily = Family<TerminalLabels, Histogram, fn() -> Histogram>;

/// Every metric of the agent; share it behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    transactions: Family<OutcomeLabels, Counter>,
    durations: HistogramFamily,
    terminal_up: Family<TerminalLabels, Gauge>,
    ws_clients: Family<RoleLabels, Gauge>,
    journal_fsync: Histogram,
    webhook_pending: Family<WebhookLabels, Gauge>,
    webhook_deliveries: Family<DeliveryLabels, Counter>,
    // Scrape-time gauges are cleared and refilled: two scrapes must not interleave.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry holding every metric, all empty.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            transactions: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            terminal_up: Family::default(),
            ws_clients: Family::default(),
            // 0.5 ms … 1 s: an SSD syncs in about a millisecond, a failing disk in seconds.
            journal_fsync: Histogram::new(exponential_buckets(0.0005, 2.0, 12)),
            webhook_pending: Family::default(),
            webhook_deliveries: Family::default(),
            scrape: Mutex::new(()),
        };
        metrics.register()
    }

    fn register(mut self) -> Metrics {
        let registry = &mut self.registry;
        registry.register(
            "relay_transactions",
            "Transactions that reached a final state, by terminal and state",
            self.transactions.clone(),
        );
        registry.register_with_unit(
            "relay_transaction_duration",
            "Time from accepted to the final state, by terminal",
            Unit::Seconds,
            self.durations.clone(),
        );
        registry.register(
            "relay_terminal_up",
            "1 when the terminal's last dialog went through, 0 when it could not connect",
            self.terminal_up.clone(),
        );
        registry.register(
            "relay_ws_clients",
            "Open authenticated WebSocket sessions, by till role",
            self.ws_clients.clone(),
        );
        registry.register_with_unit(
            "relay_journal_fsync",
            "Time of each journal write and fdatasync",
            Unit::Seconds,
            self.journal_fsync.clone(),
        );
        registry.register(
            "relay_webhook_pending",
            "Webhook deliveries owed and not yet acknowledged, by webhook",
            self.webhook_pending.clone(),
        );
        registry.register(
            "relay_webhook_deliveries",
            "Webhook delivery attempts, by webhook and result",
            self.webhook_deliveries.clone(),
        );
        self
    }

    /// Sets webhook `name`'s backlog.
    pub fn webhook_pending(&self, name: &str, pending: usize) {
        let labels = WebhookLabels {
            webhook: name.to_owned(),
        };
        let pending = i64::try_from(pending).unwrap_or(i64::MAX);
        self.webhook_pending.get_or_create(&labels).set(pending);
    }

    /// Counts one delivery attempt of webhook `name` that ended with `result`.
    pub fn webhook_delivery(&self, name: &str, result: &'static str) {
        let labels = DeliveryLabels {
            webhook: name.to_owned(),
            result,
        };
        self.webhook_deliveries.get_or_create(&labels).inc();
    }

    /// Counts a final record; `duration` (accepted → final) when this process timed it.
    pub fn transaction_finished(&self, record: &Record, duration: Option<Duration>) {
        let labels = OutcomeLabels {
            terminal: record.terminal.clone(),
            state: record.state.as_str(),
        };
        self.transactions.get_or_create(&labels).inc();
        if let Some(duration) = duration {
            let labels = TerminalLabels {
                terminal: record.terminal.clone(),
            };
            self.durations
                .get_or_create(&labels)
                .observe(duration.as_secs_f64());
        }
    }

    /// Times one journal sync.
    pub fn journal_synced(&self, duration: Duration) {
        self.journal_fsync.observe(duration.as_secs_f64());
    }

    /// The exposition text, with the gauges set from `terminals` and the open sessions
    /// per role in `clients`.
    pub fn render(&self, terminals: &[TerminalStatus], clients: &[(Role, usize)]) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        // Cleared first: a terminal removed from the configuration disappears.
        self.terminal_up.clear();
        for status in terminals {
            let labels = TerminalLabels {
                terminal: status.name.clone(),
            };
            let up = status.state != TerminalState::Unreachable;
            self.terminal_up.get_or_create(&labels).set(i64::from(up));
            for state in FINAL_STATES {
                let outcome = OutcomeLabels {
                    terminal: status.name.clone(),
                    state: state.as_str(),
                };
                let _ = self.transactions.get_or_create(&outcome);
            }
        }
        for (role, count) in clients {
            let labels = RoleLabels {
                role: Role::as_str(*role),
            };
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            self.ws_clients.get_or_create(&labels).set(count);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::sample;

    fn status(name: &str, state: TerminalState) -> TerminalStatus {
        TerminalStatus {
            name: name.into(),
            address: "127.0.0.1:9".into(),
            state,
            current: None,
            last_seen: None,
        }
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn outcomes_are_counted_per_terminal_and_state_from_zero() {
        let metrics = Metrics::new();
        let approved = sample("a", State::Approved);
        metrics.transaction_finished(&approved, Some(Duration::from_millis(70)));
        metrics.transaction_finished(&approved, None);
        let text = metrics.render(&[status("tpe-1", TerminalState::Idle)], &[]);
        let count = r#"relay_transactions_total{terminal="tpe-1",state="approved"} 2"#;
        assert!(has_line(&text, count), "{text}");
        let zero = r#"relay_transactions_total{terminal="tpe-1",state="unknown"} 0"#;
        assert!(has_line(&text, zero), "{text}");
        let timed = r#"relay_transaction_duration_seconds_count{terminal="tpe-1"} 1"#;
        assert!(has_line(&text, timed), "{text}");
        let bucket = r#"relay_transaction_duration_seconds_bucket{le="0.1",terminal="tpe-1"} 1"#;
        assert!(has_line(&text, bucket), "{text}");
    }

    #[test]
    fn gauges_follow_the_latest_scrape() {
        let metrics = Metrics::new();
        let terminals = [
            status("tpe-1", TerminalState::Busy),
            status("tpe-2", TerminalState::Unreachable),
        ];
        let text = metrics.render(&terminals, &[(Role::Cashier, 2), (Role::Display, 0)]);
        assert!(has_line(&text, r#"relay_terminal_up{terminal="tpe-1"} 1"#));
        assert!(has_line(&text, r#"relay_terminal_up{terminal="tpe-2"} 0"#));
        assert!(has_line(&text, r#"relay_ws_clients{role="cashier"} 2"#));
        let text = metrics.render(&terminals[..1], &[(Role::Cashier, 1)]);
        assert!(!text.contains(r#"terminal="tpe-2"} 0"#), "{text}");
        assert!(has_line(&text, r#"relay_ws_clients{role="cashier"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn journal_syncs_are_timed() {
        let metrics = Metrics::new();
        metrics.journal_synced(Duration::from_micros(300));
        metrics.journal_synced(Duration::from_millis(3));
        let text = metrics.render(&[], &[]);
        assert!(
            has_line(&text, "relay_journal_fsync_seconds_count 2"),
            "{text}"
        );
        assert!(has_line(
            &text,
            r#"relay_journal_fsync_seconds_bucket{le="0.0005"} 1"#
        ));
    }
}
