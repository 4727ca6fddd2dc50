//! Card data minimised wherever it goes (contract §7.2): journal, logs, messages.
//!
//! Masking is per field, whatever the terminal sends: a card number (AA) keeps at most its
//! first six and last four characters, the other digits become `#`; an expiry (AB) becomes
//! all `#`; tickets (ZT) leave the frame, since they have their own field that displays and
//! receipts leave out. Other lengths are kept, so a masked frame still parses. Whatever does
//! not decode as fields has its digits hidden, since nothing says what they are. The
//! decoded answer keeps only a masked PAN and no expiry, and a record's `raw` and every log
//! line only [`mask_frame`]'s output, so nothing downstream holds the full values.

use super::fields::{decode_field, latin1, to_latin1, Field};
use super::tags;

/// Leading characters of a card number that may stay in clear.
const KEPT_FIRST: usize = 6;
/// Trailing characters of a card number that may stay in clear.
const KEPT_LAST: usize = 4;
/// Shorter values keep only their last four: six more would leave too little hidden.
const MIN_LEN_FOR_FIRST: usize = 13;

/// `pan` with every digit outside the first six and last four positions replaced by `#`
/// (same length); values shorter than 13 characters keep only their last four.
pub fn mask_pan(pan: &str) -> String {
    let len = pan.chars().count();
    let first = if len >= MIN_LEN_FOR_FIRST {
        KEPT_FIRST
    } else {
        0
    };
    let last_from = len.saturating_sub(KEPT_LAST);
    pan.chars()
        .enumerate()
        .map(|(i, c)| {
            let kept = i < first || i >= last_from;
            if c.is_ascii_digit() && !kept {
                '#'
            } else {
                c
            }
        })
        .collect()
}

/// A raw frame (Latin-1 text) as records and logs keep it: AA masked with [`mask_pan`], AB
/// all `#`, tickets (ZT) dropped, digits hidden in whatever does not decode.
pub fn mask_frame(raw: &str) -> String {
    let hide = |c: char| if c.is_ascii_digit() { '#' } else { c };
    rewrite_fields(
        raw,
        |field| match field.tag() {
            tags::PAN => Some(mask_pan(field.value())),
            tags::EXPIRY => Some(field.value().chars().map(|_| '#').collect()),
            tags::TICKET => None,
            _ => Some(field.value().to_string()),
        },
        |tail| tail.chars().map(hide).collect(),
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
    fn a_pan_keeps_at_most_its_first_six_and_last_four() {
        assert_eq!(mask_pan("4970101234561234"), "497010######1234");
        assert_eq!(mask_pan("497010######1234"), "497010######1234");
        assert_eq!(mask_pan("4970101234561234567"), "497010#########4567");
        assert_eq!(mask_pan("123456789012"), "########9012");
        assert_eq!(mask_pan("123"), "123");
        assert_eq!(mask_pan(""), "");
    }

    #[test]
    fn frames_keep_their_fields_and_lose_the_pan_and_expiry() {
        let raw = "CZ0040300AE00210AA0164970101234561234AB0042712AC006632145";
        let masked = mask_frame(raw);
        assert_eq!(
            masked,
            "CZ0040300AE00210AA016497010######1234AB004####AC006632145"
        );
        assert_eq!(masked.len(), raw.len());
        assert_eq!(mask_frame(&masked), masked, "masking twice changes nothing");
    }

    #[test]
    fn tickets_leave_the_frame() {
        let raw = "CZ0040300AE00210ZT014CK003100AK001QAC006632145";
        assert_eq!(mask_frame(raw), "CZ0040300AE00210AC006632145");
    }

    #[test]
    fn undecodable_tails_hide_their_digits() {
        assert_eq!(mask_frame("CZ0040300??4970101234"), "CZ0040300??##########");
        assert_eq!(mask_frame("AA0164970"), "AA#######");
    }
}
