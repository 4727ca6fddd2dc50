//! caisse-ap-relay: a LAN agent between browser point-of-sale pages and Caisse-AP over IP
//! payment terminals.
//!
//! Architecture, from the wire inwards:
//!
//! - [`protocol`]: the pure (sans-IO) Caisse-AP codec: TLV fields, incremental decoding,
//!   payment requests, answer classification, code tables. No tokio here.
//! - [`terminal`]: the driver that runs one transaction over TCP: connect, send, read until
//!   complete, named timeouts, progress events, and the outcome (`not_sent` vs `unknown`).
//! - [`discover`]: finding terminals on the LAN: a bounded TCP sweep of a private subnet,
//!   then one identification at a time (`discover`, the operator page).
//! - [`sim`]: a terminal simulator with every outcome and fault mode, for `simulate`, the demo
//!   and the tests.
//! - [`engine`]: transactions: registry of terminals (one at a time each), state machine,
//!   idempotency, the durable journal, the event bus that fans progress out to screens, and the
//!   Prometheus metrics counted as transactions end (served at `/metrics`).
//! - [`web`]: the TLS front: HTTP routes, static pages, WebSocket sessions and wire messages.
//! - [`certs`]: the local CA and the leaf certificate, and the rustls server configuration.
//! - [`receipt`]: signed receipts: the agent's Ed25519 key and the JWS on every final record
//!   and resolution, so a POS backend can trust a result the browser forwards.
//! - [`webhook`]: durable Standard Webhooks deliveries of results to POS backends.
//! - [`access`]: who may connect: static and paired till tokens, rate limits.
//! - [`agent`]: the wiring: config → certificates → journal and engine → TLS front.
//! - [`datadir`]: the data directory's modes and owner.
//! - [`config`]: the TOML configuration validated once into typed values, and the demo default.
//! - [`net`]: client addresses as limits count them (IPv6 per /64), the local ranges.
//! - [`report`]: day totals from the journal, per terminal, method and currency (`report`).
//! - [`bench`]: the benchmark suite (`bench`): the agent as a child process, measured from outside.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The agent's name and version, as `welcome` and the webhooks' `User-Agent` give it.
pub const AGENT: &str = concat!("caisse-ap-relay/", env!("CARGO_PKG_VERSION"));

pub mod access;
pub mod agent;
pub mod bench;
pub mod certs;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod discover;
pub mod engine;
pub mod net;
pub mod protocol;
pub mod receipt;
pub mod report;
pub mod sim;
pub mod terminal;
pub mod web;
pub mod webhook;
