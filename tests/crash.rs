//! Crash test: a child process writes (under each sync policy in turn) from several threads and
//! prints each key once its write is acknowledged; the parent SIGKILLs it at a random
//! moment, reopens the directory and checks that every acknowledged key is there with
//! its value. The child's memtable is tiny, so kills land during flushes, WAL rotations
//! and manifest updates too. Rounds accumulate in one directory, so later rounds also
//! check the survivors of every earlier crash.
//!
//! `LSM_CRASH_ROUNDS` sets the number of rounds (default 50).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lsm::engine::{CompactionStrategy, Db, Options, SyncPolicy, WriteBatch};
use rand::Rng;

const CHILD_ENV: &str = "LSM_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "LSM_CRASH_CHILD_ROUND";

/// Rounds cycle through the sync policies: under every one of them an acknowledged
/// write has reached the OS, which is all a process crash needs.
fn child_options(round: u64) -> Options {
    let sync = match round % 3 {
        0 => SyncPolicy::Always,
        1 => SyncPolicy::Periodic(Duration::from_millis(5)),
        _ => SyncPolicy::Never,
    };
    // Tiny tables and levels keep compaction busy, so kills also land in the middle
    // of compactions (alternately leveled and size-tiered).
    let strategy = if round.is_multiple_of(2) {
        CompactionStrategy::Leveled
    } else {
        CompactionStrategy::SizeTiered
    };
    Options {
        memtable_max_size: 32 * 1024,
        block_size: 512,
        sync,
        compaction: common::small_compaction(strategy),
        ..Options::default()
    }
}

fn value_for(key: &str) -> Vec<u8> {
    format!("value-of-{key}-").repeat(3).into_bytes()
}

/// The child: write until killed, acknowledging each key on stdout.
fn child(dir: &Path, round: u64) -> ! {
    let db = Db::open(dir, child_options(round)).expect("child open");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for n in 0u64.. {
                    let base = format!("r{round:03}/t{t}/{n:08}");
                    let keys: Vec<String> = if n % 10 == 0 {
                        (0..3).map(|i| format!("{base}/b{i}")).collect()
                    } else {
                        vec![base]
                    };
                    let mut batch = WriteBatch::new();
                    for k in &keys {
                        batch.put(k, value_for(k));
                    }
                    db.write_batch(batch).expect("child write");
                    let mut out = std::io::stdout().lock();
                    for k in &keys {
                        writeln!(out, "ACK {k}").expect("ack");
                    }
                    out.flush().expect("flush stdout");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), round);
    }
    let rounds: u64 = std::env::var("LSM_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut rng = rand::rng();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "acknowledged_writes_survive_sigkill",
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
        let reader = std::thread::spawn(move || {
            let mut keys = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    // Only complete lines are acknowledgements; a line cut by the kill
                    // is not.
                    Ok(n) if n > 0 && line.ends_with(b"\n") => {
                        let s = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                        if let Some(key) = s.strip_prefix("ACK ") {
                            keys.push(key.to_string());
                        }
                    }
                    _ => break,
                }
            }
            keys
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(30..250)));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        let keys = reader.join().expect("reader thread");

        // Every key acknowledged in this round, and a sample of the earlier rounds'
        // (all of them are checked once more at the end).
        let db = Db::open(dir.path(), child_options(round))
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let sample = acked.iter().filter(|_| rng.random_ratio(1, 20));
        for k in keys.iter().chain(sample) {
            let got = db.get(k).expect("get");
            assert_eq!(
                got.as_deref(),
                Some(value_for(k).as_slice()),
                "round {round}: lost acknowledged key {k}"
            );
        }
        acked.extend(keys);
        db.close().expect("close");
    }
    assert!(
        acked.len() as u64 > rounds,
        "the child acknowledged too few writes to test anything: {}",
        acked.len()
    );

    // Every key acknowledged in any round is there at the end.
    let db = Db::open(dir.path(), child_options(0)).expect("final reopen");
    for k in &acked {
        let got = db.get(k).expect("get");
        assert_eq!(got.as_deref(), Some(value_for(k).as_slice()), "lost {k}");
    }
    // The kills landed while the child flushed and compacted: its tiny memtable and
    // levels keep both busy, and compacted tables are what the database holds now.
    let levels = db.stats().tables_per_level;
    assert!(
        levels.iter().skip(1).sum::<u64>() > 0,
        "no compaction ever completed in the child: {levels:?}"
    );
}
