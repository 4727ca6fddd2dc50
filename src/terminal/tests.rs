//! Driver tests over `io::duplex` with paused time: every timer fires at once, no sleeping.

use std::time::Duration;

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

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
async fn run<F, Fut>(hooks: Recorder, terminal: F) -> (Outcome, Vec<Progress>)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (outcome, hooks, _) = run_recorded(hooks, terminal).await;
    (outcome, hooks.steps)
}

/// Like [`run`], returning the hooks and when the send started (tokio time).
async fn run_recorded<F, Fut>(mut hooks: Recorder, terminal: F) -> (Outcome, Recorder, Instant)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let (mut client, server) = duplex(4096);
    let task = tokio::spawn(terminal(server));
    let outcome = transact_on(&mut client, &debit(), &Timeouts::default(), &mut hooks).await;
    drop(client);
    // Lets a terminal that reads to the end finish; a pending one is left behind.
    let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    (outcome, hooks, start)
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
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
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

/// Up to AE (decides), then the card fields: `APPROVED` cut right after its AE.
const UP_TO_AE: &str = "CZ0040300CA00201CB0070002500CD0010CE003978AE00210";
const AFTER_AE: &str = "CC003001AC006632145";

fn approved(outcome: &Outcome) -> &crate::protocol::Answer {
    match outcome {
        Outcome::Approved(answer) => answer,
        other => panic!("not approved: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_split_right_after_ae_is_decided_at_once_then_amended() {
    let (outcome, hooks, start) = run_recorded(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(UP_TO_AE.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.write_all(AFTER_AE.as_bytes()).await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    let [(first, at_first), (amended, at_amended)] = &hooks.decided[..] else {
        panic!("two reports expected: {:?}", hooks.decided);
    };
    assert_eq!(*at_first - start, Duration::ZERO, "decided at once");
    assert_eq!(approved(first).authorization, None);
    assert_eq!(*at_amended - start, Duration::from_millis(200));
    assert_eq!(approved(amended).authorization.as_deref(), Some("632145"));
    assert_eq!(approved(amended).raw, format!("{UP_TO_AE}{AFTER_AE}"));
    assert_eq!(&outcome, amended, "the drain ends with the last report");
    assert_eq!(
        hooks.steps,
        [Progress::Sent],
        "no waiting_card after the result"
    );
}

#[tokio::test(start_paused = true)]
async fn ae_first_is_decided_once_the_echoes_arrive() {
    let (outcome, hooks, start) = run_recorded(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(b"CZ0040300AE00210").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.write_all(b"CA00201CB0070002500CD0010CE003978CC003001")
            .await
            .unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    let [(decided, at)] = &hooks.decided[..] else {
        panic!("one report expected: {:?}", hooks.decided);
    };
    assert_eq!(*at - start, Duration::from_millis(200));
    assert_eq!(approved(decided).card.application.as_deref(), Some("CB"));
    assert_eq!(&outcome, decided);
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_its_echoes_is_judged_at_the_end_of_the_drain() {
    let (outcome, hooks, _) = run_recorded(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(b"CZ0040300CA00201AE00210").await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    assert!(hooks.decided.is_empty());
    assert_eq!(unknown_reason(&outcome).0, UnknownReason::InvalidAnswer);
}

#[tokio::test(start_paused = true)]
async fn a_terminal_closing_after_its_answer_ends_the_exchange_at_once() {
    let (mut client, mut server) = duplex(4096);
    tokio::spawn(async move {
        read_request(&mut server).await;
        server.write_all(APPROVED.as_bytes()).await.unwrap();
    });
    let start = Instant::now();
    let mut hooks = Recorder::default();
    let outcome = transact_on(&mut client, &debit(), &Timeouts::default(), &mut hooks).await;
    assert_eq!(start.elapsed(), Duration::ZERO, "no drain after the close");
    assert_eq!(hooks.decided.len(), 1);
    assert_eq!(approved(&outcome).raw, APPROVED);
}

#[tokio::test(start_paused = true)]
async fn after_the_decision_repeated_tags_and_garbage_are_kept_out() {
    let (outcome, hooks, _) = run_recorded(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(UP_TO_AE.as_bytes()).await.unwrap();
        s.write_all(b"AE00201CC003001").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(b"\xffGARBAGE AC006632145").await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    let answer = approved(&outcome);
    assert_eq!(answer.raw, format!("{UP_TO_AE}CC003001"));
    assert_eq!(answer.card.application.as_deref(), Some("CB"));
    assert_eq!(answer.authorization, None, "nothing after the garbage");
    assert!(hooks
        .decided
        .iter()
        .all(|(o, _)| matches!(o, Outcome::Approved(_))));
}

#[tokio::test(start_paused = true)]
async fn a_declined_answer_with_its_reason_is_decided_at_once() {
    let (outcome, hooks, _) = run_recorded(Recorder::default(), |mut s| async move {
        read_request(&mut s).await;
        s.write_all(b"CZ0040300AE00201AF00204").await.unwrap();
        std::future::pending::<()>().await;
    })
    .await;
    assert_eq!(hooks.decided.len(), 1);
    assert!(matches!(outcome, Outcome::Declined(_)), "{outcome:?}");
}

#[test]
fn unknown_reasons_print_their_contract_codes() {
    assert_eq!(UnknownReason::ConnectionLost.to_string(), "connection_lost");
    assert_eq!(UnknownReason::InvalidAnswer.as_str(), "invalid_answer");
    assert_eq!(Timeouts::default().deadline, Duration::from_secs(180));
}
