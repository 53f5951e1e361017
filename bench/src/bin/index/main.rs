//! `lsm-bench-index`: secondary-index workloads over JSON documents, every subject in
//! one run: ingest with the indexes maintained, an equality query on `city` and the AND
//! of `city` and an `age` range, each a first page of results. The report is Markdown:
//! one table per workload with each subject's figures and its ratio to SQLite.
//!
//! Subjects: SQLite with expression indexes (`sqlite.rs`), and lsm instances with
//! secondary indexes (`lsm_subject.rs`): `lsm-native` with the built-in `json_path`
//! extractor, `lsm-wasm` with the `json_path` WebAssembly component (skipped with a note
//! when `extractors/dist/json_path.wasm` is not built).
//!
//! Every answer is checked against the generated documents before it counts, and a few
//! queries with no limit are compared result for result, so every subject is timed on
//! the same, correct answers. Progress goes to standard error, the report to standard
//! output.

mod corpus;
mod lsm_subject;
mod sqlite;
mod subject;
mod subjects;
#[allow(dead_code)] // shared with lsm-bench, which uses more of it
#[path = "../../sysinfo.rs"]
mod sysinfo;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::SeedableRng;

use corpus::{Corpus, Hit, Query};
use subject::{Config, Subject};
use subjects::SubjectKind;

/// Secondary-index workloads (ingest, equality query, AND query) over JSON documents on
/// every subject, with a Markdown report.
#[derive(Parser, Debug)]
#[command(name = "lsm-bench-index", version)]
struct Args {
    /// Documents generated and ingested.
    #[arg(long, default_value_t = 1_000_000)]
    docs: usize,

    /// Timed queries per query workload.
    #[arg(long, default_value_t = 10_000)]
    queries: usize,

    /// Seed of the documents and of the queries.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Run only these subjects, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<SubjectKind>,

    /// Documents per ingest batch (one transaction or atomic batch each).
    #[arg(long, default_value_t = 1000)]
    batch: usize,

    /// Page size of the queries: results asked for by each one.
    #[arg(long, default_value_t = 100)]
    limit: usize,

    /// Width of the age range of the AND queries, in years.
    #[arg(long, default_value_t = 10)]
    age_span: i64,

    /// Untimed queries of each workload run first (from the same list).
    #[arg(long, default_value_t = 500)]
    warmup: usize,

    /// Timed queries each subject runs in its turn before the next subject's turn.
    #[arg(long, default_value_t = 1000)]
    slice: usize,

    /// Untimed queries at the start of each turn (the first ones of its slice).
    #[arg(long, default_value_t = 50)]
    rewarm: usize,

    /// Queries per workload answered with no limit and compared result for result.
    #[arg(long, default_value_t = 5)]
    check_queries: usize,

    /// Page / block cache of each subject, in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,

