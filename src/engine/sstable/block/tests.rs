//! Unit tests of the block format: building, parsing, walking and point reads.

use super::*;
use std::sync::Arc;

/// A seek target and the (user key, seq) it must land on, if any.
type SeekCase<'a> = (&'a [u8], SeqNo, Option<(&'a [u8], SeqNo)>);

fn build(entries: &[(&[u8], SeqNo, ValueKind, &[u8])], interval: usize) -> Arc<Block> {
    let mut b = BlockBuilder::new(interval);
    for (k, s, kind, v) in entries {
        b.add(k, *s, *kind, v);
    }
    let bytes = b.finish().expect("small block");
    Arc::new(Block::new(bytes).expect("valid block"))
}

fn collect(it: &mut BlockIter) -> Vec<(Vec<u8>, SeqNo, Vec<u8>)> {
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.user_key().to_vec(), it.seq(), it.value().to_vec()));
        it.next().expect("decodes");
    }
    out
}

#[test]
fn prefix_compression_and_restarts_round_trip() {
    let keys: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("user:{i:05}").into_bytes())
        .collect();
    let big = vec![7u8; 10_000];
    for interval in [1, 2, 16, 1000] {
        let entries: Vec<(&[u8], SeqNo, ValueKind, &[u8])> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let v: &[u8] = match i % 3 {
                    0 => b"",
                    1 => &big,
                    _ => k,
                };
                (k.as_slice(), i as SeqNo, ValueKind::Put, v)
            })
            .collect();
        let block = build(&entries, interval);
        let mut it = BlockIter::new(block.clone());
        it.seek_to_first().expect("decodes");
        let got = collect(&mut it);
        assert_eq!(got.len(), 100);
        for (g, e) in got.iter().zip(&entries) {
            assert_eq!((g.0.as_slice(), g.1, g.2.as_slice()), (e.0, e.1, e.3));
        }
        // Runs hold at most `interval` entries, and end early after a large value.
        assert!(block.num_restarts >= 100usize.div_ceil(interval));
        assert!(block.num_restarts <= 100);
    }
}

#[test]
fn runs_end_after_interval_entries_or_a_large_entry() {
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("k{i:04}").into_bytes()).collect();
    for value_len in [0usize, 10, 60, 100, 127, 128, 500] {
        // Every third value is `value_len` bytes, the others 5.
        let big = vec![1u8; value_len];
        let entries: Vec<(&[u8], SeqNo, ValueKind, &[u8])> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let v: &[u8] = if i % 3 == 0 { &big } else { b"small" };
                (k.as_slice(), 1, ValueKind::Put, v)
            })
            .collect();
        let block = build(&entries, 16);
        let starts: Vec<usize> = (0..block.num_restarts).map(|i| block.restart(i)).collect();
        // Walk the entries: a run holds at most 16, and only its last may be large.
        let data = &block.data[..block.restarts_offset];
        let (mut pos, mut in_run, mut prev_large) = (0, 0, false);
        while pos < data.len() {
            let h = decode_header(data, pos).expect("header");
            let len = h.value.end - pos;
            if starts.contains(&pos) {
                in_run = 0;
            } else {
                assert!(!prev_large, "an entry follows a large one in its run");
            }
            in_run += 1;
            assert!(in_run <= 16, "{in_run} entries in a run");
            prev_large = len >= LARGE_ENTRY;
            pos = h.value.end;
        }
        if value_len >= LARGE_ENTRY {
            assert!(
                block.num_restarts >= 200 / 3,
                "every large entry ends a run"
            );
        }
    }
}

