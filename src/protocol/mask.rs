//! Card data minimised for logs: card numbers keep only their last four digits; and raw
//! frames as records keep them, without tickets.
//!
//! Terminals already mask the PAN they send in AA (e.g. `497010######1234`); logs keep
//! less still, in case a terminal sends more than it should. Records and screens keep the
//! terminal's own masked value. Tickets (ZT) leave both logs and a record's `raw`.

use super::fields::{decode_field, latin1, to_latin1, Field};
use super::tags;

/// Digits kept at the end of a card number.
const KEPT_DIGITS: usize = 4;

/// `pan` with every digit but the last four replaced by `#` (same length).
pub fn mask_pan(pan: &str) -> String {
    let digits = pan.chars().filter(char::is_ascii_digit).count();
    let mut hidden = digits.saturating_sub(KEPT_DIGITS);
    pan.chars()
        .map(|c| match c {
            '0'..='9' if hidden > 0 => {
                hidden -= 1;
                '#'
            }
            c => c,
        })
        .collect()
}

/// A raw frame (Latin-1 text) for a debug log: AA masked with [`mask_pan`], tickets (ZT)
/// dropped; whatever does not decode as fields has all its digits hidden, since nothing
/// says what they are.
pub fn mask_frame(raw: &str) -> String {
    let hide = |c: char| if c.is_ascii_digit() { '#' } else { c };
    rewrite_fields(
        raw,
        |field| match field.tag() {
            tags::PAN => Some(mask_pan(field.value())),
            tags::TICKET => None,
            _ => Some(field.value().to_string()),
        },
        |tail| tail.chars().map(hide).collect(),
    )
}

/// A raw frame as a record keeps it (`result.raw`): tickets (ZT) dropped, since they have
/// their own field that displays and receipts leave out (api.md §7.2).
pub fn record_frame(raw: &str) -> String {
    rewrite_fields(
        raw,
        |field| (field.tag() != tags::TICKET).then(|| field.value().to_string()),
        str::to_string,
    )
}

/// Rewrites each whole field of `raw` with `value` (`None` drops the field; a new value
/// must keep the length) and what does not decode with `tail`.
fn rewrite_fields(
    raw: &str,
    value: impl Fn(&Field) -> Option<String>,
    tail: impl Fn(&str) -> String,
) -> String {
    let bytes = to_latin1(raw);
    let mut out = String::with_capacity(raw.len());
    let mut rest = &bytes[..];
    while let Ok(Some((field, used))) = decode_field(rest) {
        if let Some(value) = value(&field) {
            out.push_str(&latin1(&rest[..5]));
            out.push_str(&value);
        }
        rest = &rest[used..];
    }
    out.push_str(&tail(&latin1(rest)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_four_digits_of_a_pan_stay() {
        assert_eq!(mask_pan("497010######1234"), "############1234");
        assert_eq!(mask_pan("4970101234561234"), "############1234");
        assert_eq!(mask_pan("123"), "123");
        assert_eq!(mask_pan(""), "");
    }

    #[test]
    fn frames_keep_their_fields_and_lose_the_pan() {
        let raw = "CZ0040300AE00210AA0164970101234561234AC006632145";
        assert_eq!(
            mask_frame(raw),
            "CZ0040300AE00210AA016############1234AC006632145"
        );
    }

    #[test]
    fn tickets_leave_logs_and_records() {
        let raw = "CZ0040300AE00210ZT014CK003100AK001QAC006632145";
        assert_eq!(mask_frame(raw), "CZ0040300AE00210AC006632145");
        assert_eq!(record_frame(raw), "CZ0040300AE00210AC006632145");
        assert_eq!(record_frame("CZ0040300AE0"), "CZ0040300AE0");
    }

    #[test]
    fn undecodable_tails_hide_their_digits() {
        assert_eq!(mask_frame("CZ0040300??4970101234"), "CZ0040300??##########");
        assert_eq!(mask_frame("AA0164970"), "AA#######");
    }
}
