//! The configuration file: every rule gives one line naming file, line and field; defaults,
//! the example file, lookup and the demo configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caisse_ap_relay::config::{Config, ConfigError, Role, Secret};

const TERMINAL: &str = "[[terminal]]\nname = \"tpe-1\"\naddress = \"127.0.0.1:8888\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_named(text, "shop.toml")
}

/// The one-line error for `text`.
fn error(text: &str) -> String {
    let message = parse(text)
        .expect_err("config must be rejected")
        .to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[test]
fn example_file_parses_with_every_option() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("caisse-ap-relay.example.toml");
    let config = Config::load(&path).expect("example parses");
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.allowed_origins, ["https://pos.example.com"]);
    assert_eq!(config.tls.extra_names, ["caisse.shop.lan"]);
    assert_eq!(config.terminals[0].name, "tpe-1");
    assert_eq!(config.terminals[0].address, "tpe-1.shop.lan:8888");
    assert_eq!(config.tills.len(), 3);
    assert_eq!(
        config.tills[0].terminals.as_deref(),
        Some(&["tpe-1".to_owned()][..])
    );
    assert_eq!(config.tills[1].role, Role::Display);
    assert_eq!(config.tills[1].token, None);
    assert_eq!(
        (config.tills[2].name.as_str(), config.tills[2].role),
        ("office", Role::Operator)
    );
    // v2 defaults, as the example shows them.
    assert!(config.tls.name_constraints);
    assert_eq!(config.server.max_connections_per_address, 64);
    assert_eq!(config.server.metrics_from.len(), 8);
    assert_eq!(
        config.server.journal_retention,
        caisse_ap_relay::config::DEFAULT_JOURNAL_RETENTION
    );
}

#[test]
fn defaults_fill_a_minimal_file() {
    let config = parse(&format!("{TERMINAL}[[till]]\nname = \"t\"\n")).unwrap();
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.onboarding, None);
    assert!(config.server.allowed_origins.is_empty());
    assert_eq!(config.server.data_dir, PathBuf::from("data"));
    assert_eq!(config.tls.dir, PathBuf::from("certs"));
    assert!(config.tls.own.is_none());
    assert!(
        config.tls.name_constraints,
        "v2: a new CA is name-constrained"
    );
    assert_eq!(config.server.max_connections_per_address, 64);
    let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert!(config
        .server
        .metrics_from
        .iter()
        .any(|r| r.contains(&loopback)));
    assert_eq!(config.terminals[0].pos_number, "01");
    assert_eq!(config.terminals[0].timeout, Duration::from_secs(180));
    assert_eq!(config.tills[0].role, Role::Cashier);
    assert_eq!(config.tills[0].terminals, None);
}

#[test]
fn bad_terminal_name_names_line_and_field() {
    let text = "[server]\nlisten = \"127.0.0.1:8443\"\n\n[[terminal]]\nname = \"TPE 1\"\naddress = \"h:1\"\n";
    assert_eq!(
        error(text),
        r#"shop.toml:5: terminal[1].name: "TPE 1" must match [a-z0-9_-]{1,32}"#
    );
    let long = format!(
        "[[terminal]]\nname = \"{}\"\naddress = \"h:1\"\n",
        "a".repeat(33)
    );
    assert!(error(&long).starts_with("shop.toml:2: terminal[1].name: "));
}

#[test]
fn duplicate_names_are_rejected() {
    let text = format!("{TERMINAL}{TERMINAL}");
    assert_eq!(
        error(&text),
        "shop.toml:5: terminal[2].name: same as terminal[1], must be unique"
    );
    let tills = "[[till]]\nname = \"a\"\n[[till]]\nname = \"a\"\n";
    assert_eq!(
        error(tills),
        "shop.toml:4: till[2].name: same as till[1], must be unique"
    );
}

#[test]
fn terminal_address_needs_host_and_valid_port() {
    for (address, ok) in [
        ("tpe.lan:8888", true),
        ("[::1]:8888", true),
        ("h:0", false),
        ("h:70000", false),
        ("h", false),
    ] {
        let text = format!("[[terminal]]\nname = \"a\"\naddress = \"{address}\"\n");
        match parse(&text) {
            Ok(config) => assert!(ok, "{address} accepted: {config:?}"),
            Err(err) => {
                assert!(!ok, "{address} rejected: {err}");
                let expected = format!(
                    "shop.toml:3: terminal[1].address: {address:?} must be host:port with a port in 1-65535"
                );
                assert_eq!(err.to_string(), expected);
            }
        }
    }
}

