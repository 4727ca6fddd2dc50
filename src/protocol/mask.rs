//! Card data minimised for logs: card numbers keep only their last four digits.
//!
//! Terminals already mask the PAN they send in AA (e.g. `497010######1234`); logs keep
//! less still, in case a terminal sends more than it should. Records and screens keep the
//! terminal's own masked value; only log lines go through here.

use super::fields::{decode_field, latin1};

/// The tag of the (masked) card number in an answer.
const PAN_TAG: &str = "AA";

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

/// A raw frame (Latin-1 text) for a debug log: AA masked with [`mask_pan`]; whatever does
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
        if field.tag() == PAN_TAG {
            out.push_str(&mask_pan(field.value()));
        } else {
            out.push_str(field.value());
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
    fn undecodable_tails_hide_their_digits() {
        assert_eq!(mask_frame("CZ0040300??4970101234"), "CZ0040300??##########");
        assert_eq!(mask_frame("AA0164970"), "AA#######");
    }
}