/// `build` with a hash index.
fn build_hashed(entries: &[(&[u8], SeqNo, ValueKind, &[u8])], interval: usize) -> Arc<Block> {
    let mut b = BlockBuilder::with_hash_index(interval);
    for (k, s, kind, v) in entries {
        b.add(k, *s, *kind, v);
    }
    let estimate = b.size_estimate();
    let bytes = b.finish().expect("small block");
    assert_eq!(bytes.len(), estimate, "size estimate is exact");
    Arc::new(Block::new(bytes).expect("valid block"))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Point reads through the hash index give what the binary search gives, for keys
    /// present (every version, at every snapshot) and absent, and the index checks.
    #[test]
    fn hash_index_reads_agree_with_the_search(
        keys in proptest::collection::btree_map(
            proptest::collection::vec(0u8..4, 0..6),
            proptest::collection::vec((1u64..50, 0usize..300, proptest::prelude::any::<bool>()), 1..4),
            1..60,
        ),
        interval in 1usize..20,
        probes in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..7), 0u64..55), 0..40),
    ) {
        // Versions of a key newest first, as a block holds them.
        let mut flat: Vec<(Vec<u8>, SeqNo, ValueKind, Vec<u8>)> = Vec::new();
        for (k, versions) in &keys {
            let mut seqs: Vec<_> = versions.clone();
            seqs.sort_by_key(|v| std::cmp::Reverse(v.0));
            seqs.dedup_by_key(|v| v.0);
            for (seq, len, put) in seqs {
                let kind = if put { ValueKind::Put } else { ValueKind::Delete };
                flat.push((k.clone(), seq, kind, vec![seq as u8; len]));
            }
        }
        let entries: Vec<(&[u8], SeqNo, ValueKind, &[u8])> = flat
            .iter()
            .map(|(k, s, kind, v)| (k.as_slice(), *s, *kind, v.as_slice()))
            .collect();
        let plain = build(&entries, interval);
        let hashed = build_hashed(&entries, interval);
        proptest::prop_assert!(hashed.hash.is_present());
        hashed.check_restarts().expect("index agrees with the runs");
        let mut targets: Vec<(Vec<u8>, SeqNo)> = probes;
        for (k, s, _, _) in &flat {
            targets.push((k.clone(), *s));
            targets.push((k.clone(), s.saturating_sub(1)));
            targets.push((k.clone(), crate::engine::types::MAX_SEQNO));
        }
        for (k, seq) in targets {
            let h = KeyHash::of(&k);
            let a = plain.get(&k, h, seq).expect("get");
            let b = hashed.get(&k, h, seq).expect("get");
            proptest::prop_assert_eq!(&a, &b, "{:?} at {}", k, seq);
            let want = flat
                .iter()
                .find(|(fk, fs, _, _)| *fk == k && *fs <= seq)
                .map(|(_, s, kind, v)| (*s, *kind, v.clone()));
            proptest::prop_assert_eq!(
                b.map(|(s, kind, r)| (s, kind, hashed.value(r).to_vec())),
                want
            );
        }
    }
}

#[test]
fn damaged_hash_index_is_refused() {
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("key{i:03}").into_bytes()).collect();
    let entries: Vec<(&[u8], SeqNo, ValueKind, &[u8])> = keys
        .iter()
        .map(|k| (k.as_slice(), 7, ValueKind::Put, k.as_slice()))
        .collect();
    let block = build_hashed(&entries, 4);
    let data = block.data.clone();
    let (first_bucket, m) = (block.hash.offset, block.hash.buckets);
    // A bucket naming a restart point the block does not have.
    let mut bad = data.clone();
    bad[first_bucket] = block.num_restarts as u8;
    assert!(Block::new(bad).is_err());
    // A bucket count larger than the block.
    let mut bad = data.clone();
    let m_pos = data.len() - 6;
    bad[m_pos..m_pos + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(Block::new(bad).is_err());
    // No empty bucket: a lookup could probe forever, so the block is refused.
    let mut bad = data.clone();
    for i in 0..m {
        if bad[first_bucket + 2 * i] == hash_index::EMPTY {
            bad[first_bucket + 2 * i] = 0;
        }
    }
    assert!(Block::new(bad).is_err());
    // A bucket sending its key to another run parses, and the check finds it.
    let used = (0..m)
        .find(|&i| data[first_bucket + 2 * i] != hash_index::EMPTY)
        .expect("a used bucket");
    let mut bad = data.clone();
    let run = data[first_bucket + 2 * used];
    bad[first_bucket + 2 * used] = if run == 0 { 1 } else { run - 1 };
    let parsed = Block::new(bad).expect("in range");
    assert!(parsed.check_restarts().is_err());
    // Without the flag the same bytes are refused too (no silent misreading).
    let mut bad = data;
    let n_pos = bad.len() - 4;
    let n = read_u32(&bad, n_pos) & !HASH_INDEX_FLAG;
    bad[n_pos..].copy_from_slice(&n.to_le_bytes());
    let parsed = Block::new(bad).map(|b| b.check_restarts());
    assert!(!matches!(parsed, Ok(Ok(()))));
}