#[test]
fn pos_number_and_timeout_rules() {
    let pos = format!("{TERMINAL}pos_number = \"1\"\n");
    assert_eq!(
        error(&pos),
        r#"shop.toml:4: terminal[1].pos_number: "1" must be two digits, e.g. "01""#
    );
    let long = format!("{TERMINAL}timeout = \"11m\"\n");
    assert_eq!(
        error(&long),
        r#"shop.toml:4: terminal[1].timeout: "11m" must be between 1s and 10m"#
    );
    let short = format!("{TERMINAL}timeout = \"500ms\"\n");
    assert!(error(&short).starts_with("shop.toml:4: terminal[1].timeout: "));
    let garbage = format!("{TERMINAL}timeout = \"soon\"\n");
    assert_eq!(
        error(&garbage),
        r#"shop.toml:4: terminal[1].timeout: "soon" must be a duration such as "180s" or "3m""#
    );
    let ok = parse(&format!(
        "{TERMINAL}pos_number = \"07\"\ntimeout = \"3m\"\n"
    ))
    .unwrap();
    assert_eq!(ok.terminals[0].pos_number, "07");
    assert_eq!(ok.terminals[0].timeout, Duration::from_secs(180));
}

#[test]
fn till_rules() {
    let name = "\n[[till]]\nname = \"Till\"\n";
    assert_eq!(
        error(name),
        r#"shop.toml:3: till[1].name: "Till" must match [a-z0-9_-]{1,32}"#
    );
    let short = "[[till]]\nname = \"a\"\ntoken = \"short-secret\"\n";
    let message = error(short);
    assert_eq!(
        message,
        "shop.toml:3: till[1].token: must be at least 16 characters (value not shown)"
    );
    let shared = "[[till]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n\
                  [[till]]\nname = \"b\"\ntoken = \"0123456789abcdef\"\n";
    let message = error(shared);
    assert_eq!(
        message,
        "shop.toml:6: till[2].token: same as till[1], must be unique"
    );
    assert!(!message.contains("0123456789abcdef"));
    // Contract §7.5: the example's placeholder is a known secret, refused whatever its length.
    let placeholder = "[[till]]\nname = \"a\"\ntoken = \"replace-with-a-long-random-secret\"\n";
    let message = error(placeholder);
    assert!(
        message.starts_with("shop.toml:3: till[1].token: is the example's placeholder"),
        "{message}"
    );
    let role = "[[till]]\nname = \"a\"\nrole = \"boss\"\n";
    let message = error(role);
    assert!(
        message.starts_with("shop.toml:3: till[1].role: "),
        "{message}"
    );
    assert!(message.contains("boss"), "{message}");
}

#[test]
fn metrics_ranges_and_connection_caps_are_checked() {
    let ranges = "[server]\nmetrics_from = [\"192.168.1.0/24\", \"10.1.2.3\"]\n\
                  max_connections_per_address = 8\n";
    let config = parse(ranges).unwrap();
    assert_eq!(config.server.metrics_from.len(), 2);
    assert_eq!(config.server.max_connections_per_address, 8);
    assert_eq!(
        error("[server]\nmetrics_from = [\"192.168.1.0/33\"]\n"),
        "shop.toml:2: server.metrics_from[1]: \"192.168.1.0/33\" must be a range like \
         \"192.168.0.0/16\" or an address"
    );
    assert_eq!(
        error("[server]\nmax_connections_per_address = 0\n"),
        "shop.toml:2: server.max_connections_per_address: 0 must be between 1 and 10000"
    );
}

#[test]
fn till_terminals_must_be_configured() {
    let text = format!("{TERMINAL}[[till]]\nname = \"a\"\nterminals = [\"tpe-1\", \"tpe-9\"]\n");
    assert_eq!(
        error(&text),
        r#"shop.toml:6: till[1].terminals[2]: "tpe-9" is not a configured terminal"#
    );
}

