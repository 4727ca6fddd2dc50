//! Requests to the terminal: payment (debit/refund; card, cheque or ANCV) and
//! identification (CD=I).
//!
//! Fields sent: CZ "0300", CJ, CA (POS number), CB (amount, ≥ 2 digits), CD (action), CE
//! (numeric currency), BA "0" (answer at the end), CC "00C" for cheques and "00V" for ANCV
//! chèques-vacances; CK (ticket) and CF (reference) only when the terminal's settings turn
//! them on. Never BF: newer terminals reject requests carrying it.

use thiserror::Error;

use super::currency::MAX_AMOUNT;
use super::fields::{Field, Message};
use super::{tags, Action, Currency, Method, PaymentRequest, TicketRequest};

/// Most characters of a reference sent in CF (HiPay accepts 1–32).
pub const MAX_REFERENCE: usize = 32;

/// Protocol version sent in CZ: the most common one.
pub const VERSION: &str = "0300";

/// POS protocol identifier sent in CJ; informative, terminals do not check it.
pub const POS_ID: &str = "012345678901";

/// A request that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The amount is 0 or has more than 12 digits.
    #[error("amount {0} is outside 1..=999999999999 minor units")]
    Amount(u64),
    /// The POS number (CA) is not two digits.
    #[error("POS number {0:?} is not two digits")]
    PosNumber(String),
}

fn check_pos(pos_number: &str) -> Result<(), RequestError> {
    if pos_number.len() == 2 && pos_number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(RequestError::PosNumber(pos_number.to_string()))
    }
}

fn field(tag: &str, value: impl Into<String>) -> Field {
    // Every caller passes a checked tag and a value of 1..=999 ASCII characters.
    Field::new(tag, value).expect("request fields are valid by construction")
}

fn header(pos_number: &str) -> Vec<Field> {
    vec![
        field(tags::VERSION, VERSION),
        field(tags::POS_ID, POS_ID),
        field(tags::POS_NUMBER, pos_number),
    ]
}

impl PaymentRequest {
    /// Builds a request, checking the amount and the POS number.
    pub fn new(
        amount: u64,
        currency: Currency,
        action: Action,
        method: Method,
        pos_number: &str,
    ) -> Result<PaymentRequest, RequestError> {
        let request = PaymentRequest {
            amount,
            currency,
            action,
            method,
            pos_number: pos_number.to_string(),
            ticket: None,
            reference: None,
        };
        request.check()?;
        Ok(request)
    }

    /// Asks the terminal for its ticket (sends CK).
    pub fn with_ticket(mut self, ticket: TicketRequest) -> PaymentRequest {
        self.ticket = Some(ticket);
        self
    }

    /// Sends `id` (its first 32 characters) in CF, to be echoed back.
    pub fn with_reference(mut self, id: &str) -> PaymentRequest {
        self.reference = Some(reference(id));
        self
    }

    /// Checks the fields a caller may have set by hand.
    pub fn check(&self) -> Result<(), RequestError> {
        if !(1..=MAX_AMOUNT).contains(&self.amount) {
            return Err(RequestError::Amount(self.amount));
        }
        check_pos(&self.pos_number)
    }

    /// The request message.
    pub fn to_message(&self) -> Result<Message, RequestError> {
        self.check()?;
        let mut fields = header(&self.pos_number);
        fields.push(field(tags::AMOUNT, format!("{:02}", self.amount)));
        fields.push(field(tags::ACTION, self.action.cd()));
        fields.push(field(tags::CURRENCY, self.currency.ce()));
        fields.push(field(tags::ANSWER_MODE, "0"));
        if let Some(cc) = self.method.cc() {
            fields.push(field(tags::APPLICATION, cc));
        }
        if let Some(ticket) = &self.ticket {
            fields.push(field(tags::TICKET_MODE, ticket.ck()));
        }
        if let Some(reference) = self.reference.as_deref().filter(|r| !r.is_empty()) {
            fields.push(field(tags::PRIVATE_DATA, reference));
        }
        Ok(Message::new(fields).expect("CZ comes first"))
    }
}

