//! `lsm-bench`: runs the same workloads on this repository's engine and on fjall, in one
//! process, and prints the results as a Markdown table.
//!
//! Progress goes to standard error; the report (machine, command, settings, table,
//! notes) goes to standard output.

mod engine;
mod fjall_engine;
mod keys;
mod lsm_engine;
mod sysinfo;
mod workloads;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;

use engine::{Durability, Engine, EngineConfig, EngineKind, FjallSync};
use workloads::{Inputs, Measurement, Params, Workload};

const ALL_WORKLOADS: &str =
    "fillseq,fillrandom,fillbatch,readrandom,readmissing,prefixscan,syncwrite1,syncwrite4,reopen";

/// Runs the same workloads on lsm and on fjall and prints a Markdown table.
#[derive(Parser, Debug)]
#[command(name = "lsm-bench", version)]
struct Args {
    /// Number of keys written by the fill workloads (the read workloads use the
    /// fillrandom database).
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,

    /// Gets issued by readrandom and by readmissing [default: --num].
    #[arg(long)]
    reads: Option<u64>,

    /// Prefix scans issued by prefixscan (each returns 100 keys).
    #[arg(long, default_value_t = 10_000)]
    scans: u64,

    /// Writes per atomic batch in fillbatch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,

    /// Durable writes per thread in syncwrite1 and syncwrite4.
    #[arg(long, default_value_t = 2000)]
    sync_writes: u64,

    /// Value size in bytes (keys are always 16 bytes).
    #[arg(long, default_value_t = 100)]
    value_size: usize,

    /// Workloads to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = ALL_WORKLOADS)]
    workloads: Vec<Workload>,

    /// Engines to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "lsm,fjall")]
    engines: Vec<EngineKind>,

    /// Scratch directory: a fresh temporary directory is made inside it, one database
    /// directory per engine and workload group inside that, and all are removed at the
    /// end [default: the system temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Block cache size of both engines, in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,

    /// Memtable size of both engines, in MiB.
    #[arg(long, default_value_t = 32)]
    memtable_mb: u64,

    /// fjall's persist mode for the durable writes of syncwrite1/syncwrite4.
    #[arg(long, value_enum, default_value = "all")]
    fjall_sync: FjallSync,

    /// Seed of the random key orders.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Results of every engine, keyed by workload.
type Results = BTreeMap<Workload, BTreeMap<EngineKind, Measurement>>;

struct Run<'a> {
    base: &'a Path,
    cfg: &'a EngineConfig,
    params: &'a Params,
    inputs: &'a Inputs,
    results: Results,
    notes: Vec<String>,
}

