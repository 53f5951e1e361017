//! The workloads, written once against [`Engine`] so every engine runs the same code.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::engine::Engine;
use crate::keys::{self, Key, GROUP_SIZE};

/// The workloads, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Workload {
    /// `num` puts in ascending key order.
    Fillseq,
    /// `num` puts of the same keys in random order (the database the reads use).
    Fillrandom,
    /// `num` puts in ascending key order, in atomic batches of `batch-size`.
    Fillbatch,
    /// `reads` gets of random existing keys, each value checked.
    Readrandom,
    /// `reads` gets of keys that do not exist (inside the key range).
    Readmissing,
    /// `scans` prefix scans, each of which must return exactly 100 pairs.
    Prefixscan,
    /// `sync-writes` durable (fsynced) puts from 1 thread.
    Syncwrite1,
    /// `sync-writes` durable puts from each of 4 concurrent threads.
    Syncwrite4,
    /// Close and reopen the database filled by fillrandom.
    Reopen,
    /// `overwrites` random puts over the `num` keys of a filled database, with a get
    /// every [`OVERWRITE_GET_EVERY`] puts.
    Overwrite,
}

/// The overwrite workload issues one get after this many puts.
pub const OVERWRITE_GET_EVERY: u64 = 10;

impl Workload {
    pub const ALL: [Workload; 10] = [
        Workload::Fillseq,
        Workload::Fillrandom,
        Workload::Fillbatch,
        Workload::Readrandom,
        Workload::Readmissing,
        Workload::Prefixscan,
        Workload::Syncwrite1,
        Workload::Syncwrite4,
        Workload::Reopen,
        Workload::Overwrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Fillseq => "fillseq",
            Workload::Fillrandom => "fillrandom",
            Workload::Fillbatch => "fillbatch",
            Workload::Readrandom => "readrandom",
            Workload::Readmissing => "readmissing",
            Workload::Prefixscan => "prefixscan",
            Workload::Syncwrite1 => "syncwrite1",
            Workload::Syncwrite4 => "syncwrite4",
            Workload::Reopen => "reopen",
            Workload::Overwrite => "overwrite",
        }
    }

    /// Whether the workload runs on the database that fillrandom fills.
    pub fn uses_random_fill(self) -> bool {
        matches!(
            self,
            Workload::Fillrandom
                | Workload::Readrandom
                | Workload::Readmissing
                | Workload::Prefixscan
                | Workload::Reopen
        )
    }
}

/// Sizes of the workloads.
#[derive(Debug, Clone)]
pub struct Params {
    pub num: u64,
    pub reads: u64,
    pub scans: u64,
    pub batch_size: usize,
    pub sync_writes: u64,
    pub overwrites: u64,
    pub value_size: usize,
    pub seed: u64,
}

/// Median and 99th percentile of per-operation latencies.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
}

/// The outcome of one workload on one engine.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub ops: u64,
    pub elapsed: Duration,
    pub latency: Option<Latency>,
    /// For `reopen`: the close and the open, separately.
    pub reopen: Option<(Duration, Duration)>,
}

impl Measurement {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn latency_of(mut samples: Vec<u64>) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        Duration::from_nanos(samples[i])
    };
    Some(Latency {
        p50: at(0.50),
        p99: at(0.99),
    })
}

/// The inputs derived from the seed, generated before any timing and shared by the
/// engines so they see the same sequence of operations.
pub struct Inputs {
    /// Every key number `0..num`, shuffled: the fillrandom order.
    pub fill_order: Vec<u64>,
    /// Key numbers of the readrandom gets.
    pub reads: Vec<u64>,
    /// Key numbers whose [`keys::missing_key`] readmissing looks up.
    pub missing: Vec<u64>,
    /// Groups of 100 keys whose prefix prefixscan scans.
    pub groups: Vec<u64>,
}

impl Inputs {
    pub fn generate(p: &Params) -> Inputs {
        let mut rng = StdRng::seed_from_u64(p.seed);
        let mut fill_order: Vec<u64> = (0..p.num).collect();
        fill_order.shuffle(&mut rng);
        let reads = (0..p.reads).map(|_| rng.random_range(0..p.num)).collect();
        let missing = (0..p.reads).map(|_| rng.random_range(0..p.num)).collect();
        let full_groups = p.num / GROUP_SIZE;
        let groups = (0..p.scans)
            .map(|_| rng.random_range(0..full_groups))
            .collect();
        Inputs {
            fill_order,
            reads,
            missing,
            groups,
        }
    }
}

fn timed(ops: u64, f: impl FnOnce() -> Result<()>) -> Result<Measurement> {
    let start = Instant::now();
    f()?;
    Ok(Measurement {
        ops,
        elapsed: start.elapsed(),
        latency: None,
        reopen: None,
    })
}

