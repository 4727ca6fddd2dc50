//! The certificate module against real files, real X.509 parsing and real TLS handshakes
//! over loopback; the `ca export` command through the built binary.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use caisse_ap_relay::certs::{root_store, CertError, Certificates, HostNames, SanName};
use caisse_ap_relay::config::TlsConfig;
use common::binary::{write_config, Process};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use x509_parser::extensions::{GeneralName, GeneralSubtree};
use x509_parser::prelude::{parse_x509_certificate, X509Certificate};

use crate::common;

const HOST_IP: &str = "192.168.1.50";
const MAX_LEAF_DAYS: i64 = 397;
const WAIT: Duration = Duration::from_secs(5);

fn host() -> HostNames {
    HostNames::new("till-7", [HOST_IP.parse().unwrap()])
}

fn tls(dir: &Path) -> TlsConfig {
    TlsConfig {
        dir: dir.to_path_buf(),
        own: None,
        extra_names: vec!["caisse.shop.lan".into(), "10.9.8.7".into()],
        name_constraints: false,
    }
}

fn pem_der(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

fn with_cert<T>(path: &Path, check: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
    let der = pem_der(path);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    check(&cert)
}

fn san_strings(cert: &X509Certificate<'_>) -> Vec<String> {
    let names = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.to_string(),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()
            }
            GeneralName::IPAddress(b) => {
                IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
            }
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Verifies `leaf` for `name` with a webpki verifier trusting only `ca_pem`.
fn verify(ca_pem: &str, leaf: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(root_store(ca_pem).unwrap());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    verifier
        .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

fn client(ca_pem: &str) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(root_store(ca_pem).unwrap())
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS echo server on loopback serving `certificates` until the test ends.
async fn spawn_server(certificates: &Certificates) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(certificates.server_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(echo_connection(acceptor.clone(), tcp));
        }
    });
    addr
}

async fn echo_connection(acceptor: TlsAcceptor, tcp: TcpStream) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut byte = [0u8; 1];
    while tls.read_exact(&mut byte).await.is_ok() {
        if tls.write_all(&byte).await.is_err() {
            return;
        }
    }
}

type Client = tokio_rustls::client::TlsStream<TcpStream>;

/// Connects with a client trusting only `ca_pem`, for `name`.
async fn connect(addr: SocketAddr, ca_pem: &str, name: &str) -> std::io::Result<Client> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    tokio::time::timeout(WAIT, client(ca_pem).connect(name, tcp))
        .await
        .expect("handshake timed out")
}

fn served_leaf(stream: &Client) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

async fn echo(stream: &mut Client, byte: u8) -> u8 {
    stream.write_all(&[byte]).await.unwrap();
    let mut back = [0u8; 1];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .unwrap();
    back[0]
}

#[test]
fn first_start_creates_a_root_ca_and_a_leaf_naming_every_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();

    with_cert(&dir.path().join("ca.pem"), |ca| {
        let constraints = ca.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
        let usage = ca.key_usage().unwrap().unwrap().value;
        assert!(usage.key_cert_sign() && usage.crl_sign());
        let cn = ca.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "caisse-ap-relay CA (till-7)");
        let validity = ca.validity();
        let seconds = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert_eq!(seconds / (365 * 86_400), 10);
        assert!(ca.name_constraints().unwrap().is_none());
    });
    with_cert(&dir.path().join("agent.pem"), |leaf| {
        let mut names = san_strings(leaf);
        names.sort();
        let mut expected = [
            "localhost",
            "127.0.0.1",
            "::1",
            "till-7",
            "till-7.local",
            HOST_IP,
            "caisse.shop.lan",
            "10.9.8.7",
        ];
        expected.sort();
        assert_eq!(names, expected);
        assert!(
            leaf.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        let validity = leaf.validity();
        let seconds = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert!(seconds <= MAX_LEAF_DAYS * 86_400, "{seconds} s");
        assert!(seconds > 300 * 86_400, "{seconds} s");
        let not_after = certificates.leaf_not_after().unix_timestamp();
        assert_eq!(not_after, validity.not_after.timestamp());
    });
    #[cfg(unix)]
    for key in ["ca.key", "agent.key"] {
        assert_eq!(mode(&dir.path().join(key)), 0o600, "{key}");
    }
}

