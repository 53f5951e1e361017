//! The `lsm` command line: argument parsing, the server, the REPL and the client
//! commands.
//!
//! - `lsm serve` runs the HTTP server ([`serve`]).
//! - `lsm repl` is an interactive shell ([`repl`]) over a database opened in this process
//!   (`--data-dir`, the default) or over a running server (`--url`), through the same
//!   [`backend::Backend`] trait.
//! - `lsm get|set|delete|scan|stats|compact|verify` are one-shot clients of a running
//!   server ([`commands`], over the HTTP [`client`]). They take `--url` (or `LSM_URL`,
//!   default `http://127.0.0.1:7700`) and `--instance` (default: the server's default
//!   instance); `compact` and `verify` take `--token` (or `LSM_ADMIN_TOKEN`). Exit codes:
//!   0 done, 1 negative answer (`get` of a missing key prints `(nil)` on stderr;
//!   `verify` found damage), 2 error (`error: <detail> (<code>)` on stderr).
//! - `lsm plugin upload|list|show|delete|test` manage the instance's WebAssembly
//!   plugins through the admin routes ([`commands::plugins`]), with the same options and
//!   exit codes (1: `show` of a plugin that does not exist, `test` of a plugin that
//!   fails).
//! - `lsm index list|show|create|drop|rebuild` manage the instance's secondary indexes
//!   ([`commands::indexes`]); `create` and `rebuild` follow the background task they
//!   start until it ends (exit code 1 when it fails or is cancelled; `show` of an index
//!   that does not exist).
//! - `lsm query` runs an indexed query ([`commands::query`]) and prints the results as
//!   JSON lines.

