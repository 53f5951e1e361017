//! `lsm-bench-http`: HTTP load runs against `lsm::server` and against the ceiling, an
//! axum server with the same route shapes whose handlers return constants, and a
//! Markdown report of requests/s, latency percentiles and lsm ÷ ceiling.
//!
//! Each server runs in a child process (`lsm-bench-http serve ...`, see `serve.rs`);
//! this process is the load client. Progress goes to standard error; the report
//! (machine, command, settings, table, notes) goes to standard output.

mod ceiling;
mod client;
#[allow(dead_code)] // shared with lsm-bench, which uses more of it
#[path = "../../keys.rs"]
mod keys;
mod serve;
#[allow(dead_code)] // shared with lsm-bench, which uses more of it
#[path = "../../sysinfo.rs"]
mod sysinfo;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hyper::{Method, StatusCode};

use client::{Load, Outcome, Requests};
use serve::{ServeArgs, ServerProcess, Sync, Target};

/// HTTP load runs: GET and POST of lsm's key routes against the lsm server and against a
/// constant-answer axum server (the ceiling), with a Markdown report.
#[derive(Parser, Debug)]
#[command(
    name = "lsm-bench-http",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one server until standard input closes (what the load run starts in a child
    /// process; also usable on its own, to point another client at it).
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,

    /// Seconds of load before the measured interval of each run (not recorded).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,

    /// Seconds of the measured interval of each run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Keys loaded into lsm before the GET run (each with a `--value-size` value).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,

    /// Value size in bytes (ASCII letters and digits; keys are 16 bytes).
    #[arg(long, default_value_t = 100)]
    value_size: usize,

    /// Worker threads of the client's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,

    /// Workloads to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "get,post")]
    workloads: Vec<Workload>,

    /// Scratch directory for lsm's data: a fresh temporary directory is made inside it
    /// and removed at the end [default: the system temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Skip the "ceiling + spawn_blocking" server (the ceiling with an empty
    /// blocking-pool hop in each handler, as lsm's handlers make for each engine call).
    #[arg(long)]
    no_hop: bool,

    /// Seed of the random keys.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Workload {
    /// `GET /keys/{key}` of random existing keys.
    Get,
    /// `POST /keys` of random new keys.
    Post,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Post => "post",
        }
    }
}

/// One measured run.
struct Row {
    workload: Workload,
    server: String,
    is_ceiling: bool,
    outcome: Outcome,
}

/// Keys per `POST /keys/batch` request of the preload.
const PRELOAD_BATCH: u64 = 1000;

struct Bench<'a> {
    args: &'a RunArgs,
    load: Load,
    runtime: tokio::runtime::Runtime,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Bench<'_> {
    fn measure(
        &mut self,
        server: &ServerProcess,
        workload: Workload,
        name: &str,
        is_ceiling: bool,
        what: Requests,
    ) -> Result<()> {
        eprintln!(
            "[{name}] {}: {} s warm-up, {} s measured, {} connections",
            workload.name(),
            self.load.warmup.as_secs_f64(),
            self.load.duration.as_secs_f64(),
            self.load.connections
        );
        let outcome = self
            .runtime
            .block_on(client::run(server.addr, server.pid(), self.load, what))
            .with_context(|| format!("{} on {name}", workload.name()))?;
        eprintln!(
            "[{name}] {:<4} {:>9} requests in {:.3} s = {:>8} req/s  p50 {} µs  p99 {} µs  \
             p99.9 {} µs  CPU cores: server {} client {} other {}",
            workload.name(),
            outcome.requests,
            outcome.elapsed.as_secs_f64(),
            thousands(outcome.per_sec()),
            micros(outcome.quantile(0.5)),
            micros(outcome.quantile(0.99)),
            micros(outcome.quantile(0.999)),
            cores(outcome.cores(outcome.server_cpu)),
            cores(outcome.cores(outcome.client_cpu)),
            cores(outcome.other_cores()),
        );
        self.rows.push(Row {
            workload,
            server: name.to_string(),
            is_ceiling,
            outcome,
        });
        Ok(())
    }

    /// The ceiling (`target` [`Target::Ceiling`]) or the ceiling with the blocking-pool
    /// hop ([`Target::CeilingHop`]).
    fn ceiling(&mut self, target: Target) -> Result<()> {
        let (name, is_ceiling) = match target {
            Target::CeilingHop => ("ceiling + spawn_blocking", false),
            _ => ("ceiling", true),
        };
        let server = ServerProcess::spawn(target, Sync::Always, None, self.args.value_size)?;
        eprintln!("[{name}] serving at {}", server.url);
        if self.args.workloads.contains(&Workload::Get) {
            let what = Requests::Get {
                num: self.args.keys,
                check: false,
            };
            self.measure(&server, Workload::Get, name, is_ceiling, what)?;
        }
        if self.args.workloads.contains(&Workload::Post) {
            let what = Requests::Post {
                from: self.args.keys,
            };
            self.measure(&server, Workload::Post, name, is_ceiling, what)?;
        }
        server.stop()
    }

    /// lsm with `sync`: the GET run (after the preload) when `get`, then the POST run.
    fn lsm(&mut self, base: &Path, sync: Sync, get: bool) -> Result<()> {
        let post = self.args.workloads.contains(&Workload::Post);
        if !get && !post {
            return Ok(());
        }
        let name = format!("lsm sync={}", sync.name());
        let dir = base.join(format!("lsm-{}", sync.name()));
        let server = ServerProcess::spawn(Target::Lsm, sync, Some(&dir), self.args.value_size)?;
        eprintln!("[{name}] serving at {} from {}", server.url, dir.display());
        if get {
            let started = Instant::now();
            let compact = self.runtime.block_on(preload(
                server.addr,
                self.args.keys,
                self.args.value_size,
            ))?;
            let note = format!(
                "{name}: preloaded {} keys with `POST /keys/batch` ({} keys a request), then \
                 `POST /admin/compact` ({compact}), in {:.1} s (untimed)",
                thousands(self.args.keys as f64),
                PRELOAD_BATCH,
                started.elapsed().as_secs_f64()
            );
            eprintln!("[{name}] {note}");
            self.notes.push(note);
            let what = Requests::Get {
                num: self.args.keys,
                check: true,
            };
            self.measure(&server, Workload::Get, &name, false, what)?;
        }
        if post {
            let what = Requests::Post {
                from: self.args.keys,
            };
            self.measure(&server, Workload::Post, &name, false, what)?;
        }
        server.stop()?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
    }
}

