//! Table-level tests: writing, point lookups, iteration and seeks, block accounting.
//! Damaged files are in `corruption.rs`, property tests in `fuzz.rs`.

mod corruption;
mod fuzz;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::engine::error::Error;
use crate::engine::iter::InternalIterator;
use crate::engine::stats::ReadCounters;
use crate::engine::types::{SeqNo, ValueKind, MAX_SEQNO};

/// One version as written.
pub(super) type Entry = (Vec<u8>, SeqNo, ValueKind, Vec<u8>);

/// Writes `entries` (already in internal-key order) to `dir/name`.
pub(super) fn write_table(
    dir: &Path,
    name: &str,
    opts: TableOptions,
    entries: &[Entry],
) -> PathBuf {
    let path = dir.join(name);
    let mut w = TableWriter::create(&path, opts).expect("create");
    for (k, s, kind, v) in entries {
        w.add(k, *s, *kind, v).expect("add in order");
    }
    w.finish().expect("finish");
    path
}

pub(super) fn open(path: &Path) -> (Arc<Table>, Arc<ReadCounters>) {
    let counters = Arc::new(ReadCounters::default());
    let table = Table::open(path, 1, new_block_cache(8 << 20), counters.clone()).expect("open");
    (table, counters)
}

/// `n` user keys `user:000000`, `user:000002`, ... (even numbers only, so odd ones are
/// absent), each with 1..=3 versions, about a fifth of them tombstones.
pub(super) fn dataset(n: usize, seed: u64) -> Vec<Entry> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("user:{:06}", 2 * i).into_bytes();
        let versions = rng.random_range(1..=3u64);
        let base = rng.random_range(1..1_000_000u64);
        for v in 0..versions {
            let seq = base + versions - 1 - v;
            let (kind, value) = if rng.random_range(0..5) == 0 {
                (ValueKind::Delete, Vec::new())
            } else {
                let len = rng.random_range(0..40);
                (
                    ValueKind::Put,
                    format!("{i}@{seq}/{}", "v".repeat(len)).into_bytes(),
                )
            };
            out.push((key.clone(), seq, kind, value));
        }
    }
    out
}

/// The answer `Table::get(key, seq)` must give for `entries`.
fn expected_get(entries: &[Entry], key: &[u8], seq: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
    entries
        .iter()
        .find(|(k, s, _, _)| k == key && *s <= seq)
        .map(|(_, s, kind, v)| (*s, *kind, v.clone()))
}

pub(super) fn collect(it: &mut TableIterator) -> Vec<Entry> {
    let mut out = Vec::new();
    while it.valid() {
        out.push((
            it.user_key().to_vec(),
            it.seq(),
            it.kind(),
            it.value().to_vec(),
        ));
        it.next().expect("next");
    }
    out
}

fn small_blocks() -> TableOptions {
    TableOptions {
        block_size: 256,
        ..TableOptions::default()
    }
}

#[test]
fn round_trip_gets_at_every_seq_and_full_iteration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = dataset(2000, 1);
    let path = write_table(dir.path(), "t.sst", small_blocks(), &entries);
    let (table, _) = open(&path);
    assert!(table.properties().data_blocks > 50);

    for (key, seq, _, _) in &entries {
        for at in [MAX_SEQNO, *seq, seq.saturating_sub(1), 0] {
            let got = table.get(key, at).expect("get");
            assert_eq!(got, expected_get(&entries, key, at), "get({key:?}, {at})");
        }
    }
    for i in [1, 777, 3999, 5000] {
        let absent = format!("user:{i:06}").into_bytes();
        assert_eq!(table.get(&absent, MAX_SEQNO).expect("get"), None);
    }

    let mut it = table.iter();
    it.seek_to_first().expect("seek_to_first");
    assert_eq!(collect(&mut it), entries);
    assert_eq!(table.verify().expect("verify"), entries.len() as u64);
}

