//! The terminal driver against the simulator over real loopback TCP: every outcome and fault
//! ends in the right outcome and reason, and the simulator got the exact request frame.

use std::time::Duration;

use caisse_ap_relay::engine::record::State;
use caisse_ap_relay::protocol::{Action, Currency, Method, PaymentRequest};
use caisse_ap_relay::sim::{Behaviour, Fault, Outcome as SimOutcome, Simulator};
use caisse_ap_relay::terminal::{
    probe, transact, Hooks, NoHooks, Outcome, ProbeError, Progress, Timeouts, UnknownReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../recorder/mod.rs"]
mod recorder;
use recorder::Recorder;

const DEBIT_2500: &str = "CZ0040300CJ012012345678901CA00201CB0042500CD0010CE003978BA0010";

async fn spawn_sim(behaviour: Behaviour) -> Simulator {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::spawn(listener, behaviour)
}

fn with(outcome: SimOutcome, fault: Option<Fault>) -> Behaviour {
    Behaviour {
        outcome,
        fault,
        ..Behaviour::default()
    }
}

fn request(amount: u64, action: Action, method: Method) -> PaymentRequest {
    let eur = Currency::parse("EUR").unwrap();
    PaymentRequest::new(amount, eur, action, method, "01").unwrap()
}

fn short() -> Timeouts {
    Timeouts {
        deadline: Duration::from_secs(2),
        ..Timeouts::default()
    }
}

/// Pays 25.00 EUR against a fresh simulator; returns the outcome and the frames it received.
async fn pay(behaviour: Behaviour) -> (Outcome, Vec<String>) {
    let sim = spawn_sim(behaviour).await;
    let req = request(2500, Action::Debit, Method::Card);
    let outcome = transact(&sim.addr().to_string(), &req, &short(), &mut NoHooks).await;
    (outcome, sim.requests())
}

async fn approved(behaviour: Behaviour) -> caisse_ap_relay::protocol::Answer {
    let (outcome, requests) = pay(behaviour).await;
    assert_eq!(requests, [DEBIT_2500]);
    match outcome {
        Outcome::Approved(answer) => answer,
        other => panic!("expected approved, got {other:?}"),
    }
}

async fn unknown(behaviour: Behaviour) -> (UnknownReason, Option<String>) {
    let (outcome, requests) = pay(behaviour).await;
    assert_eq!(requests, [DEBIT_2500]);
    match outcome {
        Outcome::Unknown { reason, raw, .. } => (reason, raw),
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[tokio::test]
async fn approved_contact_card_with_progress() {
    let sim = spawn_sim(Behaviour {
        delay: Duration::from_millis(1200),
        ..Behaviour::default()
    })
    .await;
    let req = request(2500, Action::Debit, Method::Card);
    let mut hooks = Recorder::default();
    let outcome = transact(&sim.addr().to_string(), &req, &short(), &mut hooks).await;
    let Outcome::Approved(answer) = outcome else {
        panic!("expected approved, got {outcome:?}");
    };
    assert_eq!(answer.approved_amount, Some(2500));
    assert!(!answer.partial);
    assert_eq!(answer.card.application.as_deref(), Some("CB"));
    assert_eq!(answer.card.pan.as_deref(), Some("497010######1234"));
    assert_eq!(answer.authorization.as_deref(), Some("632145"));
    assert_eq!(hooks.steps, [Progress::Sent, Progress::WaitingCard]);
    assert_eq!(sim.requests(), [DEBIT_2500]);
}

#[tokio::test]
async fn declined_carries_code_reason_and_label() {
    let (outcome, requests) = pay(with(SimOutcome::Declined("04".into()), None)).await;
    assert_eq!(requests, [DEBIT_2500]);
    let Outcome::Declined(answer) = outcome else {
        panic!("expected declined, got {outcome:?}");
    };
    assert_eq!(answer.af.as_deref(), Some("04"));
    assert_eq!(answer.reason.as_deref(), Some("refused"));
    assert_eq!(answer.label.as_deref(), Some("Refusée"));
}

#[tokio::test]
async fn contactless_and_amex_name_their_application() {
    let answer = approved(with(SimOutcome::CbContactless, None)).await;
    assert_eq!(answer.card.application.as_deref(), Some("CB sans contact"));
    assert_eq!(answer.card.entry_mode.as_deref(), Some("contactless"));
    let answer = approved(with(SimOutcome::Amex, None)).await;
    assert_eq!(answer.card.application.as_deref(), Some("American Express"));
}

#[tokio::test]
async fn partial_approval_is_approved_with_the_lower_amount() {
    let answer = approved(with(SimOutcome::Partial(1000), None)).await;
    assert_eq!(answer.approved_amount, Some(1000));
    assert!(answer.partial);
}

#[tokio::test]
async fn cheque_refund_frames_and_answer() {
    let sim = spawn_sim(Behaviour::default()).await;
    let addr = sim.addr().to_string();
    let cheque = request(3000, Action::Debit, Method::Check);
    let outcome = transact(&addr, &cheque, &short(), &mut NoHooks).await;
    let Outcome::Approved(answer) = outcome else {
        panic!("expected approved, got {outcome:?}");
    };
    assert_eq!(answer.card.application.as_deref(), Some("Chèque"));
    let refund = request(5, Action::Refund, Method::Card);
    let outcome = transact(&addr, &refund, &short(), &mut NoHooks).await;
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
    assert_eq!(
        sim.requests(),
        [
            "CZ0040300CJ012012345678901CA00201CB0043000CD0010CE003978BA0010CC00300C",
            "CZ0040300CJ012012345678901CA00201CB00205CD0011CE003978BA0010",
        ]
    );
}

#[tokio::test]
async fn split_keep_open_and_slow_accept_still_approve() {
    for fault in [Fault::Split, Fault::KeepOpen, Fault::SlowAccept] {
        let answer = approved(with(SimOutcome::Approved, Some(fault))).await;
        assert_eq!(answer.approved_amount, Some(2500), "{fault:?}");
    }
}

#[tokio::test]
async fn garbage_is_invalid_answer_with_the_bytes() {
    let (reason, raw) = unknown(with(SimOutcome::Approved, Some(Fault::Garbage))).await;
    assert_eq!(reason, UnknownReason::InvalidAnswer);
    assert!(raw.unwrap().contains("GARBAGE"));
}

#[tokio::test]
async fn wrong_echo_is_a_mismatch() {
    let (reason, raw) = unknown(with(SimOutcome::Approved, Some(Fault::WrongEcho))).await;
    assert_eq!(reason, UnknownReason::Mismatch);
    assert!(raw.unwrap().contains("CE003840"));
}

#[tokio::test]
async fn close_and_reset_are_connection_lost() {
    for fault in [Fault::Close, Fault::Reset] {
        let (reason, _) = unknown(with(SimOutcome::Approved, Some(fault))).await;
        assert_eq!(reason, UnknownReason::ConnectionLost, "{fault:?}");
    }
}

#[tokio::test]
async fn hang_times_out_at_the_configured_deadline() {
    let (reason, raw) = unknown(with(SimOutcome::Approved, Some(Fault::Hang))).await;
    assert_eq!((reason, raw), (UnknownReason::Timeout, None));
}

/// An address nobody listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn refused_connection_is_not_sent() {
    let addr = closed_port().await;
    let req = request(2500, Action::Debit, Method::Card);
    let outcome = transact(&addr, &req, &short(), &mut NoHooks).await;
    assert!(matches!(outcome, Outcome::NotSent { .. }), "{outcome:?}");
}

#[tokio::test]
async fn cancelled_before_send_reaches_nobody() {
    let sim = spawn_sim(Behaviour::default()).await;
    let req = request(2500, Action::Debit, Method::Card);
    let mut hooks = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    let outcome = transact(&sim.addr().to_string(), &req, &short(), &mut hooks).await;
    assert!(matches!(outcome, Outcome::NotSent { .. }), "{outcome:?}");
    assert!(hooks.steps.is_empty());
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn a_request_missing_a_mandatory_field_gets_af_09() {
    let sim = spawn_sim(Behaviour::default()).await;
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let no_amount = "CZ0040300CJ012012345678901CA00201CD0010CE003978";
    stream.write_all(no_amount.as_bytes()).await.unwrap();
    let mut answer = vec![0; "CZ0040300AE00201AF00209".len()];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, b"CZ0040300AE00201AF00209");
    assert_eq!(sim.requests(), [no_amount]);
}

#[tokio::test]
async fn probe_identifies_the_terminal() {
    let sim = spawn_sim(Behaviour::default()).await;
    let identity = probe(&sim.addr().to_string(), "01", &short())
        .await
        .unwrap();
    assert_eq!(identity.version, "0300");
    assert_eq!(sim.requests(), ["CZ0040300CJ012012345678901CA00201CD001I"]);
    let resetting = spawn_sim(with(SimOutcome::Approved, Some(Fault::Reset))).await;
    let result = probe(&resetting.addr().to_string(), "01", &short()).await;
    assert!(
        result.is_ok(),
        "identification ignores payment faults: {result:?}"
    );
    let result = probe(&closed_port().await, "01", &short()).await;
    assert!(
        matches!(result, Err(ProbeError::Unreachable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn many_connections_are_served_at_once_and_behaviour_changes_live() {
    let sim = spawn_sim(Behaviour {
        delay: Duration::from_millis(300),
        ..Behaviour::default()
    })
    .await;
    let addr = sim.addr().to_string();
    let payments = (1..=5).map(|i| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let req = request(100 * i, Action::Debit, Method::Card);
            transact(&addr, &req, &short(), &mut NoHooks).await
        })
    });
    for payment in payments.collect::<Vec<_>>() {
        let outcome = payment.await.unwrap();
        assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
    }
    assert_eq!(sim.request_count(), 5);
    sim.set_behaviour(with(SimOutcome::Declined("11".into()), None));
    let req = request(100, Action::Debit, Method::Card);
    let outcome = transact(&addr, &req, &short(), &mut NoHooks).await;
    assert!(matches!(outcome, Outcome::Declined(_)), "{outcome:?}");
}

#[tokio::test]
async fn demo_magic_amounts_pick_every_outcome() {
    let sim = spawn_sim(Behaviour {
        delay: Duration::ZERO,
        ..Behaviour::demo()
    })
    .await;
    let addr = sim.addr().to_string();
    let mut states = Vec::new();
    for amount in [1200, 1291, 1292, 1293, 1294, 1295, 1296, 1297] {
        let req = request(amount, Action::Debit, Method::Card);
        let outcome = transact(&addr, &req, &short(), &mut NoHooks).await;
        let partial = matches!(&outcome, Outcome::Approved(a) if a.partial);
        let reason = match &outcome {
            Outcome::Unknown { reason, .. } => Some(*reason),
            _ => None,
        };
        states.push((State::from(&outcome), partial, reason));
    }
    use State::*;
    let lost = Some(UnknownReason::ConnectionLost);
    assert_eq!(
        states,
        [
            (Approved, false, None),
            (Declined, false, None),
            (Declined, false, None),
            (Approved, true, None),
            (Unknown, false, lost),
            (Unknown, false, Some(UnknownReason::Mismatch)),
            (Unknown, false, Some(UnknownReason::InvalidAnswer)),
            (Approved, false, None),
        ]
    );
}
