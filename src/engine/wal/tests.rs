//! Tests of the WAL as a whole: writing segments, replaying them, torn tails, damage.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::format::{encode_header, FORMAT_VERSION, HEADER_LEN};
use super::reader::decode_segment;
use super::*;
use crate::engine::types::{SeqNo, WriteBatch};

type Logged = Vec<(SeqNo, WriteBatch)>;

/// Writes `batches` as segment `id`, one record per append; returns the segment's path
/// and the offset of each record.
fn write_segment(dir: &Path, id: u64, batches: &[(SeqNo, WriteBatch)]) -> (PathBuf, Vec<u64>) {
    let mut w = WalWriter::create(dir, id).expect("create");
    let mut offsets = Vec::new();
    for (seq, batch) in batches {
        offsets.push(w.size());
        let mut rec = Vec::new();
        encode_batch_record(&mut rec, *seq, batch);
        w.append(&rec).expect("append");
    }
    w.sync().expect("sync");
    (w.path().to_path_buf(), offsets)
}

fn replay(path: &Path, is_last: bool) -> Result<(ReplayOutcome, Logged)> {
    let mut got = Vec::new();
    let outcome = replay_segment(path, is_last, |seq, batch| {
        got.push((seq, batch));
        Ok(())
    })?;
    Ok((outcome, got))
}

fn decode(data: &[u8], is_last: bool) -> Result<(ReplayOutcome, Logged)> {
    let mut got = Vec::new();
    let outcome = decode_segment(Path::new("t.wal"), data, is_last, None, |seq, batch| {
        got.push((seq, batch));
        Ok(())
    })?;
    Ok((outcome, got))
}

/// `n` small batches with consecutive sequence numbers starting at `first`.
fn small_batches(first: SeqNo, n: usize) -> Logged {
    let mut seq = first;
    (0..n)
        .map(|i| {
            let mut b = WriteBatch::new();
            b.put(format!("key{i}"), format!("value number {i}"));
            if i % 2 == 0 {
                b.delete(format!("gone{i}"));
            }
            let start = seq;
            seq += b.len() as u64;
            (start, b)
        })
        .collect()
}

fn random_batch(rng: &mut StdRng) -> WriteBatch {
    let mut b = WriteBatch::new();
    for _ in 0..rng.random_range(0..8) {
        let key = format!("k{:08}", rng.random_range(0..1_000_000u32));
        match rng.random_range(0..10) {
            0..=1 => {
                b.delete(&key);
            }
            2 => {
                b.put(&key, b"");
            }
            3 => {
                let len = rng.random_range(10_000..300_000);
                b.put(
                    &key,
                    (0..len).map(|_| rng.random::<u8>()).collect::<Vec<_>>(),
                );
            }
            _ => {
                let len = rng.random_range(1..100);
                b.put(
                    &key,
                    (0..len).map(|_| rng.random::<u8>()).collect::<Vec<_>>(),
                );
            }
        }
    }
    b
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("metadata").len()
}

#[test]
fn round_trip_across_segments_with_group_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = StdRng::seed_from_u64(7);
    let mut seq: SeqNo = 1;
    let mut written: Vec<Logged> = Vec::new();
    let mut sizes = Vec::new();
    for id in [3u64, 4, 9, 10] {
        let mut w = WalWriter::create(dir.path(), id).expect("create");
        assert_eq!((w.id(), w.size()), (id, HEADER_LEN as u64));
        let mut logged = Vec::new();
        for _ in 0..20 {
            // Group commit: several records concatenated into one append.
            let mut group = Vec::new();
            for _ in 0..rng.random_range(1..4) {
                let batch = random_batch(&mut rng);
                encode_batch_record(&mut group, seq, &batch);
                seq += batch.len() as u64;
                logged.push((seq - batch.len() as u64, batch));
            }
            w.append(&group).expect("append");
        }
        w.sync().expect("sync");
        sizes.push(w.size());
        written.push(logged);
    }
    fs::write(dir.path().join("notes.txt"), b"not a segment").expect("write");

    let ids = list_segments(dir.path()).expect("list");
    assert_eq!(ids, vec![3, 4, 9, 10]);
    let mut expect_seq = 1;
    for (i, id) in ids.iter().enumerate() {
        let path = segment_path(dir.path(), *id);
        assert_eq!(file_len(&path), sizes[i]);
        let (outcome, got) = replay(&path, i == ids.len() - 1).expect("replay");
        assert_eq!(got, written[i]);
        assert_eq!(outcome.records, written[i].len() as u64);
        assert_eq!(outcome.valid_len, sizes[i]);
        assert_eq!(outcome.truncated_at, None);
        for (first, batch) in &got {
            assert_eq!(*first, expect_seq, "sequence numbers are consecutive");
            expect_seq += batch.len() as u64;
        }
        let last = got.iter().rev().find(|(_, b)| !b.is_empty());
        assert_eq!(outcome.last_seq, last.map(|(s, b)| s + b.len() as u64 - 1));
    }
}

