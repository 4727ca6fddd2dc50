//! The simulated terminal's tickets: what a terminal that honours `CK` puts in `ZT`.
//!
//! The request's `CK` picks the copies (customer, merchant or both, each in its own `ZT`
//! carrying its own `CK`) and the format (Latin-1 text or HTML). The text is what French
//! terminals print: the application, the masked card, the amount, "DEBIT" or "CREDIT", the
//! authorization, and on failure the reason (e.g. "ABANDON DEBIT").

use crate::protocol::answer::AE_DONE;
use crate::protocol::ticket::encode_zt;
use crate::protocol::{tags, Currency, Field, Message};

/// The customer copy's footer.
const CUSTOMER: &str = "TICKET CLIENT\nA CONSERVER";
/// The merchant copy's footer.
const MERCHANT: &str = "TICKET COMMERCANT";

/// The ZT fields answering `request` with `answer` (none when CK does not ask for them).
pub fn zt_fields(request: &Message, answer: &Message) -> Vec<Field> {
    let Some(ck) = request.get(tags::TICKET_MODE) else {
        return Vec::new();
    };
    let ck = ck.as_bytes();
    if ck.first() != Some(&b'1') {
        return Vec::new();
    }
    let html = ck.get(2) == Some(&b'1');
    let copies: &[(u8, &str)] = match ck.get(1) {
        Some(b'1') => &[(b'1', MERCHANT)],
        Some(b'2') => &[(b'0', CUSTOMER), (b'1', MERCHANT)],
        _ => &[(b'0', CUSTOMER)],
    };
    let body = body(request, answer);
    copies
        .iter()
        .filter_map(|(copy, footer)| {
            let text = format!("{body}\n{footer}");
            let text = if html { to_html(&text) } else { text };
            let ck = format!("1{}{}", char::from(*copy), if html { '1' } else { '0' });
            let value = encode_zt(&ck, &[&text])?;
            Field::new(tags::TICKET, value).ok()
        })
        .collect()
}

/// The lines both copies share.
fn body(request: &Message, answer: &Message) -> String {
    let application = match answer.get(tags::APPLICATION) {
        Some("00C") => "CHEQUE",
        Some("00V") => "CHEQUES-VACANCES ANCV",
        _ => "CARTE BANCAIRE",
    };
    let action = match request.get(tags::ACTION) {
        Some("1") => "CREDIT",
        _ => "DEBIT",
    };
    let mut lines = vec![
        application.to_string(),
        "SIMULATEUR CAISSE-AP".to_string(),
        now(),
    ];
    lines.extend(answer.get(tags::AID).map(str::to_string));
    lines.extend(answer.get(tags::PAN).map(str::to_string));
    lines.push(format!("{action} {}", amount(request, answer)));
    if answer.get(tags::STATUS) == Some(AE_DONE) {
        if let Some(auth) = answer.get(tags::AUTHORIZATION) {
            lines.push(format!("AUTO {auth}"));
        }
        lines.push("TRANSACTION ACCEPTEE".to_string());
    } else {
        lines.push(failure(answer.get(tags::REASON), action));
    }
    lines.join("\n")
}

/// The amount as printed: "25,00 EUR".
fn amount(request: &Message, answer: &Message) -> String {
    let minor = answer
        .get(tags::AMOUNT)
        .and_then(|cb| cb.parse::<u64>().ok())
        .unwrap_or_default();
    let currency = request.get(tags::CURRENCY).and_then(Currency::parse);
    currency.map_or_else(|| minor.to_string(), |c| c.format(minor).replace('.', ","))
}

fn failure(af: Option<&str>, action: &str) -> String {
    match af {
        Some("06" | "11") => format!("ABANDON {action}"),
        Some("04") => "TRANSACTION REFUSEE".to_string(),
        _ => "OPERATION NON EFFECTUEE".to_string(),
    }
}

fn now() -> String {
    let format = time::macros::format_description!(
        "LE [day]/[month]/[year repr:last_two] A [hour]:[minute]:[second]"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

fn to_html(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(|l| format!("<p>{l}</p>")).collect();
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fields::decode;
    use crate::protocol::ticket::decode_tickets;
    use crate::protocol::{TicketKind, TicketRequest};

    fn parse(frame: &str) -> Message {
        decode(frame.as_bytes()).unwrap().unwrap().remove(0)
    }

    const REQUEST: &str = "CZ0040300CJ012012345678901CA00201CB0042500CD0010CE003978BA0010";
    const APPROVED: &str =
        "CZ0040300CA00201CB0070002500CD0010CE003978AE00210CC003001AC006632145AA016497010######1234";
    const ABANDONED: &str = "CZ0040300CA00201CB0070002500CD0010CE003978AE00201AF00211";

    fn tickets(ck: &str, answer: &str) -> Vec<crate::protocol::Ticket> {
        let request = parse(&format!("{REQUEST}CK003{ck}"));
        let fields = zt_fields(&request, &parse(answer));
        let values: Vec<&str> = fields.iter().map(Field::value).collect();
        let asked = None::<TicketRequest>;
        decode_tickets(&values, asked).unwrap()
    }

    #[test]
    fn no_ck_no_ticket() {
        assert!(zt_fields(&parse(REQUEST), &parse(APPROVED)).is_empty());
        let refused = parse(&format!("{REQUEST}CK003000"));
        assert!(zt_fields(&refused, &parse(APPROVED)).is_empty());
    }

    #[test]
    fn both_copies_of_an_approved_payment() {
        let both = tickets("120", APPROVED);
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].kind, Some(TicketKind::Customer));
        assert_eq!(both[1].kind, Some(TicketKind::Merchant));
        let text = &both[0].text;
        assert!(text.contains("DEBIT 25,00 EUR"), "{text}");
        assert!(text.contains("AUTO 632145") && text.contains("497010######1234"));
    }

    #[test]
    fn a_failed_payment_has_a_failure_ticket() {
        let one = tickets("110", ABANDONED);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].kind, Some(TicketKind::Merchant));
        assert!(one[0].text.contains("ABANDON DEBIT"), "{}", one[0].text);
    }

    #[test]
    fn html_tickets_when_asked() {
        let request = parse(&format!("{REQUEST}CK003101"));
        let fields = zt_fields(&request, &parse(APPROVED));
        let asked = None::<TicketRequest>;
        let values: Vec<&str> = fields.iter().map(Field::value).collect();
        assert!(decode_tickets(&values, asked).is_err());
    }
}
