//! `caisse-ap-relay report`: one local day of the journal, totalled per terminal, method and
//! currency, to compare with the terminal's end-of-day ticket. Reads the journal without
//! locking it, so it runs beside a live agent. Exit codes: 0 printed, 1 journal unreadable,
//! 2 bad `--day` or configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::macros::{format_description, time};
use time::{Date, OffsetDateTime};

use crate::engine::journal::{Journal, FILE_NAME};
use crate::report::{self, Zone};

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The day, in the shop's local time zone (default: today).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    pub day: Option<Date>,
    /// One machine-readable line per terminal, method and currency (amounts in minor units).
    #[arg(long)]
    pub csv: bool,
    /// Configuration file whose `data_dir` holds the journal (default
    /// `./caisse-ap-relay.toml`; none → the demo default `data/`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `report`.
pub fn run(args: ReportArgs) -> ExitCode {
    let data_dir = match super::locate_config(args.config.as_deref()) {
        Ok(config) => config.map(|c| c.server).unwrap_or_default().data_dir,
        Err(code) => return code,
    };
    let records = match Journal::read(&data_dir) {
        Ok(records) => records,
        Err(err) => {
            let file = data_dir.join(FILE_NAME);
            eprintln!("error: cannot read the journal {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let (day, zone) = day_and_zone(args.day);
    let report = report::aggregate(&records, day, zone.offset());
    print(&report, zone, args.csv, &data_dir);
    ExitCode::SUCCESS
}

/// The day asked (default today) and the local zone at its noon (now, for today).
fn day_and_zone(day: Option<Date>) -> (Date, Zone) {
    match day {
        Some(day) => (day, Zone::at(day.with_time(time!(12:00)).assume_utc())),
        None => {
            let now = OffsetDateTime::now_utc();
            let zone = Zone::at(now);
            (now.to_offset(zone.offset()).date(), zone)
        }
    }
}

fn print(report: &report::Report, zone: Zone, csv: bool, data_dir: &Path) {
    let journal = data_dir.join(FILE_NAME);
    if !journal.exists() {
        eprintln!("warning: no journal at {}", journal.display());
    }
    if csv {
        print!("{}", report::csv::render(report));
        eprint!("{}", report::table::warnings(report));
    } else {
        println!("Journal : {}", journal.display());
        print!("{}", report::table::render(report, zone));
    }
}

fn parse_day(text: &str) -> Result<Date, String> {
    let format = format_description!("[year]-[month]-[day]");
    Date::parse(text, format).map_err(|err| format!("expected a day like 2026-11-23 ({err})"))
}