#[test]
fn the_leaf_verifies_for_the_host_address_and_names_under_the_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let ca_pem = certificates.ca_pem().unwrap();
    let leaf = pem_der(&dir.path().join("agent.pem"));
    let names = [
        HOST_IP,
        "till-7.local",
        "caisse.shop.lan",
        "10.9.8.7",
        "localhost",
        "::1",
    ];
    for name in names {
        verify(&ca_pem, &leaf, name).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    assert!(verify(&ca_pem, &leaf, "example.com").is_err());

    let other = tempfile::tempdir().unwrap();
    let stranger = Certificates::load_or_create_for(&tls(other.path()), &host()).unwrap();
    assert!(verify(&stranger.ca_pem().unwrap(), &leaf, "localhost").is_err());
}

#[test]
fn name_constraints_limit_a_new_ca_to_lan_names_and_still_admit_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let config = TlsConfig {
        name_constraints: true,
        ..tls(dir.path())
    };
    let certificates = Certificates::load_or_create_for(&config, &host()).unwrap();
    let permitted = with_cert(&dir.path().join("ca.pem"), |ca| {
        let constraints = ca.name_constraints().unwrap().unwrap().value;
        assert!(constraints.excluded_subtrees.is_none());
        let subtrees: &[GeneralSubtree<'_>] = constraints.permitted_subtrees.as_ref().unwrap();
        subtrees
            .iter()
            .map(|s| format!("{:?}", s.base))
            .collect::<Vec<_>>()
    });
    for dns in [
        "localhost",
        "local",
        "lan",
        "home.arpa",
        "internal",
        "till-7",
        "caisse.shop.lan",
    ] {
        let wanted = format!("DNSName({dns:?})");
        assert!(permitted.contains(&wanted), "{dns} in {permitted:?}");
    }
    for range in [
        [192u8, 168, 0, 0, 255, 255, 0, 0],
        [169, 254, 0, 0, 255, 255, 0, 0],
    ] {
        let range = format!("IPAddress({range:?})");
        assert!(permitted.contains(&range), "{range} in {permitted:?}");
    }
    let ca_pem = certificates.ca_pem().unwrap();
    let leaf = pem_der(&dir.path().join("agent.pem"));
    for name in [
        HOST_IP,
        "till-7.local",
        "localhost",
        "127.0.0.1",
        "10.9.8.7",
    ] {
        verify(&ca_pem, &leaf, name).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
}

/// A certificate for `name` signed with the CA key found in `dir`, as a thief of `ca.key`
/// would make it.
fn forge(dir: &Path, name: &str) -> CertificateDer<'static> {
    use rcgen::{CertificateParams, Issuer, KeyPair};
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    cert.der().clone()
}

#[test]
fn a_stolen_key_of_a_constrained_ca_cannot_impersonate_a_public_site() {
    let constrained = tempfile::tempdir().unwrap();
    let config = TlsConfig {
        name_constraints: true,
        ..tls(constrained.path())
    };
    let certificates = Certificates::load_or_create_for(&config, &host()).unwrap();
    let ca_pem = certificates.ca_pem().unwrap();
    let google = forge(constrained.path(), "www.google.com");
    let err = verify(&ca_pem, &google, "www.google.com").unwrap_err();
    assert!(format!("{err:?}").contains("NameConstraint"), "{err:?}");
    for lan_name in [
        "pos.shop.lan",
        "caisse.home.arpa",
        "till.internal",
        "till-7",
    ] {
        let forged = forge(constrained.path(), lan_name);
        verify(&ca_pem, &forged, lan_name).unwrap_or_else(|err| panic!("{lan_name}: {err}"));
    }

    // The same forgery with a CA made without constraints does verify: the constraints,
    // not the forging, are what stop it.
    let open = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(open.path()), &host()).unwrap();
    let google = forge(open.path(), "www.google.com");
    verify(&certificates.ca_pem().unwrap(), &google, "www.google.com").unwrap();
}

