//! Terminal tickets: the `CK` value a request sends and the decoding of the answer's `ZT`.
//!
//! `CK` is three characters: `1` (return the ticket), which copy (`0` customer, `1`
//! merchant, `2` both), the format (`0` Latin-1 text, `1` HTML, each in base64). A `ZT`
//! answer field is itself TLV: `CK` (the same value, maybe) then one or more `AK`, each the
//! base64 of a ticket. How "both" comes back is not documented: two `ZT` or two `AK` in one
//! are both accepted. Decoding is pure and total (fuzzed): a ticket that cannot be read is a
//! [`TicketError`], never a panic, and never the payment's business (the caller logs it).
//! Only the cashier's record carries tickets; displays and receipts leave them out.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::fields::{decode_field, latin1, to_latin1, Field};
use super::tags;

/// Which copy a terminal is asked to return (per terminal `ticket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketCopy {
    /// The customer's ticket.
    Customer,
    /// The merchant's ticket.
    Merchant,
    /// Both tickets.
    Both,
}

/// The format asked for (per terminal `ticket_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketFormat {
    /// Latin-1 text; an HTML ticket is refused.
    #[default]
    Text,
    /// HTML, sanitised before it reaches a record.
    Html,
}

/// What a request asks for: the copy and the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketRequest {
    /// Which copy.
    pub copy: TicketCopy,
    /// Which format.
    pub format: TicketFormat,
}

impl TicketRequest {
    /// The `CK` value: `1`, the copy, the format.
    pub fn ck(&self) -> String {
        let copy = match self.copy {
            TicketCopy::Customer => '0',
            TicketCopy::Merchant => '1',
            TicketCopy::Both => '2',
        };
        let format = match self.format {
            TicketFormat::Text => '0',
            TicketFormat::Html => '1',
        };
        format!("1{copy}{format}")
    }
}

/// Whose ticket it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// The customer's copy.
    Customer,
    /// The merchant's copy.
    Merchant,
}

/// One decoded ticket: `{"kind": "customer"|"merchant"|null, "text": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Whose copy, when the answer or the text tells; `null` otherwise.
    pub kind: Option<TicketKind>,
    /// UTF-8, `\n` line ends; sanitised HTML when the format is HTML.
    pub text: String,
}

/// A `ZT` that does not give a readable ticket; the payment's result stands without it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TicketError {
    /// The `ZT` value is not whole TLV fields.
    #[error("ZT is not a run of fields")]
    Layout,
    /// A `ZT` holds no `AK`.
    #[error("ZT holds no AK")]
    NoText,
    /// An `AK` is not base64.
    #[error("AK is not base64")]
    Base64,
    /// An HTML ticket while `ticket_format` is text.
    #[error("HTML ticket refused: set ticket_format = \"html\" to accept it")]
    Html,
}

/// Base64 as terminals write it: standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes every `ZT` value of an answer into tickets (empty tickets left out).
/// `asked` is what the request asked for; `None` reads an unasked ticket as text.
pub fn decode_tickets(
    zt_values: &[&str],
    asked: Option<TicketRequest>,
) -> Result<Vec<Ticket>, TicketError> {
    let mut tickets = Vec::new();
    for value in zt_values {
        decode_zt(value, asked, &mut tickets)?;
    }
    Ok(tickets)
}

fn decode_zt(
    value: &str,
    asked: Option<TicketRequest>,
    out: &mut Vec<Ticket>,
) -> Result<(), TicketError> {
    let inner = inner_fields(value)?;
    let ck = inner.iter().find(|f| f.tag() == tags::TICKET_MODE);
    let ck = ck.map(|f| f.value().as_bytes()).unwrap_or_default();
    let html_declared = ck.get(2) == Some(&b'1');
    let format = asked.map(|a| a.format).unwrap_or_default();
    let texts: Vec<&Field> = inner
        .iter()
        .filter(|f| f.tag() == tags::TICKET_TEXT)
        .collect();
    if texts.is_empty() {
        return Err(TicketError::NoText);
    }
    for field in texts {
        let text = readable(field.value(), html_declared, format)?;
        if !text.trim().is_empty() {
            let kind = kind(ck.get(1).copied(), asked, &text);
            out.push(Ticket { kind, text });
        }
    }
    Ok(())
}

/// The fields nested in a `ZT` value, which must be whole fields.
fn inner_fields(value: &str) -> Result<Vec<Field>, TicketError> {
    let bytes = to_latin1(value);
    let mut rest = &bytes[..];
    let mut fields = Vec::new();
    while !rest.is_empty() {
        match decode_field(rest) {
            Ok(Some((field, used))) => {
                fields.push(field);
                rest = &rest[used..];
            }
            _ => return Err(TicketError::Layout),
        }
    }
    Ok(fields)
}

