//! Damaged files: flipped bytes in each part of a table, truncated tables, torn and
//! damaged WAL records. Every case ends in a quarantined table or a clear error that
//! names the file; never a panic, never a wrong value.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use lsm::engine::sstable::FOOTER_LEN;
use lsm::engine::{Db, Error};

const KEYS: u32 = 2000;

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat((i % 50) as usize)).into_bytes()
}

fn key(i: u32) -> String {
    format!("key:{i:06}")
}

/// A closed database whose data is all in one table. Returns the table's path.
fn one_table_db(dir: &Path) -> PathBuf {
    let opts = lsm::engine::Options {
        memtable_max_size: 64 << 20,
        ..common::small_options()
    };
    let db = Db::open(dir, opts).expect("open");
    for i in 0..KEYS {
        db.put(key(i), value(i)).expect("put");
    }
    db.close().expect("close");
    let tables = common::table_files(dir);
    assert_eq!(tables.len(), 1);
    tables.into_iter().next().expect("one table")
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).expect("write");
}

/// The footer's three block handles: (index, filter, properties) as (offset, size).
fn handles(path: &Path) -> [(u64, u64); 3] {
    let bytes = fs::read(path).expect("read");
    let f = &bytes[bytes.len() - FOOTER_LEN..];
    let h = |i: usize| {
        let o = u64::from_le_bytes(f[i * 12..i * 12 + 8].try_into().expect("8 bytes"));
        let s = u32::from_le_bytes(f[i * 12 + 8..i * 12 + 12].try_into().expect("4 bytes"));
        (o, u64::from(s))
    };
    [h(0), h(1), h(2)]
}

/// Opens `dir` and checks that the table was quarantined and reported.
fn assert_quarantined(dir: &Path, table: &Path) {
    let db = common::open_small(dir);
    let stats = db.stats();
    assert_eq!(stats.quarantined.len(), 1, "{:?}", stats.quarantined);
    let q = &stats.quarantined[0];
    assert_eq!(q.original_path, table);
    assert!(!q.reason.is_empty());
    assert!(q.quarantine_path.as_ref().is_some_and(|p| p.exists()));
    assert!(!table.exists(), "the damaged table was moved aside");
    assert_eq!(stats.tables, 0);
    // The database works; the quarantined table's keys are gone, not wrong.
    assert_eq!(db.get(key(1)).expect("get"), None);
    db.put("after", b"ok").expect("put");
    db.close().expect("close");
    // The report survives a restart.
    let db = common::open_small(dir);
    assert_eq!(db.stats().quarantined.len(), 1);
    assert_eq!(db.get("after").expect("get"), Some(b"ok".to_vec()));
}

#[test]
fn flipped_byte_in_a_data_block_is_an_error_not_a_wrong_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = one_table_db(dir.path());
    flip(&table, 20);
    let db = common::open_small(dir.path());
    let mut errors = 0;
    for i in 0..KEYS {
        match db.get(key(i)) {
            Ok(v) => assert_eq!(
                v,
                Some(value(i)),
                "a damaged block must never yield a wrong value"
            ),
            Err(e) => {
                assert!(
                    matches!(e, Error::ChecksumMismatch { ref path, .. } if path == &table),
                    "{e}"
                );
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "the damaged block holds some keys");
    // Iteration fails when it reaches the damaged block: at creation (the first block
    // is read by the initial seek) or at the item that needs it.
    match db.iter() {
        Err(e) => assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}"),
        Ok(it) => {
            let items: Vec<_> = it.collect();
            assert!(
                items.last().is_some_and(|r| r.is_err()),
                "iteration must end with the error"
            );
        }
    }
    let report = db.verify();
    assert!(!report.ok, "verify must find the damage");
    let bad: Vec<_> = report.files.iter().filter(|f| f.error.is_some()).collect();
    assert_eq!(bad.len(), 1, "{report:?}");
    assert_eq!(bad[0].path, table);
    assert!(
        bad[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("checksum")),
        "{report:?}"
    );
    // The WAL was checked too, and is fine.
    assert!(report
        .files
        .iter()
        .any(|f| f.kind == "wal" && f.error.is_none()));
}

#[test]
fn verify_passes_a_healthy_database_and_counts_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    one_table_db(dir.path());
    let db = common::open_small(dir.path());
    db.put("in-the-wal", b"1").expect("put");
    let report = db.verify();
    assert!(report.ok, "{report:?}");
    let tables: u64 = report
        .files
        .iter()
        .filter(|f| f.kind == "table")
        .map(|f| f.items)
        .sum();
    let wal: u64 = report
        .files
        .iter()
        .filter(|f| f.kind == "wal")
        .map(|f| f.items)
        .sum();
    assert_eq!(tables, u64::from(KEYS));
    assert_eq!(wal, 1);
}

#[test]
fn flipped_byte_in_the_index_quarantines_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = one_table_db(dir.path());
    let [(index, size), _, _] = handles(&table);
    flip(&table, index + size / 2);
    assert_quarantined(dir.path(), &table);
}

#[test]
fn flipped_byte_in_the_filter_or_properties_quarantines_the_table() {
    for which in [1, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = one_table_db(dir.path());
        let (offset, size) = handles(&table)[which];
        flip(&table, offset + size / 2);
        assert_quarantined(dir.path(), &table);
    }
}

#[test]
fn flipped_byte_in_the_footer_quarantines_the_table() {
    for back in [1, 10, FOOTER_LEN as u64 - 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = one_table_db(dir.path());
        let len = fs::metadata(&table).expect("meta").len();
        flip(&table, len - back);
        assert_quarantined(dir.path(), &table);
    }
}