#[test]
fn finish_reports_the_properties_open_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = dataset(500, 2);
    let path = dir.path().join("t.sst");
    let mut w = TableWriter::create(&path, small_blocks()).expect("create");
    assert!(w.is_empty());
    for (k, s, kind, v) in &entries {
        w.add(k, *s, *kind, v).expect("add");
    }
    assert!(!w.is_empty());
    let approx = w.approximate_size();
    let written = w.finish().expect("finish");
    let (table, _) = open(&path);
    let p = table.properties();
    assert_eq!(*p, written);
    assert!(approx <= p.file_size && p.file_size > p.data_size);
    assert_eq!(p.file_size, std::fs::metadata(&path).expect("stat").len());
    assert_eq!(p.entries, entries.len() as u64);
    let deletions = entries.iter().filter(|e| e.2 == ValueKind::Delete).count();
    assert_eq!(p.deletions, deletions as u64);
    assert_eq!(p.smallest_key, entries[0].0);
    assert_eq!(p.largest_key, entries[entries.len() - 1].0);
    assert_eq!(
        p.min_seq,
        entries.iter().map(|e| e.1).min().expect("non-empty")
    );
    assert_eq!(
        p.max_seq,
        entries.iter().map(|e| e.1).max().expect("non-empty")
    );
    let raw_keys: usize = entries.iter().map(|e| e.0.len()).sum();
    assert_eq!(p.raw_key_bytes, raw_keys as u64);
    assert!(p.created_unix > 1_600_000_000);
}

#[test]
fn seek_semantics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = |k: &str, s, kind, v: &str| (k.as_bytes().to_vec(), s, kind, v.as_bytes().to_vec());
    let mut entries = vec![
        e("apple", 30, ValueKind::Put, "a30"),
        e("apple", 20, ValueKind::Delete, ""),
        e("apple", 10, ValueKind::Put, "a10"),
    ];
    // Enough filler to spread the keys over several blocks.
    for i in 0..200 {
        entries.push(e(&format!("m{i:04}"), 5, ValueKind::Put, "filler-value"));
    }
    entries.push(e("zebra", 40, ValueKind::Put, "z40"));
    entries.push(e("zebra", 7, ValueKind::Put, "z7"));
    let path = write_table(dir.path(), "t.sst", small_blocks(), &entries);
    let (table, _) = open(&path);
    let mut it = table.iter();
    let mut at = |k: &str, s: SeqNo| {
        it.seek(k.as_bytes(), s).expect("seek");
        it.valid().then(|| {
            (
                String::from_utf8_lossy(it.user_key()).into_owned(),
                it.seq(),
            )
        })
    };
    let pos = |k: &str, s| Some((k.to_string(), s));
    assert_eq!(at("apple", MAX_SEQNO), pos("apple", 30));
    assert_eq!(at("apple", 25), pos("apple", 20));
    assert_eq!(at("apple", 10), pos("apple", 10));
    assert_eq!(at("apple", 9), pos("m0000", 5));
    assert_eq!(at("a", 0), pos("apple", 30));
    assert_eq!(at("m0100", MAX_SEQNO), pos("m0100", 5));
    assert_eq!(at("m0100x", MAX_SEQNO), pos("m0101", 5));
    assert_eq!(at("m0199", 4), pos("zebra", 40));
    assert_eq!(at("zebra", 39), pos("zebra", 7));
    assert_eq!(at("zebra", 6), None);
    assert_eq!(at("zz", MAX_SEQNO), None);

    // After a seek, next walks on across block boundaries to the end.
    it.seek(b"m0190", MAX_SEQNO).expect("seek");
    let rest = collect(&mut it);
    assert_eq!(rest.len(), 10 + 2);
    assert_eq!(rest[0].0, b"m0190");
    assert_eq!(rest[11].3, b"z7");
}

