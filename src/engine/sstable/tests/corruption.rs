//! Damaged tables: flipped bytes in every kind of block and in the footer, truncations,
//! future versions, and damage hidden behind a recomputed checksum. Every case must end
//! in an error that names the file, never a panic or a wrong answer.

use std::path::{Path, PathBuf};

use super::{collect, dataset, open, write_table, Entry};
use crate::engine::error::Error;
use crate::engine::iter::InternalIterator;
use crate::engine::sstable::block::block_crc;
use crate::engine::sstable::footer::{BlockHandle, Footer, FORMAT_VERSION};
use crate::engine::sstable::{new_block_cache, Table, TableOptions, FOOTER_LEN};
use crate::engine::stats::ReadCounters;
use crate::engine::types::MAX_SEQNO;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    entries: Vec<Entry>,
    footer: Footer,
    blocks: Vec<BlockHandle>,
}

fn fixture(keys: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = dataset(keys, 11);
    let opts = TableOptions {
        block_size: 512,
        ..TableOptions::default()
    };
    let path = write_table(dir.path(), "t.sst", opts, &entries);
    let (table, _) = open(&path);
    let blocks = table.index.handles().to_vec();
    Fixture {
        footer: table.footer,
        _dir: dir,
        path,
        entries,
        blocks,
    }
}

fn try_open(path: &Path) -> Result<std::sync::Arc<Table>, Error> {
    let counters = std::sync::Arc::new(ReadCounters::default());
    Table::open(path, 9, new_block_cache(1 << 20), counters)
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).expect("read");
    f(&mut bytes);
    std::fs::write(path, bytes).expect("write");
}

fn flip(path: &Path, offset: u64) {
    edit(path, |b| b[offset as usize] ^= 0x20);
}

/// Recomputes the trailer CRC of the block at `h`, so damage inside it goes unnoticed by
/// the checksum and must be caught by the structure checks.
fn reseal(bytes: &mut [u8], h: BlockHandle) {
    let (start, end) = (h.offset as usize, h.offset as usize + h.size as usize);
    let crc = block_crc(&bytes[start..end], bytes[end]);
    bytes[end + 1..end + 5].copy_from_slice(&crc.to_le_bytes());
}

fn assert_checksum_error(err: &Error, path: &Path, at: u64) {
    match err {
        Error::ChecksumMismatch {
            path: p, offset, ..
        } => {
            assert_eq!((p.as_path(), *offset), (path, at), "{err}");
        }
        other => panic!("expected a checksum mismatch at {at}, got {other}"),
    }
}

#[test]
fn damaged_data_block_fails_reads_of_that_block_only() {
    let fx = fixture(1500);
    let bad = fx.blocks[3];
    flip(&fx.path, bad.offset + u64::from(bad.size) / 2);
    let table = try_open(&fx.path).expect("data blocks are read lazily");

    let key_in_bad = table.index.last_key(3).0.to_vec();
    let err = table
        .get(&key_in_bad, MAX_SEQNO)
        .expect_err("damaged block");
    assert_checksum_error(&err, &fx.path, bad.offset);
    assert!(err.to_string().contains("t.sst"), "{err}");

    let key_elsewhere = table.index.last_key(10).0.to_vec();
    assert!(table
        .get(&key_elsewhere, MAX_SEQNO)
        .expect("intact block")
        .is_some());

    let mut it = table.iter();
    it.seek_to_first().expect("first block is intact");
    let err = loop {
        match it.next() {
            Ok(()) => assert!(it.valid(), "iteration ended without reporting the damage"),
            Err(e) => break e,
        }
    };
    assert_checksum_error(&err, &fx.path, bad.offset);
    assert!(!it.valid());
    let err = table.verify().expect_err("verify reads every block");
    assert_checksum_error(&err, &fx.path, bad.offset);
}

