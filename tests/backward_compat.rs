//! Backward compatibility: a database written by format version 1 (WAL, SSTables and
//! manifest, committed under `tests/fixtures/format-v1`, with data in two levels, a
//! tombstone layer and writes only in the WAL) must open and read back exactly, with
//! every later build; so must one whose tables are version 2 (data blocks with a hash
//! index), `tests/fixtures/format-v2`. That one was made from the version 1 fixture by
//! the build that introduced table version 2: opened, fully compacted (every table
//! rewritten at version 2), then new values for every 7th `fixture:` key and deletes of
//! every 11th written and flushed, giving tables in two levels again.

use std::fs;
use std::path::Path;

use lsm::engine::{Db, Options};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read fixture") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            fs::copy(&p, &target).expect("copy");
        }
    }
}

fn expected(i: u32) -> Option<String> {
    if i.is_multiple_of(3) {
        Some(format!("w{i}"))
    } else if i.is_multiple_of(10) {
        None
    } else {
        Some(format!("v{i}"))
    }
}

#[test]
fn a_version_1_database_opens_and_reads_back() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    // The fixture really is version 1: the manifest says so at bytes 8..12.
    let manifest = fs::read(fixture.join("MANIFEST")).expect("fixture manifest");
    assert_eq!(&manifest[..8], b"LSMMANIF");
    assert_eq!(
        u32::from_le_bytes(manifest[8..12].try_into().expect("4 bytes")),
        1
    );

    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let db = Db::open(dir.path(), Options::default()).expect("open the v1 fixture");
    reads_back(&db, expected);
}

/// Checks that `db` holds `fixture:0000..0299` as `want` says (by `get`, by one batched
/// read and by a full scan), the 20 `wal:` keys, and verifies clean.
fn reads_back(db: &Db, want: impl Fn(u32) -> Option<String>) {
    for i in 0..300u32 {
        let got = db.get(format!("fixture:{i:04}")).expect("get");
        assert_eq!(got, want(i).map(String::into_bytes), "fixture:{i:04}");
    }
    let keys: Vec<String> = (0..300u32).map(|i| format!("fixture:{i:04}")).collect();
    let many = db.snapshot().get_many_versioned(&keys).expect("get_many");
    for (i, found) in many.into_iter().enumerate() {
        let want = want(i as u32).map(String::into_bytes);
        assert_eq!(found.map(|(_, v)| v), want, "{}", keys[i]);
    }
    for i in 0..20u32 {
        let got = db.get(format!("wal:{i:02}")).expect("get");
        assert_eq!(got, Some(format!("unflushed{i}").into_bytes()));
    }
    let all: Vec<_> = db.iter().expect("iter").map(|r| r.expect("item")).collect();
    let live = (0..300u32).filter(|&i| want(i).is_some()).count() + 20;
    assert_eq!(all.len(), live);
    assert!(db.verify().ok);
    assert!(db.stats().quarantined.is_empty());
}

/// The table format version in the footer of the table file at `path`.
fn table_version(path: &Path) -> u32 {
    let bytes = fs::read(path).expect("table");
    let v = bytes.len() - 16;
    u32::from_le_bytes(bytes[v..v + 4].try_into().expect("4 bytes"))
}

#[test]
fn a_database_with_version_2_tables_opens_and_reads_back() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v2");
    let tables: Vec<_> = fs::read_dir(fixture.join("tables"))
        .expect("fixture tables")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(tables.len(), 2);
    for t in &tables {
        assert_eq!(table_version(t), 2, "{}", t.display());
    }

    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let db = Db::open(dir.path(), Options::default()).expect("open the v2 fixture");
    let want = |i: u32| {
        if i.is_multiple_of(11) {
            None
        } else if i.is_multiple_of(7) {
            Some(format!("x{i}"))
        } else {
            expected(i)
        }
    };
    reads_back(&db, want);
}

#[test]
fn a_manifest_or_wal_from_a_future_version_is_refused_clearly() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    // Manifest: bump the version and fix the checksum, as a newer release would write.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let path = dir.path().join("MANIFEST");
    let mut bytes = fs::read(&path).expect("manifest");
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, bytes).expect("write");
    let err = Db::open(dir.path(), Options::default())
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("newer release"), "{err}");

    // WAL segment: the version is the u32 after the 8-byte magic.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let wal = fs::read_dir(dir.path().join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("a segment");
    let mut bytes = fs::read(&wal).expect("segment");
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    fs::write(&wal, bytes).expect("write");
    let err = Db::open(dir.path(), Options::default())
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("newer release"), "{err}");
}