#[test]
fn an_extra_name_added_after_the_constrained_ca_is_left_out_and_link_local_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = TlsConfig {
        name_constraints: true,
        ..tls(dir.path())
    };
    Certificates::load_or_create_for(&config, &host()).unwrap();
    let link_local = "169.254.10.20";
    let later_host = HostNames::new(
        "till-7",
        [HOST_IP, link_local].map(|ip| ip.parse().unwrap()),
    );
    let config = TlsConfig {
        extra_names: vec!["caisse.shop.lan".into(), "pos.example.com".into()],
        ..config
    };
    let certificates = Certificates::load_or_create_for(&config, &later_host).unwrap();
    let names = certificates.leaf_names();
    assert!(
        !names.contains(&SanName::parse("pos.example.com")),
        "{names:?}"
    );
    let leaf = pem_der(&dir.path().join("agent.pem"));
    for kept in [
        HOST_IP,
        link_local,
        "till-7.local",
        "caisse.shop.lan",
        "localhost",
    ] {
        assert!(
            names.contains(&SanName::parse(kept)),
            "{kept} missing from {names:?}"
        );
        verify(&certificates.ca_pem().unwrap(), &leaf, kept).unwrap();
    }
}

#[tokio::test]
async fn the_agent_warns_once_about_a_name_its_ca_cannot_certify_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[]);
    Process::start(&config, &[]).await.terminate().await;
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("[tls]\n", "[tls]\nextra_names = [\"pos.example.com\"]\n");
    std::fs::write(&config, text).unwrap();

    let mut agent = Process::start(&config, &[]).await;
    let warning = agent.log_line("pos.example.com").await;
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("tls.name_constraints = false"),
        "{warning}"
    );
    let rest = agent.terminate().await;
    assert!(!rest.contains("pos.example.com"), "warned twice: {rest}");
}

#[tokio::test]
async fn handshakes_over_loopback_succeed_only_for_clients_trusting_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let ca_pem = certificates.ca_pem().unwrap();
    let addr = spawn_server(&certificates).await;
    for name in ["localhost", "127.0.0.1"] {
        let mut stream = connect(addr, &ca_pem, name).await.unwrap();
        assert_eq!(echo(&mut stream, 7).await, 7);
    }

    let other = tempfile::tempdir().unwrap();
    let stranger = Certificates::load_or_create_for(&tls(other.path()), &host()).unwrap();
    let refused = connect(addr, &stranger.ca_pem().unwrap(), "localhost").await;
    assert!(
        refused.is_err(),
        "a client trusting another CA must refuse the leaf"
    );
}

#[test]
fn server_config_offers_http1_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    assert_eq!(
        certificates.server_config().alpn_protocols,
        [b"http/1.1".to_vec()]
    );
}

#[test]
fn a_restart_keeps_the_ca_and_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let first = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let (ca, ca_key, leaf) = (read("ca.pem"), read("ca.key"), read("agent.pem"));

    let second = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    assert_eq!(read("ca.pem"), ca);
    assert_eq!(read("ca.key"), ca_key);
    assert_eq!(read("agent.pem"), leaf, "a fitting leaf is not re-issued");
    assert_eq!(second.fingerprint(), first.fingerprint());
    assert_eq!(second.ca_pem().unwrap().as_bytes(), ca.as_slice());
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
}

#[test]
fn a_new_extra_name_at_restart_reissues_the_leaf_but_not_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let mut config = tls(dir.path());
    config.extra_names.push("kiosk.shop.lan".into());

    let certificates = Certificates::load_or_create_for(&config, &host()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
    let names = with_cert(&dir.path().join("agent.pem"), san_strings);
    assert!(names.contains(&"kiosk.shop.lan".to_string()), "{names:?}");
    let leaf = pem_der(&dir.path().join("agent.pem"));
    verify(&certificates.ca_pem().unwrap(), &leaf, "kiosk.shop.lan").unwrap();
}

