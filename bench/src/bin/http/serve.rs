//! The servers under test, each run in a child process of its own: `lsm-bench-http
//! serve ...` starts one, prints `listening <url>` on standard output, serves until its
//! standard input closes, then stops it cleanly and exits.
//!
//! Running the server apart from the client gives each its own runtime and its own
//! process CPU accounting (`/proc/<pid>/stat`), which the report shows; on a machine with
//! few cores they still share the cores, and the report says how much each used.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{bail, ensure, Context, Result};
use clap::ValueEnum;
use lsm::config::{Config, SyncSetting};
use lsm::server::Server;

use crate::ceiling::Ceiling;

/// Which server a child process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The constant-answer axum server (see `ceiling.rs`).
    Ceiling,
    /// The same, with a `spawn_blocking` hop of an empty closure in each handler.
    CeilingHop,
    /// `lsm::server::Server` with the embedded default configuration.
    Lsm,
}

/// The WAL sync policy of the lsm server's instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sync {
    /// `sync = "always"` (the default): fdatasync before a write is acknowledged.
    Always,
    /// `sync = "never"`: writes reach the OS, never fsynced explicitly.
    Never,
}

impl Sync {
    pub fn name(self) -> &'static str {
        match self {
            Sync::Always => "always",
            Sync::Never => "never",
        }
    }
}

/// The flags of `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The server to run.
    #[arg(long, value_enum)]
    pub target: Target,

    /// lsm: the WAL sync policy of the `default` instance.
    #[arg(long, value_enum, default_value = "always")]
    pub sync: Sync,

    /// lsm: the data directory of the `default` instance (required for lsm).
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// lsm: before announcing the address, write keys `0..N` with their values (as the
    /// load run's preload does) and compact, for another client's GETs.
    #[arg(long, default_value_t = 0)]
    pub preload: u64,

    /// The value size of the ceiling's constant GET answer and of preloaded values, in
    /// bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,

    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

/// Runs one server until standard input closes (the body of `lsm-bench-http serve`).
pub fn serve(args: &ServeArgs) -> Result<()> {
    match args.target {
        Target::Lsm => {
            let dir = args
                .dir
                .as_ref()
                .context("serve --target lsm needs --dir")?;
            let mut config = Config::embedded_default();
            config.instances[0].data_dir = dir.clone();
            config.instances[0].sync = match args.sync {
                Sync::Always => SyncSetting::Always,
                Sync::Never => SyncSetting::Never,
            };
            let server = Server::start(config, &args.listen)?;
            if args.preload > 0 {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let compact = runtime.block_on(crate::preload(
                    server.addr(),
                    args.preload,
                    args.value_size,
                ))?;
                eprintln!("preloaded {} keys; compaction: {compact}", args.preload);
            }
            announce(&server.url())?;
            wait_for_stdin_eof();
            server.stop()
        }
        Target::Ceiling | Target::CeilingHop => {
            let hop = args.target == Target::CeilingHop;
            let server = Ceiling::start(&args.listen, args.value_size, hop)?;
            announce(&server.url())?;
            wait_for_stdin_eof();
            server.stop()
        }
    }
}

fn announce(url: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {url}")?;
    out.flush()?;
    Ok(())
}

fn wait_for_stdin_eof() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
}

/// A server running in a child process.
pub struct ServerProcess {
    child: Child,
    /// Closing it tells the child to stop.
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    pub url: String,
}

impl ServerProcess {
    /// Starts `lsm-bench-http serve` (this same executable) with `args` and waits until
    /// it listens.
    pub fn spawn(
        target: Target,
        sync: Sync,
        dir: Option<&Path>,
        value_size: usize,
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--target")
            .arg(target.to_possible_value().expect("named").get_name())
            .arg("--sync")
            .arg(sync.name())
            .arg("--value-size")
            .arg(value_size.to_string());
        if let Some(dir) = dir {
            cmd.arg("--dir").arg(dir);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the server's address")?;
        let Some(url) = line.trim().strip_prefix("listening ") else {
            let status = child.wait()?;
            bail!("the server process did not start ({status})");
        };
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .unwrap_or(url)
            .parse()
            .with_context(|| format!("parsing the server address {url:?}"))?;
        Ok(ServerProcess {
            stdin: child.stdin.take(),
            child,
            addr,
            url: url.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the child's standard input and waits for it to stop its server.
    pub fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .context("waiting for the server process")?;
        ensure!(status.success(), "the server process failed: {status}");
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            // Not stopped through `stop` (an error path): the closed pipe stops it.
            let _ = self.child.wait();
        }
    }
}
