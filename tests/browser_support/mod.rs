//! Headless Chromium for the browser tests. Each browser gets its own HOME whose NSS database
//! trusts the agent's generated CA (so TLS is verified for real: no certificate flag), a fresh
//! profile, and DevTools on a free loopback port read from `DevToolsActivePort`.
//! Without Chromium the tests print a skip message and pass, except under `CI=true`.
// Each browser test file uses a part of these helpers.
#![allow(dead_code, unused_imports)]

pub mod cdp;
pub mod page;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use cdp::Cdp;
pub use page::{q, tid, Page, DEADLINE};

/// Debian's Chromium launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// NSS's certificate tool (package libnss3-tools).
const CERTUTIL: &str = "certutil";
/// Headless, quiet (no updates, no first-run, no keyring), DevTools on a free port.
const FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--password-store=basic",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
    "about:blank",
];

/// A running headless Chromium; killed on drop.
pub struct Browser {
    cdp: Arc<Cdp>,
    child: Child,
    _home: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

/// Whether the tools the browser tests need are installed; fails under `CI=true` when not.
pub fn available(test: &str) -> bool {
    let certutil = Command::new(CERTUTIL)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if Path::new(CHROMIUM).exists() && certutil {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {CHROMIUM} and {CERTUTIL} are required when CI=true (apt-get install chromium libnss3-tools)"
    );
    eprintln!("skipping {test}: {CHROMIUM} or {CERTUTIL} is not installed");
    false
}

impl Browser {
    /// Starts Chromium trusting the CA in the PEM file `ca` (and no other added one), or,
    /// with `None`, an empty NSS database.
    pub async fn launch(ca: Option<&Path>) -> Browser {
        let home = tempfile::tempdir().unwrap();
        trust_ca(home.path(), ca);
        let profile = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("chromium.log")).unwrap();
        let child = Command::new(CHROMIUM)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(FLAGS)
            .env("HOME", home.path())
            // A known browser language (English) whatever the machine's locale.
            .env("LANG", "en_US.UTF-8")
            .env_remove("LANGUAGE")
            .env_remove("LC_ALL")
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_CACHE_HOME", home.path().join(".cache"))
            // Chromium's scratch directories go away with the temporary HOME.
            .env("TMPDIR", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("chromium starts");
        let (port, path) = devtools_endpoint(profile.path(), home.path()).await;
        let cdp = Arc::new(Cdp::connect(port, &path).await);
        Browser {
            cdp,
            child,
            _home: home,
            _profile: profile,
        }
    }

    /// A new tab.
    pub async fn page(&self) -> Page {
        Page::open(self.cdp.clone()).await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `home/.pki/nssdb` (where Chromium on Linux reads user trust) trusting `ca`.
fn trust_ca(home: &Path, ca: Option<&Path>) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    certutil(&["-N", "-d", &db, "--empty-password"]);
    let Some(ca) = ca.and_then(Path::to_str) else {
        return;
    };
    certutil(&[
        "-A",
        "-d",
        &db,
        "-t",
        "C,,",
        "-n",
        "caisse-ap-relay-test",
        "-i",
        ca,
    ]);
}

fn certutil(args: &[&str]) {
    let out = Command::new(CERTUTIL).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "certutil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Port and browser path written by Chromium into `DevToolsActivePort` once it listens.
async fn devtools_endpoint(profile: &Path, home: &Path) -> (u16, String) {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some((port, path)) = text.split_once('\n') {
            if let (Ok(port), true) = (port.trim().parse(), path.trim().starts_with('/')) {
                return (port, path.trim().to_owned());
            }
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(home.join("chromium.log")).unwrap_or_default();
            panic!("Chromium wrote no DevToolsActivePort in time; its log:\n{log}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