#[test]
fn empty_segment_and_empty_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_segment(dir.path(), 1, &[]);
    let (outcome, got) = replay(&path, false).expect("replay");
    assert!(got.is_empty());
    assert_eq!(outcome.valid_len, HEADER_LEN as u64);
    assert_eq!(outcome.last_seq, None);

    let (path, _) = write_segment(dir.path(), 2, &[(5, WriteBatch::new())]);
    let (outcome, got) = replay(&path, true).expect("replay");
    assert_eq!(got, vec![(5, WriteBatch::new())]);
    assert_eq!((outcome.records, outcome.last_seq), (1, None));
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = small_batches(1, 4);
    let (path, offsets) = write_segment(dir.path(), 1, &batches);
    let full = fs::read(&path).expect("read");
    let last_start = offsets[3];
    for cut in last_start..full.len() as u64 {
        fs::write(&path, &full[..cut as usize]).expect("write");
        let (outcome, got) = replay(&path, true).expect("a torn tail is not an error");
        assert_eq!(got, batches[..3], "cut at {cut}");
        assert_eq!(outcome.valid_len, last_start);
        let torn = (cut > last_start).then_some(last_start);
        assert_eq!(outcome.truncated_at, torn, "cut at {cut}");
        assert_eq!(file_len(&path), last_start, "the file is truncated");

        if cut > last_start {
            fs::write(&path, &full[..cut as usize]).expect("write");
            let err = replay(&path, false).expect_err("an older segment cannot be torn");
            assert!(err.is_corruption());
            assert_eq!(file_len(&path), cut, "an error leaves the file alone");
        }
    }
    // Every cut of the whole file, in memory: exactly the complete records survive.
    for cut in HEADER_LEN..full.len() {
        let (outcome, got) = decode(&full[..cut], true).expect("decode");
        let complete = offsets.iter().skip(1).filter(|&&o| o <= cut as u64).count();
        assert_eq!(got, batches[..complete]);
        assert_eq!(
            outcome.valid_len,
            offsets.get(complete).copied().unwrap_or(0)
        );
    }
}

#[test]
fn zero_filled_or_garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = small_batches(1, 5);
    let (path, _) = write_segment(dir.path(), 1, &batches);
    let valid = fs::read(&path).expect("read");
    let mut rng = StdRng::seed_from_u64(1);
    let garbage: Vec<u8> = (0..4096).map(|_| rng.random()).collect();
    for tail in [vec![0u8; 4096], vec![0u8; 3], garbage] {
        let mut data = valid.clone();
        data.extend_from_slice(&tail);
        fs::write(&path, &data).expect("write");
        let (outcome, got) = replay(&path, true).expect("replay");
        assert_eq!(got, batches);
        assert_eq!(outcome.truncated_at, Some(valid.len() as u64));
        assert_eq!(file_len(&path), valid.len() as u64);
    }
}

#[test]
fn damage_before_a_valid_record_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = small_batches(1, 5);
    let (path, offsets) = write_segment(dir.path(), 1, &batches);
    let good = fs::read(&path).expect("read");
    let (start, end) = (offsets[2] as usize, offsets[3] as usize);
    for i in start..end {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        fs::write(&path, &bad).expect("write");
        for is_last in [true, false] {
            let err = replay(&path, is_last).expect_err("damage must be reported");
            match &err {
                Error::ChecksumMismatch {
                    path: p, offset, ..
                }
                | Error::Corruption {
                    path: p, offset, ..
                } => {
                    assert_eq!((p.as_path(), *offset), (path.as_path(), start as u64));
                }
                other => panic!("unexpected error {other}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()) && msg.contains(&start.to_string()));
            assert_eq!(file_len(&path), good.len() as u64, "nothing is truncated");
        }
    }
}

#[test]
fn damage_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = small_batches(1, 3);
    let (path, offsets) = write_segment(dir.path(), 1, &batches);
    let mut data = fs::read(&path).expect("read");
    let last = data.len() - 1;
    data[last] ^= 1; // the very last byte of the last record
    fs::write(&path, &data).expect("write");
    let err = replay(&path, false).expect_err("older segments have no torn tail");
    assert!(
        matches!(err, Error::ChecksumMismatch { offset, .. } if offset == offsets[2]),
        "{err}"
    );
    // As the newest segment the same bytes are a torn tail.
    let (outcome, _) = replay(&path, true).expect("torn tail");
    assert_eq!(outcome.truncated_at, Some(offsets[2]));
}

