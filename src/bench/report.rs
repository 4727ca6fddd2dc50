//! The figures of one bench run, the human table and the final machine-readable line
//! `bench: added_p50_ms=… added_p99_ms=… answer_to_till_p50_ms=… tps=… tps_close=…
//! cpu_per_tx_ms=… lost=… dup=… idle_rss_mb=… rss_10k_mb=… start_ms=… receipt_sign_us=…
//! webhook_p50_ms=… webhook_p99_ms=… webhook_lost=… nohooks_added_p50_ms=…
//! nohooks_added_p99_ms=… nohooks_cpu_per_tx_ms=… healthy_added_p50_ms=… (the same three)
//! hanging_added_p50_ms=… (the same three)` (`tps`: terminals keeping the socket open;
//! `tps_close` and `cpu_per_tx_ms`: terminals closing it; `nohooks_`, `healthy_`,
//! `hanging_`: the webhook phase's interleaved agents without webhooks, with a healthy
//! endpoint, with a healthy and a hanging one).

use std::fmt::Write;
use std::time::Duration;

use super::latency::Latency;
use super::stats::{diff_ms, ms, Summary};
use super::throughput::Throughput;
use super::webhooks::WebhookFigures;
use super::Plan;

/// Cross-checks of the throughput and latency runs against the journal and the terminals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    /// Final states the tills received, all phases.
    pub client_finals: u64,
    /// Final records in the journal after the run.
    pub journal_finals: u64,
    /// Finals seen by a till that the journal lacks or records with another state.
    pub journal_mismatches: u64,
    /// Payment requests the simulators received (identification probes excluded).
    pub terminal_requests: u64,
    /// Payment requests they should have received: one per final state plus the direct ones.
    pub expected_requests: u64,
}

/// CPU time spent by each side during the throughput run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu {
    /// The agent process.
    pub agent: Duration,
    /// The bench process: tills and simulators.
    pub bench: Duration,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// What was run.
    pub plan: Plan,
    /// One durable journal append, measured alone in the bench process.
    pub journal_alone: Summary,
    /// First start (creates the certificates): spawn to listening line.
    pub first_start: Duration,
    /// Start with existing certificates: spawn to the first completed TLS handshake.
    pub start: Duration,
    /// Agent RSS right after start, in KiB.
    pub idle_rss_kib: u64,
    /// Agent RSS with `plan.idle_clients` idle clients, in KiB.
    pub clients_rss_kib: u64,
    /// Latency run.
    pub latency: Latency,
    /// Throughput run, terminals keeping the socket open.
    pub throughput: Throughput,
    /// Throughput run, terminals closing the socket after answering.
    pub throughput_close: Throughput,
    /// Journal and terminal cross-checks.
    pub checks: Checks,
    /// CPU time during the keep-open throughput run.
    pub cpu: Cpu,
    /// CPU time during the closing throughput run.
    pub cpu_close: Cpu,
    /// Receipt signing and webhook delivery (second agent).
    pub webhooks: WebhookFigures,
}

impl Figures {
    /// Pays without exactly one durable final state, or never seen by their terminal.
    pub fn lost(&self) -> u64 {
        let unseen = self
            .checks
            .expected_requests
            .saturating_sub(self.checks.terminal_requests);
        self.throughput.lost + self.throughput_close.lost + self.checks.journal_mismatches + unseen
    }

    /// Extra final messages, or terminal requests beyond one per payment.
    pub fn dup(&self) -> u64 {
        let (open, close) = (&self.throughput, &self.throughput_close);
        let allowed = self.checks.expected_requests + open.lost + close.lost;
        open.duplicates + close.duplicates + self.checks.terminal_requests.saturating_sub(allowed)
    }

    /// Agent CPU per payment while terminals close after answering, in ms.
    pub fn cpu_per_tx_ms(&self) -> f64 {
        let finals = self.throughput_close.finals.len().max(1) as f64;
        self.cpu_close.agent.as_secs_f64() * 1000.0 / finals
    }

    /// Median added latency (through the agent minus direct), in ms.
    pub fn added_p50_ms(&self) -> f64 {
        diff_ms(self.latency.relayed.p50, self.latency.direct.p50)
    }

    /// 99th-percentile added latency, in ms.
    pub fn added_p99_ms(&self) -> f64 {
        diff_ms(self.latency.relayed.p99, self.latency.direct.p99)
    }

    /// The final line.
    pub fn line(&self) -> String {
        format!(
            "bench: added_p50_ms={:.2} added_p99_ms={:.2} answer_to_till_p50_ms={:.2} tps={:.0} \
             tps_close={:.0} cpu_per_tx_ms={:.3} lost={} dup={} \
             idle_rss_mb={:.1} rss_10k_mb={:.1} start_ms={:.1}",
            self.added_p50_ms(),
            self.added_p99_ms(),
            ms(self.latency.answer_to_till.p50),
            self.throughput.tps(),
            self.throughput_close.tps(),
            self.cpu_per_tx_ms(),
            self.lost(),
            self.dup(),
            mib(self.idle_rss_kib),
            mib(self.clients_rss_kib),
            ms(self.start),
        ) + &self.webhook_keys()
    }

