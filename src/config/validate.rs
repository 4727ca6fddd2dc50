//! From the raw file to the typed [`Config`]: applies the value rules with each value's
//! span, checks cross-references (unique names, known terminals, cert with key) and builds
//! the one-line [`ConfigError`].

use std::ops::Range;
use std::path::PathBuf;

use super::raw::{self, RawConfig, RawServer, RawTerminal, RawTill, RawTls, RawWebhook, Text};
use super::{
    rules, Config, Role, Secret, ServerConfig, TerminalConfig, TillConfig, TlsConfig, WebhookConfig,
};
use super::{
    DEFAULT_DATA_DIR, DEFAULT_DUPLICATE_WINDOW, DEFAULT_JOURNAL_RETENTION, DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_POS_NUMBER, DEFAULT_TIMEOUT, DEFAULT_TLS_DIR,
};
use crate::protocol::{TicketFormat, TicketRequest};

/// Why the configuration cannot be used; `Display` is one line naming the file (and, for a
/// bad value, the line and the field). The CLI prints it and exits 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist: fix the path.
    #[error("{file}: no such file")]
    NotFound {
        /// The path as given.
        file: String,
    },
    /// The file exists but cannot be read (permissions, not UTF-8, ...).
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A value is missing, misspelt or wrong: fix the named field.
    #[error("{file}:{line}: {field}: {message}")]
    Invalid {
        /// The file's name.
        file: String,
        /// 1-based line of the offending value.
        line: usize,
        /// Dotted path, arrays numbered from 1: `terminal[2].timeout`.
        field: String,
        /// What is wrong, one line.
        message: String,
    },
}

/// Parses and validates `text`, naming it `file` in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let ctx = Ctx { text, file };
    let raw: RawConfig = toml::from_str(text).map_err(|err| ctx.syntax(&err))?;
    let terminals = ctx.terminals(&raw.terminal)?;
    let tills = ctx.tills(&raw.till, &terminals)?;
    Ok(Config {
        server: ctx.server(raw.server)?,
        tls: ctx.tls(raw.tls)?,
        terminals,
        tills,
        webhooks: ctx.webhooks(&raw.webhook)?,
    })
}

