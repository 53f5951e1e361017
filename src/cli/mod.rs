//! The `lsm` command line: argument parsing and the embedded REPL.

pub mod backend;
pub mod client;
pub mod repl;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use self::backend::Embedded;
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
    /// Runs the HTTP server. With no --config: one instance `default` in `./.lsmdata`
    /// (raw codec), on 127.0.0.1:7700.
    Serve {
        /// Configuration file (`[[instance]]` tables; see the repository's lsm.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the configuration (e.g. 0.0.0.0:7700).
        #[arg(long)]
        listen: Option<String>,
        /// Log format on standard error.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Interactive shell over an embedded database (reads commands from stdin too).
    Repl {
        /// Data directory.
        #[arg(long, default_value = "./.lsmdata")]
        data_dir: PathBuf,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Runs `lsm` with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve { log_format, .. } => init_logging(*log_format, "info"),
        _ => init_logging(LogFormat::Text, "warn"),
    }
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
        Command::Serve {
            config,
            listen,
            log_format: _,
        } => {
            serve::run(config.as_deref(), listen.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Repl { data_dir } => {
            let db = Db::open(&data_dir, Options::default())
                .with_context(|| format!("opening {}", data_dir.display()))?;
            let failures = repl::run(Box::new(Embedded::new(db.clone())))?;
            db.close().context("closing the database")?;
            Ok(if failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Logs go to standard error, filtered by `RUST_LOG` (default: `default_level`).
fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
