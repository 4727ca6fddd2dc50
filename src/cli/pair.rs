//! `caisse-ap-relay pair --till NAME`: issues a one-time pairing code into the store in
//! `data_dir`; the till's page exchanges it with the running agent for a token (api.md §4).
//!
//! A till named in the config without a static token takes its role and terminals from
//! there; any other name gets them from the flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use super::till::{fail, format_utc, setup, Setup};
use crate::access::store::{unix_seconds, CODE_LIFETIME};
use crate::access::{Store, Till};
use crate::config::{rules, Role};

/// Arguments of `pair`.
#[derive(Debug, clap::Args)]
pub struct PairArgs {
    /// Till name, `[a-z0-9_-]{1,32}`.
    #[arg(long)]
    pub till: String,
    /// Role of a till not in the config: cashier (default), display or operator.
    #[arg(long)]
    pub role: Option<Role>,
    /// Terminals a till not in the config may use, comma-separated (default all).
    #[arg(long, value_delimiter = ',')]
    pub terminals: Option<Vec<String>>,
    /// Configuration file (default `./caisse-ap-relay.toml`; none → the demo's `data/`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `pair`.
pub fn run(args: PairArgs) -> ExitCode {
    let setup = match setup(args.config.as_deref()) {
        Ok(setup) => setup,
        Err(code) => return code,
    };
    let till = match till_to_pair(&args, &setup) {
        Ok(till) => till,
        Err(message) => return fail(2, message),
    };
    let command = format!("pair --till {}", till.name);
    if let Err(message) = crate::datadir::check_owner(&setup.data_dir, &command) {
        return fail(2, message);
    }
    let issued = Store::open(&setup.data_dir).and_then(|s| s.issue_code(&till, SystemTime::now()));
    match issued {
        Ok(code) => {
            println!("Pairing code for till \"{}\": {}", till.name, code.code);
            println!(
                "Single use, valid {} minutes (until {}). Enter it on the till's page.",
                CODE_LIFETIME.as_secs() / 60,
                format_utc(unix_seconds(code.expires))
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(1, err),
    }
}

fn till_to_pair(args: &PairArgs, setup: &Setup) -> Result<Till, String> {
    let name = &args.till;
    // The configuration's rule: a name `pair` accepts is one the file accepts too.
    if rules::name(name).is_err() {
        return Err(format!("till name \"{name}\": use 1 to 32 of a-z 0-9 _ -"));
    }
    if let Some(config) = setup.tills.iter().find(|t| &t.name == name) {
        if config.token.is_some() {
            return Err(format!(
                "till \"{name}\" has a static token in the configuration: remove it there to pair instead"
            ));
        }
        if args.role.is_some() || args.terminals.is_some() {
            return Err(format!(
                "till \"{name}\" is in the configuration: its role and terminals come from there"
            ));
        }
        return Ok(Till::from(config));
    }
    let unknown = args
        .terminals
        .iter()
        .flatten()
        .find(|t| !setup.terminals.contains(t));
    if let Some(terminal) = unknown {
        return Err(format!(
            "unknown terminal \"{terminal}\" (configured: {})",
            setup.terminals.join(", ")
        ));
    }
    Ok(Till {
        name: name.clone(),
        role: args.role.unwrap_or(Role::Cashier),
        terminals: args.terminals.clone(),
    })
}