    /// Scratch directory: a fresh directory is made inside it, one per subject inside
    /// that, and all are removed at the end [default: the system temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Latency percentiles of one query workload.
struct Latency {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    /// Queries over the summed time of the calls.
    qps: f64,
}

/// Everything measured on one subject.
struct Measured {
    kind: SubjectKind,
    settings: String,
    ingest: Duration,
    disk_bytes: u64,
    equality: Latency,
    and: Latency,
    /// Hits of each check query.
    check_counts: Vec<usize>,
    notes: Vec<String>,
}

struct Workloads {
    city: Vec<Query>,
    city_age: Vec<Query>,
    /// Answered with no limit: the same for every subject.
    checks: Vec<Query>,
}

fn ask(s: &mut dyn Subject, q: &Query, limit: usize) -> Result<Vec<Hit>> {
    match *q {
        Query::City(_) => s.query_city(q.city(), limit),
        Query::CityAge { lo, hi, .. } => s.query_city_age(q.city(), lo, hi, limit),
    }
}

/// Runs `q` on `s` and checks the answer.
fn ask_checked(s: &mut dyn Subject, corpus: &Corpus, q: &Query, limit: usize) -> Result<()> {
    let hits = ask(s, q, limit)?;
    corpus
        .check(q, limit, &hits)
        .with_context(|| format!("{}: wrong answer", s.name()))
}

/// A subject ingested and checked, waiting for its timed queries.
struct Prepared {
    kind: SubjectKind,
    s: Box<dyn Subject>,
    ingest: Duration,
    disk_bytes: u64,
    check_counts: Vec<usize>,
}

/// Times `queries` on every subject, every answer checked. The subjects take turns:
/// the list is cut into slices of `args.slice` queries, and each slice runs on every
/// subject before the next one starts (in a rotating order), so a change in the
/// machine's load during the run falls on all of them alike instead of on whichever
/// ran at that moment. Each subject first runs the first `args.warmup` queries
/// untimed, and each turn starts with the first `args.rewarm` queries of its slice
/// untimed (the other subjects' turns have taken over the CPU caches meanwhile).
fn time_queries(
    subjects: &mut [Prepared],
    corpus: &Corpus,
    queries: &[Query],
    args: &Args,
) -> Result<Vec<Latency>> {
    for p in subjects.iter_mut() {
        for q in queries.iter().take(args.warmup) {
            ask_checked(p.s.as_mut(), corpus, q, args.limit)?;
        }
    }
    // 100 ns to 100 s, 3 significant digits.
    let mut hists = Vec::new();
    for _ in 0..subjects.len() {
        hists.push(Histogram::<u64>::new_with_bounds(100, 100_000_000_000, 3)?);
    }
    let mut totals = vec![Duration::ZERO; subjects.len()];
    let n = subjects.len();
    for (round, slice) in queries.chunks(args.slice.max(1)).enumerate() {
        for turn in 0..n {
            let i = (round + turn) % n;
            let s = subjects[i].s.as_mut();
            for q in slice.iter().take(args.rewarm) {
                ask_checked(s, corpus, q, args.limit)?;
            }
            for q in slice {
                let t0 = Instant::now();
                let hits = ask(s, q, args.limit)?;
                let took = t0.elapsed();
                totals[i] += took;
                hists[i].saturating_record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                corpus
                    .check(q, args.limit, &hits)
                    .with_context(|| format!("{}: wrong answer", s.name()))?;
            }
        }
    }
    Ok(hists
        .iter()
        .zip(totals)
        .map(|(hist, total)| Latency {
            p50: Duration::from_nanos(hist.value_at_quantile(0.50)),
            p99: Duration::from_nanos(hist.value_at_quantile(0.99)),
            mean: total.div_f64(queries.len() as f64),
            qps: queries.len() as f64 / total.as_secs_f64(),
        })
        .collect())
}

/// Opens a subject, ingests the corpus (timed, including the subject's settling) and
/// answers the check queries.
fn prepare(
    kind: SubjectKind,
    dir: &Path,
    cfg: &Config,
    corpus: &Corpus,
    w: &Workloads,
    args: &Args,
) -> Result<Prepared> {
    let mut s = kind.open(dir, cfg)?;
    let name = s.name();
    eprintln!("[{name}] ingesting {} documents", corpus.docs.len());
    let t0 = Instant::now();
    for batch in corpus.docs.chunks(args.batch) {
        s.ingest(batch)?;
    }
    s.settle()?;
    let ingest = t0.elapsed();
    let disk_bytes = sysinfo::dir_bytes(dir)?;
    eprintln!(
        "[{name}] ingest: {:.2} s = {} docs/s, {:.1} MiB on disk",
        ingest.as_secs_f64(),
        thousands(corpus.docs.len() as f64 / ingest.as_secs_f64()),
        mib(disk_bytes)
    );

    let mut check_counts = Vec::new();
    for q in &w.checks {
        let hits = ask(s.as_mut(), q, usize::MAX)?;
        corpus
            .check(q, usize::MAX, &hits)
            .with_context(|| format!("{name}: wrong answer"))?;
        check_counts.push(hits.len());
    }
    eprintln!("[{name}] {} check queries answered exactly", w.checks.len());
    Ok(Prepared {
        kind,
        s,
        ingest,
        disk_bytes,
        check_counts,
    })
}

/// Ingests on every subject, one after the other, then times the query workloads on
/// all of them taking turns (see [`time_queries`]).
fn run_subjects(
    kinds: &[SubjectKind],
    base: &Path,
    cfg: &Config,
    corpus: &Corpus,
    w: &Workloads,
    args: &Args,
) -> Result<Vec<Measured>> {
    let mut prepared = Vec::new();
    for &kind in kinds {
        prepared.push(prepare(
            kind,
            &base.join(kind.name()),
            cfg,
            corpus,
            w,
            args,
        )?);
    }
    let equality = time_queries(&mut prepared, corpus, &w.city, args)?;
    let and = time_queries(&mut prepared, corpus, &w.city_age, args)?;
    let mut results = Vec::new();
    for ((mut p, equality), and) in prepared.into_iter().zip(equality).zip(and) {
        let name = p.s.name();
        eprintln!(
            "[{name}] equality: p50 {} µs, p99 {} µs; AND: p50 {} µs, p99 {} µs",
            micros(equality.p50),
            micros(equality.p99),
            micros(and.p50),
            micros(and.p99)
        );
        results.push(Measured {
            kind: p.kind,
            settings: p.s.settings(),
            ingest: p.ingest,
            disk_bytes: p.disk_bytes,
            equality,
            and,
            check_counts: p.check_counts,
            notes: p.s.notes()?,
        });
    }
    Ok(results)
}

fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x < 100.0 {
        return format!("{x:.2}");
    }
    let digits = format!("{x:.0}");
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
        format!("{us:.0}")
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `x` ÷ `baseline` as `1.23×`, or `n/a`.
fn ratio(x: f64, baseline: Option<f64>) -> String {
    match baseline {
        Some(b) if b > 0.0 && x.is_finite() => format!("{:.2}×", x / b),
        _ => "n/a".into(),
    }
}

fn latency_table(out: &mut String, results: &[Measured], pick: impl Fn(&Measured) -> &Latency) {
    let base = results
        .iter()
        .find(|m| m.kind == SubjectKind::BASELINE)
        .map(&pick);
    let b = SubjectKind::BASELINE.name();
    let _ = writeln!(
        out,
        "| subject | p50 µs | p99 µs | mean µs | queries/s | p50 ratio ({b} ÷ subject) | \
         p99 ratio ({b} ÷ subject) |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for m in results {
        let l = pick(m);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            m.kind.name(),
            micros(l.p50),
            micros(l.p99),
            micros(l.mean),
            thousands(l.qps),
            // Lower is better: the baseline's time over this one's, so above 1 is faster.
            ratio(
                1.0 / l.p50.as_secs_f64(),
                base.map(|b| 1.0 / b.p50.as_secs_f64())
            ),
            ratio(
                1.0 / l.p99.as_secs_f64(),
                base.map(|b| 1.0 / b.p99.as_secs_f64())
            ),
        );
    }
}

