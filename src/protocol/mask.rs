//! Card data minimised wherever it goes (contract §7.2): journal, logs, messages.
//!
//! Masking is per field, whatever the terminal sends: a card number (AA) keeps at most its
//! first six and last four characters, the other digits become `#`; an expiry (AB) becomes
//! all `#`. Lengths are kept, so a masked frame still parses. The answer reader hands out
//! only masked frames and the decoded answer only a masked PAN and no expiry, so nothing
//! downstream ever holds the full values.

use super::fields::{decode_field, latin1};

/// The tag of the card number in an answer.
const PAN_TAG: &str = "AA";
/// The tag of the card's expiry date in an answer.
const EXPIRY_TAG: &str = "AB";

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

/// A raw frame (Latin-1 text) with AA masked by [`mask_pan`] and AB all `#`; whatever does
/// not decode as fields has all its digits hidden, since nothing says what they are.
pub fn mask_frame(raw: &str) -> String {
    let bytes: Vec<u8> = raw
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let mut out = String::with_capacity(raw.len());
    let mut rest = &bytes[..];
    while let Ok(Some((field, used))) = decode_field(rest) {
        out.push_str(&latin1(&rest[..5]));
        match field.tag() {
            PAN_TAG => out.push_str(&mask_pan(field.value())),
            EXPIRY_TAG => out.extend(field.value().chars().map(|_| '#')),
            _ => out.push_str(field.value()),
        }
        rest = &rest[used..];
    }
    let hide = |c: char| if c.is_ascii_digit() { '#' } else { c };
    out.extend(latin1(rest).chars().map(hide));
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
    }

    #[test]
    fn undecodable_tails_hide_their_digits() {
        assert_eq!(mask_frame("CZ0040300??4970101234"), "CZ0040300??##########");
        assert_eq!(mask_frame("AA0164970"), "AA#######");
    }
}
