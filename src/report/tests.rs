//! Aggregation, formatting and CSV of the day report, without I/O.

use time::macros::{date, offset};

use super::table::format_amount;
use super::*;
use crate::engine::record::{Resolution, ResolvedBy, TxResult};

const DAY: Date = date!(2026 - 11 - 23);

fn record(id: &str, state: State, amount: u64, created_at: &str) -> Record {
    Record {
        id: id.to_owned(),
        till: "till-1".to_owned(),
        terminal: "tpe-1".to_owned(),
        amount,
        currency: "EUR".to_owned(),
        action: Action::Debit,
        method: Method::Card,
        refund_of: None,
        confirm_duplicate: false,
        state,
        result: None,
        resolution: None,
        created_at: created_at.to_owned(),
        updated_at: created_at.to_owned(),
        seq: 1,
        receipt: None,
    }
}

fn at_noon(id: &str, state: State, amount: u64) -> Record {
    record(id, state, amount, "2026-11-23T12:00:00.000Z")
}

fn refund(mut record: Record) -> Record {
    record.action = Action::Refund;
    record
}

fn resolved(mut record: Record, outcome: ResolvedAs) -> Record {
    record.resolution = Some(Resolution {
        outcome,
        note: None,
        till: "till-1".to_owned(),
        by_role: ResolvedBy::Cashier,
        at: "2026-11-23T12:05:00.000Z".to_owned(),
    });
    record
}

fn only_row(report: &Report) -> Totals {
    assert_eq!(report.rows.len(), 1, "{report:?}");
    report.rows[0].totals
}

fn tally(count: u64, amount: u64) -> Tally {
    Tally { count, amount }
}

#[test]
fn each_category_has_its_own_tally() {
    let records = [
        at_noon("d1", State::Approved, 1000),
        at_noon("d2", State::Approved, 250),
        refund(at_noon("r1", State::Approved, 300)),
        at_noon("x1", State::Declined, 700),
        refund(at_noon("x2", State::Declined, 50)),
        at_noon("n1", State::NotSent, 400),
        resolved(at_noon("u1", State::Unknown, 11), ResolvedAs::Approved),
        resolved(at_noon("u2", State::Unknown, 22), ResolvedAs::NotCharged),
        at_noon("u3", State::Unknown, 33),
    ];
    let totals = only_row(&aggregate(&records, DAY, UtcOffset::UTC));
    assert_eq!(totals.debits, tally(2, 1250));
    assert_eq!(totals.refunds, tally(1, 300));
    assert_eq!(totals.net(), 950);
    assert_eq!(totals.declined, tally(2, 750));
    assert_eq!(totals.not_sent, tally(1, 400));
    assert_eq!(totals.unknown_approved, tally(1, 11));
    assert_eq!(totals.unknown_not_charged, tally(1, 22));
    assert_eq!(totals.unknown_unresolved, tally(1, 33));
}

#[test]
fn guard_decisions_are_counted_on_top_of_their_category() {
    let mut twice = at_noon("d2", State::Approved, 500);
    twice.confirm_duplicate = true;
    let mut linked = refund(at_noon("r1", State::Approved, 200));
    linked.refund_of = Some("d1".into());
    let mut linked_declined = refund(at_noon("r2", State::Declined, 100));
    linked_declined.refund_of = Some("d1".into());
    let records = [
        at_noon("d1", State::Approved, 500),
        twice,
        linked,
        linked_declined,
    ];
    let report = aggregate(&records, DAY, UtcOffset::UTC);
    let totals = only_row(&report);
    assert_eq!(totals.debits, tally(2, 1000));
    assert_eq!(totals.confirmed_duplicates, tally(1, 500));
    assert_eq!(totals.linked_refunds, tally(2, 300));
    let text = csv::render(&report);
    assert!(
        text.lines().nth(1).unwrap().ends_with(",1,500,2,300"),
        "{text}"
    );
    let table = table::render(&report, Zone::Utc);
    assert!(
        table.contains("Doublons conf.") && table.contains("1 / 5,00"),
        "{table}"
    );
}

#[test]
fn net_goes_negative_when_refunds_exceed_debits() {
    let records = [
        at_noon("d1", State::Approved, 100),
        refund(at_noon("r1", State::Approved, 900)),
    ];
    assert_eq!(
        only_row(&aggregate(&records, DAY, UtcOffset::UTC)).net(),
        -800
    );
}