#[test]
fn prefixes_huge_and_empty_values_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = vec![0xabu8; 50_000];
    let mut entries: Vec<Entry> = Vec::new();
    for i in 0..300u32 {
        let key = format!("tenant/alpha/collection/items/{i:05}").into_bytes();
        let value = match i % 10 {
            0 => huge.clone(),
            1 | 2 => Vec::new(),
            _ => i.to_le_bytes().repeat(i as usize % 7),
        };
        entries.push((key, u64::from(i) + 1, ValueKind::Put, value));
    }
    for restart_interval in [1, 3, 16, 10_000] {
        let opts = TableOptions {
            restart_interval,
            ..TableOptions::default()
        };
        let name = format!("t{restart_interval}.sst");
        let path = write_table(dir.path(), &name, opts, &entries);
        let (table, _) = open(&path);
        let mut it = table.iter();
        it.seek_to_first().expect("seek");
        assert_eq!(
            collect(&mut it),
            entries,
            "restart interval {restart_interval}"
        );
        for (k, s, kind, v) in entries.iter().step_by(3) {
            assert_eq!(
                table.get(k, MAX_SEQNO).expect("get"),
                Some((*s, *kind, v.clone()))
            );
        }
        table.verify().expect("verify");
    }
    // Shared prefixes are stored once per restart run: the table is far smaller than
    // the raw keys and values.
    let (table, _) = open(&dir.path().join("t16.sst"));
    let p = table.properties();
    assert!(p.data_size < p.raw_key_bytes + p.raw_value_bytes);
}

#[test]
fn bloom_filter_keeps_false_positives_low() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries: Vec<Entry> = (0..10_000)
        .map(|i| {
            (
                format!("present-{i:06}").into_bytes(),
                1,
                ValueKind::Put,
                b"v".to_vec(),
            )
        })
        .collect();
    let path = write_table(dir.path(), "t.sst", TableOptions::default(), &entries);
    let (table, counters) = open(&path);
    for i in 0..10_000 {
        let key = format!("present-{:06}x", i);
        assert_eq!(table.get(key.as_bytes(), MAX_SEQNO).expect("get"), None);
    }
    let negatives = ReadCounters::load(&counters.bloom_negatives);
    let false_positives = ReadCounters::load(&counters.bloom_false_positives);
    assert_eq!(negatives + false_positives, 10_000);
    assert!(
        false_positives < 300,
        "{false_positives} false positives in 10000"
    );
    // Only the lookups the filter let through touched a data block.
    assert_eq!(table.blocks_read(), false_positives);

    assert!(table
        .get(b"present-000123", MAX_SEQNO)
        .expect("get")
        .is_some());
    assert_eq!(ReadCounters::load(&counters.bloom_true_positives), 1);
}

#[test]
fn a_get_reads_exactly_one_data_block_and_the_cache_serves_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = dataset(3000, 3);
    let path = write_table(dir.path(), "t.sst", small_blocks(), &entries);
    let (table, counters) = open(&path);
    assert!(table.properties().data_blocks > 100);
    assert_eq!(table.blocks_read(), 0, "open reads no data block");

    let (key, seq, kind, value) = &entries[entries.len() / 2];
    assert_eq!(
        table.get(key, *seq).expect("get"),
        Some((*seq, *kind, value.clone()))
    );
    assert_eq!(table.blocks_read(), 1);
    assert_eq!(ReadCounters::load(&counters.blocks_read_from_disk), 1);
    table.get(key, *seq).expect("get");
    assert_eq!(table.blocks_read(), 2);
    assert_eq!(ReadCounters::load(&counters.blocks_read), 2);
    assert_eq!(
        ReadCounters::load(&counters.blocks_read_from_disk),
        1,
        "second read hit the cache"
    );

    // The last key of a block and the first key of the next are each one block away.
    let (boundary, _) = table.index.last_key(10);
    let before = table.blocks_read();
    table.get(boundary, MAX_SEQNO).expect("get");
    assert_eq!(table.blocks_read(), before + 1);
}

#[test]
fn iterators_load_blocks_lazily() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = dataset(1000, 4);
    let path = write_table(dir.path(), "t.sst", small_blocks(), &entries);
    let (table, _) = open(&path);
    let mut it = table.iter();
    assert!(!it.valid());
    assert_eq!(table.blocks_read(), 0);
    it.seek(&entries[500].0, MAX_SEQNO).expect("seek");
    assert!(it.valid());
    assert_eq!(table.blocks_read(), 1);
}

