//! The transaction record: what the journal stores and the `transaction` message carries,
//! and the one mapping from the driver's [`Outcome`] to a final state and its `result`.

use serde::{Deserialize, Serialize};

use crate::protocol::mask::{mask_frame, mask_pan};
use crate::protocol::{Action, Answer, Card, Method, Ticket};
use crate::terminal::Outcome;

/// A transaction's state; see the contract's §5 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Validated and journaled; the driver has not started.
    Accepted,
    /// Opening the TCP connection to the terminal.
    Connecting,
    /// The whole request frame was written.
    Sent,
    /// The terminal holds the request.
    WaitingCard,
    /// Final: approved.
    Approved,
    /// Final: declined; safe to retry.
    Declined,
    /// Final: provably never reached the terminal; safe to retry.
    NotSent,
    /// Final: sent, no valid answer; the cashier must check the ticket and `resolve`.
    Unknown,
}

impl State {
    /// The contract's name of the state, e.g. `waiting_card`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Accepted => "accepted",
            State::Connecting => "connecting",
            State::Sent => "sent",
            State::WaitingCard => "waiting_card",
            State::Approved => "approved",
            State::Declined => "declined",
            State::NotSent => "not_sent",
            State::Unknown => "unknown",
        }
    }

    /// A final state never changes again (except `unknown`, which gets a resolution).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Approved | State::Declined | State::NotSent | State::Unknown
        )
    }
}

/// The decoded answer, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxResult {
    /// AE status code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ae: Option<String>,
    /// AF reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub af: Option<String>,
    /// English reason (declined), or the unknown reason code
    /// (`timeout`, `connection_lost`, `invalid_answer`, `mismatch`, `agent_restart`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// French label of the AF code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Card details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Authorization number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// Merchant contract number (CG), when the terminal sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Approved amount in minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_amount: Option<u64>,
    /// The terminal approved less than asked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The terminal's tickets (ZT, asked with CK): the cashier's record and webhooks
    /// only; a display's record and a receipt leave this field out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket: Vec<Ticket>,
    /// The answer frame, tickets (ZT) dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Human detail (not_sent, unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&Outcome> for State {
    /// The final state an outcome leads to.
    fn from(outcome: &Outcome) -> State {
        match outcome {
            Outcome::Approved(_) => State::Approved,
            Outcome::Declined(_) => State::Declined,
            Outcome::NotSent { .. } => State::NotSent,
            Outcome::Unknown { .. } => State::Unknown,
        }
    }
}

impl From<Outcome> for TxResult {
    /// The record's `result` for an outcome.
    fn from(outcome: Outcome) -> TxResult {
        match outcome {
            Outcome::Approved(answer) | Outcome::Declined(answer) => TxResult::from(answer),
            Outcome::NotSent { detail } => TxResult {
                detail: Some(detail),
                ..TxResult::default()
            },
            Outcome::Unknown {
                reason,
                detail,
                raw,
            } => TxResult {
                reason: Some(reason.as_str().to_owned()),
                detail: Some(detail),
                raw,
                ..TxResult::default()
            },
        }
    }
}

impl TxResult {
    /// Masks the card data as §7.2 wants it (`card.pan`, and `AA`/`AB` inside `raw`).
    /// Records made by this version are masked already (masking twice changes nothing);
    /// records journaled before masking existed may hold full values until loaded here.
    pub(crate) fn mask_card_data(&mut self) {
        if let Some(pan) = self.card.as_mut().and_then(|card| card.pan.as_mut()) {
            *pan = mask_pan(pan);
        }
        if let Some(raw) = &mut self.raw {
            *raw = mask_frame(raw);
        }
    }
}

impl From<Answer> for TxResult {
    fn from(answer: Answer) -> TxResult {
        TxResult {
            ae: Some(answer.ae),
            af: answer.af,
            reason: answer.reason,
            label: answer.label,
            card: (answer.card != Card::default()).then_some(answer.card),
            authorization: answer.authorization,
            contract: answer.contract,
            approved_amount: answer.approved_amount,
            partial: answer.partial,
            ticket: answer.ticket,
            raw: Some(answer.raw),
            detail: None,
        }
    }
}

