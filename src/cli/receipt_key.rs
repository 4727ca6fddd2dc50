//! `caisse-ap-relay receipt-key`: prints the receipt public key (a JWK, one line), so a POS
//! backend can pin it at onboarding (contract §8). The key is created if absent, as the
//! agent's first start would, and then only by `data_dir`'s owner (contract §7.6): another
//! user is refused and told whom to run it as.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ServerConfig;
use crate::receipt::Receipts;

/// Arguments of `receipt-key`.
#[derive(Debug, clap::Args)]
pub struct ReceiptKeyArgs {
    /// Configuration file whose `[server] data_dir` holds the key (default
    /// `./caisse-ap-relay.toml`; none → the demo default `data/`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `receipt-key`: exit 2 on a bad configuration or key file.
pub fn run(args: ReceiptKeyArgs) -> ExitCode {
    let server = match super::locate_config(args.config.as_deref()) {
        Ok(config) => config.map(|c| c.server).unwrap_or_default(),
        Err(code) => return code,
    };
    let ServerConfig { data_dir, name, .. } = server;
    let issuer = name.unwrap_or_else(crate::receipt::default_issuer);
    if !data_dir.join(crate::receipt::FILE_NAME).exists() {
        if let Err(message) = crate::datadir::check_owner(&data_dir, "receipt-key") {
            return super::till::fail(2, message);
        }
    }
    match Receipts::load_or_create(&data_dir, &issuer) {
        Ok(receipts) => {
            println!("{}", receipts.jwk_json());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(2)
        }
    }
}