#[test]
fn damaged_meta_blocks_fail_open() {
    let fx = fixture(800);
    for (name, h) in [
        ("index", fx.footer.index),
        ("filter", fx.footer.filter),
        ("properties", fx.footer.properties),
    ] {
        let original = std::fs::read(&fx.path).expect("read");
        for at in [
            h.offset,
            h.offset + u64::from(h.size) - 1,
            h.offset + u64::from(h.size) + 2,
        ] {
            flip(&fx.path, at);
            let err = try_open(&fx.path).expect_err(name);
            assert_checksum_error(&err, &fx.path, h.offset);
            std::fs::write(&fx.path, &original).expect("restore");
        }
    }
    try_open(&fx.path).expect("restored file opens");
}

#[test]
fn every_footer_byte_is_protected() {
    let fx = fixture(200);
    let original = std::fs::read(&fx.path).expect("read");
    let start = original.len() - FOOTER_LEN;
    for i in 0..FOOTER_LEN {
        let mut bytes = original.clone();
        bytes[start + i] ^= 0x01;
        std::fs::write(&fx.path, &bytes).expect("write");
        let err = try_open(&fx.path).expect_err("damaged footer");
        assert!(err.is_corruption(), "byte {i}: {err}");
        let expected_kind = match i {
            _ if i >= FOOTER_LEN - 8 => matches!(err, Error::Corruption { .. }),
            _ => matches!(
                err,
                Error::ChecksumMismatch { .. } | Error::UnsupportedVersion { .. }
            ),
        };
        assert!(expected_kind, "byte {i}: {err}");
    }
}

#[test]
fn future_versions_are_refused_by_name() {
    let fx = fixture(50);
    edit(&fx.path, |b| {
        let start = b.len() - FOOTER_LEN;
        let v = start + FOOTER_LEN - 16;
        b[v..v + 4].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = crc32fast::hash(&b[start..v + 4]);
        b[v + 4..v + 8].copy_from_slice(&crc.to_le_bytes());
    });
    let err = try_open(&fx.path).expect_err("future version");
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found,
                supported: FORMAT_VERSION,
                ..
            } if found == FORMAT_VERSION + 1
        ),
        "{err}"
    );
}

#[test]
fn every_truncation_fails_open_cleanly() {
    let fx = fixture(60);
    let original = std::fs::read(&fx.path).expect("read");
    for len in 0..original.len() {
        std::fs::write(&fx.path, &original[..len]).expect("write");
        let err = try_open(&fx.path).expect_err("truncated");
        assert!(err.is_corruption(), "length {len}: {err}");
    }
}

#[test]
fn garbage_files_are_not_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.sst");
    let mut tail = vec![0u8; 100];
    tail.extend_from_slice(b"LSMTABLE");
    for bytes in [
        vec![],
        vec![0u8; 10],
        vec![0u8; 4096],
        b"LSMTABLE".to_vec(),
        tail,
    ] {
        std::fs::write(&path, &bytes).expect("write");
        let err = try_open(&path).expect_err("garbage");
        assert!(err.is_corruption(), "{err}");
    }
}

#[test]
fn property_counts_that_lie_are_caught() {
    let fx = fixture(300);
    let props = fx.footer.properties;
    let original = std::fs::read(&fx.path).expect("read");

    // `entries` is the first field: one more than the blocks hold. Open cannot tell
    // without reading every block; verify can.
    edit(&fx.path, |b| {
        b[props.offset as usize] = b[props.offset as usize].wrapping_add(1);
        reseal(b, props);
    });
    let table = try_open(&fx.path).expect("opens");
    let err = table.verify().expect_err("entries mismatch");
    assert!(matches!(err, Error::Corruption { .. }) && err.to_string().contains("entries"));

    // `data_blocks` is the third field and is checked against the index on open.
    std::fs::write(&fx.path, &original).expect("restore");
    edit(&fx.path, |b| {
        b[props.offset as usize + 16] ^= 1;
        reseal(b, props);
    });
    let err = try_open(&fx.path).expect_err("block count mismatch");
    assert!(
        matches!(err, Error::Corruption { offset, .. } if offset == props.offset),
        "{err}"
    );
}

