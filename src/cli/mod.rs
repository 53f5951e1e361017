//! The `lsm` command line: argument parsing and the embedded REPL.

pub mod repl;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::engine::{Db, Options};

/// Command-line arguments of `lsm`.
#[derive(Debug, Parser)]
#[command(name = "lsm", version, about = "An LSM-tree key-value store")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `lsm` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Interactive shell over an embedded database (reads commands from stdin too).
    Repl {
        /// Data directory.
        #[arg(long, default_value = "./.lsmdata")]
        data_dir: PathBuf,
    },
}

/// Runs `lsm` with the process's arguments.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Repl { data_dir } => {
            let db = Db::open(&data_dir, Options::default())
                .with_context(|| format!("opening {}", data_dir.display()))?;
            let failures = repl::run(db.clone())?;
            db.close().context("closing the database")?;
            Ok(if failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Logs go to standard error, filtered by `RUST_LOG` (default: warnings and errors).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
