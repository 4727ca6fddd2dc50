//! Pairing, tokens, revocation and rate limits at the `Access` level, over a real store on disk.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caisse_ap_relay::access::{Access, AuthError, Clock, Closing, Store, Till};
use caisse_ap_relay::config::{Role, Secret, TillConfig};
use manual_clock::ManualClock;

use crate::manual_clock;

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const OTHER_PEER: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
const STATIC_TOKEN: &str = "static-secret-of-till-one";

fn configured() -> Vec<TillConfig> {
    vec![TillConfig {
        name: "till-1".to_owned(),
        token: Some(Secret(STATIC_TOKEN.to_owned())),
        terminals: None,
        role: Role::Cashier,
    }]
}

fn display_till() -> Till {
    Till {
        name: "screen".to_owned(),
        role: Role::Display,
        terminals: Some(vec!["tpe-2".to_owned()]),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    access: Arc<Access>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let access = Access::with_clock(&configured(), dir.path(), clock.clone()).unwrap();
    Fixture {
        dir,
        clock,
        access: Arc::new(access),
    }
}

impl Fixture {
    /// A code issued by a separate store handle, as the CLI process would.
    fn issue(&self, till: &Till) -> String {
        let store = Store::open(self.dir.path()).unwrap();
        store.issue_code(till, self.clock.now()).unwrap().code
    }
}

#[test]
fn a_code_pairs_once_and_its_token_authenticates() {
    let f = fixture();
    let code = f.issue(&display_till());
    let (till, token) = f.access.pair(&code, PEER).unwrap();
    assert_eq!(till, display_till());
    assert_eq!(token.len(), 64);
    assert_eq!(f.access.authenticate(&token, PEER), Ok(display_till()));
    assert_eq!(f.access.pair(&code, PEER), Err(AuthError::Unauthorized));

    // Another process (another Access on the same data_dir) knows the token too.
    let other = Access::new(&[], f.dir.path()).unwrap();
    assert_eq!(other.authenticate(&token, PEER), Ok(display_till()));
}

#[test]
fn an_expired_code_is_refused() {
    let f = fixture();
    let code = f.issue(&display_till());
    f.clock.advance(Duration::from_secs(10 * 60 + 1));
    assert_eq!(f.access.pair(&code, PEER), Err(AuthError::Unauthorized));
}

#[test]
fn a_code_still_works_just_before_expiry() {
    let f = fixture();
    let code = f.issue(&display_till());
    f.clock.advance(Duration::from_secs(10 * 60 - 1));
    assert!(f.access.pair(&code, PEER).is_ok());
}

#[test]
fn static_tokens_still_work_and_wrong_ones_do_not() {
    let f = fixture();
    let till = f.access.authenticate(STATIC_TOKEN, PEER).unwrap();
    assert_eq!(till.name, "till-1");
    assert!(till.may_use("anything"));
    assert_eq!(
        f.access.authenticate("static-secret-of-till-onE", PEER),
        Err(AuthError::Unauthorized)
    );
}

#[test]
fn the_sixth_wrong_attempt_in_a_minute_is_rate_limited_even_with_a_right_token() {
    let f = fixture();
    for _ in 0..5 {
        assert_eq!(
            f.access.authenticate("guess", PEER),
            Err(AuthError::Unauthorized)
        );
    }
    assert_eq!(
        f.access.authenticate(STATIC_TOKEN, PEER),
        Err(AuthError::RateLimited)
    );
    assert_eq!(f.access.pair("12345678", PEER), Err(AuthError::RateLimited));
    assert!(f.access.authenticate(STATIC_TOKEN, OTHER_PEER).is_ok());
    f.clock.advance(Duration::from_secs(60));
    assert!(f.access.authenticate(STATIC_TOKEN, PEER).is_ok());
}

#[test]
fn wrong_codes_count_towards_the_limit() {
    let f = fixture();
    let code = f.issue(&display_till());
    let wrong = if code == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    for attempt in [wrong, wrong, "1234", "abcdefgh", wrong] {
        assert_eq!(f.access.pair(attempt, PEER), Err(AuthError::Unauthorized));
    }
    assert_eq!(f.access.pair(&code, PEER), Err(AuthError::RateLimited));
    assert!(f.access.pair(&code, OTHER_PEER).is_ok());
}

#[tokio::test]
async fn a_revocation_by_another_process_is_announced_and_the_token_refused() {
    let f = fixture();
    let code = f.issue(&display_till());
    let (_, token) = f.access.pair(&code, PEER).unwrap();
    let mut revoked = f.access.revocations();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let watcher = f.access.spawn_watcher(shutdown.clone());

    let removed = Store::open(f.dir.path()).unwrap().revoke("screen").unwrap();
    assert_eq!(removed, 1);
    let name = tokio::time::timeout(Duration::from_secs(5), revoked.recv())
        .await
        .expect("a revocation within 5 s")
        .unwrap();
    assert_eq!(name, Closing::Revoked("screen".into()));
    assert_eq!(
        f.access.authenticate(&token, PEER),
        Err(AuthError::Unauthorized)
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("the watcher stops on shutdown")
        .unwrap();
}

#[test]
fn last_use_is_recorded_at_most_once_a_minute() {
    let f = fixture();
    let code = f.issue(&display_till());
    let (_, token) = f.access.pair(&code, PEER).unwrap();
    let store = Store::open(f.dir.path()).unwrap();
    let last_used = || store.read().unwrap().paired[0].last_used;
    assert_eq!(last_used(), None);

    f.access.authenticate(&token, PEER).unwrap();
    let first = last_used().expect("recorded on first use");
    f.clock.advance(Duration::from_secs(30));
    f.access.authenticate(&token, PEER).unwrap();
    assert_eq!(last_used(), Some(first));
    f.clock.advance(Duration::from_secs(31));
    f.access.authenticate(&token, PEER).unwrap();
    assert_eq!(last_used(), Some(first + 61));
}

#[test]
fn a_corrupt_store_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tills.json"), "{\"paired\": 1}").unwrap();
    let err = Access::new(&[], dir.path()).unwrap_err();
    assert!(err.to_string().contains("tills.json"), "{err}");
}