impl Action {
    /// The CD value: "0" debit, "1" refund.
    pub fn cd(self) -> &'static str {
        match self {
            Action::Debit => "0",
            Action::Refund => "1",
        }
    }
}

/// The reference a transaction id gives: its first [`MAX_REFERENCE`] characters.
pub fn reference(id: &str) -> String {
    id.chars().take(MAX_REFERENCE).collect()
}

/// The identification (ping) request for the POS number: CZ, CJ, CA, CD "I".
pub fn identification(pos_number: &str) -> Result<Message, RequestError> {
    check_pos(pos_number)?;
    let mut fields = header(pos_number);
    fields.push(field(tags::ACTION, "I"));
    Ok(Message::new(fields).expect("CZ comes first"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount: u64, action: Action, method: Method) -> PaymentRequest {
        let eur = Currency::parse("EUR").unwrap();
        PaymentRequest::new(amount, eur, action, method, "01").unwrap()
    }

    fn frame(r: &PaymentRequest) -> String {
        r.to_message().unwrap().to_string()
    }

    #[test]
    fn debit_matches_the_documented_frame_plus_ba() {
        let r = request(2500, Action::Debit, Method::Card);
        let doc = "CZ0040300CJ012012345678901CA00201CB0042500CD0010CE003978";
        assert_eq!(frame(&r), format!("{doc}BA0010"));
    }

    #[test]
    fn refund_pads_the_amount_to_two_digits() {
        let r = request(5, Action::Refund, Method::Card);
        let doc = "CZ0040300CJ012012345678901CA00201CB00205CD0011CE003978";
        assert_eq!(frame(&r), format!("{doc}BA0010"));
    }

    #[test]
    fn cheque_adds_cc_00c() {
        let r = request(3000, Action::Debit, Method::Check);
        let doc = "CZ0040300CJ012012345678901CA00201CB0043000CD0010CE003978";
        assert_eq!(frame(&r), format!("{doc}BA0010CC00300C"));
        assert!(!frame(&r).contains("BF"));
    }

    #[test]
    fn ancv_adds_cc_00v() {
        let r = request(3000, Action::Debit, Method::Ancv);
        assert!(frame(&r).ends_with("BA0010CC00300V"), "{}", frame(&r));
    }

    #[test]
    fn ticket_and_reference_are_sent_only_when_asked() {
        use crate::protocol::{TicketCopy, TicketFormat};
        let plain = frame(&request(2500, Action::Debit, Method::Card));
        assert!(!plain.contains("CK") && !plain.contains("CF"));
        let ticket = TicketRequest {
            copy: TicketCopy::Both,
            format: TicketFormat::Text,
        };
        let id = "pos1-2026-11-30-000123-abcdefghijklmnop";
        let r = request(2500, Action::Debit, Method::Card)
            .with_ticket(ticket)
            .with_reference(id);
        assert!(frame(&r).ends_with("BA0010CK003120CF032pos1-2026-11-30-000123-abcdefghi"));
        assert_eq!(reference("short"), "short");
    }

    #[test]
    fn identification_matches_the_documented_frame() {
        let m = identification("01").unwrap();
        assert_eq!(m.to_string(), "CZ0040300CJ012012345678901CA00201CD001I");
        assert!(identification("1").is_err());
    }

    #[test]
    fn bad_requests_are_refused() {
        let eur = Currency::parse("EUR").unwrap();
        let new = |amount, pos| PaymentRequest::new(amount, eur, Action::Debit, Method::Card, pos);
        assert_eq!(new(0, "01"), Err(RequestError::Amount(0)));
        assert!(new(MAX_AMOUNT, "01").is_ok());
        assert_eq!(
            new(MAX_AMOUNT + 1, "01"),
            Err(RequestError::Amount(MAX_AMOUNT + 1))
        );
        assert!(matches!(new(1, "1a"), Err(RequestError::PosNumber(_))));
        assert!(matches!(new(1, "001"), Err(RequestError::PosNumber(_))));
    }
}
