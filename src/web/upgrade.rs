//! The `/ws` handshake: origin check, then HTTP 101 and a tungstenite socket over hyper's
//! upgraded connection, handed to [`super::session::run`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use super::budget::Slot;
use super::{session, App};

/// Initial read buffer of a WebSocket (see [`websocket`]'s configuration).
const READ_BUFFER: usize = 512;

/// The peer address of the connection a request came on (set by the server).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The connection's place in the budget (set by the server), shared by the HTTP connection
/// and a WebSocket session born from it (the session marks it authenticated after `hello`).
#[derive(Debug, Clone)]
pub struct ConnectionPermit(pub Arc<Slot>);

/// Answers `/ws`: 403 for a foreign origin, 400 for a non-WebSocket request, else 101.
pub async fn websocket(State(app): State<Arc<App>>, mut request: Request) -> Response {
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let own = |origin: &str| app.is_own_origin(origin);
    let listed = |origin: &str| app.allowed_origins.contains(origin);
    if !origin_allowed(origin, own, listed) {
        tracing::warn!(origin = origin.unwrap_or(""), "websocket origin refused");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let Some(accept) = accept_key(headers) else {
        return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n").into_response();
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return (
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded\n",
        )
            .into_response();
    };
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or(Ipv4Addr::UNSPECIFIED.into(), |p| p.0.ip());
    // The session keeps the connection's place in the budget, marks it authenticated after
    // `hello`, and ends if evicted before that.
    let Some(ConnectionPermit(slot)) = request.extensions().get::<ConnectionPermit>().cloned()
    else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no connection slot\n").into_response();
    };
    let session_app = Arc::clone(&app);
    app.tasks.spawn(
        async move {
            let evicted = slot.evicted();
            let session = async {
                match on_upgrade.await {
                    Ok(upgraded) => run_socket(upgraded, session_app, peer, Arc::clone(&slot)).await,
                    Err(err) => tracing::debug!(%err, "websocket upgrade failed"),
                }
            };
            tokio::select! {
                () = session => {}
                () = evicted => tracing::debug!("evicted before hello: the connection cap was reached"),
            }
        }
        .in_current_span(),
    );
    switching_protocols(accept)
}

async fn run_socket(
    upgraded: hyper::upgrade::Upgraded,
    app: Arc<App>,
    peer: IpAddr,
    slot: Arc<Slot>,
) {
    let limit = Some(app.options.max_message);
    // tungstenite zero-fills its whole read buffer before each read and keeps it per socket:
    // the 128 KiB default cost ~157 KB of RSS per idle client and 15 % of the CPU in memset.
    // Messages are small; the buffer still grows up to the 64 KiB limit when one is not.
    let config = WebSocketConfig::default()
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER);
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    session::run(socket, app, peer, slot).await;
}

fn switching_protocols(accept: String) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// The `Sec-WebSocket-Accept` for a valid version-13 upgrade request.
fn accept_key(headers: &HeaderMap) -> Option<String> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|text| {
                text.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    let upgrade = has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket");
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes());
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    (upgrade && version == Some(b"13")).then(|| derive_accept_key(key.as_bytes()))
}

/// Contract §4: refused when `Origin` is present, not listed (exact match) and not the
/// agent's `own` origin (§7.4: derived from the leaf's names, never from `Host`).
pub fn origin_allowed(
    origin: Option<&str>,
    own: impl Fn(&str) -> bool,
    listed: impl Fn(&str) -> bool,
) -> bool {
    origin.is_none_or(|origin| own(origin) || listed(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_matched_exactly() {
        let allowed = |origin: &str| origin == "https://pos.example.com";
        let host = |origin: &str| origin == "https://127.0.0.1:8443";
        assert!(origin_allowed(None, host, allowed));
        assert!(origin_allowed(
            Some("https://pos.example.com"),
            host,
            allowed
        ));
        assert!(origin_allowed(
            Some("https://127.0.0.1:8443"),
            host,
            allowed
        ));
        assert!(!origin_allowed(
            Some("https://pos.example.com/"),
            host,
            allowed
        ));
        assert!(!origin_allowed(
            Some("http://127.0.0.1:8443"),
            host,
            allowed
        ));
        assert!(!origin_allowed(Some("https://evil.example"), host, allowed));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            |_| false,
            allowed
        ));
    }

    #[test]
    fn only_version_13_upgrades_are_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(accept_key(&headers), None);
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        // The RFC 6455 example.
        assert_eq!(
            accept_key(&headers).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }
}
