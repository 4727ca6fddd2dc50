//! Feeds arbitrary bytes, in arbitrary chunks, to the answer reader: it must never panic,
//! and a whole decode must agree with the chunked one.
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
    assert_eq!(chunked.is_err(), decode(bytes).is_err());
});