#[test]
fn partial_approval_counts_the_approved_amount() {
    let mut partial = at_noon("p1", State::Approved, 5000);
    partial.result = Some(TxResult {
        approved_amount: Some(3200),
        partial: true,
        ..TxResult::default()
    });
    let records = [partial, at_noon("d1", State::Approved, 100)];
    let totals = only_row(&aggregate(&records, DAY, UtcOffset::UTC));
    assert_eq!(totals.debits, tally(2, 3300));
}

#[test]
fn only_unresolved_unknowns_are_listed_for_checking() {
    let records = [
        at_noon("u-late", State::Unknown, 33),
        record("u-early", State::Unknown, 44, "2026-11-23T08:00:00Z"),
        resolved(at_noon("u-done", State::Unknown, 11), ResolvedAs::Approved),
    ];
    let report = aggregate(&records, DAY, UtcOffset::UTC);
    let ids: Vec<&str> = report.unresolved.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["u-early", "u-late"]);
    assert_eq!(report.unresolved[0].amount, 44);
}

#[test]
fn unfinished_records_are_listed_not_totalled() {
    let records = [
        at_noon("s1", State::Sent, 500),
        at_noon("d1", State::Approved, 100),
    ];
    let report = aggregate(&records, DAY, UtcOffset::UTC);
    assert_eq!(
        only_row(&report)
            .tallies()
            .iter()
            .map(|t| t.count)
            .sum::<u64>(),
        1
    );
    assert_eq!(report.in_progress.len(), 1);
    assert_eq!(report.in_progress[0].state, State::Sent);
    let warnings = table::warnings(&report);
    assert!(
        warnings.contains("En cours, non comptées (1)"),
        "{warnings}"
    );
    assert!(
        warnings.contains("s1  tpe-1  débit  5,00 EUR  (sent)"),
        "{warnings}"
    );
}

#[test]
fn day_boundaries_follow_the_local_offset() {
    // UTC+01:00: the local 2026-11-23 runs from 22T23:00Z to 23T22:59:59.999Z.
    let records = [
        record("before", State::Approved, 1, "2026-11-22T22:59:59.999Z"),
        record("first", State::Approved, 10, "2026-11-22T23:00:00.000Z"),
        record("last", State::Approved, 100, "2026-11-23T22:59:59.999Z"),
        record("after", State::Approved, 1000, "2026-11-23T23:00:00.000Z"),
    ];
    let report = aggregate(&records, DAY, offset!(+1));
    assert_eq!(only_row(&report).debits, tally(2, 110));
    let utc = aggregate(&records, DAY, UtcOffset::UTC);
    assert_eq!(only_row(&utc).debits, tally(2, 1100));
}

#[test]
fn negative_offsets_and_other_notations_are_understood() {
    let records = [
        record("evening", State::Approved, 7, "2026-11-24T03:30:00Z"),
        record("offset", State::Approved, 70, "2026-11-23T10:00:00+02:00"),
    ];
    let report = aggregate(&records, DAY, offset!(-5));
    assert_eq!(only_row(&report).debits, tally(2, 77));
}

#[test]
fn unreadable_timestamps_are_reported_not_dropped() {
    let records = [record("bad", State::Approved, 5, "yesterday")];
    let report = aggregate(&records, DAY, UtcOffset::UTC);
    assert!(report.rows.is_empty());
    assert_eq!(report.undated, ["bad"]);
    assert!(table::warnings(&report).contains("Date illisible, non comptées : bad"));
}