impl Run<'_> {
    fn fresh_dir(&self, kind: EngineKind, what: &str) -> PathBuf {
        self.base.join(format!("{}-{what}", kind.name()))
    }

    fn record(&mut self, kind: EngineKind, w: Workload, m: Measurement) {
        let mut line = format!(
            "[{}] {:<12} {:>10} ops in {:>8.3} s = {:>12} ops/s",
            kind.name(),
            w.name(),
            m.ops,
            m.elapsed.as_secs_f64(),
            thousands(m.ops_per_sec())
        );
        if let Some(l) = m.latency {
            let _ = write!(line, "  p50 {} µs  p99 {} µs", micros(l.p50), micros(l.p99));
        }
        if let Some((c, o)) = m.reopen {
            let _ = write!(
                line,
                "  (close {:.3} s, open {:.3} s)",
                c.as_secs_f64(),
                o.as_secs_f64()
            );
        }
        eprintln!("{line}");
        self.results.entry(w).or_default().insert(kind, m);
    }

    fn note_state(&mut self, kind: EngineKind, when: &str, e: &dyn Engine) {
        self.notes
            .push(format!("{} after {when}: {}", kind.name(), e.state()));
    }

    fn engine(&mut self, kind: EngineKind, selected: &[Workload]) -> Result<()> {
        let has = |w: Workload| selected.contains(&w);
        let p = self.params;

        if has(Workload::Fillseq) {
            let dir = self.fresh_dir(kind, "fillseq");
            let e = engine::open(kind, &dir, self.cfg, Durability::Buffered)?;
            let m = workloads::fill(e.as_ref(), p, 0..p.num)?;
            self.record(kind, Workload::Fillseq, m);
            self.note_state(kind, "fillseq", e.as_ref());
            e.close()?;
            remove(&dir)?;
        }

        if selected.iter().any(|w| w.uses_random_fill()) {
            let dir = self.fresh_dir(kind, "fillrandom");
            let mut e = engine::open(kind, &dir, self.cfg, Durability::Buffered)?;
            let m = workloads::fill(e.as_ref(), p, self.inputs.fill_order.iter().copied())?;
            if has(Workload::Fillrandom) {
                self.record(kind, Workload::Fillrandom, m);
            } else {
                eprintln!(
                    "[{}] filled {} keys in random order (untimed)",
                    kind.name(),
                    p.num
                );
            }
            self.note_state(kind, "fillrandom", e.as_ref());
            if has(Workload::Readrandom) {
                let m = workloads::read_random(e.as_ref(), p, &self.inputs.reads)?;
                self.record(kind, Workload::Readrandom, m);
            }
            if has(Workload::Readmissing) {
                let m = workloads::read_missing(e.as_ref(), &self.inputs.missing)?;
                self.record(kind, Workload::Readmissing, m);
            }
            if has(Workload::Prefixscan) {
                let m = workloads::prefix_scan(e.as_ref(), &self.inputs.groups)?;
                self.record(kind, Workload::Prefixscan, m);
            }
            self.note_state(kind, "the reads", e.as_ref());
            if has(Workload::Reopen) {
                let m = workloads::reopen(e.as_mut(), p, self.inputs)?;
                self.record(kind, Workload::Reopen, m);
                self.note_state(kind, "reopen", e.as_ref());
            }
            e.close()?;
            remove(&dir)?;
        }

        if has(Workload::Fillbatch) {
            let dir = self.fresh_dir(kind, "fillbatch");
            let e = engine::open(kind, &dir, self.cfg, Durability::Buffered)?;
            let m = workloads::fill_batch(e.as_ref(), p)?;
            self.record(kind, Workload::Fillbatch, m);
            e.close()?;
            remove(&dir)?;
        }

        for (w, threads) in [(Workload::Syncwrite1, 1), (Workload::Syncwrite4, 4)] {
            if !has(w) {
                continue;
            }
            let dir = self.fresh_dir(kind, w.name());
            let e = engine::open(kind, &dir, self.cfg, Durability::Synced)?;
            let m = workloads::sync_write(e.as_ref(), p, threads)?;
            self.record(kind, w, m);
            self.note_state(kind, w.name(), e.as_ref());
            e.close()?;
            remove(&dir)?;
        }
        Ok(())
    }
}

