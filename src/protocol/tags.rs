//! The Caisse-AP tags this project reads or writes, one documented constant each.
//!
//! Every module that builds or reads fields (requests, answers, masking, tickets, the
//! simulator) names tags through this table, so what a tag means is written once. Sources
//! and their disagreements are in `docs/protocol.md` and the spec's `caisse-ap.md`.

/// CZ: protocol version; opens every message ("0300", "0301", "0320").
pub const VERSION: &str = "CZ";
/// CJ: POS protocol identifier; informative, never checked in answers.
pub const POS_ID: &str = "CJ";
/// CA: POS (till) number, two digits; echoed.
pub const POS_NUMBER: &str = "CA";
/// CB: amount in minor units, at least two digits; echoed, maybe zero-padded.
pub const AMOUNT: &str = "CB";
/// CD: action ("0" debit, "1" refund, "I" identification); echoed.
pub const ACTION: &str = "CD";
/// CE: ISO 4217 numeric currency; echoed.
pub const CURRENCY: &str = "CE";
/// CC: requested application in a request ("00C" cheque, "00V" ANCV), used one in an answer.
pub const APPLICATION: &str = "CC";
/// BA: answer mode ("0" at the end of the transaction).
pub const ANSWER_MODE: &str = "BA";
/// CF: private data, echoed back (our reference echo, off by default).
pub const PRIVATE_DATA: &str = "CF";
/// CK: ticket management, three characters (return?, which, format); off by default.
pub const TICKET_MODE: &str = "CK";
/// AE: status ("10" done, "01" not done, "11" request taken into account).
pub const STATUS: &str = "AE";
/// AF: reason when not done; the code is the first two characters.
pub const REASON: &str = "AF";
/// CI: card entry mode.
pub const ENTRY_MODE: &str = "CI";
/// AA: masked card number (PAN).
pub const PAN: &str = "AA";
/// AB: card expiry, YYMM.
pub const EXPIRY: &str = "AB";
/// AC: authorization number.
pub const AUTHORIZATION: &str = "AC";
/// AI: card application identifier (AID).
pub const AID: &str = "AI";
/// CG: merchant contract number.
pub const CONTRACT: &str = "CG";
/// ZT: constructed field carrying a ticket (nested `CK` and `AK` fields); may repeat.
pub const TICKET: &str = "ZT";
/// AK: inside ZT, the ticket itself in base64.
pub const TICKET_TEXT: &str = "AK";