#[test]
fn truncated_table_is_quarantined() {
    for keep in [0.0, 0.5, 0.99] {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = one_table_db(dir.path());
        let len = fs::metadata(&table).expect("meta").len();
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&table)
            .expect("open");
        f.set_len((len as f64 * keep) as u64).expect("truncate");
        drop(f);
        assert_quarantined(dir.path(), &table);
    }
}

/// Copies a live database directory: the copy is what a crash at this moment leaves
/// (the WAL holds writes not yet in any table).
fn crash_image(from: &Path, to: &Path) {
    for sub in ["", "wal", "tables"] {
        fs::create_dir_all(to.join(sub)).expect("mkdir");
        for e in fs::read_dir(from.join(sub)).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_file() && p.file_name().is_some_and(|n| n != "LOCK") {
                fs::copy(&p, to.join(sub).join(p.file_name().expect("name"))).expect("copy");
            }
        }
    }
}

/// A crash image holding `records` writes only in the WAL, and the length of the WAL's
/// records (the segment file itself is longer: its tail is preallocated zeros).
fn unflushed_image(records: u32) -> (tempfile::TempDir, tempfile::TempDir, u64) {
    let live = tempfile::tempdir().expect("tempdir");
    // Synced writes: the WAL segment is preallocated, as it is in production.
    let opts = lsm::engine::Options {
        memtable_max_size: 64 << 20,
        sync: lsm::engine::SyncPolicy::Always,
        ..common::small_options()
    };
    let db = Db::open(live.path(), opts).expect("open");
    for i in 0..records {
        db.put(key(i), value(i)).expect("put");
    }
    let stats = db.stats();
    assert_eq!(stats.wal_segments, 1);
    let image = tempfile::tempdir().expect("tempdir");
    crash_image(live.path(), image.path());
    drop(db);
    (live, image, stats.wal_bytes)
}

#[test]
fn wal_truncated_mid_record_keeps_every_complete_record() {
    let (_live, image, len) = unflushed_image(100);
    let wal = common::wal_files(image.path())
        .pop()
        .expect("a WAL segment");
    // Cut the last record in half.
    let f = fs::OpenOptions::new().write(true).open(&wal).expect("open");
    f.set_len(len - 20).expect("truncate");
    drop(f);
    let db = common::open_small(image.path());
    for i in 0..99 {
        assert_eq!(db.get(key(i)).expect("get"), Some(value(i)), "record {i}");
    }
    assert_eq!(
        db.get(key(99)).expect("get"),
        None,
        "the torn record is dropped"
    );
    assert_eq!(db.last_seq(), 99);
    // New writes continue after the recovered ones, and survive another reopen.
    db.put("next", b"1").expect("put");
    db.close().expect("close");
    let db = common::open_small(image.path());
    assert_eq!(db.get("next").expect("get"), Some(b"1".to_vec()));
    assert_eq!(db.get(key(98)).expect("get"), Some(value(98)));
}

#[test]
fn damaged_record_in_the_middle_of_the_wal_is_an_error_naming_file_and_offset() {
    let (_live, image, len) = unflushed_image(100);
    let wal = common::wal_files(image.path())
        .pop()
        .expect("a WAL segment");
    let file_len = fs::metadata(&wal).expect("meta").len();
    flip(&wal, len / 2);
    let err = match Db::open(image.path(), common::small_options()) {
        Err(e) => e,
        Ok(_) => panic!("a damaged WAL middle must not open silently"),
    };
    assert!(err.is_corruption(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&wal.display().to_string()), "{msg}");
    assert!(msg.contains("offset"), "{msg}");
    // Nothing was changed by the failed open: the WAL is still whole for a repair.
    assert_eq!(fs::metadata(&wal).expect("meta").len(), file_len);
}

#[test]
fn missing_manifest_with_data_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    one_table_db(dir.path());
    fs::remove_file(dir.path().join("MANIFEST")).expect("rm");
    let err = Db::open(dir.path(), common::small_options())
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("manifest is missing"), "{err}");
}

#[test]
fn orphan_tables_from_an_interrupted_flush_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = one_table_db(dir.path());
    let orphan = dir.path().join("tables").join("00000000000000099999.sst");
    fs::copy(&table, &orphan).expect("copy");
    fs::write(dir.path().join("tables").join("x.sst.tmp"), b"junk").expect("tmp");
    let db = common::open_small(dir.path());
    assert!(!orphan.exists());
    assert_eq!(common::table_files(dir.path()), vec![table]);
    assert_eq!(db.get(key(5)).expect("get"), Some(value(5)));
}

#[test]
fn a_table_from_a_newer_format_version_refuses_the_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = one_table_db(dir.path());
    let mut bytes = fs::read(&table).expect("read");
    let f = bytes.len() - FOOTER_LEN;
    let version_at = f + FOOTER_LEN - 16;
    bytes[version_at..version_at + 4].copy_from_slice(&7u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[f..version_at + 4]);
    bytes[version_at + 4..version_at + 8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&table, bytes).expect("write");
    let err = Db::open(dir.path(), common::small_options())
        .err()
        .expect("must refuse");
    assert!(
        matches!(err, Error::UnsupportedVersion { found: 7, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer release"), "{err}");
    assert!(table.exists(), "a newer table must not be quarantined");
}

#[test]
fn a_crash_leaves_a_preallocated_zero_tail_that_recovery_trims() {
    let (_live, image, len) = unflushed_image(50);
    let wal = common::wal_files(image.path())
        .pop()
        .expect("a WAL segment");
    assert!(
        fs::metadata(&wal).expect("meta").len() > len,
        "the segment is preallocated"
    );
    let db = common::open_small(image.path());
    for i in 0..50 {
        assert_eq!(db.get(key(i)).expect("get"), Some(value(i)));
    }
    assert_eq!(db.last_seq(), 50);
}