#[test]
fn index_handles_that_lie_are_caught_on_open() {
    let fx = fixture(300);
    let index = fx.footer.index;
    // Each index entry ends with its 12-byte handle; shift the first one's offset.
    edit(&fx.path, |b| {
        let mut it = crate::engine::sstable::block::BlockIter::new(std::sync::Arc::new(
            crate::engine::sstable::block::Block::new(
                b[index.offset as usize..(index.offset + u64::from(index.size)) as usize].to_vec(),
            )
            .expect("index block"),
        ));
        it.seek_to_first().expect("first entry");
        let handle_at = index.offset as usize + it.next_offset() - 12;
        b[handle_at] ^= 0x04;
        reseal(b, index);
    });
    let err = try_open(&fx.path).expect_err("bad handle");
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}

#[test]
fn footer_handles_that_lie_are_caught_on_open() {
    let fx = fixture(100);
    edit(&fx.path, |b| {
        let start = b.len() - FOOTER_LEN;
        // The filter handle's size (bytes 20..24 of the footer).
        b[start + 20] ^= 0x01;
        let crc = crc32fast::hash(&b[start..start + FOOTER_LEN - 12]);
        b[start + FOOTER_LEN - 12..start + FOOTER_LEN - 8].copy_from_slice(&crc.to_le_bytes());
    });
    let err = try_open(&fx.path).expect_err("overlapping handles");
    assert!(matches!(err, Error::Corruption { .. }), "{err}");
}

#[test]
fn resealed_data_damage_is_found_by_verify_without_panics() {
    let fx = fixture(400);
    let original = std::fs::read(&fx.path).expect("read");
    let block = fx.blocks[2];
    let restarts = table_block_tail_len(&original, block);
    let mut found = 0;
    for delta in 0..u64::from(block.size) {
        std::fs::write(&fx.path, &original).expect("restore");
        edit(&fx.path, |b| {
            b[(block.offset + delta) as usize] ^= 0x5a;
            reseal(b, block);
        });
        let table = try_open(&fx.path).expect("data blocks are read lazily");
        // A changed value byte is indistinguishable from a real value; damage to the
        // structure (the first entry's key lengths, the restart array) is always found.
        let detected = table.verify().is_err();
        found += usize::from(detected);
        if delta < 2 || delta >= u64::from(block.size) - restarts {
            assert!(detected, "damage at +{delta} went unnoticed");
        }
        let mut it = table.iter();
        if it.seek_to_first().is_ok() {
            let _ = std::iter::from_fn(|| (it.valid() && it.next().is_ok()).then_some(())).count();
        }
        for (k, s, _, _) in fx.entries.iter().step_by(5) {
            let _ = table.get(k, *s);
        }
    }
    assert!(
        found > restarts as usize,
        "only {found} damaged bytes were noticed"
    );
    std::fs::write(&fx.path, &original).expect("restore");
    let (table, _) = open(&fx.path);
    let mut it = table.iter();
    it.seek_to_first().expect("seek");
    assert_eq!(collect(&mut it), fx.entries);
}

/// Length of the block's tail at `h`: restart offsets, hash index (buckets and their
/// count, when flagged) and the restart count.
fn table_block_tail_len(bytes: &[u8], h: BlockHandle) -> u64 {
    let end = (h.offset + u64::from(h.size)) as usize;
    let raw = u32::from_le_bytes([
        bytes[end - 4],
        bytes[end - 3],
        bytes[end - 2],
        bytes[end - 1],
    ]);
    let n = u64::from(raw & !crate::engine::sstable::block::HASH_INDEX_FLAG);
    let hash_index = if raw & crate::engine::sstable::block::HASH_INDEX_FLAG != 0 {
        2 * u64::from(u16::from_le_bytes([bytes[end - 6], bytes[end - 5]])) + 2
    } else {
        0
    };
    4 * n + hash_index + 4
}