/// An `AK` value as text: base64-decoded, HTML refused or sanitised, line ends `\n`.
fn readable(ak: &str, html_declared: bool, format: TicketFormat) -> Result<String, TicketError> {
    let compact: String = ak.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = BASE64.decode(compact).map_err(|_| TicketError::Base64)?;
    let text = charset(&bytes);
    let text = match format {
        TicketFormat::Html => ammonia::clean(&text),
        TicketFormat::Text if html_declared || looks_like_html(&text) => {
            return Err(TicketError::Html)
        }
        TicketFormat::Text => text,
    };
    Ok(plain_lines(&text))
}

/// Latin-1 as the protocol says; UTF-8 when the bytes are valid UTF-8 beyond ASCII (some
/// Android terminals), since Latin-1 text almost never is.
fn charset(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn looks_like_html(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "</",
        "<br",
        "<html",
        "<!doctype",
        "<p>",
        "<div",
        "<table",
        "<img",
        "<script",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
}

/// `\r\n` and lone `\r` become `\n`; other control characters (printer escapes) go.
fn plain_lines(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Whose ticket: the `ZT`'s own `CK`, else the copy asked for, else what the text says.
fn kind(ck_copy: Option<u8>, asked: Option<TicketRequest>, text: &str) -> Option<TicketKind> {
    match (ck_copy, asked.map(|a| a.copy)) {
        (Some(b'0'), _) => Some(TicketKind::Customer),
        (Some(b'1'), _) => Some(TicketKind::Merchant),
        (Some(b'2'), _) | (_, Some(TicketCopy::Both) | None) => kind_from_text(text),
        (_, Some(TicketCopy::Customer)) => Some(TicketKind::Customer),
        (_, Some(TicketCopy::Merchant)) => Some(TicketKind::Merchant),
    }
}

/// French terminals print "TICKET CLIENT" / "A CONSERVER" or "TICKET COMMERCANT".
fn kind_from_text(text: &str) -> Option<TicketKind> {
    let upper = text.to_uppercase();
    let merchant = upper.contains("COMMERCANT") || upper.contains("COMMERÇANT");
    let customer = upper.contains("CLIENT") || upper.contains("A CONSERVER");
    match (customer, merchant) {
        (true, false) => Some(TicketKind::Customer),
        (false, true) => Some(TicketKind::Merchant),
        _ => None,
    }
}

/// Builds a `ZT` value (nested `CK` and one `AK` per text), as a terminal would send it.
/// Used by the simulator and tests; `None` when a part exceeds a field's 999 characters.
pub fn encode_zt(ck: &str, texts: &[&str]) -> Option<String> {
    let mut out = Vec::new();
    Field::new(tags::TICKET_MODE, ck).ok()?.encode(&mut out);
    for text in texts {
        let ak = BASE64.encode(to_latin1(text));
        Field::new(tags::TICKET_TEXT, ak).ok()?.encode(&mut out);
    }
    let value = latin1(&out);
    (value.len() <= 999).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: &str = "CARTE BANCAIRE\nTICKET CLIENT\nMONTANT 25,00 EUR\nA CONSERVER";
    const MERCHANT: &str = "CARTE BANCAIRE\nTICKET COMMERCANT\nMONTANT 25,00 EUR";

    fn ask(copy: TicketCopy) -> Option<TicketRequest> {
        Some(TicketRequest {
            copy,
            format: TicketFormat::Text,
        })
    }

    #[test]
    fn ck_spells_copy_and_format() {
        let mut r = TicketRequest {
            copy: TicketCopy::Customer,
            format: TicketFormat::Text,
        };
        assert_eq!(r.ck(), "100");
        r.copy = TicketCopy::Merchant;
        assert_eq!(r.ck(), "110");
        r.copy = TicketCopy::Both;
        r.format = TicketFormat::Html;
        assert_eq!(r.ck(), "121");
    }

    #[test]
    fn a_hand_made_zt_decodes_to_latin1_text() {
        // "DÉBIT" in Latin-1 is 44 C9 42 49 54: base64 "RMlCSVQ=".
        let zt = "CK003100AK008RMlCSVQ=";
        let tickets = decode_tickets(&[zt], ask(TicketCopy::Customer)).unwrap();
        assert_eq!(tickets.len(), 1);
        assert_eq!(tickets[0].text, "DÉBIT");
        assert_eq!(tickets[0].kind, Some(TicketKind::Customer));
    }

    #[test]
    fn both_copies_decode_from_two_zt_or_two_ak() {
        let two_zt = [
            encode_zt("100", &[CUSTOMER]).unwrap(),
            encode_zt("110", &[MERCHANT]).unwrap(),
        ];
        let refs: Vec<&str> = two_zt.iter().map(String::as_str).collect();
        let a = decode_tickets(&refs, ask(TicketCopy::Both)).unwrap();
        let two_ak = encode_zt("120", &[CUSTOMER, MERCHANT]).unwrap();
        let b = decode_tickets(&[&two_ak], ask(TicketCopy::Both)).unwrap();
        for tickets in [a, b] {
            assert_eq!(tickets.len(), 2);
            assert_eq!(tickets[0].kind, Some(TicketKind::Customer));
            assert_eq!(tickets[0].text, CUSTOMER);
            assert_eq!(tickets[1].kind, Some(TicketKind::Merchant));
        }
    }

    #[test]
    fn kind_is_null_when_nothing_tells() {
        let zt = encode_zt("120", &["ABANDON DEBIT"]).unwrap();
        let tickets = decode_tickets(&[&zt], ask(TicketCopy::Both)).unwrap();
        assert_eq!(tickets[0].kind, None);
        let json = serde_json::to_value(&tickets[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": null, "text": "ABANDON DEBIT"})
        );
    }

    #[test]
    fn line_ends_and_printer_escapes_are_normalised() {
        let zt = encode_zt("100", &["A\r\nB\rC\u{1b}@\n\n"]).unwrap();
        let tickets = decode_tickets(&[&zt], None).unwrap();
        assert_eq!(tickets[0].text, "A\nB\nC@");
    }

    #[test]
    fn utf8_tickets_are_read_as_utf8() {
        let ak = BASE64.encode("Montant 25,00 €".as_bytes());
        let zt = format!("CK003100AK{:03}{ak}", ak.len());
        let tickets = decode_tickets(&[&zt], None).unwrap();
        assert_eq!(tickets[0].text, "Montant 25,00 €");
    }

    #[test]
    fn html_is_refused_in_text_mode_and_sanitised_in_html_mode() {
        let html = "<p>TICKET CLIENT</p><script>alert(1)</script><img src=x onerror=alert(1)>";
        let zt = encode_zt("101", &[html]).unwrap();
        assert_eq!(
            decode_tickets(&[&zt], ask(TicketCopy::Customer)),
            Err(TicketError::Html)
        );
        let undeclared = encode_zt("100", &[html]).unwrap();
        assert_eq!(decode_tickets(&[&undeclared], None), Err(TicketError::Html));
        let html_mode = Some(TicketRequest {
            copy: TicketCopy::Customer,
            format: TicketFormat::Html,
        });
        let tickets = decode_tickets(&[&zt], html_mode).unwrap();
        let text = &tickets[0].text;
        assert!(text.contains("<p>TICKET CLIENT</p>"), "{text}");
        assert!(
            !text.contains("script") && !text.contains("onerror"),
            "{text}"
        );
    }

    #[test]
    fn broken_zt_values_are_typed_errors() {
        assert_eq!(decode_tickets(&["CK0031"], None), Err(TicketError::Layout));
        assert_eq!(decode_tickets(&["garbage"], None), Err(TicketError::Layout));
        assert_eq!(
            decode_tickets(&["CK003100"], None),
            Err(TicketError::NoText)
        );
        assert_eq!(
            decode_tickets(&["CK003100AK004!!!!"], None),
            Err(TicketError::Base64)
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_zt_values_give_clean_text_or_an_error(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            html in proptest::prelude::any::<bool>(),
        ) {
            let format = if html { TicketFormat::Html } else { TicketFormat::Text };
            let asked = Some(TicketRequest { copy: TicketCopy::Both, format });
            // Half the cases are well-formed ZT around arbitrary ticket bytes.
            let wrapped = encode_zt("120", &[&latin1(&bytes)]).unwrap_or_default();
            for value in [latin1(&bytes), wrapped] {
                if let Ok(tickets) = decode_tickets(&[&value], asked) {
                    for ticket in tickets {
                        proptest::prop_assert!(!ticket.text.trim().is_empty());
                        let clean = |c: char| c == '\n' || c == '\t' || !c.is_control();
                        proptest::prop_assert!(ticket.text.chars().all(clean));
                    }
                }
            }
        }
    }

    #[test]
    fn oversize_tickets_are_not_encoded() {
        assert!(encode_zt("100", &[&"X".repeat(800)]).is_none());
    }
}
