//! Classifies arbitrary answers to a payment request: the first byte picks the request
//! (amount, action, method), the rest is the terminal's answer. Whatever the bytes, the
//! verdict must be consistent: an approval never exceeds the amount asked, `partial` means
//! exactly "less than asked", and only AE=10 approves.
#![no_main]

use caisse_ap_relay::protocol::answer::{identify, interpret, Verdict};
use caisse_ap_relay::protocol::{Action, AnswerReader, Currency, Method, PaymentRequest};
use libfuzzer_sys::fuzz_target;

/// Amounts at the edges of the contract's range, and the spec's examples.
const AMOUNTS: [u64; 8] = [2500, 5, 1, 10, 1000, 3000, 999_999_999_999, 100_000];

fn request(selector: u8) -> PaymentRequest {
    let currency = Currency::parse(if selector & 0x40 == 0 { "EUR" } else { "XPF" }).unwrap();
    let action = if selector & 1 == 0 {
        Action::Debit
    } else {
        Action::Refund
    };
    let method = if selector & 2 == 0 {
        Method::Card
    } else {
        Method::Check
    };
    let amount = AMOUNTS[usize::from(selector >> 2) % AMOUNTS.len()];
    PaymentRequest::new(amount, currency, action, method, "01").unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, answer)) = data.split_first() else {
        return;
    };
    let request = request(selector);
    let mut reader = AnswerReader::default();
    if reader.push(answer).is_err() {
        return;
    }
    let Some(message) = reader.answer() else {
        return;
    };
    let _ = identify(message);
    match interpret(&request, message, &reader.raw()) {
        Verdict::Approved(answer) => {
            assert_eq!(answer.ae, "10");
            let approved = answer
                .approved_amount
                .expect("an approval names its amount");
            assert!((1..=request.amount).contains(&approved));
            assert_eq!(answer.partial, approved < request.amount);
        }
        Verdict::Declined(answer) => assert_eq!(answer.ae, "01"),
        Verdict::Invalid(detail) | Verdict::Mismatch(detail) => assert!(!detail.is_empty()),
    }
});
