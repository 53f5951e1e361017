//! Unit tests of the block format: building, parsing, walking and point reads.

use super::*;

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
        assert_eq!(block.num_restarts, 100usize.div_ceil(interval));
    }
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
