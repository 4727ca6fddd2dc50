//! Reading and judging the terminal's answer, with no I/O.
//!
//! [`AnswerReader`] is the completion rule as a pure state machine: the driver feeds it the
//! bytes it reads and acts on the [`Step`]. An answer is complete when everything received
//! parses as whole fields and the last message (each `CZ` starts one) holds an AE other than
//! "11"; AE=11 ("request taken into account") is intermediate. [`interpret`] then turns the
//! final message into a [`Verdict`], with the echo check of the contract (api.md §5):
//! on approved answers only, CA, CD, CE equal and CB equal after stripping leading zeros,
//! a lower CB being a partial approval, and CF when the request sent a reference. CZ and CJ
//! are never checked: terminals send their own. A tag repeated before the decision makes
//! the answer invalid; after it, the repeat is logged and ignored ([`first_values`]). `ZT`
//! (tickets) may repeat; tickets are decoded by [`super::ticket`] into [`Answer::ticket`].

use std::borrow::Cow;

use thiserror::Error;

use super::codes;
use super::fields::{DecodeError, Decoder, Field, Message};
use super::mask::{mask_frame, mask_pan};
use super::ticket::{decode_tickets, TicketRequest};
use super::{tags, Answer, Card, PaymentRequest};

/// AE: operation done.
pub const AE_DONE: &str = "10";
/// AE: operation not done.
pub const AE_NOT_DONE: &str = "01";
/// AE: request taken into account; never final.
pub const AE_TAKEN: &str = "11";
/// AF: message format error, what a terminal answers to a tag it does not know.
pub const AF_FORMAT_ERROR: &str = "09";

/// What the bytes received so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep reading.
    NeedMore,
    /// The terminal holds the request (first AE=11 seen); keep reading.
    Intermediate,
    /// A final answer is there; drain briefly for more fields.
    Complete,
}

/// Accumulates the answer bytes and tells when the answer is complete.
#[derive(Debug, Default)]
pub struct AnswerReader {
    decoder: Decoder,
    intermediate_seen: bool,
    answer: Option<Message>,
}

impl AnswerReader {
    /// Adds a chunk; an error means the answer is invalid (garbage or oversize).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Step, DecodeError> {
        self.decoder.push(chunk)?;
        if !self.decoder.is_whole() {
            return Ok(Step::NeedMore);
        }
        let Some(last) = self.decoder.last_message() else {
            return Ok(Step::NeedMore);
        };
        match last.get(tags::STATUS) {
            Some(AE_TAKEN) if !self.intermediate_seen => {
                self.intermediate_seen = true;
                Ok(Step::Intermediate)
            }
            Some(AE_TAKEN) | None => Ok(Step::NeedMore),
            Some(_) => {
                self.answer = Some(last);
                Ok(Step::Complete)
            }
        }
    }

    /// The latest complete final answer, if any.
    pub fn answer(&self) -> Option<&Message> {
        self.answer.as_ref()
    }

    /// Every byte received, Latin-1 decoded.
    pub fn raw(&self) -> String {
        self.decoder.raw()
    }

    /// How many bytes were received.
    pub fn len(&self) -> usize {
        self.decoder.len()
    }

    /// True before any byte arrived.
    pub fn is_empty(&self) -> bool {
        self.decoder.is_empty()
    }
}

/// What a final answer means for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// AE=10 and the echo check passed (maybe partially approved).
    Approved(Answer),
    /// AE=01.
    Declined(Answer),
    /// The answer lacks a mandatory field or has an unexpected status.
    Invalid(String),
    /// The answer's echo does not match the request.
    Mismatch(String),
}

/// Decodes the answer fields, without judging them. `asked` is the ticket the request
/// asked for: a ticket that cannot be read is logged and left out, the rest stands.
pub fn decode_answer(message: &Message, raw: &str, asked: Option<TicketRequest>) -> Answer {
    let text = |tag| message.get(tag).map(str::to_string);
    let named = |tag, name: fn(&str) -> Option<&'static str>| {
        message
            .get(tag)
            .map(|code| name(code).map_or_else(|| code.to_string(), str::to_string))
    };
    let af = message.get(tags::REASON).map(codes::af_code);
    Answer {
        ae: message.get(tags::STATUS).unwrap_or_default().to_string(),
        af: af.map(str::to_string),
        reason: af.and_then(codes::af_reason).map(str::to_string),
        label: af.and_then(codes::af_label).map(str::to_string),
        card: Card {
            application: named(tags::APPLICATION, codes::application),
            entry_mode: named(tags::ENTRY_MODE, codes::entry_mode),
            pan: text(tags::PAN).as_deref().map(mask_pan),
            aid: text(tags::AID),
        },
        authorization: text(tags::AUTHORIZATION),
        contract: text(tags::CONTRACT),
        approved_amount: None,
        partial: false,
        ticket: tickets(message, asked),
        raw: mask_frame(raw),
    }
}