/// Writes keys `0..num` with their values through `POST /keys/batch`, then compacts, so
/// the GETs read tables (through the block cache) rather than the memtable. Returns the
/// compaction's answer.
async fn preload(addr: SocketAddr, num: u64, value_size: usize) -> Result<String> {
    let host = addr.to_string();
    let mut sender = client::connect(addr).await?;
    let mut value = Vec::with_capacity(value_size);
    let mut start = 0;
    while start < num {
        let end = (start + PRELOAD_BATCH).min(num);
        let mut body = String::from(r#"{"items":["#);
        for i in start..end {
            client::value_text(i, value_size, &mut value);
            let key = keys::key(i);
            let _ = write!(
                body,
                r#"{}{{"key":"{}","value":"{}"}}"#,
                if i == start { "" } else { "," },
                std::str::from_utf8(&key).expect("decimal"),
                std::str::from_utf8(&value).expect("ASCII"),
            );
        }
        body.push_str("]}");
        let (status, answer) = client::send(
            &mut sender,
            &host,
            Method::POST,
            "/keys/batch",
            Bytes::from(body),
        )
        .await?;
        ensure!(
            status == StatusCode::OK,
            "POST /keys/batch: status {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        start = end;
    }
    let (status, answer) = client::send(
        &mut sender,
        &host,
        Method::POST,
        "/admin/compact",
        Bytes::new(),
    )
    .await?;
    ensure!(
        status == StatusCode::OK,
        "POST /admin/compact: status {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn cores(c: Option<f64>) -> String {
    c.map_or("?".into(), |c| format!("{c:.2}"))
}

/// `1234567.8` as `1,234,568`.
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x < 100.0 {
        return format!("{x:.2}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        thousands(us)
    }
}

fn report(args: &RunArgs, bench: &Bench, base: &Path, total_secs: f64) -> String {
    let mut out = String::new();
    let cmd: Vec<String> = std::env::args().collect();
    let _ = writeln!(out, "## lsm-bench-http results\n");
    let _ = writeln!(out, "- command: `{}`", cmd.join(" "));
    let _ = writeln!(
        out,
        "- machine: nproc = {}, CPU: {}, memory: {}, kernel {}",
        sysinfo::nproc(),
        sysinfo::cpu_model(),
        sysinfo::memory_gib().map_or_else(|| "unknown".into(), |g| format!("{g:.1} GiB")),
        sysinfo::kernel()
    );
    let _ = writeln!(
        out,
        "- lsm data: {} on {}",
        base.display(),
        sysinfo::disk_of(base)
    );
    let _ = writeln!(
        out,
        "- load: {} keep-alive HTTP/1.1 connections over loopback, one request in flight \
         each (closed loop), {} s warm-up then {} s measured per run; client: hyper's \
         HTTP/1 connection API on a tokio runtime with {} worker thread(s), in this process; \
         each server in a child process (multi-thread tokio runtime, default worker count = \
         {} here); client and server share the machine's cores",
        args.connections,
        args.warmup,
        args.duration,
        args.client_threads,
        sysinfo::nproc()
    );
    let _ = writeln!(
        out,
        "- keys: 16-byte zero-padded decimal; values: {} ASCII letters and digits; get: \
         uniformly random among the {} preloaded keys, each answer checked for the key's \
         value (lsm); post: `{{\"key\":..,\"value\":..}}` with uniformly random new keys; \
         seed {}",
        args.value_size,
        thousands(args.keys as f64),
        args.seed
    );
    let _ = writeln!(out, "- total run time: {total_secs:.1} s\n");

    let _ = writeln!(
        out,
        "| workload | server | requests | req/s | ÷ ceiling | p50 µs | p99 µs | p99.9 µs | \
         server CPU cores | client CPU cores | other CPU cores | server CPU µs/req |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut rows: Vec<&Row> = bench.rows.iter().collect();
    rows.sort_by_key(|r| r.workload); // stable: servers in the order they ran
    for r in rows {
        let o = &r.outcome;
        let ceiling = bench
            .rows
            .iter()
            .find(|c| c.is_ceiling && c.workload == r.workload);
        let ratio = match ceiling {
            Some(c) if !r.is_ceiling => {
                format!("{:.2}×", o.per_sec() / c.outcome.per_sec())
            }
            _ => "".into(),
        };
        let opt = |x: Option<f64>, digits: usize| x.map_or("?".into(), |x| format!("{x:.digits$}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.workload.name(),
            r.server,
            thousands(o.requests as f64),
            thousands(o.per_sec()),
            ratio,
            micros(o.quantile(0.5)),
            micros(o.quantile(0.99)),
            micros(o.quantile(0.999)),
            opt(o.cores(o.server_cpu), 2),
            opt(o.cores(o.client_cpu), 2),
            opt(o.other_cores(), 2),
            opt(o.micros_per_request(o.server_cpu), 1),
        );
    }
    let _ = writeln!(
        out,
        "\nceiling: axum with the same route shapes whose handlers return constants (GET: \
         a JSON body of the size lsm returns; POST: the body is read and discarded \
         unparsed). ceiling + spawn_blocking: the same, each handler first awaiting \
         `tokio::task::spawn_blocking(|| ())`, the hop lsm makes for every engine call. \
         ÷ ceiling = req/s of the row ÷ req/s of the ceiling for the same \
         workload. Latency is per request, from building it to the last byte of the \
         answer, queueing behind the other connections included (mean ≈ connections ÷ \
         req/s). CPU = user + \
         system time of each process over the measured interval (`/proc/<pid>/stat`), in \
         cores busy on average; other = the machine's busy time (`/proc/stat`) less both, \
         i.e. other processes competing for the cores (near 0 on a quiet machine); server \
         CPU µs/req = the server's CPU time ÷ requests."
    );
    if !bench.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:\n");
        for n in &bench.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Serve(args)) = &cli.command {
        return serve::serve(args);
    }
    let args = cli.run;
    ensure!(args.connections > 0, "--connections must be at least 1");
    ensure!(
        args.client_threads > 0,
        "--client-threads must be at least 1"
    );
    ensure!(args.keys > 0, "--keys must be at least 1");
    ensure!(
        args.keys < keys::MAX_KEY_NUMBER / 2,
        "--keys must fit in 15 decimal digits"
    );
    ensure!(
        args.duration > 0.0 && args.warmup >= 0.0,
        "--duration must be positive and --warmup not negative"
    );

    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let base = tempfile::Builder::new()
        .prefix("lsm-bench-http-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a scratch directory in {}", parent.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .thread_name("load-client")
        .build()
        .context("starting the client runtime")?;
    let started = Instant::now();
    let mut bench = Bench {
        args: &args,
        load: Load {
            connections: args.connections,
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.duration),
            value_size: args.value_size,
            seed: args.seed,
        },
        runtime,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    bench.ceiling(Target::Ceiling)?;
    if !args.no_hop {
        bench.ceiling(Target::CeilingHop)?;
    }
    let get = args.workloads.contains(&Workload::Get);
    bench.lsm(base.path(), Sync::Always, get)?;
    bench.lsm(base.path(), Sync::Never, false)?;
    let total = started.elapsed().as_secs_f64();
    print!("{}", report(&args, &bench, base.path(), total));
    Ok(())
}
