//! `caisse-ap-relay resolve ID --outcome approved|not_charged [--note TEXT]`: the cashier's
//! decision on an `unknown` transaction, taken on the agent's machine (contract §1, §10) —
//! the way out when no till can. Journaled with resolver `cli` (`resolution.till = "cli"`,
//! `by_role = "cli"`).
//!
//! With the agent running, the journal is locked: the request goes through the agent's
//! inbox (`engine::inbox`) and the agent announces the resolution to its tills as it would
//! a till's. Without a running agent, the command opens the journal itself and appends the
//! resolution. Either way it writes into `data_dir`, so only its owner may run it
//! (contract §7.6). Exit codes: 0 resolved, 1 refused (unknown id, not `unknown`) or no
//! answer, 2 bad configuration or arguments, or another user than `data_dir`'s owner.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::locate_config;
use super::till::fail;
use crate::agent::load_receipts;
use crate::config::ServerConfig;
use crate::engine::inbox::{self, Answer, Request};
use crate::engine::ledger::Seal;
use crate::engine::record::ResolvedAs;
use crate::engine::{Engine, EngineError, EngineOptions};

/// How long to wait for a running agent's answer.
const WAIT: Duration = Duration::from_secs(10);

/// Arguments of `resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The transaction id.
    pub id: String,
    /// What the terminal's ticket or journal says.
    #[arg(long, value_parser = parse_outcome)]
    pub outcome: ResolvedAs,
    /// Free text kept with the decision (e.g. who checked what).
    #[arg(long)]
    pub note: Option<String>,
    /// Configuration file whose `data_dir` holds the journal (default
    /// `./caisse-ap-relay.toml`; none → the demo default `data/`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn parse_outcome(value: &str) -> Result<ResolvedAs, String> {
    match value {
        "approved" => Ok(ResolvedAs::Approved),
        "not_charged" => Ok(ResolvedAs::NotCharged),
        _ => Err("expected approved (the ticket shows it paid) or not_charged".to_owned()),
    }
}

/// Runs `resolve`.
pub fn run(args: ResolveArgs) -> ExitCode {
    let server = match locate_config(args.config.as_deref()) {
        Ok(config) => config.map(|c| c.server).unwrap_or_default(),
        Err(code) => return code,
    };
    let outcome = outcome_name(args.outcome);
    let command = format!("resolve {} --outcome {outcome}", args.id);
    if let Err(message) = crate::datadir::check_owner(&server.data_dir, &command) {
        return fail(2, message);
    }
    let request = Request::Resolve {
        id: args.id,
        outcome: args.outcome,
        note: args.note,
    };
    let runtime = match super::one_shot_runtime(1) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(answer(&server, request)) {
        Ok(Answer::Done { record }) => {
            println!(
                "Transaction {} ({} minor units {}, terminal {}, till {}) resolved as {}.",
                record.id, record.amount, record.currency, record.terminal, record.till, outcome,
            );
            ExitCode::SUCCESS
        }
        Ok(Answer::Refused { message, .. }) => fail(1, message),
        Err(message) => fail(1, message),
    }
}

fn outcome_name(outcome: ResolvedAs) -> &'static str {
    match outcome {
        ResolvedAs::Approved => "approved",
        ResolvedAs::NotCharged => "not_charged",
    }
}

/// Resolves through the journal when it is free (the resolution's receipt signed with the
/// agent's key), else through the running agent.
async fn answer(server: &ServerConfig, request: Request) -> Result<Answer, String> {
    let data_dir = server.data_dir.as_path();
    let receipts = std::sync::Arc::new(load_receipts(server).await.map_err(|e| e.to_string())?);
    let seal: Seal = std::sync::Arc::new(move |record| receipts.seal(record));
    match Engine::start(&[], data_dir, EngineOptions::default(), Some(seal)).await {
        Ok(engine) => {
            let answer = engine.answer(request).await;
            engine.shutdown().await;
            Ok(answer)
        }
        Err(EngineError::Journal { source, .. }) if source.kind() == ErrorKind::WouldBlock => {
            let dir = data_dir.to_path_buf();
            let submitted =
                tokio::task::spawn_blocking(move || inbox::submit(&dir, &request, WAIT)).await;
            match submitted {
                Ok(Ok(Some(answer))) => Ok(answer),
                Ok(Ok(None)) => Err(format!(
                    "the running agent did not answer within {} s; check that it is running \
                     on {} and retry",
                    WAIT.as_secs(),
                    data_dir.display()
                )),
                Ok(Err(err)) => Err(format!(
                    "cannot write the request into {}: {err}; run as the agent's user",
                    data_dir.display()
                )),
                Err(err) => Err(err.to_string()),
            }
        }
        Err(err) => Err(err.to_string()),
    }
}