#[test]
fn out_of_order_versions_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.sst");
    let mut w = TableWriter::create(&path, TableOptions::default()).expect("create");
    w.add(b"b", 5, ValueKind::Put, b"x").expect("first");
    for (k, s) in [(&b"a"[..], 9), (b"b", 5), (b"b", 6)] {
        let err = w.add(k, s, ValueKind::Put, b"y").expect_err("out of order");
        assert!(
            matches!(&err, Error::Corruption { path: p, .. } if *p == path),
            "{err}"
        );
    }
    // The writer is still usable and the refused versions are not in the table.
    w.add(b"b", 4, ValueKind::Delete, b"")
        .expect("older version");
    w.add(b"c", 100, ValueKind::Put, b"z").expect("next key");
    w.finish().expect("finish");
    let (table, _) = open(&path);
    let mut it = table.iter();
    it.seek_to_first().expect("seek");
    let seen: Vec<_> = collect(&mut it).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        seen,
        vec![(b"b".to_vec(), 5), (b"b".to_vec(), 4), (b"c".to_vec(), 100)]
    );
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.sst");
    for opts in [
        TableOptions {
            block_size: 0,
            ..TableOptions::default()
        },
        TableOptions {
            restart_interval: 0,
            ..TableOptions::default()
        },
        TableOptions {
            bloom_bits_per_key: 1000,
            ..TableOptions::default()
        },
    ] {
        let err = TableWriter::create(&path, opts).expect_err("invalid");
        assert!(matches!(err, Error::InvalidOption(_)), "{err}");
    }
}

#[test]
fn empty_table_opens_and_holds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_table(dir.path(), "t.sst", TableOptions::default(), &[]);
    let (table, _) = open(&path);
    assert_eq!(table.properties().entries, 0);
    assert_eq!(table.get(b"a", MAX_SEQNO).expect("get"), None);
    assert!(!table.overlaps(b"", None));
    let mut it = table.iter();
    it.seek_to_first().expect("seek");
    assert!(!it.valid());
    assert_eq!(table.verify().expect("verify"), 0);
}

#[test]
fn tables_without_a_filter_still_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = dataset(300, 5);
    let opts = TableOptions {
        bloom_bits_per_key: 0,
        ..small_blocks()
    };
    let path = write_table(dir.path(), "t.sst", opts, &entries);
    let (table, counters) = open(&path);
    for (k, s, kind, v) in &entries {
        if expected_get(&entries, k, *s).is_some() {
            assert_eq!(table.get(k, *s).expect("get"), Some((*s, *kind, v.clone())));
        }
    }
    assert_eq!(table.get(b"user:000001", MAX_SEQNO).expect("get"), None);
    assert_eq!(ReadCounters::load(&counters.bloom_negatives), 0);
    table.verify().expect("verify");
}

#[test]
fn overlaps_uses_the_key_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries: Vec<Entry> = ["d", "f", "h"]
        .iter()
        .map(|k| (k.as_bytes().to_vec(), 1, ValueKind::Put, Vec::new()))
        .collect();
    let path = write_table(dir.path(), "t.sst", TableOptions::default(), &entries);
    let (t, _) = open(&path);
    assert!(t.overlaps(b"a", None));
    assert!(t.overlaps(b"h", None));
    assert!(!t.overlaps(b"i", None));
    assert!(t.overlaps(b"a", Some(b"e")));
    assert!(!t.overlaps(b"a", Some(b"d")), "end is exclusive");
    assert!(t.overlaps(b"e", Some(b"g")));
    assert!(t.overlaps(b"h", Some(b"z")));
}

#[test]
fn tables_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Table>();
    fn assert_send<T: Send>() {}
    assert_send::<TableIterator>();

    let dir = tempfile::tempdir().expect("tempdir");
    let entries = Arc::new(dataset(1000, 6));
    let path = write_table(dir.path(), "t.sst", small_blocks(), &entries);
    let (table, _) = open(&path);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (table, entries) = (table.clone(), entries.clone());
            std::thread::spawn(move || {
                for (k, s, _, _) in entries.iter().skip(t).step_by(4) {
                    let got = table.get(k, *s).expect("get");
                    assert_eq!(got, expected_get(&entries, k, *s));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
}