    /// The receipt and webhook keys of the final line.
    fn webhook_keys(&self) -> String {
        let hooks = &self.webhooks;
        let mut keys = format!(
            " receipt_sign_us={:.0} webhook_p50_ms={:.1} webhook_p99_ms={:.1} webhook_lost={}",
            ms(hooks.sign.p50) * 1000.0,
            ms(hooks.delivery.p50),
            ms(hooks.delivery.p99),
            hooks.paid.saturating_sub(hooks.delivered),
        );
        for (name, run) in hooks.variants() {
            let (p50, p99) = added(&run.latency);
            let cpu = run.cpu_per_payment_ms();
            let _ = write!(
                keys,
                " {name}_added_p50_ms={p50:.2} {name}_added_p99_ms={p99:.2} \
                 {name}_cpu_per_tx_ms={cpu:.3}"
            );
        }
        keys
    }

    fn webhook_rows(&self) -> Vec<Row> {
        let hooks = &self.webhooks;
        let us = |d: Duration| format!("{:.0}", ms(d) * 1000.0);
        let mut rows = vec![
            row(
                "receipt signing p50 / p99 (µs)",
                format!("{} / {}", us(hooks.sign.p50), us(hooks.sign.p99)),
                "",
            ),
            row(
                "final → webhook endpoint p50 / p99 (ms)",
                format!(
                    "{:.1} / {:.1}",
                    ms(hooks.delivery.p50),
                    ms(hooks.delivery.p99)
                ),
                "",
            ),
            row(
                "finals delivered / paid",
                format!("{} / {}", hooks.delivered, hooks.paid),
                "all",
            ),
        ];
        let targets = ["", "≈ no webhook", "= healthy"];
        for ((name, run), target) in hooks.variants().into_iter().zip(targets) {
            let (p50, p99) = added(&run.latency);
            rows.push(row(
                &format!("added, webhooks {name}, p50 / p99 (ms)"),
                format!("{p50:.2} / {p99:.2}"),
                target,
            ));
            rows.push(row(
                &format!("agent CPU per payment, webhooks {name} (ms)"),
                format!("{:.3}", run.cpu_per_payment_ms()),
                "",
            ));
        }
        rows
    }

    /// The human table: one row per figure, with its target.
    pub fn table(&self) -> String {
        let mut rows = self.latency_rows();
        rows.extend(self.throughput_rows());
        rows.extend(self.resource_rows());
        rows.extend(self.webhook_rows());
        let failures = self.throughput.failures.iter().take(5);
        rows.extend(failures.map(|f| row("failure", f.clone(), "")));
        render(&rows)
    }

    fn latency_rows(&self) -> Vec<Row> {
        let (direct, relayed) = (&self.latency.direct, &self.latency.relayed);
        let pair = |a, b| format!("{:.2} / {:.2}", ms(a), ms(b));
        let journal = &self.journal_alone;
        vec![
            row(
                "journal append alone p50 / p99 (ms)",
                pair(journal.p50, journal.p99),
                "",
            ),
            row("direct p50 / p99 (ms)", pair(direct.p50, direct.p99), ""),
            row(
                "agent: accepted / connecting / sent p50 (ms)",
                self.marks(),
                "",
            ),
            row(
                "via agent p50 / p99 (ms)",
                pair(relayed.p50, relayed.p99),
                "",
            ),
            row(
                "added p50 (ms)",
                format!("{:.2}", self.added_p50_ms()),
                "<= 1",
            ),
            row(
                "added p99 (ms)",
                format!("{:.2}", self.added_p99_ms()),
                "<= 3",
            ),
            row(
                "answer -> till p50 / p99 (ms)",
                pair(
                    self.latency.answer_to_till.p50,
                    self.latency.answer_to_till.p99,
                ),
                "",
            ),
        ]
    }

    /// When the intermediate states reached the till (p50, from `pay`).
    fn marks(&self) -> String {
        let [a, c, s] = self.latency.marks.map(|m| ms(m.p50));
        format!("{a:.2} / {c:.2} / {s:.2}")
    }

    fn throughput_rows(&self) -> Vec<Row> {
        let mut rows = self.run_rows("keep-open", &self.throughput, &self.cpu, "");
        let close = &self.throughput_close;
        rows.extend(self.run_rows("close", close, &self.cpu_close, ">= 3000"));
        rows.push(row(
            "agent CPU per payment, close (ms)",
            format!("{:.3}", self.cpu_per_tx_ms()),
            "<= 0.25",
        ));
        rows.extend(self.check_rows());
        rows
    }

