//! The Caisse-AP over IP protocol, pure and sans-IO: no sockets, no clocks, no tokio.
//!
//! - [`fields`]: fields and messages, encoding, the incremental decoder and its limits.
//! - [`request`]: payment and identification requests.
//! - [`answer`]: the completion rule ([`AnswerReader`]), answer decoding and the echo check.
//! - [`codes`]: AF, CC and CI code tables.
//! - [`tags`]: the tag table: every tag read or written, documented once.
//! - [`ticket`]: the `CK` request value and the decoding of `ZT` tickets.
//! - [`currency`]: the ISO 4217 table and the human amount parser.
//! - [`mask`]: card data minimised (PAN, expiry) before it goes anywhere.
//!
//! The terminal driver ([`crate::terminal`]) does the I/O around these.

use serde::{Deserialize, Serialize};

pub mod answer;
mod codes;
mod currency;
pub mod fields;
pub(crate) mod mask;
pub(crate) mod request;
pub(crate) mod tags;
pub mod ticket;

pub use answer::{decides, interpret, AnswerReader, Step, Verdict};
pub use currency::{parse_amount, AmountError, MAX_AMOUNT};
pub use fields::{DecodeError, Decoder, Field, Message};
pub use request::RequestError;
pub use ticket::{Ticket, TicketCopy, TicketFormat, TicketKind, TicketRequest};

/// What the cashier asks for: a debit (sale) or a refund (credit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A sale: CD "0".
    #[default]
    Debit,
    /// A refund: CD "1".
    Refund,
}

/// How the customer pays.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Any card: no CC in the request.
    #[default]
    Card,
    /// Cheque: CC "00C".
    Check,
    /// ANCV chèques-vacances: CC "00V".
    Ancv,
}

impl Method {
    /// Every method, the default (card) first.
    pub const ALL: [Method; 3] = [Method::Card, Method::Check, Method::Ancv];

    /// The CC value the request carries: none for card.
    pub fn cc(self) -> Option<&'static str> {
        match self {
            Method::Card => None,
            Method::Check => Some("00C"),
            Method::Ancv => Some("00V"),
        }
    }

    /// The machine name, as in the contract and the journal.
    pub fn code(self) -> &'static str {
        match self {
            Method::Card => "card",
            Method::Check => "check",
            Method::Ancv => "ancv",
        }
    }
}

/// An ISO 4217 currency from the embedded table (see [`currency`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    /// Alphabetic code, e.g. "EUR".
    pub alpha: &'static str,
    /// Numeric code, e.g. 978.
    pub numeric: u16,
    /// Minor-unit exponent, e.g. 2.
    pub exponent: u8,
}

/// A validated payment request, ready to be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Amount in minor units, 1..=999_999_999_999.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// Debit or refund.
    pub action: Action,
    /// Card or cheque.
    pub method: Method,
    /// Caisse-AP tag CA: two digits.
    pub pos_number: String,
    /// Ask the terminal for its ticket (CK); `None` (the default) sends no CK.
    pub ticket: Option<TicketRequest>,
    /// Reference sent in CF and checked in the answer (≤ 32 characters); `None` sends no CF.
    pub reference: Option<String>,
}

/// Card details decoded from an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Application name from CC, e.g. "CB sans contact".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Entry mode from CI, e.g. "contactless".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_mode: Option<String>,
    /// PAN from AA, masked ([`mask::mask_pan`]). The expiry (AB) is never kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
    /// AID from AI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aid: Option<String>,
}

/// A terminal's final answer, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// AE status ("10", "01").
    pub ae: String,
    /// AF reason code (first two characters), when present.
    pub af: Option<String>,
    /// English reason for AF.
    pub reason: Option<String>,
    /// French label for AF, as terminals print it.
    pub label: Option<String>,
    /// Card fields.
    pub card: Card,
    /// Authorization number (AC).
    pub authorization: Option<String>,
    /// Merchant contract (CG).
    pub contract: Option<String>,
    /// Approved amount in minor units (from CB), when present.
    pub approved_amount: Option<u64>,
    /// The terminal approved less than requested.
    pub partial: bool,
    /// The terminal's tickets (ZT), decoded; empty when none came or none could be read.
    pub ticket: Vec<Ticket>,
    /// The answer frame as received (Latin-1 decoded), tickets (ZT) dropped.
    pub raw: String,
}
