//! The day report: the journal's transactions of one local day, totalled per terminal,
//! method and currency, for the shop to compare with the terminal's own end-of-day ticket
//! ("ticket de fin de journée / télécollecte").
//!
//! [`aggregate`] is pure (records, day, UTC offset → [`Report`]); [`table`] renders it for
//! people (French columns, a legend, a totals row per currency) and [`csv`] for machines.
//! [`Zone`] asks the system for the local offset; reading the journal is the CLI's business
//! (`cli/report.rs`).
//!
//! Categories, one per final record, by its `created_at` in the local day:
//! approved debits and approved refunds (partial approvals count the approved amount, not the
//! requested one), declined, not_sent, and unknown split by the cashier's resolution
//! (resolved approved, resolved not_charged, unresolved). Net is approved debits minus
//! approved refunds; unknown records are never in it, even when resolved approved, so that
//! every amount in the table comes from a terminal's answer or is shown apart.
//! Records not final yet (a live agent is mid-transaction) are listed, not totalled.
//! Two more columns count the decisions of the safety guards (contract §10), whatever the
//! outcome and on top of the categories above: payments the cashier confirmed although they
//! looked like a duplicate (`confirm_duplicate`), and refunds linked to a payment
//! (`refund_of`).
//!
//! The day uses one UTC offset, the one at noon of that day: a daylight-saving change
//! shifts records between midnight and the change (shops are closed then) by one hour.

use std::cmp::Ordering;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::engine::record::{Record, ResolvedAs, State};
use crate::protocol::{Action, Currency, Method};

pub(crate) mod csv;
pub(crate) mod table;

/// How many transactions, and their total in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Number of transactions.
    pub count: u64,
    /// Sum of their amounts, minor units.
    pub amount: u64,
}

impl Tally {
    fn add(&mut self, amount: u64) {
        self.count += 1;
        self.amount += amount;
    }

    fn merge(&mut self, other: Tally) {
        self.count += other.count;
        self.amount += other.amount;
    }
}

/// The totals of one terminal, method and currency (or of a whole currency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Approved debits (approved amounts).
    pub debits: Tally,
    /// Approved refunds (approved amounts).
    pub refunds: Tally,
    /// Declined by the terminal or the bank (requested amounts).
    pub declined: Tally,
    /// Never reached the terminal (requested amounts).
    pub not_sent: Tally,
    /// Unknown, resolved as approved from the ticket (requested amounts).
    pub unknown_approved: Tally,
    /// Unknown, resolved as not charged (requested amounts).
    pub unknown_not_charged: Tally,
    /// Unknown, not resolved yet (requested amounts).
    pub unknown_unresolved: Tally,
    /// Confirmed possible duplicates, any outcome (requested amounts; also counted above).
    pub confirmed_duplicates: Tally,
    /// Refunds linked to a payment, any outcome (requested amounts; also counted above).
    pub linked_refunds: Tally,
}

impl Totals {
    /// Approved debits minus approved refunds, minor units.
    pub fn net(&self) -> i128 {
        i128::from(self.debits.amount) - i128::from(self.refunds.amount)
    }

    fn merge(&mut self, other: &Totals) {
        for (mine, theirs) in self.tallies_mut().into_iter().zip(other.tallies()) {
            mine.merge(theirs);
        }
    }

    /// The tallies in column order (as [`table`] and [`csv`] print them).
    pub fn tallies(&self) -> [Tally; 9] {
        [
            self.debits,
            self.refunds,
            self.declined,
            self.not_sent,
            self.unknown_approved,
            self.unknown_not_charged,
            self.unknown_unresolved,
            self.confirmed_duplicates,
            self.linked_refunds,
        ]
    }

    fn tallies_mut(&mut self) -> [&mut Tally; 9] {
        [
            &mut self.debits,
            &mut self.refunds,
            &mut self.declined,
            &mut self.not_sent,
            &mut self.unknown_approved,
            &mut self.unknown_not_charged,
            &mut self.unknown_unresolved,
            &mut self.confirmed_duplicates,
            &mut self.linked_refunds,
        ]
    }

    /// Counts `record` in its category; `false` if it is not final (nothing counted).
    fn count(&mut self, record: &Record) -> bool {
        let approved = || record.result.as_ref().and_then(|r| r.approved_amount);
        let (tally, amount) = match (record.state, record.action) {
            (State::Approved, Action::Debit) => (&mut self.debits, approved()),
            (State::Approved, Action::Refund) => (&mut self.refunds, approved()),
            (State::Declined, _) => (&mut self.declined, None),
            (State::NotSent, _) => (&mut self.not_sent, None),
            (State::Unknown, _) => match record.resolution.as_ref().map(|r| r.outcome) {
                Some(ResolvedAs::Approved) => (&mut self.unknown_approved, None),
                Some(ResolvedAs::NotCharged) => (&mut self.unknown_not_charged, None),
                None => (&mut self.unknown_unresolved, None),
            },
            _ => return false,
        };
        tally.add(amount.unwrap_or(record.amount));
        if record.confirm_duplicate {
            self.confirmed_duplicates.add(record.amount);
        }
        if record.refund_of.is_some() {
            self.linked_refunds.add(record.amount);
        }
        true
    }
}

