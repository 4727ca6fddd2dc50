//! Getting a till's browser to trust and reach the agent: the plain-HTTP onboarding site
//! (setup page, CA downloads, iOS profile), the `/lna-probe` answer and the connection
//! doctor pages that the TLS front mounts.
//!
//! The onboarding port serves nothing but public material (the CA certificate and how to
//! install it): no token, no terminal, no WebSocket. Certificates themselves are made in
//! `certs`; this module only presents them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use ring::digest::{digest, SHA256};

const SETUP_HTML: &str = include_str!("../../static/setup.html");
const DOCTOR_HTML: &str = include_str!("../../static/doctor.html");
const DOCTOR_JS: &str = include_str!("../../static/doctor.js");
const ACCESS_CSS: &str = include_str!("../../static/access.css");
/// The iOS profile, with `{{…}}` placeholders.
const PROFILE_TEMPLATE: &str = include_str!("../../static/profile.mobileconfig");
/// Download name of the CA, without extension.
const CA_FILE_STEM: &str = "caisse-ap-relay-ca";

/// The CA handed to [`onboarding_router`] is not a PEM certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the CA certificate is not a PEM CERTIFICATE block")]
pub struct BadCaPem;

/// The answer to `GET`/`OPTIONS /lna-probe` for a request carrying `origin`.
///
/// 204 with CORS headers for an allowed origin (and, on the `OPTIONS` preflight, the
/// private/local-network permission headers Chrome's and Firefox's Local Network Access
/// checks ask for); 204 without CORS headers when there is no `Origin` (same-origin);
/// 403 without CORS headers for any other origin.
pub fn lna_probe(
    origin: Option<&str>,
    allowed: impl Fn(&str) -> bool,
    preflight: bool,
) -> Response {
    let Some(origin) = origin else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let Ok(value) = HeaderValue::from_str(origin) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if !allowed(origin) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    allow_origin(headers, value);
    if preflight {
        let yes = HeaderValue::from_static("true");
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        headers.insert("access-control-allow-private-network", yes.clone());
        headers.insert("access-control-allow-local-network", yes);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// `/lna-probe` as a route (`GET` and the `OPTIONS` preflight) over [`lna_probe`].
pub fn lna_probe_route<S>(
    allowed: impl Fn(&str) -> bool + Clone + Send + Sync + 'static,
) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let on_get = allowed.clone();
    get(move |headers: HeaderMap| async move { lna_probe(origin_of(&headers), on_get, false) })
        .options(
            move |headers: HeaderMap| async move { lna_probe(origin_of(&headers), allowed, true) },
        )
}

/// Lets the page of `origin` read the response: `Access-Control-Allow-Origin: <origin>` and
/// `Vary: Origin` (the answer differs per origin, so caches must key on it).
pub fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}

/// The request's `Origin` header, when it is text.
pub fn origin_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// `/doctor` (the connection doctor page) and `/doctor.js`, for the TLS front.
pub fn doctor_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/doctor", get(|| async { html(DOCTOR_HTML) }))
        .route(
            "/doctor.js",
            get(|| async { text("text/javascript; charset=utf-8", DOCTOR_JS) }),
        )
}

/// What the onboarding handlers share.
#[derive(Debug)]
struct Onboarding {
    ca_pem: String,
    ca_der: Vec<u8>,
    profile: String,
    /// The setup page with everything but the doctor's host filled in.
    setup: String,
    https_port: u16,
}

/// The plain-HTTP onboarding site: `/`, `/ca.pem`, `/ca.crt`, `/caisse-ap-relay.mobileconfig`;
/// everything else is 404.
pub fn onboarding_router(
    ca_pem: &str,
    fingerprint: &str,
    https_port: u16,
) -> Result<Router, BadCaPem> {
    let ca_der = pem_der(ca_pem)?;
    let setup = SETUP_HTML
        .replace("{{STYLE}}", ACCESS_CSS)
        .replace("{{FINGERPRINT}}", &escape_html(fingerprint));
    let state = Arc::new(Onboarding {
        profile: mobileconfig(&ca_der, fingerprint),
        ca_pem: ca_pem.to_owned(),
        ca_der,
        setup,
        https_port,
    });
    Ok(Router::new()
        .route("/", get(setup_page))
        .route("/ca.pem", get(ca_pem_file))
        .route("/ca.crt", get(ca_der_file))
        .route("/caisse-ap-relay.mobileconfig", get(profile_file))
        .layer(axum::middleware::map_response(super::headers::no_framing))
        .with_state(state))
}

async fn setup_page(State(site): State<Arc<Onboarding>>, headers: HeaderMap) -> Response {
    let doctor = format!(
        "https://{}:{}/doctor",
        request_host(&headers),
        site.https_port
    );
    html(&site.setup.replace("{{DOCTOR_URL}}", &doctor))
}

