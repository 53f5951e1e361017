//! `lsm-bench`: runs the same workloads on this repository's engine, on fjall and (with
//! the `rocksdb` feature) on RocksDB, in one process, and prints the results as Markdown
//! tables.
//!
//! Progress goes to standard error; the report (machine, command, settings, table,
//! notes) goes to standard output.

mod engine;
mod engines;
mod fjall_engine;
mod keys;
mod lsm_engine;
#[cfg(feature = "rocksdb")]
mod rocksdb_engine;
mod sysinfo;
mod workloads;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;

use engine::{Durability, Engine, EngineConfig, EngineKind, FjallSync, Shape};
use workloads::{Inputs, Measurement, Params, Workload};

const ALL_WORKLOADS: &str =
    "fillseq,fillrandom,fillbatch,readrandom,readmissing,prefixscan,syncwrite1,syncwrite4,reopen,\
     overwrite";

/// Runs the same workloads on lsm, fjall and (with the `rocksdb` feature) RocksDB and
/// prints Markdown tables.
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

    /// Puts issued by overwrite over the `--num` keys [default: 5 × --num].
    #[arg(long)]
    overwrites: Option<u64>,

    /// Value size in bytes (keys are always 16 bytes).
    #[arg(long, default_value_t = 100)]
    value_size: usize,

    /// Workloads to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = ALL_WORKLOADS)]
    workloads: Vec<Workload>,

    /// Engines to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = engine::DEFAULT_ENGINES)]
    engines: Vec<EngineKind>,

    /// Scratch directory: a fresh temporary directory is made inside it, one database
    /// directory per engine and workload group inside that, and all are removed at the
    /// end [default: the system temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Block cache size of every engine, in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,

    /// Memtable (RocksDB: write buffer) size of every engine, in MiB.
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
    overwrite: BTreeMap<EngineKind, OverwriteReport>,
    notes: Vec<String>,
}

