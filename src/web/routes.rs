//! The HTTP routes: static pages, `/healthz`, `/metrics`, `/ca.pem`, `/lna-probe`, the connection doctor,
//! `/receipt-key` and the `/ws` upgrade. The client module and its declarations carry CORS
//! headers for allowed origins, so a POS page elsewhere can `import` them (contract §7.4).

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::upgrade::Peer;
use super::{assets, headers, onboarding, upgrade, App};

/// The router of the TLS port.
pub fn router(app: Arc<App>) -> Router {
    let holder = Arc::clone(&app);
    let listed = move |origin: &str| holder.allowed_origins.contains(origin);
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/display", get(|| async { page("display.html") }))
        .route("/status", get(|| async { page("status.html") }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/ca.pem", get(ca_pem))
        .route("/ws", get(upgrade::websocket))
        .route("/lna-probe", onboarding::lna_probe_route(listed.clone()))
        .route("/client.js", get(client_file("client.js", listed.clone())))
        .route("/client.d.ts", get(client_file("client.d.ts", listed)))
        .route("/receipt-key", get(receipt_key))
        .merge(onboarding::doctor_router())
        .route(
            "/{*file}",
            get(|Path(file): Path<String>| async move { page(&file) }),
        )
        .layer(axum::middleware::map_response(headers::no_framing))
        .with_state(app)
}

/// An embedded file, never cached stale.
fn page(path: &str) -> Response {
    let Some((bytes, kind)) = assets::find(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, bytes).into_response()
}

/// A handler serving the client file `name`, readable by the pages of `listed` origins.
fn client_file(
    name: &'static str,
    listed: impl Fn(&str) -> bool + Clone + Send + Sync + 'static,
) -> impl Fn(HeaderMap) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |headers: HeaderMap| {
        let mut response = page(name);
        let origin = onboarding::origin_of(&headers).filter(|origin| listed(origin));
        if let Some(value) = origin.and_then(|origin| HeaderValue::from_str(origin).ok()) {
            onboarding::allow_origin(response.headers_mut(), value);
        }
        std::future::ready(response)
    }
}

/// The receipt public key as a JWK (contract §8), so a backend can pin it.
async fn receipt_key(State(app): State<Arc<App>>) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk+json"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, app.receipts.jwk_json().to_owned()).into_response()
}

/// Terminal names and states from the engine's knowledge, nothing more (contract §7.4: no
/// addresses, no transaction ids for anyone who asks); never a socket per call.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    let terminals: Vec<_> = app
        .engine
        .all_terminals()
        .into_iter()
        .map(|t| json!({"name": t.name, "state": t.state}))
        .collect();
    let body = json!({"status": "ok", "terminals": terminals});
    ([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response()
}

/// Prometheus metrics, the gauges read at scrape time; only for `[server] metrics_from`.
async fn metrics(State(app): State<Arc<App>>, peer: Option<Extension<Peer>>) -> Response {
    let allowed = peer.is_some_and(|Extension(Peer(peer))| {
        let ip = peer.ip().to_canonical();
        app.metrics_from.iter().any(|range| range.contains(&ip))
    });
    if !allowed {
        return (
            StatusCode::FORBIDDEN,
            "metrics are not served to this address\n",
        )
            .into_response();
    }
    let terminals = app.engine.all_terminals();
    let text = app
        .engine
        .metrics()
        .render(&terminals, &app.presence.by_role());
    let headers = [
        (header::CONTENT_TYPE, crate::engine::metrics::CONTENT_TYPE),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, text).into_response()
}

/// The local CA certificate; 404 with a bring-your-own certificate.
async fn ca_pem(State(app): State<Arc<App>>) -> Response {
    match app.certs.ca_pem() {
        Some(pem) => ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "this agent serves the operator's own certificate; no local CA\n",
        )
            .into_response(),
    }
}