/// The cashier's decision on an `unknown` transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// `approved` or `not_charged`.
    pub outcome: ResolvedAs,
    /// Free text from the cashier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Till that resolved it (`cli` for `caisse-ap-relay resolve`).
    pub till: String,
    /// Who resolved it (journals from before v2: a cashier).
    #[serde(default)]
    pub by_role: ResolvedBy,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// What the ticket said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedAs {
    /// The ticket shows the payment went through.
    Approved,
    /// The ticket shows nothing was charged.
    NotCharged,
}

/// Who resolved an `unknown` transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    /// A cashier till (its own transaction, or the one blocking its terminal).
    #[default]
    Cashier,
    /// An operator till.
    Operator,
    /// `caisse-ap-relay resolve` on the agent's machine.
    Cli,
}

/// One transaction, as journaled and as sent in `transaction` messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// POS-chosen key.
    pub id: String,
    /// Till that started it.
    pub till: String,
    /// Terminal name.
    pub terminal: String,
    /// Amount in minor units.
    pub amount: u64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Debit or refund.
    pub action: Action,
    /// Card or cheque.
    pub method: Method,
    /// For a refund: the debit it reverses (contract §10, linked refunds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<String>,
    /// The cashier confirmed it although it looked like a duplicate (contract §10).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_duplicate: bool,
    /// Current state.
    pub state: State,
    /// Decoded answer or failure detail, once final.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<TxResult>,
    /// Resolution of an `unknown` transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Creation time (RFC 3339, UTC, milliseconds).
    pub created_at: String,
    /// Last change time (RFC 3339, UTC, milliseconds).
    pub updated_at: String,
    /// Per-agent sequence number of the last change.
    pub seq: u64,
    /// The signed receipt of this change (contract §8): on final records and resolutions,
    /// made once when the change is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

impl Record {
    /// An `unknown` the cashier has not resolved yet: it blocks its terminal, is kept past
    /// retention and is listed first.
    pub fn is_unresolved(&self) -> bool {
        self.state == State::Unknown && self.resolution.is_none()
    }

    /// Room for the record's JSON, so serializing it seldom regrows the buffer: ~250 bytes
    /// before the final state, then the receipt and the answer frame (counted twice: the
    /// result's other fields are about as long).
    pub fn json_size_hint(&self) -> usize {
        let raw = self.result.as_ref().and_then(|r| r.raw.as_ref());
        let receipt = self.receipt.as_ref();
        384 + receipt.map_or(0, String::len) + 2 * raw.map_or(0, String::len)
    }

    /// The record as a display sees it (contract §7.3, §11): no card, authorization, answer
    /// frame, ticket or receipt; the state, amounts and labels stay.
    pub fn redacted(&self) -> Record {
        let mut record = self.clone();
        if let Some(result) = &mut record.result {
            result.card = None;
            result.authorization = None;
            result.raw = None;
            result.ticket = Vec::new();
        }
        record.receipt = None;
        record
    }
}

/// Now, as the records carry it: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

/// Formats `at` as the records carry times: RFC 3339, UTC, milliseconds (every change
/// stamps one: written directly, a third of the cost of `time`'s format descriptions).
pub fn format_rfc3339(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let (date, clock) = (at.date(), at.time());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.millisecond()
    )
}

