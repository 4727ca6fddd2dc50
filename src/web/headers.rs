//! Headers every HTML page carries, on both ports (contract §7.4): no page of the agent may
//! be framed, so its pay and resolve buttons cannot be clickjacked from another site.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// Adds `Content-Security-Policy: frame-ancestors 'none'` and `X-Frame-Options: DENY` to an
/// HTML response (for `axum::middleware::map_response`).
pub async fn no_framing(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}