/// The answer's tickets; an unreadable one is logged and left out.
fn tickets(message: &Message, asked: Option<TicketRequest>) -> Vec<super::Ticket> {
    let values: Vec<&str> = message
        .fields()
        .iter()
        .filter(|f| f.tag() == tags::TICKET)
        .map(Field::value)
        .collect();
    decode_tickets(&values, asked).unwrap_or_else(|err| {
        tracing::warn!(%err, "terminal ticket (ZT) left out of the record");
        Vec::new()
    })
}

/// The answer with each tag once (ZT excepted): a repeat before the decision (AE with the
/// echo fields, or AE=01 with AF; api.md §7.1) is an error, a later one is logged and dropped.
pub fn first_values(message: &Message) -> Result<Cow<'_, Message>, String> {
    let fields = message.fields();
    let repeats = |(i, f): (usize, &Field)| {
        f.tag() != tags::TICKET && fields[..i].iter().any(|k| k.tag() == f.tag())
    };
    if !fields.iter().enumerate().any(repeats) {
        return Ok(Cow::Borrowed(message));
    }
    let mut kept: Vec<Field> = Vec::with_capacity(message.fields().len());
    let mut decided = false;
    for field in message.fields() {
        let repeated = field.tag() != tags::TICKET && kept.iter().any(|k| k.tag() == field.tag());
        if repeated && !decided {
            return Err(format!("tag {} repeated before the decision", field.tag()));
        }
        if repeated {
            tracing::warn!(tag = field.tag(), "repeated tag after the decision ignored");
            continue;
        }
        kept.push(field.clone());
        decided = decided || decides(&kept);
    }
    Message::new(kept)
        .map(Cow::Owned)
        .map_err(|err| err.to_string())
}

/// True when these fields decide the outcome (api.md §7.1): AE=10 with the echo fields CA,
/// CB, CD and CE, or AE=01 with AF. The driver announces the result at once when they do.
pub fn decides(fields: &[Field]) -> bool {
    let get = |tag| fields.iter().find(|f| f.tag() == tag).map(Field::value);
    let has = |tag| get(tag).is_some();
    match get(tags::STATUS) {
        Some(AE_DONE) => [tags::POS_NUMBER, tags::AMOUNT, tags::ACTION, tags::CURRENCY]
            .into_iter()
            .all(has),
        Some(AE_NOT_DONE) => has(tags::REASON),
        _ => false,
    }
}

/// Judges the final answer to `request`.
pub fn interpret(request: &PaymentRequest, message: &Message, raw: &str) -> Verdict {
    let message = match first_values(message) {
        Ok(message) => message,
        Err(detail) => return Verdict::Invalid(detail),
    };
    let mut answer = decode_answer(&message, raw, request.ticket);
    match answer.ae.as_str() {
        AE_NOT_DONE => {
            if request.ticket.is_some() && answer.af.as_deref() == Some(AF_FORMAT_ERROR) {
                tracing::warn!(
                    "terminal answered AE=01 AF=09 (message format error) to a request with CK: \
                     it may not support tickets; set ticket = \"none\" for this terminal"
                );
            }
            Verdict::Declined(answer)
        }
        AE_DONE => match echo_check(request, &message) {
            Ok(approved) => {
                answer.approved_amount = Some(approved);
                answer.partial = approved < request.amount;
                Verdict::Approved(answer)
            }
            Err(EchoError::Invalid(detail)) => Verdict::Invalid(detail),
            Err(EchoError::Mismatch(detail)) => Verdict::Mismatch(detail),
        },
        "" => Verdict::Invalid("answer without AE".into()),
        other => Verdict::Invalid(format!("unexpected AE {other:?}")),
    }
}

/// Why an approved answer failed the echo check.
enum EchoError {
    Invalid(String),
    Mismatch(String),
}