/// The text being validated and its name, to turn spans into located errors.
struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    fn error(&self, span: Range<usize>, field: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: raw::line_of(self.text, span.start),
            field,
            message: message.replace('\n', " "),
        }
    }

    fn syntax(&self, err: &toml::de::Error) -> ConfigError {
        let offset = err.span().map_or(0, |span| span.start);
        let field = raw::field_at(self.text, offset);
        let field = if field.is_empty() {
            "(top level)".to_owned()
        } else {
            field
        };
        self.error(offset..offset, field, err.message().trim().to_owned())
    }

    fn check<T>(
        &self,
        value: &Text,
        field: &str,
        rule: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        rule(value.get_ref()).map_err(|message| self.error(value.span(), field.to_owned(), message))
    }

    fn check_or<T>(
        &self,
        value: Option<&Text>,
        field: &str,
        rule: impl Fn(&str) -> Result<T, String>,
        default: T,
    ) -> Result<T, ConfigError> {
        value.map_or(Ok(default), |value| self.check(value, field, rule))
    }

    /// Checks every entry of a list with `rule`, naming a bad one `field[N]` (N from 1).
    fn check_each<T, C: FromIterator<T>>(
        &self,
        list: &[Text],
        field: &str,
        rule: impl Fn(&str) -> Result<T, String>,
    ) -> Result<C, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, value)| self.check(value, &format!("{field}[{}]", i + 1), &rule))
            .collect()
    }

    /// Fails if `value` already appears in `seen` (at index i, reported as `what[i+1]`).
    fn unique(
        &self,
        seen: &[&str],
        value: &Text,
        field: &str,
        what: &str,
    ) -> Result<(), ConfigError> {
        match seen.iter().position(|s| *s == value.get_ref()) {
            Some(i) => Err(self.error(
                value.span(),
                field.to_owned(),
                format!("same as {what}[{}], must be unique", i + 1),
            )),
            None => Ok(()),
        }
    }

    fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = self.check_or(
            raw.listen.as_ref(),
            "server.listen",
            rules::listen,
            DEFAULT_LISTEN,
        )?;
        let onboarding = raw
            .onboarding
            .as_ref()
            .map(|v| self.check(v, "server.onboarding", rules::listen))
            .transpose()?;
        let allowed_origins = self.check_each(
            &raw.allowed_origins,
            "server.allowed_origins",
            rules::origin,
        )?;
        let data_dir = raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let metrics_from = match &raw.metrics_from {
            None => crate::net::local_ranges(),
            Some(list) => self.check_each(list, "server.metrics_from", rules::cidr)?,
        };
        let max_connections_per_address = match &raw.max_connections_per_address {
            None => DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            Some(value) => rules::connections(*value.get_ref()).map_err(|message| {
                self.error(
                    value.span(),
                    "server.max_connections_per_address".to_owned(),
                    message,
                )
            })?,
        };
        let duplicate_window = self.check_or(
            raw.duplicate_window.as_ref(),
            "server.duplicate_window",
            rules::window,
            DEFAULT_DUPLICATE_WINDOW,
        )?;
        let journal_retention = self.check_or(
            raw.journal_retention.as_ref(),
            "server.journal_retention",
            rules::retention,
            DEFAULT_JOURNAL_RETENTION,
        )?;
        let name = raw
            .name
            .as_ref()
            .map(|v| self.check(v, "server.name", rules::agent_name))
            .transpose()?;
        Ok(ServerConfig {
            listen,
            onboarding,
            allowed_origins,
            data_dir,
            metrics_from,
            max_connections_per_address,
            duplicate_window,
            refunds: raw.refunds.unwrap_or_default(),
            journal_retention,
            name,
        })
    }

    fn tls(&self, raw: RawTls) -> Result<TlsConfig, ConfigError> {
        let own = match (raw.cert, raw.key) {
            (Some(cert), Some(key)) => Some((cert.into_inner(), key.into_inner())),
            (None, None) => None,
            (Some(cert), None) => return Err(self.both(cert.span(), "tls.cert", "tls.key")),
            (None, Some(key)) => return Err(self.both(key.span(), "tls.key", "tls.cert")),
        };
        let extra_names =
            self.check_each(&raw.extra_names, "tls.extra_names", rules::extra_name)?;
        Ok(TlsConfig {
            dir: raw.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_TLS_DIR)),
            own,
            extra_names,
            name_constraints: raw.name_constraints.unwrap_or(true),
        })
    }

    fn both(&self, span: Range<usize>, field: &str, other: &str) -> ConfigError {
        let message = format!("needs {other} too (give both or neither)");
        self.error(span, field.to_owned(), message)
    }

    fn terminals(&self, raw: &[RawTerminal]) -> Result<Vec<TerminalConfig>, ConfigError> {
        let mut out: Vec<TerminalConfig> = Vec::with_capacity(raw.len());
        for (i, t) in raw.iter().enumerate() {
            let field = |key: &str| format!("terminal[{}].{key}", i + 1);
            let name = self.check(&t.name, &field("name"), rules::name)?;
            let seen: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
            self.unique(&seen, &t.name, &field("name"), "terminal")?;
            let pos_number = DEFAULT_POS_NUMBER.to_owned();
            out.push(TerminalConfig {
                name,
                address: self.check(&t.address, &field("address"), rules::address)?,
                pos_number: self.check_or(
                    t.pos_number.as_ref(),
                    &field("pos_number"),
                    rules::pos_number,
                    pos_number,
                )?,
                timeout: self.check_or(
                    t.timeout.as_ref(),
                    &field("timeout"),
                    rules::timeout,
                    DEFAULT_TIMEOUT,
                )?,
                guard_unknown: t.guard_unknown.unwrap_or(true),
                ticket: self.ticket(t, &field)?,
                send_reference: t.send_reference,
            });
        }
        Ok(out)
    }

    fn webhooks(&self, raw: &[RawWebhook]) -> Result<Vec<WebhookConfig>, ConfigError> {
        let mut out: Vec<WebhookConfig> = Vec::with_capacity(raw.len());
        for (i, w) in raw.iter().enumerate() {
            let field = |key: &str| format!("webhook[{}].{key}", i + 1);
            let name = self.check(&w.name, &field("name"), rules::name)?;
            let seen: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
            self.unique(&seen, &w.name, &field("name"), "webhook")?;
            out.push(WebhookConfig {
                name,
                url: self.check(&w.url, &field("url"), rules::webhook_url)?,
                secret: Secret(self.check(&w.secret, &field("secret"), rules::webhook_secret)?),
                all_events: self.check_or(
                    w.events.as_ref(),
                    &field("events"),
                    rules::webhook_events,
                    false,
                )?,
                ca: w.ca.clone(),
            });
        }
        Ok(out)
    }

    /// `ticket` and `ticket_format` of one terminal.
    fn ticket(
        &self,
        t: &RawTerminal,
        field: &dyn Fn(&str) -> String,
    ) -> Result<Option<TicketRequest>, ConfigError> {
        let copy = self.check_or(t.ticket.as_ref(), &field("ticket"), rules::ticket, None)?;
        let format = self.check_or(
            t.ticket_format.as_ref(),
            &field("ticket_format"),
            rules::ticket_format,
            TicketFormat::Text,
        )?;
        Ok(copy.map(|copy| TicketRequest { copy, format }))
    }

    fn tills(
        &self,
        raw: &[RawTill],
        terminals: &[TerminalConfig],
    ) -> Result<Vec<TillConfig>, ConfigError> {
        let known: Vec<&str> = terminals.iter().map(|t| t.name.as_str()).collect();
        let mut out: Vec<TillConfig> = Vec::with_capacity(raw.len());
        for (i, t) in raw.iter().enumerate() {
            let field = |key: &str| format!("till[{}].{key}", i + 1);
            let name = self.check(&t.name, &field("name"), rules::name)?;
            let seen: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
            self.unique(&seen, &t.name, &field("name"), "till")?;
            let token = self.till_token(raw, i, &field("token"))?;
            let terminals = t
                .terminals
                .as_ref()
                .map(|list| self.known_terminals(list, &known, &field("terminals")))
                .transpose()?;
            let role = t.role.unwrap_or(Role::Cashier);
            out.push(TillConfig {
                name,
                token,
                terminals,
                role,
            });
        }
        Ok(out)
    }

    /// Till `i`'s token: long enough, and not shared with an earlier till (a shared token
    /// would make the till ambiguous at authentication).
    fn till_token(
        &self,
        raw: &[RawTill],
        i: usize,
        field: &str,
    ) -> Result<Option<Secret>, ConfigError> {
        let Some(token) = &raw[i].token else {
            return Ok(None);
        };
        let value = self.check(token, field, rules::token)?;
        let earlier: Vec<&str> = raw[..i]
            .iter()
            .map(|t| t.token.as_ref().map_or("", |t| t.get_ref().as_str()))
            .collect();
        self.unique(&earlier, token, field, "till")?;
        Ok(Some(Secret(value)))
    }

    fn known_terminals(
        &self,
        list: &[Text],
        known: &[&str],
        field: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let is_known = |name: &str| {
            if known.contains(&name) {
                Ok(name.to_owned())
            } else {
                Err(format!("{name:?} is not a configured terminal"))
            }
        };
        self.check_each(list, field, is_known)
    }
}
