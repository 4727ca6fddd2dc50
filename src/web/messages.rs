//! The WebSocket wire messages (contract §5): one serde enum per direction.
//!
//! Text frames carry one JSON object each, `type` first. A frame that is not JSON, has no
//! known `type` or lacks a field is answered with an `error` (`bad_request`) whose message
//! says what is wrong; the socket stays open.
//!
//! For the operator page (`/status`; operator tills only, §7.3):
//! client `{"type":"status"}` → `{"type":"status","terminals":[…],"transactions":[…],
//! "tills":[{"name","role","sessions"}],"certificate":{"not_after","fingerprint"},
//! "webhooks":[…]}` where `transactions` holds up to 100 records of the terminals the till
//! may use, unresolved `unknown` first, then newest first, and `certificate` describes the
//! served leaf (`fingerprint` is the local CA's, `null` with a bring-your-own certificate).
//! `error` messages for `terminal_busy` also carry `current`, the id holding the terminal;
//! those for `refund_exceeds` carry `refundable`, what is left to refund (minor units);
//! a `rate_limited` refusal of `discover` carries `retry_after`, the seconds to wait.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Role;
use crate::discover::{self, Answer, Finding};
use crate::engine::record::ResolvedAs;
use crate::engine::{ApiError, ErrorCode, PayOrder, Record, TerminalStatus};

/// The `api` field of `welcome`.
pub const API_VERSION: u32 = 2;

/// Every `type` of [`ClientMessage`], in its order (checked against the enum by a test).
const CLIENT_TYPES: [&str; 10] = [
    "hello",
    "pair",
    "pay",
    "cancel",
    "get",
    "resolve",
    "watch",
    "terminals",
    "status",
    "discover",
];

/// Client → agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Authenticate with a till token.
    Hello {
        /// The till's token (never logged).
        token: String,
    },
    /// Pair with a one-time code.
    Pair {
        /// Eight digits.
        code: String,
    },
    /// Start a transaction.
    Pay(Box<PayOrder>),
    /// Cancel before the request reaches the terminal.
    Cancel {
        /// Transaction id.
        id: String,
    },
    /// The current record of a transaction.
    Get {
        /// Transaction id.
        id: String,
    },
    /// The cashier's decision on an `unknown` transaction.
    Resolve {
        /// Transaction id.
        id: String,
        /// What the ticket says.
        outcome: ResolvedAs,
        /// Free text.
        #[serde(default)]
        note: Option<String>,
    },
    /// Receive every transaction of a terminal.
    Watch {
        /// Terminal name.
        terminal: String,
    },
    /// List the terminals.
    Terminals,
    /// The operator page's overview (operators only).
    Status,
    /// Search the LAN for terminals (contract §11; operators only, one a minute).
    Discover {
        /// Private or loopback IPv4 subnet, at most a /22; default the host's private /24s.
        #[serde(default)]
        subnet: Option<String>,
        /// Caisse-AP port; default 8888.
        #[serde(default)]
        port: Option<u16>,
    },
}

impl ClientMessage {
    /// Parses one text frame; the error is the `bad_request` to answer.
    pub fn parse(text: &str) -> Result<ClientMessage, ApiError> {
        // A valid message in one pass; a refused one is parsed again, as a tree, to say why.
        if let Ok(message) = serde_json::from_str(text) {
            return Ok(message);
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|err| ApiError::bad_request(format!("malformed JSON: {err}")))?;
        let kind = match value.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => return Err(ApiError::bad_request("field `type` must be a string")),
            None if value.is_object() => return Err(ApiError::bad_request("missing field `type`")),
            None => return Err(ApiError::bad_request("a message must be a JSON object")),
        };
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown message type `{kind}`; expected one of: {}",
                CLIENT_TYPES.join(", ")
            )));
        }
        serde_json::from_value(value)
            .map_err(|err| ApiError::bad_request(format!("invalid `{kind}` message: {err}")))
    }
}

/// A till's presence, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TillPresence {
    /// Till name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Open sessions.
    pub sessions: usize,
}

/// The served certificate, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    /// Leaf expiry, RFC 3339.
    pub not_after: String,
    /// SHA-256 of the local CA, when there is one.
    pub fingerprint: Option<String>,
}

