//! Codec micro-benchmarks (criterion): encoding a typical payment request and decoding +
//! judging a typical approved answer, both from the examples of caisse-ap.md.
//! Run with `cargo bench --bench codec`.

use std::hint::black_box;

use caisse_ap_relay::protocol::{
    interpret, Action, AnswerReader, Currency, Method, PaymentRequest, Step, Verdict,
};
use criterion::{criterion_group, criterion_main, Criterion};

/// Approved contact card answer to a 25.00 EUR debit (caisse-ap.md, "Example frames").
const APPROVED: &[u8] = b"CZ0040300CJ012012345678901CA00201CE003978CD0010CB0070002500AE00210CC003001CI0011AC006632145AA016497010######1234AI014A0000000421010AB0042712CG006424242";

fn request() -> PaymentRequest {
    let eur = Currency::parse("EUR").expect("EUR");
    PaymentRequest::new(2500, eur, Action::Debit, Method::Card, "01").expect("valid")
}

fn encode(c: &mut Criterion) {
    let request = request();
    c.bench_function("encode debit request", |b| {
        b.iter(|| black_box(&request).to_message().expect("valid").encode())
    });
}

fn decode_and_judge(c: &mut Criterion) {
    let request = request();
    c.bench_function("decode + judge approved answer", |b| {
        b.iter(|| {
            let mut reader = AnswerReader::default();
            let step = reader.push(black_box(APPROVED)).expect("valid answer");
            assert_eq!(step, Step::Complete);
            let answer = reader.answer().expect("complete");
            let verdict = interpret(&request, answer, &reader.raw());
            assert!(matches!(verdict, Verdict::Approved(_)));
            verdict
        })
    });
}

criterion_group!(codec, encode, decode_and_judge);
criterion_main!(codec);