fn remove(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
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

fn micros(d: std::time::Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn workload_description(w: Workload, p: &Params) -> String {
    let n = thousands(p.num as f64);
    match w {
        Workload::Fillseq => format!("{n} puts, ascending keys, no fsync"),
        Workload::Fillrandom => format!("{n} puts, the same keys in random order, no fsync"),
        Workload::Fillbatch => format!(
            "{n} puts, ascending keys, atomic batches of {}, no fsync",
            p.batch_size
        ),
        Workload::Readrandom => format!(
            "{} gets of random existing keys of the fillrandom database, values checked",
            thousands(p.reads as f64)
        ),
        Workload::Readmissing => format!(
            "{} gets of absent 16-byte keys lying inside the key range",
            thousands(p.reads as f64)
        ),
        Workload::Prefixscan => format!(
            "{} scans of a random 14-byte prefix, each reading its 100 pairs (counted)",
            thousands(p.scans as f64)
        ),
        Workload::Syncwrite1 => format!(
            "{} durable puts, 1 writer thread (fsync per write)",
            thousands(p.sync_writes as f64)
        ),
        Workload::Syncwrite4 => format!(
            "{} durable puts from each of 4 concurrent writer threads",
            thousands(p.sync_writes as f64)
        ),
        Workload::Reopen => "close then open of the fillrandom database (after the reads); \
             \"ops/s\" is 1 / (close + open seconds)"
            .into(),
    }
}

fn report(args: &Args, engines: &[EngineKind], run: &Run, base: &Path, total_secs: f64) -> String {
    let p = run.params;
    let mut out = String::new();
    let cmd: Vec<String> = std::env::args().collect();
    let _ = writeln!(out, "## lsm-bench results\n");
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
        "- scratch directory: {} on {}",
        base.display(),
        sysinfo::disk_of(base)
    );
    let _ = writeln!(
        out,
        "- keys: 16-byte zero-padded decimal; values: {} pseudo-random bytes; N = {}; \
         both engines: block cache {} MiB, memtable {} MiB, one fresh directory per \
         engine and workload group; seed {}",
        p.value_size,
        thousands(p.num as f64),
        args.cache_mb,
        args.memtable_mb,
        p.seed
    );
    for &kind in engines {
        let _ = writeln!(out, "- {}", engine::durability_note(kind, run.cfg));
    }
    let _ = writeln!(out, "- total run time: {total_secs:.1} s\n");

    let lat_workloads = [
        Workload::Readrandom,
        Workload::Readmissing,
        Workload::Prefixscan,
        Workload::Syncwrite1,
        Workload::Syncwrite4,
    ];
    let mut header = String::from("| workload |");
    let mut rule = String::from("| --- |");
    for k in engines {
        let _ = write!(header, " {} ops/s |", k.name());
        rule.push_str(" ---: |");
    }
    let pair = engines.contains(&EngineKind::Lsm) && engines.contains(&EngineKind::Fjall);
    if pair {
        header.push_str(" ratio lsm/fjall |");
        rule.push_str(" ---: |");
    }
    for k in engines {
        let _ = write!(header, " {0} p50 µs | {0} p99 µs |", k.name());
        rule.push_str(" ---: | ---: |");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (w, per_engine) in &run.results {
        let mut row = format!("| {} |", w.name());
        for k in engines {
            let cell = per_engine.get(k).map_or("-".into(), |m| {
                if let Some((c, o)) = m.reopen {
                    format!(
                        "{} ({:.3} s)",
                        thousands(m.ops_per_sec()),
                        (c + o).as_secs_f64()
                    )
                } else {
                    thousands(m.ops_per_sec())
                }
            });
            let _ = write!(row, " {cell} |");
        }
        if pair {
            let ratio = match (
                per_engine.get(&EngineKind::Lsm),
                per_engine.get(&EngineKind::Fjall),
            ) {
                (Some(a), Some(b)) => format!("{:.2}×", a.ops_per_sec() / b.ops_per_sec()),
                _ => "-".into(),
            };
            let _ = write!(row, " {ratio} |");
        }
        for k in engines {
            match per_engine.get(k).and_then(|m| m.latency) {
                Some(l) if lat_workloads.contains(w) => {
                    let _ = write!(row, " {} | {} |", micros(l.p50), micros(l.p99));
                }
                _ => row.push_str(" | |"),
            }
        }
        let _ = writeln!(out, "{row}");
    }

    if let Some(per_engine) = run.results.get(&Workload::Reopen) {
        let _ = writeln!(
            out,
            "\nreopen in seconds:\n\n| engine | close s | open s | total s |\n| --- | ---: | ---: | ---: |"
        );
        for k in engines {
            if let Some((c, o)) = per_engine.get(k).and_then(|m| m.reopen) {
                let _ = writeln!(
                    out,
                    "| {} | {:.3} | {:.3} | {:.3} |",
                    k.name(),
                    c.as_secs_f64(),
                    o.as_secs_f64(),
                    (c + o).as_secs_f64()
                );
            }
        }
    }

    let _ = writeln!(out, "\nworkloads:\n");
    for w in run.results.keys() {
        let _ = writeln!(out, "- {}: {}", w.name(), workload_description(*w, p));
    }
    let _ = writeln!(
        out,
        "\nratio > 1 means lsm is faster. Read latencies are per operation, measured \
         around each call (the throughput includes that timing)."
    );
    let _ = writeln!(out, "\nengine state:\n");
    for n in &run.notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.num >= keys::GROUP_SIZE, "--num must be at least 100");
    ensure!(
        args.num <= keys::MAX_KEY_NUMBER,
        "--num must fit in 16 decimal digits"
    );
    ensure!(
        args.sync_writes < 1_000_000_000_000,
        "--sync-writes is too large"
    );
    let mut selected: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| args.workloads.contains(w))
        .collect();
    selected.dedup();
    let mut engines: Vec<EngineKind> = Vec::new();
    for k in &args.engines {
        if !engines.contains(k) {
            engines.push(*k);
        }
    }

    let params = Params {
        num: args.num,
        reads: args.reads.unwrap_or(args.num),
        scans: args.scans,
        batch_size: args.batch_size,
        sync_writes: args.sync_writes,
        value_size: args.value_size,
        seed: args.seed,
    };
    let cfg = EngineConfig {
        block_cache_bytes: args.cache_mb * 1024 * 1024,
        memtable_bytes: args.memtable_mb * 1024 * 1024,
        fjall_sync: args.fjall_sync,
    };
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let base = tempfile::Builder::new()
        .prefix("lsm-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a scratch directory in {}", parent.display()))?;

    let started = Instant::now();
    let inputs = Inputs::generate(&params);
    let mut run = Run {
        base: base.path(),
        cfg: &cfg,
        params: &params,
        inputs: &inputs,
        results: Results::new(),
        notes: Vec::new(),
    };
    for &kind in &engines {
        run.engine(kind, &selected)
            .with_context(|| format!("engine {}", kind.name()))?;
    }
    let total = started.elapsed().as_secs_f64();
    print!("{}", report(&args, &engines, &run, base.path(), total));
    Ok(())
}