/// Puts the keys numbered by `order`, one write each.
pub fn fill(e: &dyn Engine, p: &Params, order: impl Iterator<Item = u64>) -> Result<Measurement> {
    let mut value = vec![0u8; p.value_size];
    let mut n = 0u64;
    let start = Instant::now();
    for i in order {
        keys::fill_value(i, &mut value);
        e.put(&keys::key(i), &value)?;
        n += 1;
    }
    Ok(Measurement {
        ops: n,
        elapsed: start.elapsed(),
        latency: None,
        reopen: None,
    })
}

/// Puts keys `0..num` in ascending order, `batch_size` per atomic batch.
pub fn fill_batch(e: &dyn Engine, p: &Params) -> Result<Measurement> {
    let batch = p.batch_size.max(1);
    let mut key_buf: Vec<Key> = vec![[0u8; keys::KEY_LEN]; batch];
    let mut value_buf: Vec<Vec<u8>> = vec![vec![0u8; p.value_size]; batch];
    timed(p.num, || {
        let mut next = 0u64;
        while next < p.num {
            let len = (p.num - next).min(batch as u64) as usize;
            for j in 0..len {
                let i = next + j as u64;
                key_buf[j] = keys::key(i);
                keys::fill_value(i, &mut value_buf[j]);
            }
            let items: Vec<(&[u8], &[u8])> = key_buf[..len]
                .iter()
                .zip(&value_buf[..len])
                .map(|(k, v)| (&k[..], &v[..]))
                .collect();
            e.write_batch(&items)?;
            next += len as u64;
        }
        Ok(())
    })
}

/// Gets every key numbered in `reads`; each must exist with the value written for it.
pub fn read_random(e: &dyn Engine, p: &Params, reads: &[u64]) -> Result<Measurement> {
    let mut expected = vec![0u8; p.value_size];
    let mut wrong = 0u64;
    let mut samples = Vec::with_capacity(reads.len());
    let start = Instant::now();
    for &i in reads {
        keys::fill_value(i, &mut expected);
        let t = Instant::now();
        let found = e.get(&keys::key(i), &mut |v| {
            if v != expected.as_slice() {
                wrong += 1;
            }
        })?;
        samples.push(t.elapsed().as_nanos() as u64);
        if !found {
            bail!(
                "readrandom: key {} is missing",
                String::from_utf8_lossy(&keys::key(i))
            );
        }
    }
    let elapsed = start.elapsed();
    ensure!(
        wrong == 0,
        "readrandom: {wrong} gets returned a wrong value"
    );
    Ok(Measurement {
        ops: reads.len() as u64,
        elapsed,
        latency: latency_of(samples),
        reopen: None,
    })
}

/// Gets keys that were never written; each must be absent.
pub fn read_missing(e: &dyn Engine, missing: &[u64]) -> Result<Measurement> {
    let mut samples = Vec::with_capacity(missing.len());
    let start = Instant::now();
    for &i in missing {
        let k = keys::missing_key(i);
        let t = Instant::now();
        let found = e.get(&k, &mut |_| {})?;
        samples.push(t.elapsed().as_nanos() as u64);
        if found {
            bail!(
                "readmissing: absent key {} was found",
                String::from_utf8_lossy(&k)
            );
        }
    }
    let elapsed = start.elapsed();
    Ok(Measurement {
        ops: missing.len() as u64,
        elapsed,
        latency: latency_of(samples),
        reopen: None,
    })
}

/// Scans the prefix of each group; each scan must return exactly 100 pairs.
pub fn prefix_scan(e: &dyn Engine, groups: &[u64]) -> Result<Measurement> {
    let mut samples = Vec::with_capacity(groups.len());
    let start = Instant::now();
    for &g in groups {
        let prefix = keys::group_prefix(g);
        let t = Instant::now();
        let n = e.prefix_count(&prefix)?;
        samples.push(t.elapsed().as_nanos() as u64);
        if n as u64 != GROUP_SIZE {
            bail!(
                "prefixscan: prefix {} returned {n} keys, expected {GROUP_SIZE}",
                String::from_utf8_lossy(&prefix)
            );
        }
    }
    let elapsed = start.elapsed();
    Ok(Measurement {
        ops: groups.len() as u64,
        elapsed,
        latency: latency_of(samples),
        reopen: None,
    })
}

