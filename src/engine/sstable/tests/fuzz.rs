//! Property tests: arbitrary and mutated files never make the reader panic, and random
//! tables read back exactly what was written.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::{collect, open, write_table, Entry};
use crate::engine::bloom::KeyHash;
use crate::engine::iter::InternalIterator;
use crate::engine::sstable::block::{block_crc, block_trailer, BlockBuilder};
use crate::engine::sstable::bloom::BloomBuilder;
use crate::engine::sstable::footer::{BlockHandle, Footer};
use crate::engine::sstable::{fuzz_table_bytes, TableOptions, TableProperties, FOOTER_LEN};
use crate::engine::types::{SeqNo, ValueKind, MAX_SEQNO};

/// A small valid table and the handles of all its blocks, built once.
fn base_table() -> &'static (Vec<u8>, Vec<BlockHandle>) {
    static BASE: OnceLock<(Vec<u8>, Vec<BlockHandle>)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = TableOptions {
            block_size: 128,
            restart_interval: 4,
            ..TableOptions::default()
        };
        let path = write_table(dir.path(), "base.sst", opts, &super::dataset(60, 21));
        let (table, _) = open(&path);
        let mut handles: Vec<BlockHandle> = table.index.handles().to_vec();
        handles.extend([
            table.footer.filter,
            table.footer.properties,
            table.footer.index,
        ]);
        (std::fs::read(&path).expect("read"), handles)
    })
}

/// Recomputes every block CRC and the footer CRC, so mutations reach the parsers.
fn reseal_all(bytes: &mut [u8], handles: &[BlockHandle]) {
    for h in handles {
        let (start, end) = (h.offset as usize, (h.offset + u64::from(h.size)) as usize);
        let crc = block_crc(&bytes[start..end], bytes[end]);
        bytes[end + 1..end + 5].copy_from_slice(&crc.to_le_bytes());
    }
    let start = bytes.len() - FOOTER_LEN;
    let crc = crc32fast::hash(&bytes[start..start + FOOTER_LEN - 12]);
    bytes[start + FOOTER_LEN - 12..start + FOOTER_LEN - 8].copy_from_slice(&crc.to_le_bytes());
}

/// Frames arbitrary block contents as a well-formed file: every checksum is valid, so
/// the decoders of the filter, properties, index and data blocks see raw garbage.
fn frame(data: &[u8], filter: &[u8], props: &[u8], index: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut put = |block: &[u8]| {
        let h = BlockHandle {
            offset: out.len() as u64,
            size: block.len() as u32,
        };
        out.extend_from_slice(block);
        out.extend_from_slice(&block_trailer(block));
        h
    };
    let (filter, properties, index) = (put(filter), put(props), put(index));
    out.extend_from_slice(
        &Footer {
            index,
            filter,
            properties,
        }
        .encode(),
    );
    out
}

/// A file whose footer, filter, properties and index are all valid and consistent, but
/// whose data blocks are `blocks` of raw garbage (behind valid checksums): opening
/// succeeds and every read meets the garbage.
fn garbage_data_blocks(blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut index = BlockBuilder::new(1);
    let mut bloom = BloomBuilder::new(10);
    let key = |i: usize| format!("k{i:03}").into_bytes();
    for (i, block) in blocks.iter().enumerate() {
        let mut handle = Vec::new();
        BlockHandle {
            offset: out.len() as u64,
            size: block.len() as u32,
        }
        .encode_to(&mut handle);
        out.extend_from_slice(block);
        out.extend_from_slice(&block_trailer(block));
        index.add(&key(i), 0, ValueKind::Put, &handle);
        bloom.add_key(&key(i));
    }
    let index = index.finish().expect("small index");
    let filter = bloom.finish();
    let props = TableProperties {
        entries: blocks.len() as u64,
        data_blocks: blocks.len() as u64,
        smallest_key: key(0),
        largest_key: key(blocks.len() - 1),
        data_size: out.len() as u64,
        index_size: (index.len() + 5) as u64,
        filter_size: (filter.len() + 5) as u64,
        ..TableProperties::default()
    };
    let data = std::mem::take(&mut out);
    frame(&data, &filter, &props.encode(), &index)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_data_blocks_behind_a_valid_index_never_panic(
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..6),
    ) {
        let bytes = garbage_data_blocks(&blocks);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.sst");
        std::fs::write(&path, &bytes).expect("write");
        let (table, _) = open(&path);
        prop_assert!(table.verify().is_err(), "garbage passed verification");
        fuzz_table_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_table_bytes(&data);
    }

    #[test]
    fn arbitrary_blocks_behind_valid_checksums_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..512),
        filter in proptest::collection::vec(any::<u8>(), 0..64),
        props in proptest::collection::vec(any::<u8>(), 0..160),
        index in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        fuzz_table_bytes(&frame(&data, &filter, &props, &index));
    }

    #[test]
    fn mutated_tables_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
        truncate in proptest::option::weighted(0.1, any::<prop::sample::Index>()),
        reseal in any::<bool>(),
    ) {
        let (base, handles) = base_table();
        let mut bytes = base.clone();
        for (at, x) in &edits {
            bytes[at.index(base.len())] ^= x;
        }
        if reseal {
            reseal_all(&mut bytes, handles);
        }
        if let Some(t) = truncate {
            bytes.truncate(t.index(base.len()));
        }
        fuzz_table_bytes(&bytes);
    }
}