/// Agent → client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Authenticated.
    Welcome {
        /// "caisse-ap-relay/VERSION".
        agent: &'static str,
        /// 1.
        api: u32,
        /// Till name.
        till: String,
        /// Its role.
        role: Role,
        /// The terminals it may use.
        terminals: Vec<TerminalStatus>,
    },
    /// A pairing code was exchanged for a token: keep it, then send `hello` with it.
    Paired {
        /// The till's name.
        till: String,
        /// The new till token (256 bits; the agent keeps only its hash).
        token: String,
    },
    /// A record, on every change (shared with the ledger, not copied).
    Transaction(Arc<Record>),
    /// A record sent again rather than changed: the answer to `watch` and the records that
    /// follow `welcome`, with `"replay": true` (§7.1), so a display tells an old result from
    /// a live one without comparing clocks.
    #[serde(rename = "transaction")]
    Replayed(Replayed),
    /// The terminals this till may use.
    Terminals {
        /// Their states.
        terminals: Vec<TerminalStatus>,
    },
    /// A refusal.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What to do.
        message: String,
        /// Transaction id, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// For `terminal_busy`: the id holding the terminal.
        #[serde(skip_serializing_if = "Option::is_none")]
        current: Option<String>,
        /// For `unresolved_unknown`: the transaction to resolve first.
        #[serde(skip_serializing_if = "Option::is_none")]
        pending: Option<String>,
        /// For `possible_duplicate`: the earlier transaction.
        #[serde(skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
        /// For `refund_exceeds`: what may still be refunded, in minor units.
        #[serde(skip_serializing_if = "Option::is_none")]
        refundable: Option<u64>,
        /// For a `rate_limited` `discover`: seconds until the next search is allowed.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// The operator page's overview (extension).
    Status {
        /// Terminals this till may use.
        terminals: Vec<TerminalStatus>,
        /// Recent records, unresolved unknown first.
        transactions: Vec<Arc<Record>>,
        /// Configured tills and their open sessions.
        tills: Vec<TillPresence>,
        /// The served certificate.
        certificate: CertificateInfo,
        /// Each webhook's backlog and last error.
        webhooks: Vec<crate::webhook::WebhookStatus>,
    },
    /// A terminal search started (the immediate answer to `discover`); `discovered` follows.
    Discovering {
        /// The subnets it sweeps.
        subnets: Vec<String>,
        /// The port it tries.
        port: u16,
    },
    /// What a terminal search found (the answer to `discover`, when the sweep ends).
    Discovered {
        /// The subnets swept.
        subnets: Vec<String>,
        /// The port tried.
        port: u16,
        /// Each open port, by address.
        found: Vec<DiscoveredTerminal>,
    },
}

/// One open port a terminal search found, for `discovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredTerminal {
    /// `IP:port`.
    pub address: String,
    /// `terminal` (answered the identification), `refused` (a Caisse-AP answer, not ready),
    /// `no_answer` (open, no Caisse-AP answer) or `configured` (a configured terminal, not
    /// touched).
    pub answer: &'static str,
    /// Protocol version (`terminal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The terminal's CJ identifier (`terminal`), when it sends one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_id: Option<String>,
    /// Why not (`refused`, `no_answer`), in English.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The configured terminal's name (`configured`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A ready-to-paste `[[terminal]]` block (`terminal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
}

impl From<&Finding> for DiscoveredTerminal {
    fn from(finding: &Finding) -> DiscoveredTerminal {
        let mut found = DiscoveredTerminal {
            address: finding.address.to_string(),
            answer: "terminal",
            version: None,
            pos_id: None,
            detail: None,
            name: None,
            block: discover::block(finding),
        };
        match &finding.answer {
            Answer::Terminal(identity) => {
                found.version = Some(identity.version.clone());
                found.pos_id = identity.pos_id.clone();
            }
            Answer::Refused(detail) => {
                (found.answer, found.detail) = ("refused", Some(detail.clone()))
            }
            Answer::NoAnswer(detail) => {
                (found.answer, found.detail) = ("no_answer", Some(detail.clone()))
            }
            Answer::Configured(name) => {
                (found.answer, found.name) = ("configured", Some(name.clone()))
            }
        }
        found
    }
}

/// A record with `"replay": true`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replayed {
    #[serde(flatten)]
    record: Arc<Record>,
    replay: bool,
}