#[test]
fn valid_crc_with_bad_contents_is_never_a_torn_tail() {
    let mut data = encode_header(0).to_vec();
    let mut rec = Vec::new();
    encode_batch_record(&mut rec, 1, WriteBatch::new().put("k", "v"));
    rec[8] = 2; // an unknown record type, with the crc recomputed
    let crc = crc32fast::hash(&rec[8..]);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    data.extend_from_slice(&rec);
    let err = decode(&data, true).expect_err("unknown type");
    assert!(matches!(err, Error::Corruption { offset, .. } if offset == HEADER_LEN as u64));
}

#[test]
fn bad_headers_are_reported_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_segment(dir.path(), 1, &small_batches(1, 2));
    let good = fs::read(&path).expect("read");

    let mut bad = good.clone();
    bad[0] = b'X';
    fs::write(&path, &bad).expect("write");
    let err = replay(&path, true).expect_err("bad magic");
    assert!(matches!(&err, Error::Corruption { offset: 0, .. }), "{err}");
    assert!(err.to_string().contains("magic"));

    let mut future = good.clone();
    future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fs::write(&path, &future).expect("write");
    let err = replay(&path, true).expect_err("future version");
    assert!(matches!(
        err,
        Error::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        }
    ));

    let mut flipped = good.clone();
    flipped[14] ^= 1;
    fs::write(&path, &flipped).expect("write");
    let err = replay(&path, true).expect_err("header crc");
    assert!(matches!(err, Error::ChecksumMismatch { offset: 0, .. }));

    // A header naming another segment than the file name.
    fs::write(segment_path(dir.path(), 2), &good).expect("write");
    let err = replay(&segment_path(dir.path(), 2), true).expect_err("id mismatch");
    assert!(matches!(err, Error::Corruption { offset: 12, .. }));
}

#[test]
fn torn_header_is_empty_only_in_the_last_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header = encode_header(5);
    let path = segment_path(dir.path(), 5);
    for cut in 0..HEADER_LEN {
        fs::write(&path, &header[..cut]).expect("write");
        let (outcome, got) = replay(&path, true).expect("torn header");
        assert!(got.is_empty());
        assert_eq!(
            (outcome.records, outcome.valid_len, outcome.truncated_at),
            (0, 0, None)
        );
        assert_eq!(file_len(&path), cut as u64, "nothing is truncated");
        assert!(replay(&path, false)
            .expect_err("older segment")
            .is_corruption());
    }
    // Zeros where the header should be: its write never reached the disk.
    fs::write(&path, [0u8; 100]).expect("write");
    assert_eq!(replay(&path, true).expect("zeroed").0.records, 0);
    assert!(replay(&path, false).is_err());
}

#[test]
fn apply_errors_stop_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_segment(dir.path(), 1, &small_batches(1, 3));
    let mut calls = 0;
    let err = replay_segment(&path, true, |_, _| {
        calls += 1;
        Err(Error::Closed)
    })
    .expect_err("apply failed");
    assert!(matches!(err, Error::Closed));
    assert_eq!(calls, 1);
}

#[test]
fn list_segments_ignores_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for id in [10u64, 2, 1, u64::MAX] {
        fs::write(segment_path(dir.path(), id), b"").expect("write");
    }
    for name in [
        "x.txt",
        "3.wal",
        "00000000000000000004.wal.tmp",
        "0000000000000000000a.wal",
    ] {
        fs::write(dir.path().join(name), b"").expect("write");
    }
    fs::create_dir(segment_path(dir.path(), 9)).expect("mkdir");
    assert_eq!(
        list_segments(dir.path()).expect("list"),
        vec![1, 2, 10, u64::MAX]
    );
    assert_eq!(
        segment_path(dir.path(), 7)
            .file_name()
            .and_then(|n| n.to_str()),
        Some("00000000000000000007.wal")
    );
}

