//! The onboarding site (setup page, CA downloads, iOS profile), `/lna-probe` and the doctor
//! routes, through the axum routers and over a real loopback listener.

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use caisse_ap_relay::web::onboarding::{
    doctor_router, lna_probe, lna_probe_route, onboarding_router, BadCaPem,
};
use tower::ServiceExt;

const FINGERPRINT: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
const POS: &str = "https://pos.example.com";

fn ca() -> (String, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

async fn get(router: Router, path: &str) -> (Response, Vec<u8>) {
    let request = Request::get(path)
        .header(header::HOST, "caisse.shop.lan:8080")
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap().to_vec();
    (Response::from_parts(parts, Body::empty()), bytes)
}

fn content_type(response: &Response) -> &str {
    response.headers()[header::CONTENT_TYPE].to_str().unwrap()
}

#[tokio::test]
async fn the_setup_page_shows_the_fingerprint_and_links_the_doctor() {
    let (pem, _) = ca();
    let router = onboarding_router(&pem, FINGERPRINT, 8443).unwrap();
    let (response, body) = get(router, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains(FINGERPRINT));
    assert!(page.contains("https://caisse.shop.lan:8443/doctor"));
    assert!(page.contains("Réglages &gt; Général &gt; Informations &gt; Réglages des certificats"));
    assert!(page.contains("certutil -d sql:$HOME/.pki/nssdb"));
    assert!(!page.contains("{{"), "a placeholder was left unfilled");
    // Contract §7.4: no page of the agent can be framed.
    let csp = response.headers().get("content-security-policy").unwrap();
    assert_eq!(csp, "frame-ancestors 'none'");
    assert_eq!(response.headers().get("x-frame-options").unwrap(), "DENY");
}

#[tokio::test]
async fn the_ca_is_served_as_pem_and_der() {
    let (pem, der) = ca();
    let router = onboarding_router(&pem, FINGERPRINT, 8443).unwrap();
    let (response, body) = get(router.clone(), "/ca.pem").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, pem.as_bytes());
    let (response, body) = get(router, "/ca.crt").await;
    assert_eq!(content_type(&response), "application/x-x509-ca-cert");
    assert_eq!(body, der);
}

#[tokio::test]
async fn the_mobileconfig_is_a_plist_carrying_the_ca() {
    let (pem, der) = ca();
    let router = onboarding_router(&pem, FINGERPRINT, 8443).unwrap();
    let (response, body) = get(router, "/caisse-ap-relay.mobileconfig").await;
    assert_eq!(content_type(&response), "application/x-apple-aspen-config");
    let profile = plist::Value::from_reader_xml(body.as_slice()).expect("well-formed plist");
    let profile = profile.as_dictionary().unwrap();
    assert_eq!(profile["PayloadType"].as_string(), Some("Configuration"));
    let payload = profile["PayloadContent"].as_array().unwrap()[0]
        .as_dictionary()
        .unwrap();
    assert_eq!(
        payload["PayloadType"].as_string(),
        Some("com.apple.security.root")
    );
    assert_eq!(payload["PayloadContent"].as_data(), Some(der.as_slice()));
    assert_ne!(payload["PayloadUUID"], profile["PayloadUUID"]);

    let again = onboarding_router(&pem, FINGERPRINT, 8443).unwrap();
    let (_, second) = get(again, "/caisse-ap-relay.mobileconfig").await;
    assert_eq!(body, second, "UUIDs are stable for one CA");
}

#[tokio::test]
async fn everything_else_is_404() {
    let (pem, _) = ca();
    let router = onboarding_router(&pem, FINGERPRINT, 8443).unwrap();
    for path in [
        "/ws",
        "/healthz",
        "/doctor",
        "/ca.key",
        "/lna-probe",
        "/index.html",
    ] {
        let (response, _) = get(router.clone(), path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[test]
fn a_bad_ca_is_refused() {
    assert_eq!(
        onboarding_router("not a pem", FINGERPRINT, 8443).err(),
        Some(BadCaPem)
    );
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn lna_probe_allows_a_listed_origin() {
    let response = lna_probe(Some(POS), |o| o == POS, false);
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(POS));
    assert_eq!(header(&response, "vary"), Some("Origin"));
}

#[test]
fn lna_probe_refuses_other_origins_without_cors_headers() {
    let response = lna_probe(Some("https://evil.example"), |o| o == POS, true);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-")));
}

#[tokio::test]
async fn lna_probe_route_answers_the_preflight() {
    let router: Router = Router::new().route("/lna-probe", lna_probe_route(|o: &str| o == POS));
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/lna-probe")
        .header(header::ORIGIN, POS)
        .header("access-control-request-method", "GET")
        .header("access-control-request-private-network", "true")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(preflight).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(POS));
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        Some("GET")
    );
    assert_eq!(
        header(&response, "access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(
        header(&response, "access-control-allow-local-network"),
        Some("true")
    );

    let refused = Request::get("/lna-probe")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        router.oneshot(refused).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_doctor_pages_are_served() {
    let router: Router = doctor_router();
    let (response, body) = get(router.clone(), "/doctor").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("doctor.js") && !page.contains("{{STYLE}}"));
    // Served as the file is, so the copy an integrator puts on a POS site works the same.
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/doctor.html"));
    assert_eq!(page, file.unwrap());
    assert!(page.contains(r#"href="access.css""#) && !page.contains("{{"));
    let (response, body) = get(router, "/doctor.js").await;
    assert!(content_type(&response).starts_with("text/javascript"));
    assert!(String::from_utf8(body).unwrap().contains("/lna-probe"));
}
