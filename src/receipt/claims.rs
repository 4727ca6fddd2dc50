//! A receipt's payload (contract §8), taken from the record as it is serialized, so fields
//! other parts add to the record (`refund_of`, `confirm_duplicate`, `resolution.by_role`)
//! appear in receipts without a change here. Absent members are omitted, never `null`;
//! tickets, notes, the raw answer and card details other than the last four digits never
//! enter a receipt.

use serde_json::{Map, Value};

use crate::engine::record::{parse_rfc3339, Record};

/// Top-level record members copied as they are, when present.
const RECORD_MEMBERS: [&str; 11] = [
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
];
/// Members of `result` copied to the top level, when present.
const RESULT_MEMBERS: [&str; 3] = ["approved_amount", "partial", "authorization"];
/// Members of `resolution` kept in the receipt's `resolution`.
const RESOLUTION_MEMBERS: [&str; 4] = ["outcome", "till", "by_role", "at"];

/// The payload of `record`'s receipt, issued by `issuer`.
pub fn of(record: &Record, issuer: &str) -> Value {
    let full = serde_json::to_value(record).unwrap_or(Value::Null);
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    if let Some(at) = parse_rfc3339(&record.updated_at) {
        claims.insert("iat".into(), at.unix_timestamp().into());
    }
    claims.insert("jti".into(), format!("{}.{}", record.id, record.seq).into());
    copy(&full, &mut claims, &RECORD_MEMBERS);
    if let Some(result) = full.get("result") {
        copy(result, &mut claims, &RESULT_MEMBERS);
        let pan = result.pointer("/card/pan").and_then(Value::as_str);
        if let Some(last4) = pan.and_then(last_four_digits) {
            claims.insert("pan_last4".into(), last4.into());
        }
    }
    if let Some(resolution) = full.get("resolution") {
        let mut kept = Map::new();
        copy(resolution, &mut kept, &RESOLUTION_MEMBERS);
        claims.insert("resolution".into(), kept.into());
    }
    claims.into()
}

fn copy(from: &Value, to: &mut Map<String, Value>, names: &[&str]) {
    for name in names {
        match from.get(name) {
            None | Some(Value::Null) => {}
            Some(value) => {
                to.insert((*name).to_owned(), value.clone());
            }
        }
    }
}

/// The last four characters of a masked PAN, when they are digits.
fn last_four_digits(pan: &str) -> Option<&str> {
    let start = pan.len().checked_sub(4)?;
    let last = pan.get(start..)?;
    last.bytes().all(|b| b.is_ascii_digit()).then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{sample, State, TxResult};
    use crate::protocol::Card;

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
        let claims = of(&record, "shop");
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

    #[test]
    fn only_digits_make_a_last_four() {
        assert_eq!(last_four_digits("4970######1234"), Some("1234"));
        assert_eq!(last_four_digits("4970########"), None);
        assert_eq!(last_four_digits("12"), None);
    }
}
