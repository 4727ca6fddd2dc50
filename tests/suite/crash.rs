//! The crash matrix: the built binary stopped dead (SIGABRT, no unwinding, as `kill -9`) by a
//! crash point at each step of a payment (before and after each journal fsync, after the
//! send), then restarted on the same data dir. Whatever the step: the request is never sent
//! again, an interrupted payment ends `not_sent` when the journal proves nothing was written
//! and `unknown` (`agent_restart`) otherwise, a payment the journal never heard of is paid
//! exactly once by a retry with the same id, a journaled result survives, earlier results
//! are intact, and the agent serves the next payment.
//!
//! `accepted` and `connecting` wait up to `FLUSH_WAIT` to share `sent`'s fsync
//! (`src/engine/transaction.rs`): when the connect is quick all three are in one flush,
//! when it is not the first ones are flushed before. So a point before or after one of
//! those fsyncs may find one of several journals, each with its own outcome; the rows list
//! them all, and the outcome must be the one of the journal found.

use crate::common;
use crate::fault_kit;

use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::engine::crashpoint::CRASH_VAR;
use caisse_ap_relay::sim::{Behaviour, Simulator};
use common::binary::{aborted, write_config, Process};
use common::*;
use fault_kit::{history, pay_and_follow, states};
use futures_util::future::join_all;
use serde_json::{json, Value};

/// What the payment is after the restart: state and reason (`None`: unknown to the agent,
/// the POS may pay again with the same id).
type After = Option<(&'static str, Option<&'static str>)>;

