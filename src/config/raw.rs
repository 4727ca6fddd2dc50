//! The configuration file as written: serde structs that keep every value's span, so a
//! semantic error can name its line, and the mapping of a byte offset to a line and a field
//! path for TOML syntax and type errors. No rule beyond "known keys, right types" lives here.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{Refunds, Role};

/// A spanned string value.
pub type Text = Spanned<String>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub terminal: Vec<RawTerminal>,
    #[serde(default)]
    pub till: Vec<RawTill>,
    #[serde(default)]
    pub webhook: Vec<RawWebhook>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Text>,
    pub onboarding: Option<Text>,
    #[serde(default)]
    pub allowed_origins: Vec<Text>,
    pub data_dir: Option<PathBuf>,
    pub metrics_from: Option<Vec<Text>>,
    pub max_connections_per_address: Option<Spanned<i64>>,
    pub duplicate_window: Option<Text>,
    pub journal_retention: Option<Text>,
    pub refunds: Option<Refunds>,
    pub name: Option<Text>,
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub dir: Option<PathBuf>,
    pub cert: Option<Spanned<PathBuf>>,
    pub key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub extra_names: Vec<Text>,
    pub name_constraints: Option<bool>,
}

/// One `[[terminal]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTerminal {
    pub name: Text,
    pub address: Text,
    pub pos_number: Option<Text>,
    pub timeout: Option<Text>,
    pub guard_unknown: Option<bool>,
    pub ticket: Option<Text>,
    pub ticket_format: Option<Text>,
    #[serde(default)]
    pub send_reference: bool,
}

/// One `[[till]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTill {
    pub name: Text,
    pub token: Option<Text>,
    pub terminals: Option<Vec<Text>>,
    pub role: Option<Role>,
}

/// One `[[webhook]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Text,
    pub url: Text,
    pub secret: Text,
    pub events: Option<Text>,
    pub ca: Option<PathBuf>,
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The field path (`terminal[2].timeout`, `server`) of the line holding byte `offset`,
/// found by scanning table headers above it; arrays of tables are numbered from 1.
/// Inline tables and multi-line values get the path of their key's line, which is enough
/// to point an operator at the mistake.
pub fn field_at(text: &str, offset: usize) -> String {
    let line_no = line_of(text, offset);
    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in text.lines().take(line_no) {
        if let Some(header) = header_of(line.trim(), &mut counts) {
            table = header;
        }
    }
    let current = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let key = current
        .split_once('=')
        .map(|(key, _)| key.trim().trim_matches('"').to_owned())
        .filter(|key| !key.is_empty() && !current.starts_with('['));
    match (table.is_empty(), key) {
        (_, None) => table,
        (true, Some(key)) => key,
        (false, Some(key)) => format!("{table}.{key}"),
    }
}

/// The path named by a `[table]` or `[[array]]` header line, counting array entries.
fn header_of(line: &str, counts: &mut Vec<(String, usize)>) -> Option<String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
        let name = name.trim().to_owned();
        let index = match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                counts.push((name.clone(), 1));
                1
            }
        };
        return Some(format!("{name}[{index}]"));
    }
    let name = line.strip_prefix('[').and_then(|l| l.strip_suffix(']'))?;
    Some(name.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_follow_headers() {
        let text = "a = 1\n[server]\nlisten = \"x\"\n[[terminal]]\nname = \"a\"\n\
                    [[till]]\nname = \"t\"\n[[terminal]] # second\nname = \"b\"\n";
        assert_eq!(field_at(text, 0), "a");
        assert_eq!(
            field_at(text, text.find("listen").unwrap()),
            "server.listen"
        );
        assert_eq!(
            field_at(text, text.find("\"a\"").unwrap()),
            "terminal[1].name"
        );
        assert_eq!(field_at(text, text.find("\"t\"").unwrap()), "till[1].name");
        assert_eq!(
            field_at(text, text.find("\"b\"").unwrap()),
            "terminal[2].name"
        );
        assert_eq!(field_at(text, text.find("[[till]]").unwrap()), "till[1]");
        assert_eq!(line_of(text, text.find("\"b\"").unwrap()), 9);
    }
}
