//! Embeds the files under `static/` in the binary: writes a table of
//! `(path, include_bytes!(...))` that `web::assets` serves. Templates (files with a
//! `{{NAME}}` placeholder) are left out: the modules that fill them in include them.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=static");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.retain(|file| !std::fs::read(file).is_ok_and(|bytes| is_template(&bytes)));
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let name = file.strip_prefix(&root).expect("under static/");
        let name = name.to_string_lossy().replace('\\', "/");
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}) as &[u8]),\n",
            file.display().to_string()
        ));
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    std::fs::write(out, table).expect("write assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Whether `bytes` hold a `{{NAME}}` placeholder (`NAME` in capitals and underscores).
fn is_template(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(at, pair)| {
        pair == b"{{" && {
            let rest = &bytes[at + 2..];
            let name = rest
                .iter()
                .take_while(|b| b.is_ascii_uppercase() || **b == b'_');
            let len = name.count();
            len > 0 && rest[len..].starts_with(b"}}")
        }
    })
}