/// Parses a record time; `None` when it is not RFC 3339.
pub fn parse_rfc3339(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// A 1.00 EUR card debit `id` of till `till-1` on terminal `tpe-1` in `state`, for the
/// unit tests of the modules that handle records.
#[cfg(test)]
pub(crate) fn sample(id: &str, state: State) -> Record {
    Record {
        id: id.into(),
        till: "till-1".into(),
        terminal: "tpe-1".into(),
        amount: 100,
        currency: "EUR".into(),
        action: crate::protocol::Action::Debit,
        method: crate::protocol::Method::Card,
        refund_of: None,
        confirm_duplicate: false,
        state,
        result: None,
        resolution: None,
        created_at: String::new(),
        updated_at: String::new(),
        seq: 0,
        receipt: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_with_milliseconds() {
        let at = time::macros::datetime!(2026-03-01 10:20:30.456 UTC);
        let text = format_rfc3339(at);
        assert_eq!(text, "2026-03-01T10:20:30.456Z");
        assert_eq!(parse_rfc3339(&text), Some(at));
        // Padded, cut (not rounded) to milliseconds, and in UTC whatever the offset.
        let early = time::macros::datetime!(0999-01-02 03:04:05.0069 +02:00);
        assert_eq!(format_rfc3339(early), "0999-01-02T01:04:05.006Z");
    }

    #[test]
    fn state_names_are_the_wire_names() {
        for state in [State::Accepted, State::WaitingCard, State::NotSent] {
            let wire = serde_json::to_string(&state).unwrap();
            assert_eq!(wire.trim_matches('"'), state.as_str());
        }
    }

    #[test]
    fn unknown_outcomes_carry_reason_code_detail_and_raw() {
        let outcome = Outcome::Unknown {
            reason: crate::terminal::UnknownReason::Mismatch,
            detail: "CB differs".into(),
            raw: Some("AE00210".into()),
        };
        assert_eq!(State::from(&outcome), State::Unknown);
        let result = TxResult::from(outcome);
        assert_eq!(result.reason.as_deref(), Some("mismatch"));
        assert_eq!(result.detail.as_deref(), Some("CB differs"));
        assert_eq!(result.raw.as_deref(), Some("AE00210"));
    }

    #[test]
    fn answers_keep_af_label_and_contract_and_drop_an_empty_card() {
        let answer = Answer {
            ae: "01".into(),
            af: Some("04".into()),
            reason: Some("card refused".into()),
            label: Some("REFUS".into()),
            card: Card::default(),
            authorization: None,
            contract: Some("4242424".into()),
            approved_amount: None,
            partial: false,
            ticket: Vec::new(),
            raw: "raw".into(),
        };
        let outcome = Outcome::Declined(answer);
        assert_eq!(State::from(&outcome), State::Declined);
        let result = TxResult::from(outcome);
        assert_eq!(
            (result.af.as_deref(), result.label.as_deref()),
            (Some("04"), Some("REFUS"))
        );
        assert_eq!(result.contract.as_deref(), Some("4242424"));
        assert!(result.card.is_none());
    }

    #[test]
    fn a_redacted_record_keeps_the_outcome_and_drops_the_card_data() {
        let mut record = sample("a", State::Approved);
        record.receipt = Some("jws".into());
        record.result = Some(TxResult {
            ae: Some("10".into()),
            label: Some("ACCEPTE".into()),
            card: Some(Card {
                pan: Some("497010######0001".into()),
                ..Card::default()
            }),
            authorization: Some("123456".into()),
            approved_amount: Some(100),
            ticket: vec![Ticket {
                kind: None,
                text: "CB".into(),
            }],
            raw: Some("AE0210".into()),
            ..TxResult::default()
        });
        let shown = serde_json::to_value(record.redacted()).unwrap();
        assert_eq!(
            shown["result"],
            serde_json::json!({"ae": "10", "label": "ACCEPTE", "approved_amount": 100})
        );
        assert!(shown.get("receipt").is_none());
        assert_eq!(
            (shown["id"].as_str(), shown["seq"].as_u64()),
            (Some("a"), Some(0))
        );
    }

    #[test]
    fn only_unknown_and_the_three_others_are_final() {
        assert!(State::Unknown.is_final() && State::NotSent.is_final());
        assert!(!State::Sent.is_final() && !State::WaitingCard.is_final());
    }
}
