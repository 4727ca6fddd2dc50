//! Independent implementations of the standards the agent speaks (JOSE, Standard Webhooks,
//! TypeScript), run as the scripts under `tests/js` (npm packages, `npm ci` there) and
//! `tests/py` (PyPI packages in `tests/py/.venv`), both installed by `.ci/run`.
//!
//! Without them a test skips with a message, except under `CI=true`, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Whether `dir` (a test tool directory) is installed; if not, says how to install it and
/// fails under CI.
fn installed(marker: &Path, how: &str) -> bool {
    if marker.exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} missing under CI: {how}", marker.display());
    }
    eprintln!("skipped: {} missing ({how})", marker.display());
    false
}

/// Runs `node tests/js/SCRIPT ARGS`; `None` when the npm packages are not installed.
pub fn node(script: &str, args: &[&str]) -> Option<Output> {
    node_with_input(script, args, b"")
}

/// [`node`] with `input` on its standard input.
pub fn node_with_input(script: &str, args: &[&str], input: &[u8]) -> Option<Output> {
    let dir = root().join("js");
    if !installed(&dir.join("node_modules"), "cd tests/js && npm ci") {
        return None;
    }
    let mut child = std::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().expect("a stdin");
    stdin.write_all(input).expect("node reads its input");
    drop(stdin);
    Some(child.wait_with_output().expect("node ends"))
}

/// Runs `tests/py/.venv/bin/python tests/py/SCRIPT ARGS`; `None` when the venv is absent.
pub fn python(script: &str, args: &[&str]) -> Option<Output> {
    let dir = root().join("py");
    let python = dir.join(".venv/bin/python");
    let how = "python3 -m venv tests/py/.venv && tests/py/.venv/bin/pip install -r tests/py/requirements.txt";
    if !installed(&python, how) {
        return None;
    }
    let output = std::process::Command::new(python)
        .arg(dir.join(script))
        .args(args)
        .output()
        .expect("python runs");
    Some(output)
}

/// Runs `tests/js/node_modules/.bin/TOOL ARGS` in `dir`; `None` when not installed.
pub fn npm_tool(tool: &str, args: &[&str], dir: &Path) -> Option<Output> {
    let bin = root().join("js/node_modules/.bin").join(tool);
    if !installed(&bin, "cd tests/js && npm ci") {
        return None;
    }
    let output = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the tool runs");
    Some(output)
}

/// The standard output of a run that must have succeeded.
pub fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}