pub mod backend;
pub mod client;
pub mod commands;
pub mod repl;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use self::backend::{Embedded, Remote};
use self::client::{Client, DEFAULT_URL};
use self::commands::Request;

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
    /// Interactive shell (reads commands from stdin too) over a database opened in this
    /// process, or over a running server with --url.
    Repl {
        /// Data directory of the database to open (not with --url).
        #[arg(long, default_value = "./.lsmdata", conflicts_with = "url")]
        data_dir: PathBuf,
        /// Talk to the server at this URL instead of opening a directory (works while
        /// the server holds it).
        #[arg(long)]
        url: Option<String>,
        /// With --url: the instance to use (default: the server's default instance).
        #[arg(long, requires = "url")]
        instance: Option<String>,
        /// With --url: the admin token for COMPACT and VERIFY.
        #[arg(
            long,
            env = "LSM_ADMIN_TOKEN",
            hide_env_values = true,
            requires = "url"
        )]
        token: Option<String>,
    },
    /// Prints a key's value (exit code 1 and `(nil)` on stderr when it does not exist).
    Get {
        /// The key.
        key: String,
        /// Write the stored bytes as they are, without a trailing newline.
        #[arg(long)]
        raw: bool,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Sets a key.
    Set {
        /// The key.
        key: String,
        /// The value (a string; with --json, JSON text).
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// The value is JSON (for instances with the json or bson codec).
        #[arg(long)]
        json: bool,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Deletes a key (deleting a missing key succeeds).
    Delete {
        /// The key.
        key: String,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Prints `key = value` lines in key order, following the server's pages.
    Scan {
        /// Only keys starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Entries per request (1-10000; every page is printed).
        #[arg(long, visible_alias = "page-size")]
        limit: Option<usize>,
        /// Print only the keys.
        #[arg(long)]
        keys_only: bool,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Prints the engine statistics as JSON.
    Stats {
        /// Statistics of every table.
        #[arg(long)]
        all: bool,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Flushes and compacts every table into one sorted run (admin route).
    Compact {
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
        /// Admin token.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Checks every table and WAL record against its checksum (admin route; exit code 1
    /// when damage is found).
    Verify {
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
        /// Admin token.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Manages the instance's WebAssembly plugins (admin routes).
    Plugin {
        /// What to do.
        #[command(subcommand)]
        action: PluginAction,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
        /// Admin token.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Manages the instance's secondary indexes (create, drop and rebuild are admin
    /// routes).
    Index {
        /// What to do.
        #[command(subcommand)]
        action: IndexAction,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
        /// Admin token.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Runs an indexed query and prints the results as JSON lines, one
    /// `{"key": ..., "value": ...}` per line (the first page, or every page with --all).
    Query {
        /// The query.
        #[command(flatten)]
        query: QueryArgs,
        /// Server and instance.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// The `lsm index` subcommands.
#[derive(Debug, Subcommand)]
pub enum IndexAction {
    /// Prints the instance's indexes as a table.
    List,
    /// Prints an index's description as JSON (exit code 1 when there is no such index).
    Show {
        /// The index's name.
        name: String,
    },
    /// Creates an index and follows its build until it is queryable.
    Create(CreateArgs),
    /// Drops an index: it is gone at once, its records are deleted in the background.
    Drop {
        /// The index's name.
        name: String,
    },
    /// Rebuilds an index into a new generation (dropping dead postings) and follows the
    /// rebuild; the index stays queryable meanwhile.
    Rebuild {
        /// The index's name.
        name: String,
        /// Print the task as JSON and return at once instead of following it.
        #[arg(long)]
        no_wait: bool,
    },
}

/// The arguments of `lsm index create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The index's name: a-z, 0-9, '_' and '-' (with --file: taken from the file when
    /// not given).
    #[arg(required_unless_present = "file")]
    pub name: Option<String>,
    /// How the index is queried: term queries (equality), term and range queries over
    /// ordered terms (range), word matches (text).
    #[arg(
        long = "type",
        value_enum,
        value_name = "TYPE",
        required_unless_present = "file"
    )]
    pub index_type: Option<IndexKind>,
    /// Index only keys starting with this (default: every key; a trailing `*` is
    /// accepted).
    #[arg(long, value_name = "PREFIX", allow_hyphen_values = true)]
    pub scope: Option<String>,
    /// Where the terms come from.
    #[command(flatten)]
    pub source: DefinitionSource,
    /// Options handed to the plugin, a JSON object (with --plugin).
    #[arg(long, value_name = "JSON", requires = "plugin")]
    pub options: Option<String>,
    /// What a write does when the extractor fails on a record: refuse it (reject, the
    /// default) or store it unindexed (skip).
    #[arg(long, value_enum)]
    pub on_error: Option<OnErrorKind>,
    /// Print the task as JSON and return at once instead of following the build.
    #[arg(long)]
    pub no_wait: bool,
}

/// The extractor of `lsm index create`, or a file holding the whole definition: exactly
/// one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DefinitionSource {
    /// Terms from the JSON value at this path (`$.city`, `$.tags[*]`).
    #[arg(long, value_name = "PATH")]
    pub json_path: Option<String>,
    /// Terms from the BSON value at this path.
    #[arg(long, value_name = "PATH")]
    pub bson_path: Option<String>,
    /// The whole value is the term.
    #[arg(long)]
    pub raw: bool,
    /// Terms from an uploaded extractor plugin.
    #[arg(long, value_name = "NAME")]
    pub plugin: Option<String>,
    /// A file with the whole definition, as `POST /indexes` takes it (JSON, or TOML for
    /// a `.toml` file; `-` reads standard input).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["index_type", "scope", "options", "on_error"]
    )]
    pub file: Option<PathBuf>,
}

/// `--type` of `lsm index create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexKind {
    /// Term queries.
    Equality,
    /// Term and range queries over ordered terms.
    Range,
    /// Queries matching every word of a text.
    Text,
}

/// `--on-error` of `lsm index create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorKind {
    /// The write is refused.
    Reject,
    /// The record is stored but not indexed (counted as skipped).
    Skip,
}

/// The query of `lsm query`: a JSON body (argument or file) or the shorthand flags.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The request body as JSON: `{"index": "by_city", "term": "Recife"}`,
    /// `{"index": "by_age", "range": {"gte": 30}}`, `{"index": "bio", "match": "rust"}`,
    /// `{"and": [...]}`.
    #[arg(value_name = "JSON", conflicts_with_all = ["body_file", "index"])]
    pub body: Option<String>,
    /// A file holding the request body (`-` reads standard input).
    #[arg(long, value_name = "PATH", conflicts_with = "index")]
    pub body_file: Option<PathBuf>,
    /// Shorthand: the index to query, with one of --term, --range or --match.
    #[arg(long, value_name = "NAME")]
    pub index: Option<String>,
    /// Records with this term. Numbers and true/false are sent as such; quote them
    /// ('"30"') to send text.
    #[arg(
        long,
        value_name = "TERM",
        allow_hyphen_values = true,
        requires = "index",
        conflicts_with_all = ["range", "match_text"]
    )]
    pub term: Option<String>,
    /// Records with a term in a range (range indexes): comma-separated bounds among
    /// gte, gt, lte and lt, e.g. 'gte=30,lt=40' (values as for --term).
    #[arg(
        long,
        value_name = "BOUNDS",
        allow_hyphen_values = true,
        requires = "index",
        conflicts_with = "match_text"
    )]
    pub range: Option<String>,
    /// Records with every word of this text (text indexes).
    #[arg(
        long = "match",
        value_name = "TEXT",
        allow_hyphen_values = true,
        requires = "index"
    )]
    pub match_text: Option<String>,
    /// Results per page (the server's default is 100).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Start at this page (a `next_cursor` of an earlier page of the same query).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Follow next_cursor through every page.
    #[arg(long)]
    pub all: bool,
    /// Ask for the query plan and print it on standard error.
    #[arg(long)]
    pub explain: bool,
    /// Print what the query read (its stats) on standard error.
    #[arg(short, long)]
    pub verbose: bool,
}