impl ServerMessage {
    /// `record` as a replay (§7.1).
    pub fn replayed(record: Arc<Record>) -> ServerMessage {
        ServerMessage::Replayed(Replayed {
            record,
            replay: true,
        })
    }
}

impl From<ApiError> for ServerMessage {
    fn from(error: ApiError) -> ServerMessage {
        let related = |code| error.related.clone().filter(|_| error.code == code);
        ServerMessage::Error {
            current: related(ErrorCode::TerminalBusy),
            pending: related(ErrorCode::UnresolvedUnknown),
            previous: related(ErrorCode::PossibleDuplicate),
            code: error.code,
            message: error.message,
            id: error.id,
            refundable: error.refundable,
            retry_after: error.retry_after,
        }
    }
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Room for most messages at once (a record before its final state: ~250 bytes; a
        // final one is sized by its hint), so the text is seldom regrown on the way;
        // serialising these types cannot fail.
        let room = match self {
            ServerMessage::Transaction(record) => record.json_size_hint() + 32,
            _ => 512,
        };
        let mut json = Vec::with_capacity(room);
        match serde_json::to_writer(&mut json, self) {
            Ok(()) => String::from_utf8(json).unwrap_or_else(|_| String::from("{}")),
            Err(_) => String::from("{}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> String {
        let error = ClientMessage::parse(text).unwrap_err();
        assert_eq!(error.code, ErrorCode::BadRequest);
        error.message
    }

    #[test]
    fn each_malformed_kind_gets_a_helpful_message() {
        assert!(bad("{nope").starts_with("malformed JSON"));
        assert_eq!(bad("[1]"), "a message must be a JSON object");
        assert_eq!(bad(r#"{"id":"x"}"#), "missing field `type`");
        assert_eq!(bad(r#"{"type":7}"#), "field `type` must be a string");
        assert!(bad(r#"{"type":"dance"}"#).starts_with("unknown message type `dance`"));
        assert!(bad(r#"{"type":"get"}"#).contains("missing field `id`"));
        assert!(bad(r#"{"type":"resolve","id":"a","outcome":"maybe"}"#).contains("maybe"));
    }

    #[test]
    fn client_types_are_the_enums_variants() {
        // serde lists the variants it knows in its unknown-variant error.
        let value = serde_json::json!({"type": "?"});
        let err = serde_json::from_value::<ClientMessage>(value).unwrap_err();
        let quoted: Vec<String> = CLIENT_TYPES.iter().map(|t| format!("`{t}`")).collect();
        let expected = format!("unknown variant `?`, expected one of {}", quoted.join(", "));
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn messages_parse_with_defaults() {
        let msg = ClientMessage::parse(r#"{"type":"terminals"}"#).unwrap();
        assert_eq!(msg, ClientMessage::Terminals);
        let msg = ClientMessage::parse(r#"{"type":"resolve","id":"a","outcome":"not_charged"}"#);
        assert!(matches!(
            msg.unwrap(),
            ClientMessage::Resolve {
                outcome: ResolvedAs::NotCharged,
                note: None,
                ..
            }
        ));
        let msg = ClientMessage::parse(r#"{"type":"pay","id":"a","amount":5}"#).unwrap();
        let ClientMessage::Pay(order) = msg else {
            panic!("not a pay")
        };
        assert_eq!(order.amount, Value::from(5));
    }

    #[test]
    fn a_replayed_record_is_a_transaction_marked_replay() {
        let record = crate::engine::record::sample("a", crate::engine::record::State::Approved);
        let live: Value =
            serde_json::from_str(&ServerMessage::Transaction(Arc::new(record.clone())).to_json())
                .unwrap();
        let json = ServerMessage::replayed(Arc::new(record)).to_json();
        assert!(
            json.starts_with(r#"{"type":"transaction","id":"a""#),
            "{json}"
        );
        let mut replayed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(replayed["replay"], true);
        replayed.as_object_mut().unwrap().remove("replay");
        assert_eq!(replayed, live);
        assert!(live.get("replay").is_none());
    }

    #[test]
    fn the_type_comes_first_and_absent_ids_are_omitted() {
        let json = ServerMessage::from(ApiError::bad_request("x")).to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"bad_request","message":"x"}"#
        );
    }
}
