//! The integration tests, built as one test crate: one link of the agent instead of one per
//! file. Each module is one former `tests/NAME.rs`; run one with `cargo test --test suite NAME::`.
//! Shared fixtures stay beside this folder (`tests/common/`, ...) for test files that still
//! build alone: `tests/access_logs.rs` must (its `tracing` capture needs a process to itself),
//! and a new `tests/NAME.rs` does until it is listed here.

#[path = "../browser_support/mod.rs"]
mod browser_support;
#[path = "../common/mod.rs"]
mod common;
#[path = "../fault_kit/mod.rs"]
mod fault_kit;
#[path = "../manual_clock/mod.rs"]
mod manual_clock;

mod access;
mod bench_quick;
mod browser;
mod browser_origin;
mod card_data;
mod certs;
mod cli_pay;
mod client_package;
mod config;
mod crash;
mod discover;
mod driver;
mod faults;
mod flood;
mod hostile;
mod journal;
mod journal_faults;
mod logs;
mod metrics;
mod onboarding;
mod pairing_cli;
mod receipts;
mod relay_guards;
mod relay_http;
mod relay_pairing;
mod relay_payments;
mod relay_restart;
mod relay_serve;
mod relay_sessions;
mod relay_tenders;
mod reload;
mod report;
mod report_live;
mod retention;
mod roles;
mod soak;
mod webhooks;