/// The `lsm plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Registers a WebAssembly component as the plugin NAME, replacing any plugin of that
    /// name once the new one is validated and compiled.
    Upload {
        /// The plugin's name in its instance.
        name: String,
        /// The component (a `.wasm` file of the extractor or codec world).
        file: PathBuf,
        /// Deadline of one call, in milliseconds (default: the server's).
        #[arg(long, value_name = "MS")]
        deadline_ms: Option<u64>,
        /// Memory cap of the plugin, in bytes (default: the server's).
        #[arg(long, value_name = "BYTES")]
        memory_bytes: Option<u64>,
    },
    /// Prints the instance's plugins as a table.
    List,
    /// Prints a plugin's description as JSON (exit code 1 when there is no such plugin).
    Show {
        /// The plugin's name.
        name: String,
    },
    /// Deletes a plugin (refused while an index uses it).
    Delete {
        /// The plugin's name.
        name: String,
    },
    /// Runs a plugin on a sample record and prints what it returns: an extractor's terms,
    /// one per line, or the value a codec decodes back (exit code 1 when the plugin
    /// fails).
    Test {
        /// The plugin's name.
        name: String,
        /// The record's key.
        #[arg(long, allow_hyphen_values = true)]
        key: String,
        /// The record's value.
        #[command(flatten)]
        value: SampleArgs,
        /// Options passed to the plugin, a JSON object (default `{}`).
        #[arg(long, value_name = "JSON")]
        options: Option<String>,
    },
}

/// The value of `lsm plugin test`: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SampleArgs {
    /// The value as JSON text (a string is quoted: '"text"'), encoded by the instance's
    /// codec as on a write.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    pub value: Option<String>,
    /// The value in the instance's stored form, base64-encoded (extractors only).
    #[arg(long, value_name = "B64")]
    pub value_base64: Option<String>,
    /// A file holding the value in the instance's stored form (extractors only).
    #[arg(long, value_name = "PATH")]
    pub value_file: Option<PathBuf>,
}

/// Which server and instance a client command talks to.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's URL.
    #[arg(long, env = "LSM_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// The instance (default: the server's default instance, at the root routes).
    #[arg(long, global = true)]
    pub instance: Option<String>,
}

/// The admin token of the admin commands.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin token (sent as `Authorization: Bearer`).
    #[arg(long, env = "LSM_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
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
    let (server, admin, request) = match cli.command {
        Command::Serve {
            config,
            listen,
            log_format: _,
        } => {
            serve::run(config.as_deref(), listen.as_deref())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Repl {
            data_dir,
            url,
            instance,
            token,
        } => return run_repl(data_dir, url, instance, token),
        Command::Get { key, raw, server } => (server, None, Request::Get { key, raw }),
        Command::Set {
            key,
            value,
            json,
            server,
        } => (server, None, Request::Set { key, value, json }),
        Command::Delete { key, server } => (server, None, Request::Delete { key }),
        Command::Scan {
            prefix,
            limit,
            keys_only,
            server,
        } => (
            server,
            None,
            Request::Scan {
                prefix,
                page_size: limit,
                keys_only,
            },
        ),
        Command::Stats { all, server } => (server, None, Request::Stats { all }),
        Command::Compact { server, admin } => (server, Some(admin), Request::Compact),
        Command::Verify { server, admin } => (server, Some(admin), Request::Verify),
        Command::Plugin {
            action,
            server,
            admin,
        } => (server, Some(admin), Request::Plugin(action)),
        Command::Index {
            action,
            server,
            admin,
        } => (server, Some(admin), Request::Index(action)),
        Command::Query { query, server } => (server, None, Request::Query(query)),
    };
    let token = admin.and_then(|a| a.token);
    match Client::new(&server.url, server.instance.as_deref(), token.as_deref()) {
        Ok(client) => Ok(commands::run(client, request)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(commands::EXIT_ERROR))
        }
    }
}

fn run_repl(
    data_dir: PathBuf,
    url: Option<String>,
    instance: Option<String>,
    token: Option<String>,
) -> anyhow::Result<ExitCode> {
    let failures = match url {
        Some(url) => {
            let client = Client::new(&url, instance.as_deref(), token.as_deref())?;
            // Fail now, not at the first command, when the server or instance is not
            // there.
            client.check()?;
            repl::run(Box::new(Remote::new(client)))?
        }
        None => {
            // The embedded default instance on `data_dir`: its indexes (if any) are
            // opened and kept up to date by the REPL's writes.
            let mut config = crate::config::Config::embedded_default();
            config.instances[0].data_dir = data_dir.clone();
            let instances = crate::instance::Instances::open(&config);
            let instance = instances
                .default_instance()
                .map_err(|e| anyhow::anyhow!("opening {}: {e}", data_dir.display()))?;
            let failures = repl::run(Box::new(Embedded::new(instance)))?;
            if let Some((_, e)) = instances.close().into_iter().next() {
                anyhow::bail!("closing the database: {e}");
            }
            failures
        }
    };
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