/// One crash point: what the journal may hold of the payment when the process dies, each
/// with what the payment is after the restart, and how many requests the terminal got.
struct Crash {
    point: &'static str,
    outcomes: &'static [(&'static [&'static str], After)],
    requests: usize,
}

const NOT_SENT: After = Some(("not_sent", None));
const RESTART: After = Some(("unknown", Some("agent_restart")));
const APPROVED: After = Some(("approved", None));

const fn crash(
    point: &'static str,
    outcomes: &'static [(&'static [&'static str], After)],
    requests: usize,
) -> Crash {
    Crash {
        point,
        outcomes,
        requests,
    }
}

const A: &str = "accepted";
const C: &str = "connecting";
const S: &str = "sent";
const W: &str = "waiting_card";
const OK: &str = "approved";

// A table reads best one row per line.
#[rustfmt::skip]
fn matrix() -> Vec<Crash> {
    vec![
        // Before the first fsync, which always holds `accepted`: no trace, a retry pays once.
        crash("accepted.before_fsync",     &[(&[], None)],                                       0),
        // `accepted` alone (the terminal was slow to connect), with `connecting`, or with `sent`.
        crash("accepted.after_fsync",      &[(&[A], NOT_SENT), (&[A, C], NOT_SENT), (&[A, C, S], RESTART)], 0),
        crash("connecting.before_fsync",   &[(&[], None), (&[A], NOT_SENT)],                     0),
        crash("connecting.after_fsync",    &[(&[A, C], NOT_SENT), (&[A, C, S], RESTART)],        0),
        crash("sent.before_fsync",         &[(&[], None), (&[A], NOT_SENT), (&[A, C], NOT_SENT)], 0),
        // Journaled `sent` but not written yet: the journal cannot prove it, so unknown.
        crash("sent.after_fsync",          &[(&[A, C, S], RESTART)],                             0),
        crash("send.after",                &[(&[A, C, S], RESTART)],                             1),
        crash("waiting_card.before_fsync", &[(&[A, C, S], RESTART)],                             1),
        crash("waiting_card.after_fsync",  &[(&[A, C, S, W], RESTART)],                          1),
        // The terminal approved, the journal never heard of it: the cashier checks the ticket.
        crash("approved.before_fsync",     &[(&[A, C, S, W], RESTART)],                          1),
        crash("approved.after_fsync",      &[(&[A, C, S, W, OK], APPROVED)],                     1),
    ]
}

/// The terminal answers after 1.5 s: the default settle delay (500 ms) reports `waiting_card`
/// first.
fn slow_terminal() -> Behaviour {
    Behaviour {
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    }
}

async fn crash_at(case: Crash) {
    let point = case.point;
    let sim = common::spawn_sim(Behaviour::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(dir.path(), &[("tpe-1", sim.addr())]);
    let data = dir.path().join("data");

    // An earlier result, made by a healthy agent.
    let mut healthy = Process::start(&config, &[]).await;
    let earlier = pay_and_follow(&healthy, &dir, "earlier")
        .await
        .pop()
        .unwrap();
    assert_eq!(earlier["state"], "approved", "{point}");
    healthy.kill();

    sim.set_behaviour(slow_terminal());
    let mut doomed = Process::start(&config, &[(CRASH_VAR, point)]).await;
    pay_and_follow(&doomed, &dir, "doomed").await;
    assert!(
        aborted(doomed.exited().await),
        "{point}: stopped by the crash point"
    );
    let journaled = states(&history(&data, "doomed"));
    let after = case
        .outcomes
        .iter()
        .find(|(journal, _)| *journal == journaled.as_slice())
        .map(|(_, after)| *after)
        .unwrap_or_else(|| panic!("{point}: journal at the crash: {journaled:?}"));
    wait_requests(&sim, 1 + case.requests, point).await;

    let restarted = Process::start(&config, &[]).await;
    check_after_restart(point, after, &restarted, &dir, &earlier).await;
    let mut requests = 2 + case.requests;
    if after.is_none() {
        let retried = pay_and_follow(&restarted, &dir, "doomed").await;
        let retried = retried.last().unwrap();
        assert_eq!(retried["state"], "approved", "{point}: the retry pays");
        requests += 1;
    }
    let next = pay_and_follow(&restarted, &dir, "next")
        .await
        .pop()
        .unwrap();
    assert_eq!(next["state"], "approved", "{point}: the agent serves");
    assert_eq!(sim.request_count(), requests, "{point}: nothing sent twice");
}

/// The terminal got `n` requests (the bytes of a dead process still arrive).
async fn wait_requests(sim: &Simulator, n: usize, point: &str) {
    tokio::time::timeout(WAIT, sim.wait_requests(n))
        .await
        .unwrap_or_else(|_| panic!("{point}: {n} requests expected"));
    assert_eq!(sim.request_count(), n, "{point}");
}

async fn check_after_restart(
    point: &str,
    after: After,
    process: &Process,
    dir: &Arc<tempfile::TempDir>,
    earlier: &Value,
) {
    let agent = TestAgent::external(process.addr, Arc::clone(dir));
    let (mut ws, _) = connect_as(&agent, CASHIER).await;
    let replayed_earlier = unreplayed(next_message(&mut ws).await);
    assert_eq!(
        &replayed_earlier, earlier,
        "{point}: earlier result replayed intact"
    );
    send(&mut ws, json!({"type": "get", "id": "doomed"})).await;
    let mut doomed = next_message(&mut ws).await;
    if after.is_some() {
        // The settled record was replayed after `earlier`; the `get` answer follows it.
        assert_eq!(doomed["id"], "doomed", "{point}: replayed {doomed}");
        doomed = unreplayed(doomed);
        let answer = next_message(&mut ws).await;
        assert_eq!(answer, doomed, "{point}: get equals the replay");
        doomed = answer;
    }
    match after {
        None => assert_eq!(doomed["code"], "not_found", "{point}: {doomed}"),
        Some((state, reason)) => {
            assert_eq!(doomed["state"], state, "{point}: {doomed}");
            if let Some(reason) = reason {
                assert_eq!(doomed["result"]["reason"], reason, "{point}: {doomed}");
            }
        }
    }
    send(&mut ws, json!({"type": "get", "id": "earlier"})).await;
    assert_eq!(
        &next_message(&mut ws).await,
        earlier,
        "{point}: earlier result by get"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_never_resends_never_loses_and_tells_the_truth() {
    join_all(matrix().into_iter().map(crash_at)).await;
}
