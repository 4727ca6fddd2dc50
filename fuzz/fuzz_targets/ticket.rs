//! Decodes arbitrary `ZT` values into tickets: the first byte picks what the request asked
//! (copy and format, or nothing), the rest is split at NUL bytes into `ZT` values (Latin-1).
//! Whatever the bytes: no panic, and every ticket is clean text: `\n` line ends, no other
//! control character, not empty; an HTML ticket comes out sanitised (no script).
#![no_main]

use caisse_ap_relay::protocol::fields::latin1;
use caisse_ap_relay::protocol::ticket::decode_tickets;
use caisse_ap_relay::protocol::{TicketCopy, TicketFormat, TicketRequest};
use libfuzzer_sys::fuzz_target;

fn asked(selector: u8) -> Option<TicketRequest> {
    let copy = match selector % 4 {
        0 => return None,
        1 => TicketCopy::Customer,
        2 => TicketCopy::Merchant,
        _ => TicketCopy::Both,
    };
    let format = if selector & 4 == 0 {
        TicketFormat::Text
    } else {
        TicketFormat::Html
    };
    Some(TicketRequest { copy, format })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let asked = asked(selector);
    let values: Vec<String> = rest.split(|&b| b == 0).map(latin1).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let Ok(tickets) = decode_tickets(&values, asked) else {
        return;
    };
    for ticket in tickets {
        let text = &ticket.text;
        assert!(!text.trim().is_empty());
        assert!(text.chars().all(|c| c == '\n' || c == '\t' || !c.is_control()));
        if asked.is_some_and(|a| a.format == TicketFormat::Html) {
            assert!(!text.to_ascii_lowercase().contains("<script"), "{text}");
        }
    }
});
