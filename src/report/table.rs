//! The report for people, in French like the terminal's own ticket: a header naming the day
//! and its time zone, one table line per terminal, method and currency, a totals line per
//! currency, a legend, then warnings (unresolved `unknown`, in progress, undated).
//!
//! Cells read "count / amount"; amounts use the currency's exponent and a decimal comma.

use std::fmt::Write;

use time::macros::format_description;

use super::{exponent, offset_text, Pending, Report, Tally, Totals, Zone};
use crate::engine::record::State;
use crate::protocol::{Action, Method};

/// Column titles; the first three are text (left-aligned), the rest numbers.
const HEADER: [&str; 13] = [
    "Terminal",
    "Moyen",
    "Devise",
    "Débits",
    "Rembours.",
    "Net",
    "Refusés",
    "Non envoyés",
    "Inc. payés",
    "Inc. non débités",
    "Inc. à vérifier",
    "Doublons conf.",
    "Remb. liés",
];
const TEXT_COLUMNS: usize = 3;

const LEGEND: &str = "\
Légende (chaque case : nombre / montant ; - : aucune) :
  Débits            paiements acceptés, au montant accepté (acceptation partielle comprise)
  Rembours.         remboursements acceptés
  Net               Débits - Rembours. ; le ticket de fin de journée (télécollecte) du
                    terminal doit montrer Net, plus les Inc. payés
  Refusés           refusés par le terminal ou la banque : rien n'a été débité
  Non envoyés       la demande n'a jamais atteint le terminal : rien n'a été débité
  Inc. payés        issue inconnue, le caissier a vu le paiement sur le ticket (hors Net)
  Inc. non débités  issue inconnue, le caissier a vu que rien n'a été débité
  Inc. à vérifier   issue inconnue, pas encore vérifiée : voir la liste ci-dessous
  Doublons conf.    le caissier a confirmé un paiement identique à un paiement récent
                    (quelle qu'en soit l'issue, déjà compté dans les colonnes précédentes)
  Remb. liés        remboursements rattachés au paiement d'origine (idem)
";

/// The whole human report.
pub fn render(report: &Report, zone: Zone) -> String {
    let mut out = header(report, zone);
    if report.rows.is_empty() {
        out.push_str("Aucune transaction ce jour.\n");
    } else {
        out.push_str(&table(report));
        out.push('\n');
        out.push_str(LEGEND);
    }
    out.push_str(&warnings(report));
    out
}

fn header(report: &Report, zone: Zone) -> String {
    let zone = match zone {
        Zone::Local(offset) => format!("heure locale, UTC{}", offset_text(offset)),
        Zone::Utc => "UTC (fuseau local inconnu)".to_owned(),
    };
    format!("Rapport du {} ({zone})\n\n", report.day)
}

fn cells(report: &Report) -> Vec<Vec<String>> {
    let mut lines = vec![HEADER.iter().map(|h| (*h).to_owned()).collect()];
    for row in &report.rows {
        let method = method_label(row.method).to_owned();
        lines.push(line(
            [row.terminal.clone(), method],
            &row.currency,
            &row.totals,
        ));
    }
    for (currency, totals) in report.currency_totals() {
        lines.push(line(
            ["TOTAL".to_owned(), String::new()],
            &currency,
            &totals,
        ));
    }
    lines
}

fn line(labels: [String; 2], currency: &str, totals: &Totals) -> Vec<String> {
    let exp = exponent(currency);
    let tally = |t: &Tally| match t.count {
        0 => "-".to_owned(),
        n => format!("{n} / {}", format_amount(t.amount.into(), exp)),
    };
    let tallies = totals.tallies();
    let mut line = Vec::from(labels);
    line.push(currency.to_owned());
    line.extend(tallies[..2].iter().map(tally));
    line.push(format_amount(totals.net(), exp));
    line.extend(tallies[2..].iter().map(tally));
    line
}

/// The aligned table, with rules under the header and above the totals.
fn table(report: &Report) -> String {
    let mut lines = layout(&cells(report));
    let rule = "-".repeat(lines.iter().map(|l| l.chars().count()).max().unwrap_or(0));
    lines.insert(1 + report.rows.len(), rule.clone());
    lines.insert(1, rule);
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Pads the cells into aligned columns: text left, numbers right.
fn layout(lines: &[Vec<String>]) -> Vec<String> {
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |line: &Vec<String>| {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c < TEXT_COLUMNS {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    lines.iter().map(pad).collect()
}

/// What the shop must look at: unresolved `unknown`, in progress, undated records.
pub fn warnings(report: &Report) -> String {
    let mut out = String::new();
    if !report.unresolved.is_empty() {
        let n = report.unresolved.len();
        let _ = writeln!(
            out,
            "\nATTENTION : {n} transaction(s) à l'issue inconnue, à vérifier sur le ticket du terminal :"
        );
        report
            .unresolved
            .iter()
            .for_each(|p| out.push_str(&pending_line(p)));
    }
    if !report.in_progress.is_empty() {
        let n = report.in_progress.len();
        let _ = writeln!(out, "\nEn cours, non comptées ({n}) :");
        report
            .in_progress
            .iter()
            .for_each(|p| out.push_str(&pending_line(p)));
    }
    if !report.undated.is_empty() {
        let ids = report.undated.join(", ");
        let _ = writeln!(out, "\nDate illisible, non comptées : {ids}");
    }
    out
}

fn pending_line(p: &Pending) -> String {
    let time = format_description!("[hour]:[minute]:[second]");
    let at = p.created_at.format(time).unwrap_or_default();
    let action = match p.action {
        Action::Debit => "débit",
        Action::Refund => "remboursement",
    };
    let amount = format_amount(p.amount.into(), exponent(&p.currency));
    let state = match p.state {
        State::Unknown => String::new(),
        other => format!("  ({})", state_code(other)),
    };
    format!(
        "  - {at}  {}  {}  {action}  {amount} {}{state}\n",
        p.id, p.terminal, p.currency
    )
}

fn state_code(state: State) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn method_label(method: Method) -> &'static str {
    match method {
        Method::Card => "carte",
        Method::Check => "chèque",
        Method::Ancv => "ANCV",
    }
}

/// Formats minor units with `exponent` decimals and a decimal comma: `-1245, 2` → "-12,45".
pub fn format_amount(minor: i128, exponent: u8) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{minor}");
    }
    let unit = 10u128.pow(u32::from(exponent));
    let width = usize::from(exponent);
    format!("{sign}{},{:0width$}", minor / unit, minor % unit)
}