#[tokio::test]
async fn a_new_host_address_renews_the_leaf_under_a_live_listener() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let ca_pem = certificates.ca_pem().unwrap();
    let addr = spawn_server(&certificates).await;
    let mut before = connect(addr, &ca_pem, "localhost").await.unwrap();
    let old_leaf = served_leaf(&before);
    assert!(
        !certificates.renew_for(&host()).unwrap(),
        "nothing changed yet"
    );

    let new_ip: IpAddr = "192.168.1.77".parse().unwrap();
    let moved = HostNames::new("till-7", [HOST_IP.parse().unwrap(), new_ip]);
    assert!(certificates.renew_for(&moved).unwrap());
    assert!(
        !certificates.renew_for(&moved).unwrap(),
        "renewed once only"
    );

    let after = connect(addr, &ca_pem, "localhost").await.unwrap();
    let new_leaf = served_leaf(&after);
    assert_ne!(new_leaf, old_leaf);
    let on_disk = pem_der(&dir.path().join("agent.pem"));
    assert_eq!(new_leaf, on_disk, "the served leaf is the one on disk");
    verify(&ca_pem, &new_leaf, "192.168.1.77").unwrap();
    assert!(certificates.leaf_names().contains(&SanName::Ip(new_ip)));
    assert!(verify(&ca_pem, &old_leaf, "192.168.1.77").is_err());
    assert_eq!(certificates.ca_pem().unwrap(), ca_pem);
    let ca_on_disk = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    assert_eq!(ca_on_disk, ca_pem);
    assert_eq!(
        echo(&mut before, 9).await,
        9,
        "open connections keep working"
    );
}

#[test]
fn a_vanished_host_address_renews_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let no_lan = HostNames::new("till-7", []);
    assert!(certificates.renew_for(&no_lan).unwrap());
    let names = with_cert(&dir.path().join("agent.pem"), san_strings);
    assert!(!names.contains(&HOST_IP.to_string()), "{names:?}");
}

/// Creates certificates, overwrites `file` with `content`, restarts: the error and the path.
fn error_after_corrupting(file: &str, content: &str) -> (CertError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let path = dir.path().join(file);
    std::fs::write(&path, content).unwrap();
    let err = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap_err();
    let kept = std::fs::read_to_string(&path).unwrap();
    assert_eq!(kept, content, "a corrupt file is never replaced");
    (err, path)
}

#[test]
fn corrupt_keys_are_rejected_naming_the_file() {
    for file in ["agent.key", "ca.key"] {
        let (err, path) = error_after_corrupting(file, "not a key\n");
        let expected = format!("{}: not a PEM private key", path.display());
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn corrupt_certificates_are_rejected_naming_the_file() {
    for file in ["agent.pem", "ca.pem"] {
        let (err, path) = error_after_corrupting(file, "garbage\n");
        let expected = format!("{}: not a PEM certificate", path.display());
        assert_eq!(err.to_string(), expected);
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let (err, path) = error_after_corrupting(file, broken);
        let prefix = format!("{}: not a valid X.509 certificate", path.display());
        assert!(err.to_string().starts_with(&prefix), "{err}");
    }
}

#[test]
fn a_ca_without_its_key_is_an_error_not_a_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    let err = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap_err();
    assert!(matches!(&err, CertError::MissingHalf { path, .. } if path.ends_with("ca.key")));
    assert!(err.to_string().contains("ca.key: missing"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
    assert!(!dir.path().join("ca.key").exists());
}

#[test]
fn a_ca_key_of_another_ca_is_rejected() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    Certificates::load_or_create_for(&tls(other.path()), &host()).unwrap();
    std::fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    let err = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap_err();
    assert!(err.to_string().contains("ca.key: does not match"), "{err}");
}

/// Writes an operator's own CA-signed pair into `dir`; returns (cert, key, CA PEM).
fn own_pair(dir: &Path) -> (PathBuf, PathBuf, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.join("shop.pem"), dir.join("shop.key"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, ca_cert.pem())
}

#[tokio::test]
async fn an_own_certificate_is_served_without_a_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_pem) = own_pair(dir.path());
    let config = TlsConfig {
        own: Some((cert, key)),
        ..tls(&dir.path().join("unused"))
    };
    let certificates = Certificates::load_or_create(&config).unwrap();
    assert_eq!(certificates.ca_pem(), None);
    assert_eq!(certificates.fingerprint(), None);
    let renewed = certificates.renew_for(&host()).unwrap();
    assert!(!renewed, "own certificates are not renewed");
    assert!(!dir.path().join("unused").exists(), "nothing generated");

    let addr = spawn_server(&certificates).await;
    let mut stream = connect(addr, &ca_pem, "localhost").await.unwrap();
    assert_eq!(echo(&mut stream, 3).await, 3);
}

