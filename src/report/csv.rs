//! The report for machines: one header line, then one line per terminal, method and
//! currency (no totals line; sum the lines). Comma-separated, amounts in minor units.
//!
//! Columns, in order:
//!
//! | column | meaning |
//! |---|---|
//! | `day` | the local day, `YYYY-MM-DD` |
//! | `utc_offset` | the offset that defines the day, `+01:00` |
//! | `terminal` | terminal name |
//! | `method` | `card` or `check` |
//! | `currency` | ISO 4217 alphabetic code |
//! | `exponent` | the currency's minor-unit exponent (amount / 10^exponent = major units) |
//! | `debit_count`, `debit_minor` | approved debits, at their approved amount |
//! | `refund_count`, `refund_minor` | approved refunds, at their approved amount |
//! | `net_minor` | `debit_minor - refund_minor` (may be negative) |
//! | `declined_count`, `declined_minor` | declined, requested amounts |
//! | `not_sent_count`, `not_sent_minor` | never reached the terminal, requested amounts |
//! | `unknown_approved_count`, `unknown_approved_minor` | unknown, resolved approved |
//! | `unknown_not_charged_count`, `unknown_not_charged_minor` | unknown, resolved not charged |
//! | `unknown_unresolved_count`, `unknown_unresolved_minor` | unknown, not resolved yet |
//! | `duplicate_count`, `duplicate_minor` | confirmed possible duplicates, any outcome (also in the columns above) |
//! | `linked_refund_count`, `linked_refund_minor` | refunds linked to a payment, any outcome (also above) |
//!
//! Text fields holding a comma, a quote or a line break are quoted as RFC 4180 says.

use super::{exponent, offset_text, Report, Row, Tally};

/// The header line's columns.
pub const COLUMNS: [&str; 25] = [
    "day",
    "utc_offset",
    "terminal",
    "method",
    "currency",
    "exponent",
    "debit_count",
    "debit_minor",
    "refund_count",
    "refund_minor",
    "net_minor",
    "declined_count",
    "declined_minor",
    "not_sent_count",
    "not_sent_minor",
    "unknown_approved_count",
    "unknown_approved_minor",
    "unknown_not_charged_count",
    "unknown_not_charged_minor",
    "unknown_unresolved_count",
    "unknown_unresolved_minor",
    "duplicate_count",
    "duplicate_minor",
    "linked_refund_count",
    "linked_refund_minor",
];

/// The header line and one line per row, each ending with `\n`.
pub fn render(report: &Report) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for row in &report.rows {
        out.push_str(&line(report, row).join(","));
        out.push('\n');
    }
    out
}

fn line(report: &Report, row: &Row) -> Vec<String> {
    let tallies = row.totals.tallies();
    let counted = |range: &[Tally]| {
        range
            .iter()
            .flat_map(|t| [t.count.to_string(), t.amount.to_string()])
            .collect::<Vec<_>>()
    };
    let mut line = vec![
        report.day.to_string(),
        offset_text(report.offset),
        field(&row.terminal),
        row.method.code().to_owned(),
        field(&row.currency),
        exponent(&row.currency).to_string(),
    ];
    line.extend(counted(&tallies[..2]));
    line.push(row.totals.net().to_string());
    line.extend(counted(&tallies[2..]));
    line
}

/// Quotes a text field if it would break the line apart.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