async fn ca_pem_file(State(site): State<Arc<Onboarding>>) -> Response {
    download(
        "application/x-pem-file",
        "pem",
        site.ca_pem.clone().into_bytes(),
    )
}

async fn ca_der_file(State(site): State<Arc<Onboarding>>) -> Response {
    download("application/x-x509-ca-cert", "crt", site.ca_der.clone())
}

async fn profile_file(State(site): State<Arc<Onboarding>>) -> Response {
    download(
        "application/x-apple-aspen-config",
        "mobileconfig",
        site.profile.clone().into_bytes(),
    )
}

/// The host the browser used to reach us (port stripped), so the doctor link points at the
/// same machine; anything that is not a plain host name or IP falls back to `localhost`.
fn request_host(headers: &HeaderMap) -> &str {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().map(|inner| &host[..inner.len() + 2]),
        None => host.split(':').next(),
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    name.filter(|n| !n.is_empty() && n.chars().all(plain))
        .unwrap_or("localhost")
}

fn html(body: &str) -> Response {
    text("text/html; charset=utf-8", body)
}

fn text(content_type: &'static str, body: &str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body.to_owned()).into_response()
}

fn download(content_type: &'static str, extension: &str, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{CA_FILE_STEM}.{extension}\"");
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn pem_der(pem: &str) -> Result<Vec<u8>, BadCaPem> {
    match x509_parser::pem::parse_x509_pem(pem.as_bytes()) {
        Ok((_, block)) if block.label == "CERTIFICATE" => Ok(block.contents),
        _ => Err(BadCaPem),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An iOS/iPadOS configuration profile installing `ca_der` as a trusted root
/// (`com.apple.security.root`); UUIDs derive from the fingerprint, so re-downloading the
/// profile of the same CA replaces rather than duplicates it.
pub fn mobileconfig(ca_der: &[u8], fingerprint: &str) -> String {
    let short: String = fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    PROFILE_TEMPLATE
        .replace("{{CA_FILE_STEM}}", CA_FILE_STEM)
        .replace("{{DATA}}", &base64_lines(ca_der))
        .replace("{{FINGERPRINT}}", &escape_html(fingerprint))
        .replace("{{SHORT_ID}}", &short)
        .replace("{{CA_UUID}}", &stable_uuid("ca-payload", fingerprint))
        .replace("{{PROFILE_UUID}}", &stable_uuid("profile", fingerprint))
}

/// A UUID (RFC 9562 version 8, name-based on SHA-256) for `label` within this CA.
fn stable_uuid(label: &str, fingerprint: &str) -> String {
    let input = format!("caisse-ap-relay/{label}/{fingerprint}");
    let hash = digest(&SHA256, input.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::access::secret::to_hex(&b).to_ascii_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Standard base64 of `bytes`, in lines of 64 characters (each ending with a newline).
fn base64_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) & 0x3f;
            let present = i <= chunk.len();
            encoded.push(if present {
                char::from(ALPHABET[sextet as usize])
            } else {
                '='
            });
        }
    }
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / 64 + 1);
    for line in encoded.as_bytes().chunks(64) {
        lines.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        lines.push('\n');
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_vectors() {
        assert_eq!(base64_lines(b""), "");
        assert_eq!(base64_lines(b"f"), "Zg==\n");
        assert_eq!(base64_lines(b"fo"), "Zm8=\n");
        assert_eq!(base64_lines(b"foo"), "Zm9v\n");
        assert_eq!(base64_lines(b"foobar"), "Zm9vYmFy\n");
        assert_eq!(base64_lines(&[0xff; 48]).lines().next().unwrap().len(), 64);
    }

    #[test]
    fn uuids_are_stable_version_8_and_distinct_per_label() {
        let a = stable_uuid("profile", "AB:CD");
        assert_eq!(a, stable_uuid("profile", "AB:CD"));
        assert_ne!(a, stable_uuid("ca-payload", "AB:CD"));
        assert_ne!(a, stable_uuid("profile", "AB:CE"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }

    #[test]
    fn the_doctor_link_uses_a_clean_request_host() {
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            request_host(&headers).to_owned()
        };
        assert_eq!(host("caisse.shop.lan:8080"), "caisse.shop.lan");
        assert_eq!(host("192.168.1.2"), "192.168.1.2");
        assert_eq!(host("[fe80::1]:8080"), "[fe80::1]");
        assert_eq!(host("evil\"><script>"), "localhost");
        assert_eq!(request_host(&HeaderMap::new()), "localhost");
    }

    #[test]
    fn preflight_headers_only_on_preflight() {
        let get = lna_probe(Some("https://pos.example"), |_| true, false);
        assert!(get
            .headers()
            .get("access-control-allow-private-network")
            .is_none());
        assert_eq!(
            lna_probe(None, |_| false, true).status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            lna_probe(Some("bad\u{7f}"), |_| true, false).status(),
            StatusCode::FORBIDDEN
        );
    }
}
