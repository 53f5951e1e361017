//! Crash test of secondary indexes: a child process writes, rewrites and deletes
//! indexed JSON records through `Indexes::write` (durably, from two threads, single
//! writes and batches) while some rounds also create, rebuild or drop and re-create a
//! second index whose build runs over ten thousand records; the parent SIGKILLs it at
//! a random moment and reopens the directory. Then `verify` must pass at once (postings
//! and records agree after the crash), every acknowledged write must be there with its
//! last acknowledged value (the one write each thread had under way may or may not be,
//! but whole), every query must give exactly the live matching records, and once the
//! interrupted builds have been resumed and finished, all of that again. Rounds
//! accumulate in one directory.
//!
//! `LSM_INDEX_CRASH_ROUNDS` sets the number of rounds (default 20).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::indexes::{def, open, query_all, wait_task, wait_tasks};
use lsm::engine::{CompactionStrategy, Db, Options, SyncPolicy, WriteBatch};
use lsm::index::{IndexDef, IndexError, Indexes};
use rand::Rng;
use serde_json::{json, Value};

const CHILD_ENV: &str = "LSM_INDEX_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "LSM_INDEX_CRASH_CHILD_ROUND";
const THREADS: usize = 2;
/// Keys each child thread writes (its own: `t{thread}/{n}`).
const KEYS_PER_THREAD: u64 = 150;
/// Records written once, before the rounds, so that builds take a while.
const BULK: u64 = 10_000;
const CITIES: [&str; 4] = ["Lisbon", "Oslo", "PortoAlegre", "Tromsø"];

fn options() -> Options {
    Options {
        memtable_max_size: 32 * 1024,
        block_size: 512,
        sync: SyncPolicy::Always,
        compaction: common::small_compaction(CompactionStrategy::Leveled),
        ..Options::default()
    }
}

fn by_city() -> IndexDef {
    def(json!({"index_name": "by_city", "index_type": "equality",
        "extractor": {"type": "json_path", "path": "$.city"}, "on_error": "skip"}))
}

fn by_age() -> IndexDef {
    def(json!({"index_name": "by_age", "index_type": "range",
        "extractor": {"type": "json_path", "path": "$.age"}, "on_error": "skip"}))
}

/// One write of a batch, as the child reports it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Op {
    Put(String, String),
    Delete(String),
}

fn value(rng: &mut impl Rng, version: u64) -> String {
    if rng.random_ratio(1, 20) {
        // Not JSON: stored, listed as skipped by both indexes.
        return format!("not json {version}");
    }
    json!({
        "city": CITIES[rng.random_range(0..CITIES.len())],
        "age": rng.random_range(0..50),
        "v": version,
    })
    .to_string()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("flush stdout");
}

/// The child: maybe start a build, then write until killed. Before each write it says
/// `TRY {thread} {ops}`, after it `ACK {thread}`.
fn child(dir: &Path, round: u64) -> ! {
    let db = Db::open(dir, options()).expect("child open");
    let ix = open(&db);
    say("READY");
    match round % 4 {
        1 => {
            if ix.get("by_age").is_ok() {
                ix.rebuild("by_age").expect("rebuild");
            } else {
                ix.create(by_age()).expect("create");
            }
        }
        3 => {
            if ix.get("by_age").is_ok() {
                ix.drop_api("by_age").expect("drop");
            }
            ix.create(by_age()).expect("create");
        }
        _ => {}
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let ix = ix.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                for n in 0u64.. {
                    let version = round * 1_000_000 + n;
                    let key = |rng: &mut rand::rngs::ThreadRng| {
                        format!("t{t}/{:03}", rng.random_range(0..KEYS_PER_THREAD))
                    };
                    let ops: Vec<Op> = match rng.random_range(0..10) {
                        0..=5 => vec![Op::Put(key(&mut rng), value(&mut rng, version))],
                        6..=7 => vec![Op::Delete(key(&mut rng))],
                        _ => {
                            let k = key(&mut rng);
                            let mut ops = vec![Op::Put(k.clone(), value(&mut rng, version))];
                            for _ in 0..rng.random_range(1..5) {
                                ops.push(if rng.random_ratio(1, 4) {
                                    Op::Delete(key(&mut rng))
                                } else {
                                    Op::Put(key(&mut rng), value(&mut rng, version))
                                });
                            }
                            // The same key twice in one batch.
                            ops.push(Op::Put(k, value(&mut rng, version)));
                            ops
                        }
                    };
                    let mut batch = WriteBatch::new();
                    for op in &ops {
                        match op {
                            Op::Put(k, v) => batch.put(k, v),
                            Op::Delete(k) => batch.delete(k),
                        };
                    }
                    say(&format!(
                        "TRY {t} {}",
                        serde_json::to_string(&ops).expect("ops")
                    ));
                    ix.write(batch).expect("child write");
                    say(&format!("ACK {t}"));
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0)
}

/// What the parent knows: the value of every key after the acknowledged writes, and the
/// write each thread had under way.
#[derive(Default)]
struct Model {
    values: BTreeMap<String, String>,
    pending: [Option<Vec<Op>>; THREADS],
}

fn apply(values: &mut BTreeMap<String, String>, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => {
                values.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                values.remove(k);
            }
        }
    }
}