    /// The rows of one throughput run (`mode`: how the terminals end the connection).
    fn run_rows(&self, mode: &str, t: &Throughput, cpu: &Cpu, target: &'static str) -> Vec<Row> {
        let p = &self.plan;
        let tills = format!(
            "throughput {mode}, {} tills x {} s (tx/s)",
            p.tills,
            p.duration.as_secs()
        );
        let latency = format!("{:.1} / {:.1}", ms(t.latency.p50), ms(t.latency.p99));
        let cpu = (cpu.agent.as_secs_f64(), cpu.bench.as_secs_f64());
        vec![
            row(&tills, format!("{:.0}", t.tps()), target),
            row(&format!("{mode}: pay -> final p50 / p99 (ms)"), latency, ""),
            row(
                &format!("{mode}: pays / finals / busy refusals"),
                format!("{} / {} / {}", t.pays, t.finals.len(), t.busy_refusals),
                "",
            ),
            row(
                &format!("{mode}: CPU agent / bench (s)"),
                format!("{:.1} / {:.1}", cpu.0, cpu.1),
                "",
            ),
        ]
    }

    fn check_rows(&self) -> Vec<Row> {
        let c = &self.checks;
        vec![
            row(
                "finals seen / in journal",
                format!("{} / {}", c.client_finals, c.journal_finals),
                "equal",
            ),
            row(
                "terminal requests / expected",
                format!("{} / {}", c.terminal_requests, c.expected_requests),
                "equal",
            ),
            row(
                "lost / dup",
                format!("{} / {}", self.lost(), self.dup()),
                "0 / 0",
            ),
        ]
    }

    fn resource_rows(&self) -> Vec<Row> {
        let clients = format!("RSS with {} idle clients (MB)", self.plan.idle_clients);
        vec![
            row(
                "idle agent RSS (MB)",
                format!("{:.1}", mib(self.idle_rss_kib)),
                "<= 20",
            ),
            row(
                &clients,
                format!("{:.1}", mib(self.clients_rss_kib)),
                "<= 200 (10k)",
            ),
            row(
                "first start, creating certs (ms)",
                format!("{:.1}", ms(self.first_start)),
                "",
            ),
            row(
                "start with existing certs (ms)",
                format!("{:.1}", ms(self.start)),
                "<= 100",
            ),
        ]
    }
}

/// One table row: what, value, target.
type Row = (String, String, &'static str);

fn row(what: &str, value: String, target: &'static str) -> Row {
    (what.to_owned(), value, target)
}

fn render(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (what, value, target) in rows {
        let _ = writeln!(out, "{what:<width$}  {value:>16}  {target}");
    }
    out
}

/// Added latency p50 and p99 of `latency`, in ms (agent minus direct).
fn added(latency: &Latency) -> (f64, f64) {
    (
        diff_ms(latency.relayed.p50, latency.direct.p50),
        diff_ms(latency.relayed.p99, latency.direct.p99),
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        let summary = |p50, p99| Summary {
            count: 10,
            p50: Duration::from_micros(p50),
            p99: Duration::from_micros(p99),
        };
        let mut figures = Figures {
            start: Duration::from_micros(42_500),
            idle_rss_kib: 10 * 1024,
            clients_rss_kib: 150 * 1024,
            ..Figures::default()
        };
        figures.latency.direct = summary(300_000, 301_000);
        figures.latency.relayed = summary(300_800, 303_500);
        figures.throughput.elapsed = Duration::from_secs(2);
        figures.throughput.pays = 1000;
        figures.throughput.finals =
            vec![("a".into(), crate::engine::record::State::Approved); 1000];
        figures.checks = Checks {
            client_finals: 1000,
            journal_finals: 1000,
            journal_mismatches: 0,
            terminal_requests: 1000,
            expected_requests: 1000,
        };
        figures
    }

    #[test]
    fn the_final_line_has_every_key() {
        assert_eq!(
            figures().line(),
            "bench: added_p50_ms=0.80 added_p99_ms=2.50 answer_to_till_p50_ms=0.00 tps=500 \
             tps_close=0 cpu_per_tx_ms=0.000 lost=0 dup=0 \
             idle_rss_mb=10.0 rss_10k_mb=150.0 start_ms=42.5 receipt_sign_us=0 \
             webhook_p50_ms=0.0 webhook_p99_ms=0.0 webhook_lost=0 nohooks_added_p50_ms=0.00 \
             nohooks_added_p99_ms=0.00 nohooks_cpu_per_tx_ms=0.000 healthy_added_p50_ms=0.00 \
             healthy_added_p99_ms=0.00 healthy_cpu_per_tx_ms=0.000 hanging_added_p50_ms=0.00 \
             hanging_added_p99_ms=0.00 hanging_cpu_per_tx_ms=0.000"
        );
    }

    #[test]
    fn missing_and_extra_requests_count_as_lost_and_dup() {
        let mut short = figures();
        short.checks.terminal_requests = 998;
        short.throughput.duplicates = 1;
        assert_eq!((short.lost(), short.dup()), (2, 1));
        let mut extra = figures();
        extra.checks.terminal_requests = 1003;
        extra.checks.journal_mismatches = 1;
        assert_eq!((extra.lost(), extra.dup()), (1, 3));
    }

    #[test]
    fn the_table_names_the_targets() {
        let table = figures().table();
        assert!(table.contains("added p50 (ms)"), "{table}");
        assert!(table.contains("<= 100"), "{table}");
        assert_eq!(table.lines().count(), 32);
        assert!(table.contains("receipt signing"), "{table}");
    }
}