/// Checks the echoes of an approved answer and returns the approved amount.
fn echo_check(request: &PaymentRequest, message: &Message) -> Result<u64, EchoError> {
    let mut expected = vec![
        (tags::POS_NUMBER, request.pos_number.clone()),
        (tags::ACTION, request.action.cd().to_string()),
        (tags::CURRENCY, request.currency.ce()),
    ];
    if let Some(reference) = &request.reference {
        expected.push((tags::PRIVATE_DATA, reference.clone()));
    }
    for (tag, want) in expected {
        let got = echo(message, tag)?;
        if got != want {
            return Err(EchoError::Mismatch(format!(
                "{tag} is {got:?}, sent {want:?}"
            )));
        }
    }
    let cb = echo(message, tags::AMOUNT)?;
    if cb.is_empty() || !cb.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EchoError::Invalid(format!("CB {cb:?} is not a number")));
    }
    let digits = cb.trim_start_matches('0');
    let approved = match digits.parse::<u64>() {
        Ok(n) if n >= 1 && n <= request.amount && digits.len() <= 12 => n,
        _ => {
            let sent = request.amount;
            return Err(EchoError::Mismatch(format!("CB is {cb:?}, sent {sent}")));
        }
    };
    Ok(approved)
}

fn echo<'m>(message: &'m Message, tag: &str) -> Result<&'m str, EchoError> {
    match message.get(tag) {
        Some(value) => Ok(value),
        // A reference sent and not echoed: nothing ties the answer to this request.
        None if tag == tags::PRIVATE_DATA => Err(EchoError::Mismatch(
            "answer lacks the CF reference echo".into(),
        )),
        None => Err(EchoError::Invalid(format!("approved answer lacks {tag}"))),
    }
}

/// What an identification answer says about the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The terminal's protocol version (its CZ).
    pub version: String,
    /// The terminal's CJ, when sent.
    pub pos_id: Option<String>,
}

/// An identification answer that does not say "alive and well".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentifyError {
    /// The terminal answered with a status other than AE=10.
    #[error("identification answered AE={ae:?} AF={af:?}")]
    Status {
        /// AE.
        ae: String,
        /// AF code, if any.
        af: Option<String>,
    },
}

