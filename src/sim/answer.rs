//! The simulated terminal's answers, built from the request it received: cheque (CC=00C)
//! and ANCV (CC=00V) payments are answered with their CC and no card fields; a request with
//! CK gets its tickets ([`super::ticket`]) after AE, as real terminals send them.

use super::behaviour::Outcome;
use super::ticket::zt_fields;
use crate::protocol::{tags, Field, Message};

/// The simulator's own CJ: real terminals answer with theirs, never the POS's.
const SIM_POS_ID: &str = "987654321098";

/// The answer to a request missing a mandatory field or that does not parse.
pub const MALFORMED: &str = "CZ0040300AE00201AF00209";

/// The request fields every request must carry (CB and CE not for identification).
pub fn is_complete(request: &Message) -> bool {
    let has = |tag| request.get(tag).is_some();
    let payment = has(tags::AMOUNT) && has(tags::CURRENCY);
    let header = [tags::VERSION, tags::POS_ID, tags::POS_NUMBER, tags::ACTION];
    header.into_iter().all(has) && (payment || request.get(tags::ACTION) == Some("I"))
}

/// The amount of a request, if it has a numeric CB.
pub fn amount(request: &Message) -> Option<u64> {
    request.get(tags::AMOUNT)?.parse().ok()
}

fn push(fields: &mut Vec<Field>, tag: &str, value: &str) {
    // Simulator values are short and ASCII or echoes of parsed request fields.
    fields.push(Field::new(tag, value).expect("simulator fields are valid"));
}

/// The identification answer.
pub fn identification(request: &Message) -> Message {
    let mut fields = Vec::new();
    push(&mut fields, tags::VERSION, "0300");
    push(&mut fields, tags::POS_ID, SIM_POS_ID);
    push(
        &mut fields,
        tags::POS_NUMBER,
        request.get(tags::POS_NUMBER).unwrap_or("01"),
    );
    push(&mut fields, tags::ACTION, "I");
    push(&mut fields, tags::STATUS, "10");
    Message::new(fields).expect("CZ first")
}

/// The answer to a complete payment request.
pub fn payment(request: &Message, outcome: &Outcome, wrong_echo: bool) -> Message {
    let requested = amount(request).unwrap_or(0);
    let cb = match outcome {
        Outcome::Partial(limit) => requested.min(*limit),
        _ => requested,
    };
    let ce = match (request.get(tags::CURRENCY).unwrap_or_default(), wrong_echo) {
        ("978", true) => "840",
        (_, true) => "978",
        (ce, false) => ce,
    };
    let mut fields = Vec::new();
    push(&mut fields, tags::VERSION, "0300");
    push(&mut fields, tags::POS_ID, SIM_POS_ID);
    let echo = |tag| request.get(tag).unwrap_or_default();
    push(&mut fields, tags::POS_NUMBER, echo(tags::POS_NUMBER));
    // Terminals zero-pad numeric echoes.
    push(&mut fields, tags::AMOUNT, &format!("{cb:07}"));
    push(&mut fields, tags::ACTION, echo(tags::ACTION));
    push(&mut fields, tags::CURRENCY, ce);
    if let Some(reference) = request.get(tags::PRIVATE_DATA) {
        push(&mut fields, tags::PRIVATE_DATA, reference);
    }
    match (outcome, request.get(tags::APPLICATION)) {
        (Outcome::Declined(af), _) => {
            push(&mut fields, tags::STATUS, "01");
            push(&mut fields, tags::REASON, af);
        }
        (_, Some(tender @ ("00C" | "00V"))) => {
            push(&mut fields, tags::STATUS, "10");
            push(&mut fields, tags::APPLICATION, tender);
        }
        (approved, _) => {
            push(&mut fields, tags::STATUS, "10");
            card_fields(&mut fields, approved);
        }
    }
    let decided = Message::new(fields.clone()).expect("CZ first");
    fields.extend(zt_fields(request, &decided));
    Message::new(fields).expect("CZ first")
}

fn card_fields(fields: &mut Vec<Field>, outcome: &Outcome) {
    let (cc, ci, pan, aid, expiry) = match outcome {
        Outcome::CbContactless => ("00B", "2", "497010######1234", "A0000000421010", "2812"),
        Outcome::Amex => ("002", "1", "374245#####1001", "A00000002501", "2811"),
        Outcome::FullPan => ("001", "1", "4970101234561234", "A0000000421010", "2812"),
        _ => ("001", "1", "497010######1234", "A0000000421010", "2812"),
    };
    for (tag, value) in [
        (tags::APPLICATION, cc),
        (tags::ENTRY_MODE, ci),
        (tags::AUTHORIZATION, "632145"),
        (tags::PAN, pan),
        (tags::AID, aid),
        (tags::EXPIRY, expiry),
        (tags::CONTRACT, "4242424"),
    ] {
        push(fields, tag, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fields::decode;

    fn parse(frame: &str) -> Message {
        decode(frame.as_bytes()).unwrap().unwrap().remove(0)
    }

    const DEBIT: &str = "CZ0040300CJ012012345678901CA00201CB0042500CD0010CE003978BA0010";

    #[test]
    fn approved_echoes_with_the_amount_zero_padded() {
        let answer = payment(&parse(DEBIT), &Outcome::Approved, false).to_string();
        assert!(answer.starts_with(
            "CZ0040300CJ012987654321098CA00201CB0070002500CD0010CE003978AE00210CC003001"
        ));
    }

    #[test]
    fn partial_wrong_echo_and_cheque_answers() {
        let partial = payment(&parse(DEBIT), &Outcome::Partial(1000), false);
        assert_eq!(partial.get("CB"), Some("0001000"));
        let wrong = payment(&parse(DEBIT), &Outcome::Approved, true);
        assert_eq!(wrong.get("CE"), Some("840"));
        let cheque = payment(&parse(&format!("{DEBIT}CC00300C")), &Outcome::Amex, false);
        assert_eq!(cheque.get("CC"), Some("00C"));
        assert_eq!(cheque.get("AA"), None);
        let ancv = payment(
            &parse(&format!("{DEBIT}CC00300V")),
            &Outcome::Approved,
            false,
        );
        assert_eq!(ancv.get("CC"), Some("00V"));
        assert_eq!(ancv.get("AA"), None);
    }

    #[test]
    fn references_are_echoed_and_tickets_follow_ae() {
        let asked = parse(&format!("{DEBIT}CK003120CF005ref-1"));
        let answer = payment(&asked, &Outcome::Approved, false);
        assert_eq!(answer.get("CF"), Some("ref-1"));
        let tags: Vec<&str> = answer.fields().iter().map(Field::tag).collect();
        let ae = tags.iter().position(|t| *t == "AE").unwrap();
        let zt: Vec<usize> = (0..tags.len()).filter(|&i| tags[i] == "ZT").collect();
        assert_eq!(zt.len(), 2);
        assert!(zt[0] > ae);
    }

    #[test]
    fn mandatory_fields_are_checked() {
        assert!(is_complete(&parse(DEBIT)));
        assert!(!is_complete(&parse(
            "CZ0040300CJ012012345678901CA00201CD0010CE003978"
        )));
        assert!(is_complete(&parse(
            "CZ0040300CJ012012345678901CA00201CD001I"
        )));
    }
}