#[test]
fn writer_refuses_an_existing_segment_and_syncs_through_a_handle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = WalWriter::create(dir.path(), 1).expect("create");
    assert!(matches!(
        WalWriter::create(dir.path(), 1),
        Err(Error::Io { .. })
    ));
    w.append(&[]).expect("empty append");
    assert_eq!(w.size(), HEADER_LEN as u64);
    let mut rec = Vec::new();
    encode_batch_record(&mut rec, 1, WriteBatch::new().put("a", "b"));
    w.append(&rec).expect("append");
    w.sync_handle().expect("handle").sync_data().expect("sync");
    assert_eq!(w.size(), file_len(w.path()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut data = encode_header(0).to_vec();
        data.extend_from_slice(&body);
        fuzz_wal_bytes(&data);
        fuzz_wal_bytes(&body);
    }

    #[test]
    fn valid_records_survive_any_garbage_tail(
        n in 0usize..6,
        tail in proptest::collection::vec(any::<u8>(), 1..512),
    ) {
        let mut data = encode_header(0).to_vec();
        let batches = small_batches(1, n);
        for (seq, b) in &batches {
            encode_batch_record(&mut data, *seq, b);
        }
        let valid = data.len() as u64;
        data.extend_from_slice(&tail);
        let (outcome, got) = decode(&data, true).expect("a garbage tail is torn");
        prop_assert_eq!(got, batches);
        prop_assert_eq!(outcome.truncated_at, Some(valid));
        fuzz_wal_bytes(&data);
    }

    #[test]
    fn batches_round_trip(
        first in 0u64..1 << 40,
        ops in proptest::collection::vec(
            (any::<bool>(), "[a-z]{1,12}", proptest::collection::vec(any::<u8>(), 0..64)),
            0..20,
        ),
    ) {
        let mut batch = WriteBatch::new();
        for (is_put, key, value) in &ops {
            if *is_put { batch.put(key, value); } else { batch.delete(key); }
        }
        let mut data = encode_header(0).to_vec();
        encode_batch_record(&mut data, first, &batch);
        let (outcome, got) = decode(&data, false).expect("decode");
        prop_assert_eq!(got, vec![(first, batch.clone())]);
        let last = (!batch.is_empty()).then(|| first + batch.len() as u64 - 1);
        prop_assert_eq!(outcome.last_seq, last);
    }
}

#[test]
fn torn_large_record_is_cut() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut data = encode_header(0).to_vec();
    let small = small_batches(1, 2);
    for (seq, b) in &small {
        encode_batch_record(&mut data, *seq, b);
    }
    let valid = data.len();
    let mut big = WriteBatch::new();
    big.put(
        "big",
        (0..8 << 20)
            .map(|_| rng.random::<u8>())
            .collect::<Vec<u8>>(),
    );
    big.put("ones", vec![1u8; 1 << 20]);
    encode_batch_record(&mut data, 10, &big);
    for cut in [valid + 5, valid + 4096, data.len() / 2, data.len() - 1] {
        let (outcome, got) = decode(&data[..cut], true).expect("torn");
        assert_eq!(got, small);
        assert_eq!(outcome.truncated_at, Some(valid as u64));
    }
}

/// Records appended across several stretches of zeros written ahead replay exactly, the
/// zeros after the last record read as a torn tail, and a record larger than a stretch
/// lands whole.
#[test]
fn zeros_written_ahead_never_cover_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = WalWriter::create(dir.path(), 7).expect("create");
    w.preallocate(3 << 20, true).expect("preallocate");
    let mut logged = Vec::new();
    for i in 0..4000u64 {
        let seq = i + 1;
        let mut b = WriteBatch::new();
        // Mostly ~600 bytes, one of 1.5 MiB (past a whole stretch of zeros).
        let len = if i == 1500 { 3 << 19 } else { 600 };
        b.put(format!("k{i:05}"), vec![(i % 251) as u8; len]);
        let mut rec = Vec::new();
        encode_batch_record(&mut rec, seq, &b);
        w.append(&rec).expect("append");
        logged.push((seq, b));
    }
    w.sync().expect("sync");
    assert!(
        w.size() > 3 << 20,
        "the records outgrew the reserved length"
    );
    let path = w.path().to_path_buf();
    drop(w);
    let (outcome, got) = replay(&path, true).expect("replay");
    assert_eq!(got.len(), logged.len());
    assert!(got
        .iter()
        .zip(&logged)
        .all(|(a, b)| a.0 == b.0 && a.1.ops() == b.1.ops()));
    assert_eq!(outcome.truncated_at, None, "nothing after the last record");

    // A segment that stopped inside its zeros: they replay as a torn tail.
    let mut w = WalWriter::create(dir.path(), 8).expect("create");
    w.preallocate(3 << 20, true).expect("preallocate");
    for (seq, b) in logged.iter().take(100) {
        let mut rec = Vec::new();
        encode_batch_record(&mut rec, *seq, b);
        w.append(&rec).expect("append");
    }
    w.sync().expect("sync");
    let end = w.size();
    let path = w.path().to_path_buf();
    drop(w);
    let data = fs::read(&path).expect("read");
    assert_eq!(data.len() as u64, 3 << 20);
    assert!(data[end as usize..].iter().all(|&b| b == 0));
    let (outcome, got) = replay(&path, true).expect("replay");
    assert_eq!(got.len(), 100);
    assert_eq!(outcome.truncated_at, Some(end));
}
