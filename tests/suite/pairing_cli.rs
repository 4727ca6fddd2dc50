//! `pair` and `till` through the built binary: the CLI process writes the pairing store, a
//! separate `Access` (as the agent would) uses it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caisse_ap_relay::access::{Access, AuthError, Till};
use caisse_ap_relay::config::{Config, Role};
use manual_clock::ManualClock;

use crate::common::binary::pairing_code;
use crate::manual_clock;

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const STATIC_TOKEN: &str = "static-token-of-the-first-till";

struct Shop {
    _dir: tempfile::TempDir,
    config_file: PathBuf,
    config: Config,
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config_file = dir.path().join("relay.toml");
    let text = format!(
        r#"
[server]
data_dir = "{}"

[[terminal]]
name = "tpe-1"
address = "127.0.0.1:8888"

[[terminal]]
name = "tpe-2"
address = "127.0.0.1:8889"

[[till]]
name = "till-1"
token = "{STATIC_TOKEN}"

[[till]]
name = "display-1"
role = "display"
terminals = ["tpe-2"]
"#,
        data_dir.display()
    );
    std::fs::write(&config_file, text).unwrap();
    let config = Config::load(&config_file).unwrap();
    Shop {
        _dir: dir,
        config_file,
        config,
    }
}

impl Shop {
    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
            .args(args)
            .arg("--config")
            .arg(&self.config_file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains(STATIC_TOKEN), "{stderr}");
        output
    }

    /// Runs `pair` and returns the code it printed.
    fn pair(&self, args: &[&str]) -> String {
        let output = self.run(&[&["pair"], args].concat());
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "{stdout}");
        let code = pairing_code(&stdout);
        assert!(!String::from_utf8_lossy(&output.stderr).contains(&code));
        code
    }

    fn data_dir(&self) -> &Path {
        &self.config.server.data_dir
    }

    fn access(&self) -> Access {
        Access::new(&self.config.tills, self.data_dir()).unwrap()
    }

    fn stdout(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }
}

#[test]
fn a_code_from_the_cli_pairs_once_in_the_agent() {
    let shop = shop();
    let code = shop.pair(&[
        "--till",
        "kiosk",
        "--role",
        "display",
        "--terminals",
        "tpe-1",
    ]);
    let access = shop.access();
    let (till, token) = access.pair(&code, PEER).unwrap();
    let expected = Till {
        name: "kiosk".to_owned(),
        role: Role::Display,
        terminals: Some(vec!["tpe-1".to_owned()]),
    };
    assert_eq!(till, expected);
    assert_eq!(access.authenticate(&token, PEER), Ok(expected));
    assert_eq!(access.pair(&code, PEER), Err(AuthError::Unauthorized));
}

#[test]
fn a_configured_till_takes_its_role_and_terminals_from_the_config() {
    let shop = shop();
    let code = shop.pair(&["--till", "display-1"]);
    let (till, _) = shop.access().pair(&code, PEER).unwrap();
    assert_eq!(till.role, Role::Display);
    assert!(till.may_use("tpe-2") && !till.may_use("tpe-1"));
}

#[test]
fn an_expired_cli_code_is_refused() {
    let shop = shop();
    let code = shop.pair(&["--till", "kiosk"]);
    let later = SystemTime::now() + Duration::from_secs(10 * 60 + 5);
    let clock = Arc::new(ManualClock::new(later));
    let access = Access::with_clock(&shop.config.tills, shop.data_dir(), clock).unwrap();
    assert_eq!(access.pair(&code, PEER), Err(AuthError::Unauthorized));
}

#[test]
fn till_list_shows_static_unpaired_and_paired_tills() {
    let shop = shop();
    let code = shop.pair(&["--till", "kiosk", "--terminals", "tpe-1,tpe-2"]);
    let pending = shop.stdout(&["till", "list"]);
    assert!(
        pending.contains("pending") && pending.contains("code expires"),
        "{pending}"
    );
    assert!(!pending.contains(&code));
    let access = shop.access();
    let (_, token) = access.pair(&code, PEER).unwrap();
    access.authenticate(&token, PEER).unwrap();

    let list = shop.stdout(&["till", "list"]);
    let line = |name: &str| {
        let found = list.lines().find(|l| l.starts_with(&format!("{name} ")));
        found
            .unwrap_or_else(|| panic!("no {name} in\n{list}"))
            .to_owned()
    };
    assert!(list.starts_with("NAME"), "{list}");
    assert!(line("till-1").contains("static"), "{list}");
    let display = line("display-1");
    assert!(
        display.contains("unpaired") && display.contains("tpe-2"),
        "{list}"
    );
    let kiosk = line("kiosk");
    assert!(
        kiosk.contains("paired") && kiosk.contains("cashier"),
        "{list}"
    );
    assert!(
        kiosk.contains("tpe-1,tpe-2") && kiosk.matches("UTC").count() == 2,
        "{list}"
    );
    assert!(!list.contains("pending"), "the used code is gone: {list}");
    assert!(!list.contains(&token) && !list.contains(STATIC_TOKEN));
}

#[test]
fn till_revoke_removes_the_token() {
    let shop = shop();
    let code = shop.pair(&["--till", "kiosk"]);
    let access = shop.access();
    let (_, token) = access.pair(&code, PEER).unwrap();

    let out = shop.stdout(&["till", "revoke", "kiosk"]);
    assert!(out.contains("kiosk"), "{out}");
    assert_eq!(
        access.authenticate(&token, PEER),
        Err(AuthError::Unauthorized)
    );
    assert!(!shop.stdout(&["till", "list"]).contains("kiosk"));

    let again = shop.run(&["till", "revoke", "kiosk"]);
    assert_eq!(again.status.code(), Some(1));
    let static_till = shop.run(&["till", "revoke", "till-1"]);
    assert_eq!(static_till.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&static_till.stderr).contains("static token"));
}

#[test]
fn bad_pair_requests_exit_2_and_issue_nothing() {
    let shop = shop();
    for args in [
        &["pair", "--till", "Bad Name"][..],
        &["pair", "--till", "till-1"],
        &["pair", "--till", "display-1", "--role", "cashier"],
        &["pair", "--till", "kiosk", "--terminals", "tpe-9"],
        &["pair", "--till", "kiosk", "--role", "boss"],
    ] {
        let output = shop.run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(!output.stderr.is_empty());
    }
    assert!(!shop.data_dir().join("tills.json").exists());
}

#[test]
fn a_bad_config_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nlisten = 12\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_caisse-ap-relay"))
        .args(["till", "list", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.toml"));
}