/// The first three fields of `/proc/loadavg`: other work on the machine skews the
/// figures, so the report shows it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

#[allow(clippy::too_many_arguments)]
fn report(
    load_before: &str,
    args: &Args,
    corpus: &Corpus,
    w: &Workloads,
    results: &[Measured],
    skipped: &[String],
    base: &Path,
    total: Duration,
) -> String {
    let mut out = String::new();
    let n = corpus.docs.len();
    let cmd: Vec<String> = std::env::args().collect();
    let (mean, min, max) = corpus.sizes();
    let _ = writeln!(out, "## lsm-bench-index results\n");
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
        "- load average (1, 5, 15 min) before the run: {load_before}, after: {}",
        load_average()
    );
    let _ = writeln!(
        out,
        "- scratch directory: {} on {}",
        base.display(),
        sysinfo::disk_of(base)
    );
    let _ = writeln!(
        out,
        "- documents: {} JSON objects of {mean:.0} bytes on average ({min}–{max}), keys \
         `users:00000000` on, ingested in key order in batches of {}; `city` one of {} \
         (uniform), `age` {}..={} (uniform), 2–4 of 50 tags, a name and a one-sentence bio; \
         seed {}",
        thousands(n as f64),
        args.batch,
        corpus::CITIES.len(),
        corpus::AGES.0,
        corpus::AGES.1,
        args.seed
    );
    let mean_matches = |qs: &[Query]| {
        qs.iter().map(|q| corpus.count(q)).sum::<usize>() as f64 / qs.len().max(1) as f64
    };
    let short = |qs: &[Query]| qs.iter().filter(|q| corpus.count(q) < args.limit).count();
    let _ = writeln!(
        out,
        "- queries: {} per workload, first page of {} with the documents' values; {} untimed \
         first; equality: a random city ({:.0} matches on average, {} queries with fewer \
         than {}); AND: a random city and `lo <= age < lo + {}` ({:.0} matches on average, \
         {} with fewer than {}). The subjects take turns: each runs a slice of {} queries \
         (the first {} of it once untimed) before the next one runs the same slice. Every \
         answer is checked against the generated documents: exactly min(limit, matches) \
         hits, each matching, none twice, each with its own document",
        thousands(args.queries as f64),
        args.limit,
        args.warmup.min(args.queries),
        mean_matches(&w.city),
        short(&w.city),
        args.limit,
        args.age_span,
        mean_matches(&w.city_age),
        short(&w.city_age),
        args.limit,
        args.slice,
        args.rewarm
    );
    for m in results {
        let _ = writeln!(out, "- {}", m.settings);
    }
    let _ = writeln!(out, "- total run time: {:.1} s\n", total.as_secs_f64());

    let b = SubjectKind::BASELINE.name();
    let base_ingest = results
        .iter()
        .find(|m| m.kind == SubjectKind::BASELINE)
        .map(|m| n as f64 / m.ingest.as_secs_f64());
    let _ = writeln!(out, "### Ingest\n");
    let _ = writeln!(
        out,
        "| subject | docs/s | ratio to {b} | seconds | on disk MiB |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
    for m in results {
        let rate = n as f64 / m.ingest.as_secs_f64();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.1} |",
            m.kind.name(),
            thousands(rate),
            ratio(rate, base_ingest),
            m.ingest.as_secs_f64(),
            mib(m.disk_bytes)
        );
    }
    let _ = writeln!(
        out,
        "\nOn disk: every file in the subject's directory right after the ingest.\n"
    );
    let rate_of = |kind: SubjectKind| {
        results
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| n as f64 / m.ingest.as_secs_f64())
    };
    if let (Some(wasm), Some(native)) = (
        rate_of(SubjectKind::LsmWasm),
        rate_of(SubjectKind::LsmNative),
    ) {
        let _ = writeln!(
            out,
            "Ingest with the WebAssembly extractors ÷ ingest with the native ones: {}\n",
            ratio(wasm, Some(native))
        );
    }

    let _ = writeln!(out, "### Equality: `city = c`, first {}\n", args.limit);
    latency_table(&mut out, results, |m| &m.equality);
    let _ = writeln!(
        out,
        "\n### AND: `city = c and lo <= age < lo + {}`, first {}\n",
        args.age_span, args.limit
    );
    latency_table(&mut out, results, |m| &m.and);
    let _ = writeln!(
        out,
        "\nLatency is measured around each call, including reading the values. Ratios \
         above 1 mean faster than {b}.\n"
    );

    let _ = writeln!(out, "### Cross-check: no limit, every result compared\n");
    let mut header = String::from("| query | matches |");
    let mut rule = String::from("| --- | ---: |");
    for m in results {
        let _ = write!(header, " {} |", m.kind.name());
        rule.push_str(" ---: |");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (i, q) in w.checks.iter().enumerate() {
        let mut row = format!("| {} | {} |", q.describe(), corpus.count(q));
        for m in results {
            let _ = write!(row, " {} |", m.check_counts[i]);
        }
        let _ = writeln!(out, "{row}");
    }
    let notes: Vec<&String> = skipped
        .iter()
        .chain(results.iter().flat_map(|m| &m.notes))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\n### Notes\n");
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.docs > 0, "--docs must be at least 1");
    ensure!(args.batch > 0, "--batch must be at least 1");
    ensure!(args.limit > 0, "--limit must be at least 1");
    ensure!(args.queries > 0, "--queries must be at least 1");
    ensure!(
        (1..=corpus::AGES.1 - corpus::AGES.0 + 1).contains(&args.age_span),
        "--age-span must be 1..={}",
        corpus::AGES.1 - corpus::AGES.0 + 1
    );
    let mut kinds = Vec::new();
    let mut skipped = Vec::new();
    for kind in SubjectKind::ALL {
        if !(args.only.is_empty() || args.only.contains(&kind)) {
            continue;
        }
        match kind.unavailable() {
            None => kinds.push(kind),
            // Asked for by name: not running it is an error, not a note.
            Some(why) if args.only.contains(&kind) => bail!("{}: {why}", kind.name()),
            Some(why) => {
                eprintln!("skipping {}: {why}", kind.name());
                skipped.push(format!("{} skipped: {why}", kind.name()));
            }
        }
    }

    let load_before = load_average();
    let started = Instant::now();
    eprintln!("generating {} documents", args.docs);
    let corpus = Corpus::generate(args.docs, args.seed)?;
    // The queries come from a stream of their own, so they do not depend on --docs.
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x9e37_79b9_7f4a_7c15);
    let city = corpus::city_queries(args.queries, &mut rng);
    let city_age = corpus::city_age_queries(args.queries, args.age_span, &mut rng);
    let mut checks = corpus::city_queries(args.check_queries, &mut rng);
    checks.extend(corpus::city_age_queries(
        args.check_queries,
        args.age_span,
        &mut rng,
    ));
    let w = Workloads {
        city,
        city_age,
        checks,
    };

    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let base = tempfile::Builder::new()
        .prefix("lsm-bench-index-")
        .tempdir_in(&parent)?;
    let cfg = Config {
        cache_bytes: args.cache_mb * 1024 * 1024,
    };
    let results = run_subjects(&kinds, base.path(), &cfg, &corpus, &w, &args)?;
    // Every subject answered each check query exactly, so the counts agree; say so
    // explicitly rather than rely on it.
    for m in results.iter().skip(1) {
        ensure!(
            m.check_counts == results[0].check_counts,
            "{} and {} disagree on the check queries",
            m.kind.name(),
            results[0].kind.name()
        );
    }
    print!(
        "{}",
        report(
            &load_before,
            &args,
            &corpus,
            &w,
            &results,
            &skipped,
            base.path(),
            started.elapsed()
        )
    );
    Ok(())
}
