//! A receipt's payload (contract §8), serialized straight from the record: `iss`, `iat`,
//! `jti`, the record's identity, amount and state, the approval's `approved_amount`,
//! `partial` and `authorization`, the PAN's last four digits and the resolution. Absent
//! members are omitted, never `null`; tickets, notes, the raw answer and card details other
//! than the last four digits never enter a receipt. A member the record gains is added here
//! too (the test `every_member_of_a_full_record_is_signed` lists them).
//!
//! Borrowed fields and one pre-sized buffer: a receipt is made for every final record, under
//! the ledger's order lock, so building a JSON tree of the whole record first (as this did)
//! cost a third of a seal besides the signature.

use std::fmt;

use serde::Serialize;

use crate::engine::record::{parse_rfc3339, Record, Resolution, ResolvedAs, ResolvedBy, State};
use crate::protocol::{Action, Method};

/// The payload of a receipt, in the order it is written.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(serialize_with = "serialize_display")]
    jti: Jti<'a>,
    id: &'a str,
    till: &'a str,
    terminal: &'a str,
    action: Action,
    method: Method,
    amount: u64,
    currency: &'a str,
    state: State,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_of: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    confirm_duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_amount: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pan_last4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolution: Option<ResolutionClaims<'a>>,
}

/// The resolution as a receipt keeps it: no note.
#[derive(Serialize)]
struct ResolutionClaims<'a> {
    outcome: ResolvedAs,
    till: &'a str,
    by_role: ResolvedBy,
    at: &'a str,
}

impl<'a> From<&'a Resolution> for ResolutionClaims<'a> {
    fn from(resolution: &'a Resolution) -> ResolutionClaims<'a> {
        ResolutionClaims {
            outcome: resolution.outcome,
            till: &resolution.till,
            by_role: resolution.by_role,
            at: &resolution.at,
        }
    }
}

/// `<id>.<seq>`, written without an intermediate string.
struct Jti<'a>(&'a str, u64);

impl fmt::Display for Jti<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn serialize_display<S: serde::Serializer>(
    value: &impl fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// The payload (JSON text) of `record`'s receipt, issued by `issuer`.
pub fn of(record: &Record, issuer: &str) -> Vec<u8> {
    let result = record.result.as_ref();
    let pan = result.and_then(|r| r.card.as_ref()?.pan.as_deref());
    let claims = Claims {
        iss: issuer,
        iat: parse_rfc3339(&record.updated_at).map(|at| at.unix_timestamp()),
        jti: Jti(&record.id, record.seq),
        id: &record.id,
        till: &record.till,
        terminal: &record.terminal,
        action: record.action,
        method: record.method,
        amount: record.amount,
        currency: &record.currency,
        state: record.state,
        seq: record.seq,
        refund_of: record.refund_of.as_deref(),
        confirm_duplicate: record.confirm_duplicate,
        approved_amount: result.and_then(|r| r.approved_amount),
        partial: result.is_some_and(|r| r.partial),
        authorization: result.and_then(|r| r.authorization.as_deref()),
        pan_last4: pan.and_then(last_four_digits),
        resolution: record.resolution.as_ref().map(ResolutionClaims::from),
    };
    let mut json = Vec::with_capacity(512);
    // Serializing borrowed strings, numbers and unit enums into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut json, &claims);
    json
}

/// The last four characters of a masked PAN, when they are digits.
fn last_four_digits(pan: &str) -> Option<&str> {
    let start = pan.len().checked_sub(4)?;
    let last = pan.get(start..)?;
    last.bytes().all(|b| b.is_ascii_digit()).then_some(last)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::engine::record::{sample, TxResult};
    use crate::protocol::Card;

    fn claims(record: &Record) -> Value {
        serde_json::from_slice(&of(record, "shop")).unwrap()
    }

    #[test]
    fn result_members_are_lifted_and_absent_ones_omitted() {
        let mut record = sample("a.b", State::Approved);
        record.seq = 3;
        record.result = Some(TxResult {
            approved_amount: Some(80),
            partial: true,
            authorization: Some("123456".into()),
            raw: Some("AE0210".into()),
            card: Some(Card {
                pan: Some("497010######1234".into()),
                ..Card::default()
            }),
            ..TxResult::default()
        });
        let claims = claims(&record);
        assert_eq!(claims["jti"], "a.b.3");
        assert_eq!(claims["approved_amount"], 80);
        assert_eq!(claims["partial"], true);
        assert_eq!(claims["pan_last4"], "1234");
        assert_eq!(claims["currency"], "EUR");
        for absent in ["raw", "result", "card", "resolution", "refund_of", "iat"] {
            assert!(claims.get(absent).is_none(), "{absent} in {claims}");
        }
        assert!(!claims.to_string().contains("null"));
    }

    /// The members of docs/backend.md §2, and no other: a record with every optional
    /// member set signs all of them, with the record's values.
    #[test]
    fn every_member_of_a_full_record_is_signed() {
        let mut record = sample("r", State::Unknown);
        record.seq = 9;
        record.updated_at = "2026-03-01T10:20:30.456Z".into();
        record.refund_of = Some("d".into());
        record.confirm_duplicate = true;
        record.result = Some(TxResult {
            approved_amount: Some(100),
            partial: true,
            authorization: Some("123456".into()),
            card: Some(Card {
                pan: Some("497010######1234".into()),
                ..Card::default()
            }),
            ..TxResult::default()
        });
        record.resolution = Some(Resolution {
            outcome: ResolvedAs::Approved,
            note: Some("seen on the ticket".into()),
            till: "till-2".into(),
            by_role: ResolvedBy::Operator,
            at: "2026-03-01T10:21:00.000Z".into(),
        });
        let claims = claims(&record);
        let members: BTreeSet<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected = [
            "iss",
            "iat",
            "jti",
            "id",
            "till",
            "terminal",
            "action",
            "method",
            "amount",
            "currency",
            "state",
            "seq",
            "refund_of",
            "confirm_duplicate",
            "approved_amount",
            "partial",
            "authorization",
            "pan_last4",
            "resolution",
        ];
        assert_eq!(members, expected.into_iter().collect());
        let full = serde_json::to_value(&record).unwrap();
        // The record's own members, copied as they are (`id` … `confirm_duplicate`).
        for name in &expected[3..14] {
            assert_eq!(claims[name], full[name], "{name}");
        }
        assert_eq!(claims["iat"], 1772360430);
        assert_eq!(
            claims["resolution"],
            serde_json::json!({"outcome": "approved", "till": "till-2", "by_role": "operator",
                "at": "2026-03-01T10:21:00.000Z"})
        );
    }

    #[test]
    fn only_digits_make_a_last_four() {
        assert_eq!(last_four_digits("4970######1234"), Some("1234"));
        assert_eq!(last_four_digits("4970########"), None);
        assert_eq!(last_four_digits("12"), None);
    }
}
