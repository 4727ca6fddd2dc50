//! The identification probe: a rate-limited CD=I dialog per idle terminal, so that the
//! terminal states of `terminals` and `/healthz` stay true without a socket per call.
//!
//! A probe never runs while its terminal is busy, and never makes a payment fail: it holds
//! the terminal's probe lock, which a starting transaction waits for.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::registry::Terminal;
use crate::terminal::{self, ProbeError, Timeouts};

/// How long one probe may take, connect included.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// Set (to anything), the built binary makes no probe at start: a TEST HOOK for the tests
/// that count a terminal's requests exactly. Debug builds only (see `cli::serve`).
#[cfg(debug_assertions)]
pub const NO_START_PROBE_VAR: &str = "CAISSE_AP_RELAY_NO_START_PROBE";

/// Probes `terminal` every `interval` while it is idle, until `stop`; the first time at once
/// when `at_once`, else after one `interval`.
pub async fn run(
    terminal: Arc<Terminal>,
    interval: Duration,
    at_once: bool,
    stop: CancellationToken,
) {
    let now = tokio::time::Instant::now();
    let first = if at_once { now } else { now + interval };
    let mut ticks = tokio::time::interval_at(first, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => probe_once(&terminal).await,
        }
    }
}

async fn probe_once(terminal: &Terminal) {
    let _probing = terminal.probe_lock.lock().await;
    // Checked under the probe lock: a transaction that took the lease first is never probed.
    if terminal.is_busy() {
        return;
    }
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        settle: Duration::from_millis(500),
        drain: Duration::from_millis(300),
        deadline: PROBE_DEADLINE,
    };
    let config = terminal.config();
    let result = terminal::probe(&config.address, &config.pos_number, &timeouts).await;
    tracing::debug!(terminal = %config.name, ok = result.is_ok(), "probe done");
    match result {
        // Any answer, even a refusal, proves the terminal is there.
        Ok(_) | Err(ProbeError::Refused(_)) => terminal.saw(true),
        Err(ProbeError::Unreachable(_)) => terminal.saw(false),
        // Connected but silent, or our own request was bad: no new knowledge.
        Err(_) => {}
    }
}