impl Model {
    fn line(&mut self, line: &str) -> bool {
        if let Some(rest) = line.strip_prefix("TRY ") {
            let (t, ops) = rest.split_once(' ').expect("TRY thread ops");
            let t: usize = t.parse().expect("thread");
            self.pending[t] = Some(serde_json::from_str(ops).expect("ops"));
        } else if let Some(t) = line.strip_prefix("ACK ") {
            let t: usize = t.parse().expect("thread");
            let ops = self.pending[t].take().expect("ACK without TRY");
            apply(&mut self.values, &ops);
            return true;
        }
        false
    }

    /// Decides from the reopened engine whether each write under way at the kill was
    /// applied (it must be whole or not at all), and takes it in if so.
    fn settle(&mut self, db: &Db, round: u64) {
        for t in 0..THREADS {
            let Some(ops) = self.pending[t].take() else {
                continue;
            };
            let keys: Vec<&String> = ops
                .iter()
                .map(|op| match op {
                    Op::Put(k, _) | Op::Delete(k) => k,
                })
                .collect();
            let mut after = self.values.clone();
            apply(&mut after, &ops);
            let state = |m: &BTreeMap<String, String>| -> Vec<Option<String>> {
                keys.iter().map(|k| m.get(*k).cloned()).collect()
            };
            let found: Vec<Option<String>> = keys
                .iter()
                .map(|k| {
                    db.get(k)
                        .expect("get")
                        .map(|v| String::from_utf8(v).expect("utf-8"))
                })
                .collect();
            if found == state(&after) {
                self.values = after;
            } else {
                assert_eq!(
                    found,
                    state(&self.values),
                    "round {round}: thread {t}'s write under way at the kill is neither \
                     applied nor absent (torn?): {ops:?}"
                );
            }
        }
    }
}

fn city_of(v: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(v).ok()?;
    doc["city"].as_str().map(str::to_string)
}

fn age_of(v: &str) -> Option<i64> {
    let doc: Value = serde_json::from_str(v).ok()?;
    doc["age"].as_i64()
}

