//! The client commands: `lsm get`, `set`, `delete`, `scan`, `stats`, `compact`,
//! `verify`, `plugin ...` ([`plugins`]), `index ...` ([`indexes`]) and `query`
//! ([`query`]), one request (or one walk through pages, or one background task
//! followed to its end) against a running server.
//!
//! Output is meant for scripts: a value alone on its line on standard output, lists
//! one entry per line, printed as pages arrive. Exit codes follow `grep`: 0 when the
//! command did what was asked, 1 when the answer is negative (`get` of a missing key,
//! which prints `(nil)` on standard error; `verify` that found damage; `plugin show` of
//! a plugin that does not exist; `plugin test` of a plugin that fails; `index show` of
//! an index that does not exist; an index build or rebuild that failed), 2 on an error
//! (which prints `error: <detail> (<code>)` on standard error).

pub mod indexes;
pub mod plugins;
pub mod query;
pub mod text;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;

use super::backend::{show, Backend, Remote};
use super::client::Client;
use super::repl::{print_compacted, print_entries, print_verified};
use super::{IndexAction, PluginAction, QueryArgs};

/// Exit code of a negative answer (missing key, damaged files).
pub const EXIT_NEGATIVE: u8 = 1;
/// Exit code of an error.
pub const EXIT_ERROR: u8 = 2;

/// A client command, with its arguments.
#[derive(Debug)]
pub enum Request {
    /// Print a key's value (`raw`: the stored bytes, as they are).
    Get {
        /// The key.
        key: String,
        /// Write the stored bytes without a trailing newline.
        raw: bool,
    },
    /// Set a key (`json`: the value is JSON text, sent as JSON; else a string).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Whether `value` is JSON text.
        json: bool,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Print the entries (or keys) starting with `prefix`, page by page.
    Scan {
        /// Only keys starting with this.
        prefix: Option<String>,
        /// Entries per request.
        page_size: Option<usize>,
        /// Print keys only.
        keys_only: bool,
    },
    /// Print the statistics (`all`: per table).
    Stats {
        /// Per-table statistics.
        all: bool,
    },
    /// Compact every table (admin).
    Compact,
    /// Verify every file (admin).
    Verify,
    /// Manage the instance's plugins (admin).
    Plugin(PluginAction),
    /// Manage the instance's indexes.
    Index(IndexAction),
    /// Run an indexed query.
    Query(QueryArgs),
}

/// Runs `request` against `client`, printing to standard output; returns the exit code.
/// Errors are printed on standard error here.
pub fn run(client: Client, request: Request) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = execute(&Remote::new(client), request, &mut out).and_then(|code| {
        out.flush().context("writing the output")?;
        Ok(code)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // `lsm scan | head` closes the pipe early: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs `request`, writing its answer to `out`; returns the exit code of an answer
/// that is not an error (0, or [`EXIT_NEGATIVE`]).
pub fn execute(remote: &Remote, request: Request, out: &mut dyn Write) -> Result<u8> {
    match request {
        Request::Get { key, raw: true } => {
            if !remote.client().get_raw(&key, out)? {
                eprintln!("(nil)");
                return Ok(EXIT_NEGATIVE);
            }
        }
        Request::Get { key, raw: false } => match remote.get(&key)? {
            Some(value) => writeln!(out, "{}", show(&value))?,
            None => {
                eprintln!("(nil)");
                return Ok(EXIT_NEGATIVE);
            }
        },
        Request::Set { key, value, json } => {
            if json {
                let value: Value = serde_json::from_str(&value)
                    .with_context(|| format!("--json: the value is not JSON: {value:?}"))?;
                remote.client().put(&key, &value)?;
            } else {
                remote.set(&key, &value)?;
            }
            writeln!(out, "OK")?;
        }
        Request::Delete { key } => {
            remote.delete(&key)?;
            writeln!(out, "OK")?;
        }
        Request::Scan {
            prefix,
            page_size,
            keys_only,
        } => {
            let client = remote.client();
            if keys_only {
                for key in client.keys(prefix.as_deref(), page_size) {
                    writeln!(out, "{}", key?)?;
                }
            } else {
                let pages = client.scan(prefix.as_deref(), page_size);
                print_entries(Box::new(pages.map(|item| Ok(item?.into()))), out)?;
            }
        }
        Request::Stats { all } => {
            let stats = remote.stats(all)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
        }
        Request::Compact => print_compacted(&remote.compact()?, out)?,
        Request::Verify => {
            if !print_verified(&remote.verify()?, out)? {
                out.flush()?;
                eprintln!("error: verification found damaged files");
                return Ok(EXIT_NEGATIVE);
            }
        }
        Request::Plugin(action) => return plugins::execute(remote.client(), action, out),
        Request::Index(action) => return indexes::execute(remote.client(), action, out),
        Request::Query(args) => return query::execute(remote.client(), args, out),
    }
    Ok(0)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
