//! Parses arbitrary text as a browser's WebSocket message, then validates a `pay` as the
//! engine does: never a panic, every refusal a `bad_request` with a message, and every
//! accepted payment encodes into a request frame that decodes back to the same amount.
#![no_main]

use caisse_ap_relay::engine::ErrorCode;
use caisse_ap_relay::protocol::fields::decode;
use caisse_ap_relay::protocol::PaymentRequest;
use caisse_ap_relay::web::messages::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let message = match ClientMessage::parse(text) {
        Ok(message) => message,
        Err(error) => {
            assert_eq!(error.code, ErrorCode::BadRequest);
            assert!(!error.message.is_empty());
            return;
        }
    };
    let ClientMessage::Pay(order) = message else {
        return;
    };
    let Ok(payment) = order.validate() else {
        return;
    };
    let request = PaymentRequest::new(
        payment.amount,
        payment.currency,
        payment.action,
        payment.method,
        "01",
    )
    .expect("a validated payment makes a valid request");
    let frame = request
        .to_message()
        .expect("a valid request encodes")
        .encode();
    let messages = decode(&frame).expect("our frame decodes").expect("whole");
    let cb = messages[0].get("CB").expect("the frame carries CB");
    assert_eq!(cb.parse::<u64>().ok(), Some(payment.amount));
});