/// Judges an identification (CD=I) answer.
pub fn identify(message: &Message) -> Result<Identity, IdentifyError> {
    let ae = message.get(tags::STATUS).unwrap_or_default();
    if ae != AE_DONE {
        let af = message
            .get(tags::REASON)
            .map(|af| codes::af_code(af).to_string());
        return Err(IdentifyError::Status {
            ae: ae.to_string(),
            af,
        });
    }
    Ok(Identity {
        version: message.get(tags::VERSION).unwrap_or_default().to_string(),
        pos_id: message.get(tags::POS_ID).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Action, Currency, Method};

    const APPROVED: &str = "CZ0040300CJ012012345678901CA00201CE003978CD0010CB0070002500AE00210CC003001CI0011AC006632145AA016497010######1234AI014A0000000421010AB0042712CG006424242";
    const REFUSED: &str = "CZ0040300CA00201CB0042500CD0010CE003978AE00201AF00204";
    const MALFORMED: &str = "CZ0040300AE00201AF00209";
    const IDENT: &str = "CZ0040301CJ012330538600404CA00201CD001IAE00210";

    fn debit(amount: u64) -> PaymentRequest {
        let eur = Currency::parse("EUR").unwrap();
        PaymentRequest::new(amount, eur, Action::Debit, Method::Card, "01").unwrap()
    }

    fn read_all(chunks: &[&[u8]]) -> (Vec<Step>, AnswerReader) {
        let mut reader = AnswerReader::default();
        let steps = chunks.iter().map(|c| reader.push(c).unwrap()).collect();
        (steps, reader)
    }

    fn judge(frame: &str, amount: u64) -> Verdict {
        let (_, reader) = read_all(&[frame.as_bytes()]);
        interpret(&debit(amount), reader.answer().unwrap(), &reader.raw())
    }

    #[test]
    fn approved_example_decodes_every_card_field() {
        let Verdict::Approved(a) = judge(APPROVED, 2500) else {
            panic!("not approved");
        };
        assert_eq!(a.approved_amount, Some(2500));
        assert!(!a.partial);
        assert_eq!(a.card.application.as_deref(), Some("CB"));
        assert_eq!(a.card.entry_mode.as_deref(), Some("contact"));
        assert_eq!(a.card.pan.as_deref(), Some("497010######1234"));
        assert_eq!(a.card.aid.as_deref(), Some("A0000000421010"));
        assert_eq!(a.authorization.as_deref(), Some("632145"));
        assert_eq!(a.contract.as_deref(), Some("424242"));
        assert_eq!(a.raw, APPROVED.replace("AB0042712", "AB004####"));
    }

    #[test]
    fn refused_and_malformed_examples_are_declined() {
        let Verdict::Declined(a) = judge(REFUSED, 2500) else {
            panic!("not declined");
        };
        assert_eq!(a.af.as_deref(), Some("04"));
        assert_eq!(a.reason.as_deref(), Some("refused"));
        assert_eq!(a.label.as_deref(), Some("Refusée"));
        let Verdict::Declined(a) = judge(MALFORMED, 2500) else {
            panic!("not declined");
        };
        assert_eq!(a.reason.as_deref(), Some("message format error"));
    }

    #[test]
    fn every_answer_split_at_every_byte_completes_once_whole() {
        for frame in [APPROVED, REFUSED, MALFORMED, IDENT] {
            let bytes = frame.as_bytes();
            for cut in 1..bytes.len() {
                let (steps, reader) = read_all(&[&bytes[..cut], &bytes[cut..]]);
                assert_eq!(steps[1], Step::Complete, "{frame} cut at {cut}");
                assert_eq!(reader.answer().unwrap().to_string(), frame);
            }
        }
    }

    #[test]
    fn a_field_boundary_without_ae_is_not_complete() {
        let (steps, reader) = read_all(&[b"CZ0040300CA00201", b"CB0042500"]);
        assert_eq!(steps, [Step::NeedMore, Step::NeedMore]);
        assert!(reader.answer().is_none());
    }

    #[test]
    fn intermediate_answer_is_reported_once_then_the_final_one_completes() {
        let taken = b"CZ0040300AE00211";
        let (steps, reader) = read_all(&[taken, taken, REFUSED.as_bytes()]);
        assert_eq!(steps, [Step::Intermediate, Step::NeedMore, Step::Complete]);
        assert_eq!(reader.answer().unwrap().to_string(), REFUSED);
    }

    #[test]
    fn af_longer_than_two_characters_keeps_its_code() {
        let frame = "CZ0040300CA00201CD0010CE003978AE00201AF01211 operateur";
        let Verdict::Declined(a) = judge(frame, 2500) else {
            panic!("not declined");
        };
        assert_eq!(a.af.as_deref(), Some("11"));
        assert_eq!(a.reason.as_deref(), Some("cancelled by the operator"));
    }

    #[test]
    fn echo_check_catches_every_mismatch() {
        let ok = "CZ0040301CJ012999999999999CA00201CB0070002500CD0010CE003978AE00210";
        assert!(matches!(judge(ok, 2500), Verdict::Approved(_)));
        for (from, to) in [
            ("CA00201", "CA00202"),
            ("CD0010", "CD0011"),
            ("CE003978", "CE003840"),
        ] {
            let bad = ok.replace(from, to);
            assert!(matches!(judge(&bad, 2500), Verdict::Mismatch(_)), "{bad}");
        }
        let higher = ok.replace("CB0070002500", "CB0070002501");
        assert!(matches!(judge(&higher, 2500), Verdict::Mismatch(_)));
        let missing = ok.replace("CE003978", "");
        assert!(matches!(judge(&missing, 2500), Verdict::Invalid(_)));
        let letters = ok.replace("CB0070002500", "CB00425x0");
        assert!(matches!(judge(&letters, 2500), Verdict::Invalid(_)));
    }

    #[test]
    fn lower_cb_is_a_partial_approval() {
        let frame = "CZ0040300CA00201CB0070001000CD0010CE003978AE00210";
        let Verdict::Approved(a) = judge(frame, 2500) else {
            panic!("not approved");
        };
        assert_eq!(a.approved_amount, Some(1000));
        assert!(a.partial);
    }

    #[test]
    fn declined_answers_skip_the_echo_check() {
        let frame = "CZ0040300CA00201CB0010CD0010CE003978AE00201AF00211";
        assert!(matches!(judge(frame, 2500), Verdict::Declined(_)));
    }

    #[test]
    fn a_red_key_cancel_with_an_empty_amount_is_a_decline() {
        let frame = "CZ0040300CA00201CB000CD0010CE003978AE00201AF00211";
        let Verdict::Declined(answer) = judge(frame, 2500) else {
            panic!("not declined");
        };
        assert_eq!(answer.af.as_deref(), Some("11"));
    }

    #[test]
    fn only_answers_with_their_echoes_or_reason_decide() {
        let decides_frame =
            |frame: &str| decides(read_all(&[frame.as_bytes()]).1.answer().unwrap().fields());
        assert!(decides_frame(APPROVED) && decides_frame(REFUSED) && decides_frame(MALFORMED));
        assert!(
            !decides_frame("CZ0040300AE00210CA00201CB0042500CD0010"),
            "CE missing"
        );
        assert!(!decides_frame("CZ0040300CA00201AE00201"), "AF missing");
        assert!(!decides_frame(
            "CZ0040300CA00201CB0042500CD0010CE003978AE00299"
        ));
    }

    #[test]
    fn unexpected_status_is_invalid() {
        let frame = "CZ0040300CA00201CB0042500CD0010CE003978AE00299";
        assert!(matches!(judge(frame, 2500), Verdict::Invalid(_)));
    }

    #[test]
    fn a_tag_repeated_before_the_decision_is_invalid() {
        let frame = "CZ0040300CA00201CB0042500CB0042500CD0010CE003978AE00210";
        assert!(matches!(judge(frame, 2500), Verdict::Invalid(d) if d.contains("CB")));
        let frame = "CZ0040300AE00201AE00210AF00204";
        assert!(matches!(judge(frame, 2500), Verdict::Invalid(_)));
    }

    #[test]
    fn a_tag_repeated_after_the_decision_is_ignored() {
        let frame = format!("{REFUSED}AF00211");
        let Verdict::Declined(a) = judge(&frame, 2500) else {
            panic!("not declined");
        };
        assert_eq!(a.af.as_deref(), Some("04"));
        let frame = format!("{APPROVED}AC006999999CC00300B");
        let Verdict::Approved(a) = judge(&frame, 2500) else {
            panic!("not approved");
        };
        assert_eq!(a.authorization.as_deref(), Some("632145"));
        assert_eq!(a.card.application.as_deref(), Some("CB"));
    }

    #[test]
    fn tickets_are_decoded_and_dropped_from_raw() {
        use crate::protocol::ticket::encode_zt;
        let customer = encode_zt("100", &["TICKET CLIENT"]).unwrap();
        let merchant = encode_zt("110", &["TICKET COMMERCANT"]).unwrap();
        let zt = |v: &str| format!("ZT{:03}{v}", v.len());
        // One ticket before AE, one after: both forms of "both" are seen.
        let (cz, rest) = APPROVED.split_at(9);
        let frame = format!("{cz}{}{rest}{}", zt(&customer), zt(&merchant));
        let Verdict::Approved(a) = judge(&frame, 2500) else {
            panic!("not approved");
        };
        assert_eq!(a.ticket.len(), 2);
        assert_eq!(a.ticket[0].text, "TICKET CLIENT");
        assert_eq!(a.raw, APPROVED.replace("AB0042712", "AB004####"));
    }

    #[test]
    fn an_unreadable_ticket_leaves_the_payment_standing() {
        let frame = format!("{REFUSED}ZT008CK003100");
        let Verdict::Declined(a) = judge(&frame, 2500) else {
            panic!("not declined");
        };
        assert!(a.ticket.is_empty());
        assert_eq!(a.raw, REFUSED);
    }

    #[test]
    fn the_reference_echo_must_match() {
        let sent = debit(2500).with_reference("order-42");
        let judge_ref = |frame: &str| {
            let (_, reader) = read_all(&[frame.as_bytes()]);
            interpret(&sent, reader.answer().unwrap(), &reader.raw())
        };
        let ok = format!("{APPROVED}CF008order-42");
        assert!(matches!(judge_ref(&ok), Verdict::Approved(_)));
        let other = format!("{APPROVED}CF008order-41");
        assert!(matches!(judge_ref(&other), Verdict::Mismatch(_)));
        assert!(matches!(judge_ref(APPROVED), Verdict::Mismatch(_)));
        assert!(matches!(judge_ref(REFUSED), Verdict::Declined(_)));
    }

    #[test]
    fn identification_answer_says_alive() {
        let (_, reader) = read_all(&[IDENT.as_bytes()]);
        let id = identify(reader.answer().unwrap()).unwrap();
        assert_eq!(id.version, "0301");
        let (_, reader) = read_all(&[MALFORMED.as_bytes()]);
        assert!(identify(reader.answer().unwrap()).is_err());
    }
}
