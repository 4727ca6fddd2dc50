//! `caisse-ap-relay report`, the built binary, against a journal written by the real
//! `Journal` in a temporary data dir named by a temporary config file. The child runs with
//! `TZ` set to UTC+02:00 so the local day differs from the UTC one.

use std::path::Path;
use std::process::{Command, Output};

use caisse_ap_relay::engine::journal::Journal;
use caisse_ap_relay::engine::record::{
    Record, Resolution, ResolvedAs, ResolvedBy, State, TxResult,
};
use caisse_ap_relay::protocol::{Action, Method};
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

/// A POSIX TZ string for UTC+02:00 with no daylight saving (needs no tz database).
const TZ_PLUS_2: &str = "<+02>-2";

/// Three days ago (UTC): inside the journal's retention, and a day with no "today" effects.
fn report_day() -> Date {
    OffsetDateTime::now_utc().date() - Duration::days(3)
}

fn day_text(day: Date) -> String {
    day.format(format_description!("[year]-[month]-[day]"))
        .unwrap()
}

/// `hour` is UTC on `day` (negative: the day before), as the agent stamps records.
fn stamp(day: Date, hour: i64) -> String {
    let at = day.midnight().assume_utc() + Duration::hours(hour);
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    at.format(format).unwrap()
}

struct Tx {
    id: &'static str,
    state: State,
    amount: u64,
    hour: i64,
}

fn tx(id: &'static str, state: State, amount: u64, hour: i64) -> Tx {
    Tx {
        id,
        state,
        amount,
        hour,
    }
}

fn record(day: Date, tx: &Tx) -> Record {
    Record {
        id: tx.id.to_owned(),
        till: "till-1".to_owned(),
        terminal: "tpe-1".to_owned(),
        amount: tx.amount,
        currency: "EUR".to_owned(),
        action: Action::Debit,
        method: Method::Card,
        refund_of: None,
        confirm_duplicate: false,
        state: tx.state,
        result: None,
        resolution: None,
        created_at: stamp(day, tx.hour),
        updated_at: stamp(day, tx.hour),
        seq: 0,
        receipt: None,
    }
}

fn resolve(mut record: Record, outcome: ResolvedAs) -> Record {
    record.resolution = Some(Resolution {
        outcome,
        note: None,
        till: "till-1".to_owned(),
        by_role: ResolvedBy::Cashier,
        at: record.updated_at.clone(),
    });
    record
}

/// The day's records; local midnight is 22:00 UTC the day before.
fn records(day: Date) -> Vec<Record> {
    let r = |tx: Tx| record(day, &tx);
    let mut partial = r(tx("partial", State::Approved, 5000, 9));
    partial.result = Some(TxResult {
        approved_amount: Some(3200),
        partial: true,
        ..TxResult::default()
    });
    let mut refund = r(tx("refund", State::Approved, 300, 10));
    refund.action = Action::Refund;
    let mut check = r(tx("check", State::Approved, 2000, 11));
    check.method = Method::Check;
    let mut yen = r(tx("yen", State::Approved, 500, 12));
    (yen.currency, yen.terminal) = ("JPY".to_owned(), "tpe-2".to_owned());
    vec![
        r(tx("yesterday-local", State::Approved, 77_777, -3)),
        r(tx("first", State::Approved, 1000, -2)),
        partial,
        refund,
        r(tx("declined", State::Declined, 700, 13)),
        r(tx("not-sent", State::NotSent, 400, 14)),
        resolve(
            r(tx("u-paid", State::Unknown, 11, 15)),
            ResolvedAs::Approved,
        ),
        resolve(
            r(tx("u-free", State::Unknown, 22, 15)),
            ResolvedAs::NotCharged,
        ),
        r(tx("u-open", State::Unknown, 4200, 16)),
        check,
        yen,
        r(tx("tomorrow-local", State::Approved, 88_888, 22)),
    ]
}

