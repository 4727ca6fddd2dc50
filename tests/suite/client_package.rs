//! The browser client as an npm package (`static/package.json`): `npm pack` ships the module
//! and its declarations, and `client.d.ts` type-checks (TypeScript, `tsc --noEmit`) against
//! `tests/js/typed-example.ts`, which imports the package by name and uses every export,
//! method and event.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::independent::{npm_tool, succeeded};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_declarations_type_check_against_a_typed_example() {
    let Some(output) = npm_tool("tsc", &["-p", "."], &root().join("tests/js")) else {
        return;
    };
    assert!(
        output.status.success(),
        "tsc: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn npm_pack_ships_the_module_and_its_types() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("static/package.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["type"], "module");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["exports"]["."]["types"], "./client.d.ts");
    let output = Command::new("npm")
        .args(["pack", "--dry-run", "--json"])
        .current_dir(root().join("static"))
        .output()
        .expect("npm runs");
    let packed: serde_json::Value = serde_json::from_str(&succeeded(&output)).unwrap();
    let mut files: Vec<&str> = packed[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["client.d.ts", "client.js", "package.json"]);
}

/// docs/backend.md shows the verification code CI runs, byte for byte.
#[test]
fn the_backend_guide_shows_the_code_ci_runs() {
    let guide = std::fs::read_to_string(root().join("docs/backend.md")).unwrap();
    for script in [
        "tests/js/verify-receipt.mjs",
        "tests/py/verify_receipt.py",
        "tests/js/verify-webhook.mjs",
    ] {
        let code = std::fs::read_to_string(root().join(script)).unwrap();
        assert!(
            guide.contains(&code),
            "docs/backend.md lacks {script} as it is"
        );
    }
}
