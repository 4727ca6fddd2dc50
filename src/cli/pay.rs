//! `caisse-ap-relay pay`: one transaction straight to a terminal, without the agent.
//!
//! Progress goes to stderr, the result to stdout (human text, or one JSON object with
//! `--json`) as soon as the answer decides it (api.md §7.1); the command exits when the
//! drain ends, and prints the result again only if fields that came meanwhile changed it
//! (a later line with the same state carries more details). Exit codes: 0 approved,
//! 1 declined, 2 not_sent (and bad arguments), 3 unknown.

use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use serde_json::json;

use crate::engine::record::{State, TxResult};
use crate::protocol::{
    parse_amount, Action, Currency, Method, PaymentRequest, Ticket, TicketCopy, TicketFormat,
    TicketKind, TicketRequest,
};
use crate::terminal::{transact, Hooks, Outcome, Progress, Timeouts};

/// Arguments of `pay`.
#[derive(Debug, clap::Args)]
pub struct PayArgs {
    /// Terminal address, HOST:PORT.
    #[arg(long)]
    pub terminal: String,
    /// Amount in major units: 12.45, 12,45 or 12.
    #[arg(long)]
    pub amount: String,
    /// ISO 4217 currency, alphabetic (EUR) or numeric (978).
    #[arg(long, default_value = "EUR", value_parser = parse_currency)]
    pub currency: Currency,
    /// Refund instead of debit.
    #[arg(long)]
    pub refund: bool,
    /// Pay by cheque instead of card.
    #[arg(long, conflicts_with = "ancv")]
    pub check: bool,
    /// Pay with ANCV chèques-vacances (CC=00V) instead of card.
    #[arg(long)]
    pub ancv: bool,
    /// Ask the terminal for its ticket (CK) and print it: customer, merchant or both.
    /// Not every terminal accepts CK (see docs/protocol.md).
    #[arg(long, value_parser = parse_ticket)]
    pub ticket: Option<TicketCopy>,
    /// POS number sent in CA (two digits).
    #[arg(long, default_value = "01")]
    pub pos: String,
    /// Deadline for the terminal's answer, e.g. 180s.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_ticket(value: &str) -> Result<TicketCopy, String> {
    crate::config::rules::ticket(value)?.ok_or_else(|| "use customer, merchant or both".into())
}

fn parse_currency(code: &str) -> Result<Currency, String> {
    Currency::parse(code).ok_or_else(|| format!("unknown ISO 4217 currency {code:?}"))
}

impl PayArgs {
    fn request(&self) -> Result<PaymentRequest, String> {
        let amount = parse_amount(&self.amount, &self.currency).map_err(|e| e.to_string())?;
        let action = if self.refund {
            Action::Refund
        } else {
            Action::Debit
        };
        let method = match (self.check, self.ancv) {
            (true, _) => Method::Check,
            (_, true) => Method::Ancv,
            _ => Method::Card,
        };
        let request = PaymentRequest::new(amount, self.currency, action, method, &self.pos)
            .map_err(|e| e.to_string())?;
        Ok(match self.ticket {
            Some(copy) => request.with_ticket(TicketRequest {
                copy,
                format: TicketFormat::Text,
            }),
            None => request,
        })
    }
}

/// Prints progress to stderr and each new result line to stdout.
struct Printer<'a> {
    args: &'a PayArgs,
    request: &'a PaymentRequest,
    printed: Option<String>,
}

impl Printer<'_> {
    /// Prints the result line of `outcome` unless it is the one already printed.
    fn print(&mut self, outcome: &Outcome) {
        let line = if self.args.json {
            to_json(self.args, self.request, outcome).to_string()
        } else {
            human(self.request, outcome)
        };
        if self.printed.as_ref() != Some(&line) {
            println!("{line}");
            self.printed = Some(line);
        }
    }
}

impl Hooks for Printer<'_> {
    async fn before_send(&mut self) -> bool {
        true
    }

    async fn progress(&mut self, step: Progress) {
        match step {
            Progress::Sent => eprintln!("sent: demande envoyée au terminal"),
            Progress::WaitingCard => eprintln!("waiting_card: en attente de la carte"),
        }
    }

    async fn decided(&mut self, outcome: &Outcome) {
        self.print(outcome);
    }
}

/// Runs `pay`.
pub fn run(args: PayArgs) -> ExitCode {
    let request = match args.request() {
        Ok(request) => request,
        Err(message) => {
            let _ = clap::Error::raw(ErrorKind::ValueValidation, format!("{message}\n")).print();
            return ExitCode::from(2);
        }
    };
    let timeouts = Timeouts {
        deadline: args.timeout,
        ..Timeouts::default()
    };
    let runtime = match super::one_shot_runtime(2) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let mut printer = Printer {
        args: &args,
        request: &request,
        printed: None,
    };
    let outcome = runtime.block_on(transact(&args.terminal, &request, &timeouts, &mut printer));
    printer.print(&outcome);
    if !args.json {
        if let Outcome::Approved(answer) | Outcome::Declined(answer) = &outcome {
            print!("{}", tickets(&answer.ticket));
        }
    }
    ExitCode::from(exit_code(&outcome))
}

fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Approved(_) => 0,
        Outcome::Declined(_) => 1,
        Outcome::NotSent { .. } => 2,
        Outcome::Unknown { .. } => 3,
    }
}

fn to_json(args: &PayArgs, request: &PaymentRequest, outcome: &Outcome) -> serde_json::Value {
    json!({
        "terminal": args.terminal,
        "amount": request.amount,
        "currency": request.currency.alpha,
        "action": request.action,
        "method": request.method,
        "state": State::from(outcome),
        "result": TxResult::from(outcome.clone()),
    })
}

/// Each ticket under a "Ticket CB" heading naming its copy.
fn tickets(tickets: &[Ticket]) -> String {
    let mut out = String::new();
    for ticket in tickets {
        let kind = match ticket.kind {
            Some(TicketKind::Customer) => " (client)",
            Some(TicketKind::Merchant) => " (commerçant)",
            None => "",
        };
        out.push_str(&format!("\n--- Ticket CB{kind} ---\n{}\n", ticket.text));
    }
    out
}

fn human(request: &PaymentRequest, outcome: &Outcome) -> String {
    let money = |minor| request.currency.format(minor);
    match outcome {
        Outcome::Approved(a) if a.partial => format!(
            "PARTIAL / PAIEMENT PARTIEL: {} approved of {}; collect the rest",
            money(a.approved_amount.unwrap_or_default()),
            money(request.amount)
        ),
        Outcome::Approved(a) => {
            let card = [&a.card.application, &a.card.entry_mode, &a.card.pan];
            let details: Vec<&str> = card.into_iter().flatten().map(String::as_str).collect();
            let auth = a.authorization.as_deref().unwrap_or("-");
            let details = details.join(", ");
            format!(
                "APPROVED / ACCEPTÉ: {} ({details}; auth {auth})",
                money(request.amount)
            )
        }
        Outcome::Declined(a) => format!(
            "DECLINED / REFUSÉ: AF {} {} ({})",
            a.af.as_deref().unwrap_or("-"),
            a.reason.as_deref().unwrap_or("no reason given"),
            a.label.as_deref().unwrap_or("-")
        ),
        Outcome::NotSent { detail } => {
            format!("NOT SENT / NON ENVOYÉ: {detail}; nothing was charged, safe to retry")
        }
        Outcome::Unknown { reason, detail, .. } => format!(
            "UNKNOWN / INCONNU ({reason}): {detail}; check the terminal's ticket before retrying"
        ),
    }
}
