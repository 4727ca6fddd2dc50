//! Parses arbitrary text as the configuration file: never a panic, and every refusal is
//! one line that names the file.
#![no_main]

use caisse_ap_relay::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::from_str_named(text, "fuzz.toml") {
        let shown = error.to_string();
        assert!(shown.starts_with("fuzz.toml"), "{shown}");
        assert!(!shown.contains('\n'), "{shown:?}");
    }
});
