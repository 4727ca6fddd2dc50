//! Driver tests over `io::duplex` with paused time: every timer fires at once, no sleeping.

use std::time::Duration;

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::protocol::{Action, Currency, Method};

const APPROVED: &str = "CZ0040300CA00201CB0070002500CD0010CE003978AE00210CC003001";
const TAKEN: &str = "CZ0040300AE00211";

#[path = "../../tests/recorder/mod.rs"]
mod recorder;
use recorder::Recorder;

fn debit() -> PaymentRequest {
    let eur = Currency::parse("EUR").unwrap();
    PaymentRequest::new(2500, eur, Action::Debit, Method::Card, "01").unwrap()
}

fn frame_len() -> usize {
    debit().to_message().unwrap().encode().len()
}

/// Runs a transaction whose terminal side is `terminal`, given the far end of the pipe.
async fn run<F, Fut>(mut hooks: Recorder, terminal: F) -> (Outcome, Vec<Progress>)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (mut client, server) = duplex(4096);
    let task = tokio::spawn(terminal(server));
    let outcome = transact_on(&mut client, &debit(), &Timeouts::default(), &mut hooks).await;
    drop(client);
    // Lets a terminal that reads to the end finish; a pending one is left behind.
    let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    (outcome, hooks.steps)
}

async fn read_request(server: &mut DuplexStream) {
    let mut buf = vec![0; frame_len()];
    server.read_exact(&mut buf).await.unwrap();
}

fn unknown_reason(outcome: &Outcome) -> (UnknownReason, Option<String>) {
    match outcome {
        Outcome::Unknown { reason, raw, .. } => (*reason, raw.clone()),
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_terminal_times_out_at_the_deadline() {
    let (outcome, steps) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        std::future::pending::<()>().await;
    })
    .await;
    assert_eq!(unknown_reason(&outcome), (UnknownReason::Timeout, None));
    assert_eq!(steps, [Progress::Sent, Progress::WaitingCard]);
}

#[tokio::test(start_paused = true)]
async fn intermediate_answer_reports_waiting_card_once_then_approves() {
    let (outcome, steps) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(TAKEN.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(20)).await;
        s.write_all(APPROVED.as_bytes()).await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    let Outcome::Approved(answer) = outcome else {
        panic!("not approved: {outcome:?}");
    };
    assert_eq!(answer.approved_amount, Some(2500));
    assert_eq!(answer.raw, format!("{TAKEN}{APPROVED}"));
    assert_eq!(steps, [Progress::Sent, Progress::WaitingCard]);
}

#[tokio::test(start_paused = true)]
async fn cancelled_before_send_writes_nothing() {
    let hooks = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (outcome, steps) = run(hooks, |mut s| async move {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        tx.send(got).unwrap();
    })
    .await;
    assert!(matches!(outcome, Outcome::NotSent { .. }), "{outcome:?}");
    assert!(steps.is_empty());
    assert_eq!(rx.await.unwrap(), b"");
}

#[tokio::test(start_paused = true)]
async fn a_write_refused_before_any_byte_is_not_sent() {
    let (mut client, server) = duplex(64);
    drop(server);
    let mut hooks = Recorder::default();
    let outcome = transact_on(&mut client, &debit(), &Timeouts::default(), &mut hooks).await;
    assert!(matches!(outcome, Outcome::NotSent { .. }), "{outcome:?}");
    assert!(hooks.steps.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_write_broken_after_some_bytes_is_unknown() {
    let (mut client, server) = duplex(10);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(server);
    });
    let mut hooks = Recorder::default();
    let outcome = transact_on(&mut client, &debit(), &Timeouts::default(), &mut hooks).await;
    assert_eq!(
        unknown_reason(&outcome),
        (UnknownReason::ConnectionLost, None)
    );
    assert!(hooks.steps.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_close_mid_answer_is_connection_lost_with_the_bytes() {
    let (outcome, _) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(&APPROVED.as_bytes()[..30]).await.unwrap();
    })
    .await;
    let raw = Some(APPROVED[..30].to_string());
    assert_eq!(
        unknown_reason(&outcome),
        (UnknownReason::ConnectionLost, raw)
    );
}

#[tokio::test(start_paused = true)]
async fn fields_after_ae_are_drained_and_the_open_socket_is_left() {
    let (outcome, _) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(APPROVED.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.write_all(b"ZZ005hello").await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    let Outcome::Approved(answer) = outcome else {
        panic!("not approved: {outcome:?}");
    };
    assert_eq!(answer.raw, format!("{APPROVED}ZZ005hello"));
}

#[tokio::test(start_paused = true)]
async fn a_close_after_a_complete_answer_keeps_the_answer() {
    let (outcome, steps) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        s.write_all(APPROVED.as_bytes()).await.unwrap();
    })
    .await;
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
    assert_eq!(steps, [Progress::Sent, Progress::WaitingCard]);
}

#[tokio::test(start_paused = true)]
async fn a_flood_after_a_complete_answer_stops_at_the_cap_with_the_answer() {
    let (outcome, _) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(APPROVED.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let filler = "ZT999".to_string() + &"x".repeat(999);
        while s.write_all(filler.as_bytes()).await.is_ok() {}
    })
    .await;
    assert_eq!(outcome.state(), crate::engine::record::State::Approved);
}

#[tokio::test(start_paused = true)]
async fn a_flood_without_an_answer_is_invalid() {
    let (outcome, _) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(b"CZ0040300").await.unwrap();
        let more = "ZT999".to_string() + &"x".repeat(999);
        while s.write_all(more.as_bytes()).await.is_ok() {}
    })
    .await;
    assert_eq!(unknown_reason(&outcome).0, UnknownReason::InvalidAnswer);
}

#[tokio::test(start_paused = true)]
async fn garbage_is_an_invalid_answer() {
    let (outcome, _) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n").await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    assert_eq!(unknown_reason(&outcome).0, UnknownReason::InvalidAnswer);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_echo_is_a_mismatch() {
    let (outcome, _) = run(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        let wrong = APPROVED.replace("CE003978", "CE003840");
        s.write_all(wrong.as_bytes()).await.unwrap();
    })
    .await;
    assert_eq!(unknown_reason(&outcome).0, UnknownReason::Mismatch);
}

#[test]
fn unknown_reasons_print_their_contract_codes() {
    assert_eq!(UnknownReason::ConnectionLost.to_string(), "connection_lost");
    assert_eq!(UnknownReason::InvalidAnswer.as_str(), "invalid_answer");
    assert_eq!(Timeouts::default().deadline, Duration::from_secs(180));
}