/// The overwrite workload on one engine, with the state measured after it.
struct OverwriteReport {
    run: workloads::Overwrite,
    /// Tables and write amplification as the engine reports them right after the run.
    shape: Shape,
    /// Bytes of every file in the database directory right after the run.
    disk_bytes: u64,
    /// Bytes the process wrote to storage from before the fill to the end of the run.
    device_bytes: Option<u64>,
    /// After a full compaction (engines that offer one): bytes on disk and tables.
    compacted: Option<(u64, Option<u64>)>,
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
            let e = engines::open(kind, &dir, self.cfg, Durability::Buffered)?;
            let m = workloads::fill(e.as_ref(), p, 0..p.num)?;
            self.record(kind, Workload::Fillseq, m);
            self.note_state(kind, "fillseq", e.as_ref());
            e.close()?;
            remove(&dir)?;
        }

        if selected.iter().any(|w| w.uses_random_fill()) {
            let dir = self.fresh_dir(kind, "fillrandom");
            let mut e = engines::open(kind, &dir, self.cfg, Durability::Buffered)?;
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
            let e = engines::open(kind, &dir, self.cfg, Durability::Buffered)?;
            let m = workloads::fill_batch(e.as_ref(), p)?;
            self.record(kind, Workload::Fillbatch, m);
            e.close()?;
            remove(&dir)?;
        }

        if has(Workload::Overwrite) {
            self.overwrite(kind)?;
        }

        for (w, threads) in [(Workload::Syncwrite1, 1), (Workload::Syncwrite4, 4)] {
            if !has(w) {
                continue;
            }
            let dir = self.fresh_dir(kind, w.name());
            let e = engines::open(kind, &dir, self.cfg, Durability::Synced)?;
            let m = workloads::sync_write(e.as_ref(), p, threads)?;
            self.record(kind, w, m);
            self.note_state(kind, w.name(), e.as_ref());
            e.close()?;
            remove(&dir)?;
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Fills `num` keys in random order (untimed), then runs the overwrite workload and
    /// measures the database: tables, bytes on disk, write amplification; then the bytes
    /// on disk after a full compaction.
    fn overwrite(&mut self, kind: EngineKind) -> Result<()> {
        let p = self.params;
        let dir = self.fresh_dir(kind, "overwrite");
        let io_before = sysinfo::process_write_bytes();
        let e = engines::open(kind, &dir, self.cfg, Durability::Buffered)?;
        workloads::fill(e.as_ref(), p, self.inputs.fill_order.iter().copied())?;
        eprintln!(
            "[{}] filled {} keys in random order (untimed); overwriting",
            kind.name(),
            p.num
        );
        let run = workloads::overwrite(e.as_ref(), p)?;
        let io_after = sysinfo::process_write_bytes();
        let shape = e.shape()?;
        let disk_bytes = sysinfo::dir_bytes(&dir)?;
        let device_bytes = match (io_before, io_after) {
            (Some(a), Some(b)) if b > a => Some(b - a),
            _ => None,
        };
        self.record(
            kind,
            Workload::Overwrite,
            Measurement {
                ops: run.writes,
                elapsed: run.write_time,
                latency: None,
                reopen: None,
            },
        );
        self.note_state(kind, "overwrite", e.as_ref());
        let compacted = if e.compact_all()? {
            let bytes = sysinfo::dir_bytes(&dir)?;
            let tables = e.shape()?.tables;
            self.note_state(kind, "overwrite and a full compaction", e.as_ref());
            Some((bytes, tables))
        } else {
            None
        };
        self.overwrite.insert(
            kind,
            OverwriteReport {
                run,
                shape,
                disk_bytes,
                device_bytes,
                compacted,
            },
        );
        e.close()?;
        remove(&dir)
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
        Workload::Overwrite => format!(
            "{} puts of random keys among {n} already written (an untimed fill in random \
             order first), no fsync, each with a new value; one get of a random key every \
             {} puts on the same thread, value checked against the latest put; \
             ops/s counts the puts only (the time measured inside the gets is subtracted)",
            thousands(p.overwrites as f64),
            workloads::OVERWRITE_GET_EVERY
        ),
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
         every engine: block cache {} MiB, memtable {} MiB, one fresh directory per \
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
    let peers: Vec<EngineKind> = if engines.contains(&EngineKind::Lsm) {
        engines
            .iter()
            .copied()
            .filter(|&k| k != EngineKind::Lsm)
            .collect()
    } else {
        Vec::new()
    };
    for k in &peers {
        let _ = write!(header, " ratio lsm/{} |", k.name());
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
        for k in &peers {
            let ratio = match (per_engine.get(&EngineKind::Lsm), per_engine.get(k)) {
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

    overwrite_report(&mut out, engines, run);

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

/// The overwrite table: throughput, tables, space and write amplification, and the
/// get latencies of the first and the last tenth of the run.
fn overwrite_report(out: &mut String, engines: &[EngineKind], run: &Run) {
    if run.overwrite.is_empty() {
        return;
    }
    let p = run.params;
    let entry = 16 + p.value_size as u64;
    let live = p.num * entry;
    let user = (p.num + p.overwrites) * entry;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rows: Vec<(EngineKind, &OverwriteReport)> = engines
        .iter()
        .filter_map(|k| run.overwrite.get(k).map(|r| (*k, r)))
        .collect();
    let ops = |r: &OverwriteReport| r.run.writes as f64 / r.run.write_time.as_secs_f64().max(1e-9);
    let p99_last = |r: &OverwriteReport| r.run.deciles.last().cloned().flatten().map(|l| l.p99);
    let best_ops = rows.iter().map(|(_, r)| ops(r)).fold(0.0, f64::max);
    let best_p99 = rows.iter().filter_map(|(_, r)| p99_last(r)).min();

    let _ = writeln!(
        out,
        "\noverwrite: {} puts over {} keys; live data {:.1} MiB (keys × {entry} bytes):\n",
        thousands(p.overwrites as f64),
        thousands(p.num as f64),
        mib(live)
    );
    let _ = writeln!(
        out,
        "| engine | puts/s | puts/s ÷ best | tables | on disk MiB | space amp | write amp \
         (engine) | device bytes written ÷ user bytes | get p50 first 10% µs | get p99 first \
         10% µs | get p50 last 10% µs | get p99 last 10% µs | p99 last ÷ first | best p99 ÷ \
         p99 (last 10%) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | \
         ---: | ---: | ---: | ---: | ---: |"
    );
    for (k, r) in &rows {
        let first = r.run.deciles.first().cloned().flatten();
        let last = r.run.deciles.last().cloned().flatten();
        let lat = |l: Option<workloads::Latency>,
                   f: fn(&workloads::Latency) -> std::time::Duration| {
            l.map_or("-".into(), |l| micros(f(&l)))
        };
        let ratio = match (first, last) {
            (Some(a), Some(b)) => format!("{:.2}", b.p99.as_secs_f64() / a.p99.as_secs_f64()),
            _ => "-".into(),
        };
        let vs_best_p99 = match (best_p99, last) {
            (Some(b), Some(l)) => format!("{:.2}", b.as_secs_f64() / l.p99.as_secs_f64()),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {} | {:.1} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.name(),
            thousands(ops(r)),
            ops(r) / best_ops,
            r.shape.tables.map_or("-".into(), |t| t.to_string()),
            mib(r.disk_bytes),
            r.disk_bytes as f64 / live as f64,
            r.shape
                .write_amplification
                .map_or("n/a".into(), |w| format!("{w:.2}")),
            r.device_bytes
                .map_or("n/a".into(), |b| format!("{:.2}", b as f64 / user as f64)),
            lat(first, |l| l.p50),
            lat(first, |l| l.p99),
            lat(last, |l| l.p50),
            lat(last, |l| l.p99),
            ratio,
            vs_best_p99
        );
    }

    let _ = writeln!(
        out,
        "\nafter a full compaction of the overwritten database (lsm `Db::compact()`, fjall \
         `Keyspace::major_compact()`, rocksdb `compact_range(None, None)`):\n\n\
         | engine | on disk MiB | space amp | tables |\n| --- | ---: | ---: | ---: |"
    );
    for (k, r) in &rows {
        if let Some((bytes, tables)) = r.compacted {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.2} | {} |",
                k.name(),
                mib(bytes),
                bytes as f64 / live as f64,
                tables.map_or("-".into(), |t| t.to_string())
            );
        }
    }

    let _ = writeln!(
        out,
        "\nspace amp = bytes of every file in the database directory (tables, WAL or \
         journal, manifest, nothing excluded) ÷ live data. device bytes written = growth of \
         `write_bytes` in `/proc/self/io` from before the fill to the end of the overwrites \
         (WAL, tables, everything), ÷ the bytes the fill and the overwrites put. Get \
         latencies of each tenth of the run (p99 µs):\n"
    );
    for (k, r) in &rows {
        let tenths: Vec<String> = r
            .run
            .deciles
            .iter()
            .map(|l| l.map_or("-".into(), |l| micros(l.p99)))
            .collect();
        let _ = writeln!(
            out,
            "- {} ({} gets; {:.1} s for the whole run, gets included): {}",
            k.name(),
            thousands(r.run.gets as f64),
            r.run.elapsed.as_secs_f64(),
            tenths.join(", ")
        );
    }
    let _ = writeln!(out, "\nwrite amp (engine) sources:\n");
    for (k, r) in &rows {
        let _ = writeln!(
            out,
            "- {}: {}",
            k.name(),
            r.shape.write_amplification_source
        );
    }
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
        overwrites: args.overwrites.unwrap_or(args.num.saturating_mul(5)),
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
        overwrite: BTreeMap::new(),
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
