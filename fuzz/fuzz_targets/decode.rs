//! Feeds arbitrary bytes, in arbitrary chunks, to the answer reader: it must never panic,
//! a whole decode must agree with the chunked one, and whole fields re-encode to the bytes
//! they came from (nothing is lost or invented by the decoder).
#![no_main]

use caisse_ap_relay::protocol::fields::decode;
use caisse_ap_relay::protocol::AnswerReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(bytes.len());
    let mut reader = AnswerReader::default();
    let chunked = reader
        .push(&bytes[..cut])
        .and_then(|_| reader.push(&bytes[cut..]));
    let whole = decode(bytes);
    assert_eq!(chunked.is_err(), whole.is_err());
    if let Ok(Some(messages)) = whole {
        let encoded: Vec<u8> = messages.iter().flat_map(|m| m.encode()).collect();
        assert_eq!(encoded, bytes);
    }
});