#[test]
fn an_own_key_that_does_not_match_is_rejected() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cert, _, _) = own_pair(dir.path());
    let (_, key, _) = own_pair(other.path());
    let config = TlsConfig {
        own: Some((cert, key.clone())),
        ..tls(dir.path())
    };
    let err = Certificates::load_or_create(&config).unwrap_err();
    let prefix = format!("{}: does not match", key.display());
    assert!(err.to_string().starts_with(&prefix), "{err}");
}

fn relay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
}

/// Writes a configuration whose `[tls] dir` is `dir`, and returns its path.
fn config_naming(dir: &Path) -> PathBuf {
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        format!("[tls]\ndir = {:?}\n", dir.display().to_string()),
    )
    .unwrap();
    path
}

#[test]
fn ca_export_prints_the_pem_and_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let ca_pem = certificates.ca_pem().unwrap();
    let ca_der = pem_der(&dir.path().join("ca.pem"));
    let digest = ring::digest::digest(&ring::digest::SHA256, &ca_der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(certificates.fingerprint().unwrap(), hex.join(":"));
    let fingerprint_line = format!("SHA-256 fingerprint: {}\n", hex.join(":"));

    let output = relay()
        .args(["ca", "export", "--config"])
        .arg(config_naming(dir.path()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout, format!("{ca_pem}{fingerprint_line}"));

    let out = dir.path().join("exported.pem");
    let output = relay()
        .args(["ca", "export", "--config"])
        .arg(config_naming(dir.path()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), fingerprint_line);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), ca_pem);
}

#[test]
fn ca_export_names_a_corrupt_file_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    std::fs::write(dir.path().join("ca.key"), "oops").unwrap();
    let output = relay()
        .args(["ca", "export", "--config"])
        .arg(config_naming(dir.path()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ca.key: not a PEM private key"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_constrained_ca_leaves_public_addresses_out_of_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let config = TlsConfig {
        name_constraints: true,
        ..tls(dir.path())
    };
    let public: IpAddr = "2001:db8::5".parse().unwrap();
    let host = HostNames::new("till-7", [HOST_IP.parse().unwrap(), public]);
    let certificates = Certificates::load_or_create_for(&config, &host).unwrap();
    let names = with_cert(&dir.path().join("agent.pem"), san_strings);
    assert!(!names.contains(&public.to_string()), "{names:?}");
    let leaf = pem_der(&dir.path().join("agent.pem"));
    verify(&certificates.ca_pem().unwrap(), &leaf, HOST_IP).unwrap();
    assert!(
        !certificates.renew_for(&host).unwrap(),
        "a left-out name is not missing"
    );
}

#[tokio::test]
async fn the_renewal_task_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = certificates.spawn_renewal(Duration::from_secs(3600), shutdown.clone());
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("renewal task ignored shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_leaf_from_another_ca_or_with_a_foreign_key_is_reissued() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
    Certificates::load_or_create_for(&tls(other.path()), &host()).unwrap();
    for files in [&["agent.pem", "agent.key"][..], &["agent.key"][..]] {
        for file in files {
            std::fs::copy(other.path().join(file), dir.path().join(file)).unwrap();
        }
        let certificates = Certificates::load_or_create_for(&tls(dir.path()), &host()).unwrap();
        let addr = spawn_server(&certificates).await;
        let ca_pem = certificates.ca_pem().unwrap();
        let mut stream = connect(addr, &ca_pem, "localhost").await.unwrap();
        assert_eq!(echo(&mut stream, 1).await, 1, "{files:?}");
    }
}