#[test]
fn server_addresses_and_origins() {
    let listen = "[server]\nlisten = \"localhost:8443\"\n";
    assert_eq!(
        error(listen),
        r#"shop.toml:2: server.listen: "localhost:8443" must be IP:port, e.g. "127.0.0.1:8443""#
    );
    let onboarding = "[server]\nonboarding = \"127.0.0.1\"\n";
    assert!(error(onboarding).starts_with("shop.toml:2: server.onboarding: "));
    let ok = parse("[server]\nonboarding = \"127.0.0.1:8080\"\n").unwrap();
    assert_eq!(
        ok.server.onboarding,
        Some("127.0.0.1:8080".parse().unwrap())
    );
    for origin in [
        "https://pos.example.com/",
        "pos.example.com",
        "https://pos.example.com/app",
        "https://POS.example.com",
    ] {
        let text = format!(
            "[server]\nallowed_origins = [\n  \"https://ok.example.com\",\n  \"{origin}\",\n]\n"
        );
        let message = error(&text);
        let prefix =
            format!("shop.toml:4: server.allowed_origins[2]: {origin:?} must be an origin like");
        assert!(message.starts_with(&prefix), "{message}");
    }
}

#[test]
fn tls_cert_and_key_go_together() {
    let text = "[tls]\ndir = \"c\"\ncert = \"leaf.pem\"\n";
    assert_eq!(
        error(text),
        "shop.toml:3: tls.cert: needs tls.key too (give both or neither)"
    );
    let text = "[tls]\nkey = \"leaf.key\"\n";
    assert_eq!(
        error(text),
        "shop.toml:2: tls.key: needs tls.cert too (give both or neither)"
    );
    let both = parse("[tls]\ncert = \"a.pem\"\nkey = \"a.key\"\n").unwrap();
    assert_eq!(
        both.tls.own,
        Some((PathBuf::from("a.pem"), PathBuf::from("a.key")))
    );
    let bad_name = "[tls]\nextra_names = [\"bad name\"]\n";
    assert_eq!(
        error(bad_name),
        r#"shop.toml:2: tls.extra_names[1]: "bad name" must be a DNS name or an IP address"#
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_their_line() {
    let text = format!("{TERMINAL}adress = \"x\"\n");
    let message = error(&text);
    assert!(
        message.starts_with("shop.toml:4: terminal[1].adress: unknown field `adress`"),
        "{message}"
    );
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[tls]\nname_constraints = \"yes\"\n";
    let message = error(text);
    assert!(
        message.starts_with("shop.toml:5: tls.name_constraints: "),
        "{message}"
    );
    let message = error("[server\n");
    assert!(message.starts_with("shop.toml:1: "), "{message}");
    let missing = "[[terminal]]\nname = \"a\"\n";
    let message = error(missing);
    assert!(message.contains("missing field `address`"), "{message}");
}

#[test]
fn locate_explicit_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Config::locate(Some(&path)).unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }));
    assert_eq!(err.to_string(), format!("{}: no such file", path.display()));
}

#[test]
fn locate_explicit_file_is_loaded_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.toml");
    std::fs::write(&path, TERMINAL).unwrap();
    let (found, config) = Config::locate(Some(&path)).unwrap().unwrap();
    assert_eq!(found, path);
    assert_eq!(config.terminals[0].name, "tpe-1");
    std::fs::write(&path, "[[terminal]]\nname = \"x y\"\naddress = \"h:1\"\n").unwrap();
    let err = Config::locate(Some(&path)).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:2: terminal[1].name: ", path.display())),
        "{err}"
    );
}

#[test]
fn demo_config_has_one_terminal_a_cashier_and_an_operator() {
    let config = Config::demo(
        "127.0.0.1:9999".to_owned(),
        Secret("demo-token-0123456789".to_owned()),
        Secret("operator-token-0123456789".to_owned()),
    );
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8443".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.data_dir, PathBuf::from("data"));
    assert_eq!(config.tls.dir, PathBuf::from("certs"));
    assert_eq!(config.terminals.len(), 1);
    let terminal = &config.terminals[0];
    assert_eq!(
        (terminal.name.as_str(), terminal.address.as_str()),
        ("demo", "127.0.0.1:9999")
    );
    assert_eq!(
        (terminal.pos_number.as_str(), terminal.timeout),
        ("01", Duration::from_secs(180))
    );
    let till = &config.tills[0];
    assert_eq!((till.name.as_str(), till.role), ("demo", Role::Cashier));
    assert_eq!(till.token.as_ref().unwrap().0, "demo-token-0123456789");
    assert_eq!(format!("{:?}", till.token), "Some(Secret(***))");
    let operator = &config.tills[1];
    assert_eq!(
        (operator.name.as_str(), operator.role),
        ("operator", Role::Operator)
    );
    assert_eq!(
        operator.token.as_ref().unwrap().0,
        "operator-token-0123456789"
    );
    assert_eq!(config.tills.len(), 2);
}