/// One line of the report: a terminal, a method and a currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Terminal name.
    pub terminal: String,
    /// Card or cheque.
    pub method: Method,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// What happened.
    pub totals: Totals,
}

/// A transaction the shop must look at: unresolved `unknown`, or not final yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Transaction id.
    pub id: String,
    /// Terminal name.
    pub terminal: String,
    /// Debit or refund.
    pub action: Action,
    /// Requested amount, minor units.
    pub amount: u64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Its state.
    pub state: State,
    /// Creation time in the report's offset.
    pub created_at: OffsetDateTime,
}

/// One local day of the journal, totalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The local day.
    pub day: Date,
    /// The UTC offset that defines the day.
    pub offset: UtcOffset,
    /// Sorted by terminal, method (card first), currency.
    pub rows: Vec<Row>,
    /// Unresolved `unknown` transactions, oldest first: check them on the terminal's ticket.
    pub unresolved: Vec<Pending>,
    /// Transactions still in progress, oldest first (not totalled).
    pub in_progress: Vec<Pending>,
    /// Ids whose `created_at` is not RFC 3339, so no day could be given to them.
    pub undated: Vec<String>,
}

impl Report {
    /// Totals per currency over every terminal and method, sorted by currency.
    pub fn currency_totals(&self) -> Vec<(String, Totals)> {
        let mut totals: Vec<(String, Totals)> = Vec::new();
        for row in &self.rows {
            match totals.iter_mut().find(|(c, _)| *c == row.currency) {
                Some((_, sum)) => sum.merge(&row.totals),
                None => totals.push((row.currency.clone(), row.totals)),
            }
        }
        totals.sort_by(|a, b| a.0.cmp(&b.0));
        totals
    }
}

/// Totals the records created on `day` in the time zone of `offset`.
pub fn aggregate(records: &[Record], day: Date, offset: UtcOffset) -> Report {
    let mut report = Report {
        day,
        offset,
        rows: Vec::new(),
        unresolved: Vec::new(),
        in_progress: Vec::new(),
        undated: Vec::new(),
    };
    for record in records {
        let Ok(created) = OffsetDateTime::parse(&record.created_at, &Rfc3339) else {
            report.undated.push(record.id.clone());
            continue;
        };
        let created = created.to_offset(offset);
        if created.date() == day {
            report.add(record, created);
        }
    }
    report.rows.sort_by(row_order);
    report.unresolved.sort_by_key(|p| p.created_at);
    report.in_progress.sort_by_key(|p| p.created_at);
    report
}

impl Report {
    fn add(&mut self, record: &Record, created_at: OffsetDateTime) {
        let totals = self.row_for(record);
        if !totals.count(record) {
            self.in_progress.push(pending(record, created_at));
        } else if record.is_unresolved() {
            self.unresolved.push(pending(record, created_at));
        }
    }

    fn row_for(&mut self, record: &Record) -> &mut Totals {
        let at = self.rows.iter().position(|row| {
            row.terminal == record.terminal
                && row.method == record.method
                && row.currency == record.currency
        });
        let at = at.unwrap_or_else(|| {
            self.rows.push(Row {
                terminal: record.terminal.clone(),
                method: record.method,
                currency: record.currency.clone(),
                totals: Totals::default(),
            });
            self.rows.len() - 1
        });
        &mut self.rows[at].totals
    }
}

fn pending(record: &Record, created_at: OffsetDateTime) -> Pending {
    Pending {
        id: record.id.clone(),
        terminal: record.terminal.clone(),
        action: record.action,
        amount: record.amount,
        currency: record.currency.clone(),
        state: record.state,
        created_at,
    }
}

fn row_order(a: &Row, b: &Row) -> Ordering {
    let key = |row: &Row| (row.method, row.currency.clone());
    a.terminal
        .cmp(&b.terminal)
        .then_with(|| key(a).cmp(&key(b)))
}

/// The minor-unit exponent of a currency; 0 for a code missing from the table, so its
/// amounts show as minor units rather than being scaled wrongly.
pub fn exponent(currency: &str) -> u8 {
    Currency::parse(currency).map_or(0, |c| c.exponent)
}

/// An offset as `+01:00`.
pub fn offset_text(offset: UtcOffset) -> String {
    let format = format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    offset.format(format).unwrap_or_else(|_| offset.to_string())
}

/// The time zone that defines the report's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's local offset (at noon of the day).
    Local(UtcOffset),
    /// The local offset could not be determined: UTC.
    Utc,
}

impl Zone {
    /// The system's zone at `instant`, or UTC if the system cannot tell.
    pub fn at(instant: OffsetDateTime) -> Zone {
        UtcOffset::local_offset_at(instant).map_or(Zone::Utc, Zone::Local)
    }

    /// Its offset from UTC.
    pub fn offset(self) -> UtcOffset {
        match self {
            Zone::Local(offset) => offset,
            Zone::Utc => UtcOffset::UTC,
        }
    }
}

#[cfg(test)]
mod tests;