/// `sync_writes` durable puts from each of `threads` threads, all started together.
/// Thread `t` writes key numbers `t * 10^12 ..`, so the threads never share a key.
pub fn sync_write(e: &dyn Engine, p: &Params, threads: u64) -> Result<Measurement> {
    let barrier = std::sync::Barrier::new(threads as usize + 1);
    let (elapsed, samples) = std::thread::scope(|s| -> Result<(Duration, Vec<u64>)> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || -> Result<Vec<u64>> {
                    let mut value = vec![0u8; p.value_size];
                    let mut samples = Vec::with_capacity(p.sync_writes as usize);
                    barrier.wait();
                    for j in 0..p.sync_writes {
                        let i = t * 1_000_000_000_000 + j;
                        keys::fill_value(i, &mut value);
                        let start = Instant::now();
                        e.sync_put(&keys::key(i), &value)?;
                        samples.push(start.elapsed().as_nanos() as u64);
                    }
                    Ok(samples)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut all = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(_) => bail!("a writer thread panicked"),
            }
        }
        Ok((start.elapsed(), all))
    })?;
    Ok(Measurement {
        ops: threads * p.sync_writes,
        elapsed,
        latency: latency_of(samples),
        reopen: None,
    })
}

/// Closes and reopens the database, then checks (untimed) a few keys written by the
/// fill.
pub fn reopen(e: &mut dyn Engine, p: &Params, inputs: &Inputs) -> Result<Measurement> {
    let (closed, opened) = e.reopen()?;
    let mut expected = vec![0u8; p.value_size];
    for &i in inputs.reads.iter().take(1000) {
        keys::fill_value(i, &mut expected);
        let mut same = false;
        let found = e.get(&keys::key(i), &mut |v| same = v == expected.as_slice())?;
        ensure!(
            found && same,
            "reopen: key {} is missing or wrong after the reopen",
            String::from_utf8_lossy(&keys::key(i))
        );
    }
    Ok(Measurement {
        ops: 1,
        elapsed: closed + opened,
        latency: None,
        reopen: Some((closed, opened)),
    })
}

/// The version number `v` of key `i` as the seed of its value: version 0 is what the
/// fills write (`i` itself); overwrite `j` writes version `j + 1`.
fn versioned(i: u64, v: u64) -> u64 {
    i ^ (v << 40)
}

/// What the overwrite workload measured beyond its throughput.
#[derive(Debug, Clone)]
pub struct Overwrite {
    /// Puts issued.
    pub writes: u64,
    /// Gets issued (one per [`OVERWRITE_GET_EVERY`] puts).
    pub gets: u64,
    /// Wall time of the whole run, gets included.
    pub elapsed: Duration,
    /// Wall time minus the time measured inside the gets: the time of the puts.
    pub write_time: Duration,
    /// Get latencies of each tenth of the run, in order.
    pub deciles: Vec<Option<Latency>>,
}

/// `overwrites` puts of random keys in `0..num` (every key already written by a fill
/// with version 0), each with a new value. After every [`OVERWRITE_GET_EVERY`] puts,
/// on the same thread, one get of a random key, which must return the value of that
/// key's latest put; its latency goes into the tenth of the run it falls in.
pub fn overwrite(e: &dyn Engine, p: &Params) -> Result<Overwrite> {
    ensure!(
        p.num < 1 << 40 && p.overwrites < u64::from(u32::MAX),
        "overwrite: --num must be below 2^40 and --overwrites below 2^32"
    );
    let total = p.overwrites;
    let mut version = vec![0u32; p.num as usize];
    let mut value = vec![0u8; p.value_size];
    let mut expected = vec![0u8; p.value_size];
    let mut tenths: Vec<Vec<u64>> = vec![Vec::new(); 10];
    let mut rng = StdRng::seed_from_u64(p.seed ^ 0x6f76_6572_7772_6974);
    let mut get_nanos = 0u64;
    let mut gets = 0u64;
    let start = Instant::now();
    for j in 0..total {
        let i = rng.random_range(0..p.num);
        let v = j + 1;
        keys::fill_value(versioned(i, v), &mut value);
        e.put(&keys::key(i), &value)?;
        version[i as usize] = v as u32;
        if v % OVERWRITE_GET_EVERY != 0 {
            continue;
        }
        let g = rng.random_range(0..p.num);
        let gv = u64::from(version[g as usize]);
        keys::fill_value(versioned(g, gv), &mut expected);
        let mut same = false;
        let t = Instant::now();
        let found = e.get(&keys::key(g), &mut |got| same = got == expected.as_slice())?;
        let ns = t.elapsed().as_nanos() as u64;
        ensure!(
            found && same,
            "overwrite: after put {v} of {total}, get of key {} {} (expected version {gv})",
            String::from_utf8_lossy(&keys::key(g)),
            if found {
                "returned a value other than its latest"
            } else {
                "found nothing"
            }
        );
        get_nanos += ns;
        gets += 1;
        tenths[(j * 10 / total) as usize].push(ns);
    }
    let elapsed = start.elapsed();
    Ok(Overwrite {
        writes: total,
        gets,
        elapsed,
        write_time: elapsed.saturating_sub(Duration::from_nanos(get_nanos)),
        deciles: tenths.into_iter().map(latency_of).collect(),
    })
}