#[test]
fn rows_split_by_terminal_method_and_currency() {
    let mut check = at_noon("c1", State::Approved, 2000);
    check.method = Method::Check;
    let mut tpe2 = at_noon("t2", State::Approved, 300);
    tpe2.terminal = "tpe-2".to_owned();
    let mut yen = at_noon("j1", State::Approved, 500);
    yen.currency = "JPY".to_owned();
    let mut ancv = at_noon("v1", State::Approved, 700);
    ancv.method = Method::Ancv;
    let records = [ancv, check, tpe2, yen, at_noon("d1", State::Approved, 100)];
    let report = aggregate(&records, DAY, UtcOffset::UTC);
    let keys: Vec<(&str, Method, &str)> = report
        .rows
        .iter()
        .map(|r| (r.terminal.as_str(), r.method, r.currency.as_str()))
        .collect();
    let expected = [
        ("tpe-1", Method::Card, "EUR"),
        ("tpe-1", Method::Card, "JPY"),
        ("tpe-1", Method::Check, "EUR"),
        ("tpe-1", Method::Ancv, "EUR"),
        ("tpe-2", Method::Card, "EUR"),
    ];
    assert_eq!(keys, expected);
    let totals = report.currency_totals();
    assert_eq!(totals.len(), 2);
    assert_eq!(
        (totals[0].0.as_str(), totals[0].1.debits),
        ("EUR", tally(4, 3100))
    );
    assert_eq!(
        (totals[1].0.as_str(), totals[1].1.debits),
        ("JPY", tally(1, 500))
    );
}

#[test]
fn amounts_use_the_currency_exponent() {
    assert_eq!(format_amount(1245, exponent("EUR")), "12,45");
    assert_eq!(format_amount(5, 2), "0,05");
    assert_eq!(format_amount(-1245, 2), "-12,45");
    assert_eq!(format_amount(-5, 2), "-0,05");
    assert_eq!(format_amount(500, exponent("JPY")), "500");
    assert_eq!(format_amount(1_234_567, exponent("KWD")), "1234,567");
    assert_eq!(exponent("XYZ"), 0);
}

#[test]
fn table_shows_rows_totals_and_unresolved() {
    let mut yen = at_noon("j1", State::Approved, 500);
    yen.currency = "JPY".to_owned();
    let records = [
        at_noon("d1", State::Approved, 1250),
        refund(at_noon("r1", State::Approved, 300)),
        at_noon("u-9", State::Unknown, 4200),
        yen,
    ];
    let text = table::render(
        &aggregate(&records, DAY, offset!(+1)),
        Zone::Local(offset!(+1)),
    );
    assert!(
        text.starts_with("Rapport du 2026-11-23 (heure locale, UTC+01:00)"),
        "{text}"
    );
    let total_eur = text
        .lines()
        .find(|l| l.starts_with("TOTAL") && l.contains("EUR"));
    let total_eur = total_eur.expect("EUR totals line");
    for cell in ["1 / 12,50", "1 / 3,00", "9,50", "1 / 42,00"] {
        assert!(total_eur.contains(cell), "{cell} missing in {total_eur}");
    }
    let total_jpy = text
        .lines()
        .find(|l| l.starts_with("TOTAL") && l.contains("JPY"));
    let total_jpy: Vec<&str> = total_jpy
        .expect("JPY totals line")
        .split_whitespace()
        .collect();
    let empty = total_jpy.iter().filter(|cell| **cell == "-").count();
    assert_eq!(
        (&total_jpy[..5], empty),
        (&["TOTAL", "JPY", "1", "/", "500"][..], 8)
    );
    assert!(
        text.contains("à vérifier sur le ticket du terminal"),
        "{text}"
    );
    assert!(text.contains("u-9  tpe-1  débit  42,00 EUR"), "{text}");
}

#[test]
fn table_says_when_the_day_is_in_utc() {
    let text = table::render(&aggregate(&[], DAY, UtcOffset::UTC), Zone::Utc);
    assert!(text.contains("UTC (fuseau local inconnu)"), "{text}");
    assert!(text.contains("Aucune transaction"), "{text}");
}

#[test]
fn csv_has_one_line_per_row_in_minor_units() {
    let mut check = at_noon("c1", State::Approved, 2000);
    check.method = Method::Check;
    let records = [
        at_noon("d1", State::Approved, 1250),
        refund(at_noon("r1", State::Approved, 3000)),
        at_noon("u1", State::Unknown, 40),
        check,
    ];
    let text = csv::render(&aggregate(&records, DAY, offset!(+1)));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0].split(',').count(), csv::COLUMNS.len());
    assert_eq!(
        lines[1],
        "2026-11-23,+01:00,tpe-1,card,EUR,2,1,1250,1,3000,-1750,0,0,0,0,0,0,0,0,1,40,0,0,0,0"
    );
    assert!(lines[2].starts_with("2026-11-23,+01:00,tpe-1,check,EUR,2,1,2000,0,0,2000,"));
}