#[test]
fn shared_prefixes_shrink_the_block() {
    let keys: Vec<Vec<u8>> = (0..64)
        .map(|i| format!("a-rather-long-common-prefix/{i:04}").into_bytes())
        .collect();
    let mut b = BlockBuilder::new(16);
    for k in &keys {
        b.add(k, 1, ValueKind::Put, b"");
    }
    let raw: usize = keys.iter().map(|k| k.len()).sum();
    let size = b.finish().expect("small").len();
    assert!(size < raw / 2, "block of {size} bytes for {raw} key bytes");
}

#[test]
fn seek_finds_first_entry_at_or_after_target() {
    let entries: Vec<(&[u8], SeqNo, ValueKind, &[u8])> = vec![
        (b"b", 9, ValueKind::Put, b"b9"),
        (b"b", 5, ValueKind::Delete, b""),
        (b"b", 2, ValueKind::Put, b"b2"),
        (b"d", 4, ValueKind::Put, b"d4"),
        (b"f", 1, ValueKind::Put, b"f1"),
    ];
    for interval in [1, 2, 16] {
        let mut it = BlockIter::new(build(&entries, interval));
        let cases: &[SeekCase<'_>] = &[
            (b"a", 100, Some((b"b", 9))),
            (b"b", 100, Some((b"b", 9))),
            (b"b", 6, Some((b"b", 5))),
            (b"b", 5, Some((b"b", 5))),
            (b"b", 1, Some((b"d", 4))),
            (b"c", 0, Some((b"d", 4))),
            (b"f", 1, Some((b"f", 1))),
            (b"f", 0, None),
            (b"g", 100, None),
        ];
        for (k, s, want) in cases {
            it.seek(k, *s).expect("decodes");
            let got = it.valid().then(|| (it.user_key(), it.seq()));
            assert_eq!(got, *want, "seek({k:?}, {s}) interval {interval}");
        }
    }
}

#[test]
fn empty_block_is_valid_and_yields_nothing() {
    let mut b = BlockBuilder::new(16);
    let block = Arc::new(Block::new(b.finish().expect("empty")).expect("valid"));
    let mut it = BlockIter::new(block);
    it.seek_to_first().expect("ok");
    assert!(!it.valid());
    it.seek(b"x", 1).expect("ok");
    assert!(!it.valid());
}

#[test]
fn malformed_blocks_are_rejected_not_panicking() {
    assert!(Block::new(vec![1, 2]).is_err());
    assert!(Block::new(vec![0, 0, 0, 0xff]).is_err());
    // A restart offset pointing past the entries.
    assert!(Block::new(vec![9, 0, 0, 0, 1, 0, 0, 0]).is_err());
    // Entries claiming more bytes than the block holds.
    let mut data = vec![0, 200, 1, 1, 0];
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&1u32.to_le_bytes());
    let mut it = BlockIter::new(Arc::new(Block::new(data).expect("restarts ok")));
    assert!(it.seek_to_first().is_err());
    assert!(!it.valid());
}

#[test]
fn fast_and_checked_header_decoders_agree() {
    // Random bytes biased towards small values and continuation bits, so that
    // valid, truncated and overlong headers all occur.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut byte = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        match state % 4 {
            0 => (state >> 8) as u8 & 0x0f,
            1 => 0x80 | (state >> 8) as u8,
            2 => 1,
            _ => (state >> 8) as u8,
        }
    };
    let (mut ok, mut bad) = (0, 0);
    for len in 0..40 {
        for _ in 0..500 {
            let data: Vec<u8> = (0..len).map(|_| byte()).collect();
            for pos in 0..=len + 1 {
                let fast = decode_header_fast(&data, pos);
                let checked = decode_header_checked(&data, pos);
                match (fast, checked) {
                    (Some(f), Ok(c)) => {
                        ok += 1;
                        assert_eq!(
                            (f.shared, f.key_suffix, f.seq, f.kind, f.value),
                            (c.shared, c.key_suffix, c.seq, c.kind, c.value)
                        );
                    }
                    (None, Err(_)) => bad += 1,
                    (f, c) => panic!(
                        "decoders disagree on {data:?} at {pos}: fast {}, checked {}",
                        f.is_some(),
                        c.is_ok()
                    ),
                }
            }
        }
    }
    assert!(ok > 1000 && bad > 1000, "{ok} valid, {bad} invalid headers");
}

#[test]
fn trailer_checksum_covers_compression_byte() {
    let t = block_trailer(b"abc");
    assert_eq!(t[0], COMPRESSION_NONE);
    let crc = u32::from_le_bytes([t[1], t[2], t[3], t[4]]);
    assert_eq!(crc, block_crc(b"abc", 0));
    assert_ne!(crc, block_crc(b"abc", 1));
}