fn arb_versions() -> impl Strategy<Value = Vec<Entry>> {
    let key = proptest::collection::vec(prop::sample::select(b"abcxyz\x00\xff".to_vec()), 0..6);
    let version = (
        key,
        0..50u64,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    proptest::collection::vec(version, 0..200).prop_map(|vs| {
        // Last write wins for a repeated (key, seq); the map sorts in internal order.
        type Version = (ValueKind, Vec<u8>);
        let mut map: BTreeMap<(Vec<u8>, Reverse<SeqNo>), Version> = BTreeMap::new();
        for (k, s, put, v) in vs {
            let kind = if put {
                ValueKind::Put
            } else {
                ValueKind::Delete
            };
            let v = if put { v } else { Vec::new() };
            map.insert((k, Reverse(s)), (kind, v));
        }
        map.into_iter()
            .map(|((k, s), (kind, v))| (k, s.0, kind, v))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_tables_read_back_what_was_written(
        entries in arb_versions(),
        block_size in 1usize..600,
        restart_interval in 1usize..20,
        probes in proptest::collection::vec(
            (proptest::collection::vec(prop::sample::select(b"abcxyz\x00\xff".to_vec()), 0..7), 0..52u64),
            0..40,
        ),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = TableOptions { block_size, restart_interval, ..TableOptions::default() };
        let path = write_table(dir.path(), "t.sst", opts, &entries);
        let (table, _) = open(&path);
        prop_assert_eq!(table.verify().expect("verify"), entries.len() as u64);

        let mut it = table.iter();
        it.seek_to_first().expect("seek");
        prop_assert_eq!(&collect(&mut it), &entries);

        for (k, s, _, _) in &entries {
            for at in [*s, s + 1, s.saturating_sub(1), MAX_SEQNO] {
                let want = entries
                    .iter()
                    .find(|(k2, s2, _, _)| k2 == k && *s2 <= at)
                    .map(|(_, s2, kind, v)| (*s2, *kind, v.clone()));
                prop_assert_eq!(table.get(k, at).expect("get"), want);
                it.seek(k, at).expect("seek");
                let first = entries.iter().find(|(k2, s2, _, _)| {
                    crate::engine::types::compare_internal(k2, *s2, k, at).is_ge()
                });
                prop_assert_eq!(it.valid(), first.is_some());
                if let Some((k2, s2, _, _)) = first {
                    prop_assert_eq!((it.user_key(), it.seq()), (k2.as_slice(), *s2));
                }
            }
        }
        // Point reads of keys that may or may not be there (prefixes and extensions of
        // stored keys included), one at a time and batched.
        let visible = |k: &[u8], at: SeqNo| {
            entries
                .iter()
                .find(|(k2, s2, _, _)| k2 == k && *s2 <= at)
                .map(|(_, s2, kind, v)| (*s2, *kind, v.clone()))
        };
        for (k, at) in &probes {
            prop_assert_eq!(table.get(k, *at).expect("get"), visible(k, *at), "{:?} at {}", k, at);
        }
        let hashed: Vec<(&[u8], KeyHash)> =
            probes.iter().map(|(k, _)| (k.as_slice(), KeyHash::of(k))).collect();
        let at = probes.first().map_or(MAX_SEQNO, |p| p.1);
        let many = table.get_many(&hashed, at).expect("get_many");
        for ((k, _), got) in probes.iter().zip(many) {
            prop_assert_eq!(got, visible(k, at));
        }
    }
}