/// Checks `verify`, every key the children write, and every query, against `model`
/// (plus the bulk records, all `Oslo`, age 25).
fn check(db: &Db, ix: &Indexes, model: &Model, round: u64, when: &str) {
    for r in ix.verify().expect("verify") {
        assert!(r.ok(), "round {round}, {when}: verify: {r:?}");
    }
    for t in 0..THREADS {
        for n in 0..KEYS_PER_THREAD {
            let k = format!("t{t}/{n:03}");
            let got = db
                .get(&k)
                .expect("get")
                .map(|v| String::from_utf8(v).expect("utf-8"));
            assert_eq!(
                got.as_ref(),
                model.values.get(&k),
                "round {round}, {when}: {k} is not as last acknowledged"
            );
        }
    }
    for city in CITIES {
        let got: BTreeMap<String, Vec<u8>> =
            query_all(ix, &json!({"index": "by_city", "term": city}), 1000)
                .unwrap_or_else(|e| panic!("round {round}, {when}: query {city}: {e}"))
                .into_iter()
                .filter(|(k, _)| !k.starts_with("bulk/"))
                .collect();
        let want: BTreeMap<String, Vec<u8>> = model
            .values
            .iter()
            .filter(|(_, v)| city_of(v).as_deref() == Some(city))
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        assert_eq!(got, want, "round {round}, {when}: records in {city}");
    }
    let bulk = query_all(ix, &json!({"index": "by_city", "term": "Oslo"}), 10_000)
        .expect("query")
        .iter()
        .filter(|(k, _)| k.starts_with("bulk/"))
        .count() as u64;
    assert_eq!(bulk, BULK, "round {round}, {when}: bulk records in Oslo");
    match query_all(
        ix,
        &json!({"index": "by_age", "range": {"gte": 10, "lt": 30}}),
        1000,
    ) {
        Ok(got) => {
            let got: BTreeMap<String, Vec<u8>> = got
                .into_iter()
                .filter(|(k, _)| !k.starts_with("bulk/"))
                .collect();
            let want: BTreeMap<String, Vec<u8>> = model
                .values
                .iter()
                .filter(|(_, v)| age_of(v).is_some_and(|a| (10..30).contains(&a)))
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect();
            assert_eq!(got, want, "round {round}, {when}: ages 10 to 30");
        }
        // Not created yet, dropped and not re-created, or its first build not done.
        Err(IndexError::UnknownIndex { .. } | IndexError::NotReady { .. }) => {}
        Err(e) => panic!("round {round}, {when}: by_age: {e}"),
    }
}

#[test]
fn indexes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), round);
    }
    let rounds: u64 = std::env::var("LSM_INDEX_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), options()).expect("open");
        let ix = open(&db);
        let mut batch = WriteBatch::new();
        for n in 0..BULK {
            batch.put(
                format!("bulk/{n:05}"),
                json!({"city": "Oslo", "age": 25}).to_string(),
            );
            if batch.len() == 1000 {
                ix.write(std::mem::take(&mut batch)).expect("bulk write");
            }
        }
        let task = ix.create(by_city()).expect("create");
        wait_task(&ix, task.id);
        ix.close();
        drop(ix);
        db.close().expect("close");
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut model = Model::default();
    let mut rng = rand::rng();
    let mut acked = 0;
    let mut interrupted_builds = 0;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "indexes_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    // Only complete lines count; a line cut by the kill does not.
                    Ok(n) if n > 0 && line.ends_with(b"\n") => {
                        let s = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                        // The test harness starts the first line ("test ... ").
                        if s.ends_with("READY") {
                            let _ = ready_tx.send(());
                        } else if s.starts_with("TRY ") || s.starts_with("ACK ") {
                            lines.push(s);
                        }
                    }
                    _ => break,
                }
            }
            lines
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: the child did not start"));
        // A build over the bulk records takes some tens of milliseconds: in the rounds
        // that start one, the kill comes early enough to land in it about half the time.
        let ms = if round % 2 == 1 {
            rng.random_range(5..100)
        } else {
            rng.random_range(20..300)
        };
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        for line in reader.join().expect("reader thread") {
            if model.line(&line) {
                acked += 1;
            }
        }

        let db = Db::open(dir.path(), options())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        model.settle(&db, round);
        let ix = open(&db);
        if ix
            .list()
            .iter()
            .any(|i| i.def.index_name == "by_age" && i.task.is_some())
        {
            interrupted_builds += 1;
        }
        check(&db, &ix, &model, round, "after the kill");
        // Interrupted builds and drops resume at open: once they are done, again.
        wait_tasks(&ix);
        check(&db, &ix, &model, round, "after the resumed builds");
        ix.close();
        drop(ix);
        db.close().expect("close");
    }
    eprintln!("{acked} writes acknowledged, {interrupted_builds} builds interrupted by a kill");
    assert!(
        acked > rounds,
        "the children acknowledged too few writes to test anything: {acked}"
    );
    assert!(
        rounds < 8 || interrupted_builds > 0,
        "no kill landed during a build"
    );
}