/// Journals every record twice, first as `sent`, so only the latest version may count.
async fn write_journal(dir: &Path, records: &[Record]) {
    let (journal, _) = Journal::open(dir).unwrap();
    for (seq, record) in records.iter().enumerate() {
        let mut sent = record.clone();
        (sent.state, sent.resolution, sent.seq) = (State::Sent, None, 2 * seq as u64);
        journal.append(&sent).await.unwrap();
        let mut done = record.clone();
        done.seq = 2 * seq as u64 + 1;
        journal.append(&done).await.unwrap();
    }
}

/// A data dir holding the day's journal and a config file pointing at it.
async fn shop(day: Date) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    write_journal(&data, &records(day)).await;
    let config = root.path().join("shop.toml");
    let text = format!(
        "[server]\ndata_dir = {:?}\n\n[[terminal]]\nname = \"tpe-1\"\naddress = \"127.0.0.1:8888\"\n",
        data.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    (root, config)
}

fn report(config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .arg("report")
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("TZ", TZ_PLUS_2)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn csv_totals_the_local_day_per_terminal_method_and_currency() {
    let day = report_day();
    let (_root, config) = shop(day).await;
    let out = report(&config, &["--day", &day_text(day), "--csv"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let d = day_text(day);
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("day,utc_offset,terminal,method,currency,exponent,"));
    // card EUR: debits 1000 + 3200 (partial), refund 300, net 3900, one of each failure.
    let card = format!(
        "{d},+02:00,tpe-1,card,EUR,2,2,4200,1,300,3900,1,700,1,400,1,11,1,22,1,4200,0,0,0,0"
    );
    assert_eq!(lines[1], card);
    let check = format!("{d},+02:00,tpe-1,check,EUR,2,1,2000,0,0,2000,0,0,0,0,0,0,0,0,0,0,0,0,0,0");
    assert_eq!(lines[2], check);
    let yen = format!("{d},+02:00,tpe-2,card,JPY,0,1,500,0,0,500,0,0,0,0,0,0,0,0,0,0,0,0,0,0");
    assert_eq!(lines[3], yen);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("à vérifier sur le ticket du terminal"),
        "{stderr}"
    );
    assert!(stderr.contains("u-open"), "{stderr}");
}

#[tokio::test]
async fn table_shows_the_totals_the_zone_and_what_to_check() {
    let day = report_day();
    let (_root, config) = shop(day).await;
    let out = report(&config, &["--day", &day_text(day)]);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let header = format!("Rapport du {} (heure locale, UTC+02:00)", day_text(day));
    assert!(stdout.contains(&header), "{stdout}");
    let total = |currency: &str| {
        let found = stdout
            .lines()
            .find(|l| l.starts_with("TOTAL") && l.contains(currency));
        found.unwrap_or_else(|| panic!("no {currency} totals line in\n{stdout}"))
    };
    for cell in ["3 / 62,00", "1 / 3,00", "59,00", "1 / 7,00", "1 / 42,00"] {
        assert!(
            total("EUR").contains(cell),
            "{cell} missing in {}",
            total("EUR")
        );
    }
    assert!(total("JPY").contains("1 / 500"), "{}", total("JPY"));
    assert!(stdout.contains("Légende"), "{stdout}");
    assert!(
        stdout.contains("u-open  tpe-1  débit  42,00 EUR"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("777,77") && !stdout.contains("888,88"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_day_without_transactions_says_so() {
    let (_root, config) = shop(report_day()).await;
    let out = report(&config, &["--day", "2020-01-01"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("Aucune transaction"));
}

#[tokio::test]
async fn a_bad_day_exits_2_with_a_clear_message() {
    let (_root, config) = shop(report_day()).await;
    for bad in ["2026-13-01", "23/11/2026", "yesterday"] {
        let out = report(&config, &["--day", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--day") && stderr.contains("expected a day like"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_missing_config_file_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let out = report(&root.path().join("absent.toml"), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("absent.toml"));
}
