//! The manifest: the durable record of which tables are live.
//!
//! The whole state is small (one line per table), so every change rewrites it: the new
//! state goes to `MANIFEST.tmp`, which is fsynced, renamed over `MANIFEST`, and the
//! directory is fsynced. `rename` is atomic, so after a crash at any point the directory
//! holds either the old state or the new one, whole and checksummed. Table files that
//! the manifest does not name are orphans of an interrupted flush and are removed on open.
//!
//! Format (version 1, little-endian; see docs/format.md):
//! `magic [8] | version u32 | body_len u32 | body | crc32 u32` where the crc covers every
//! byte before it and the body is
//! `next_file_id u64 | log_number u64 | last_seq u64 | table_count u32 | tables`,
//! each table `id u64 | level u32 | file_size u64 | min_seq u64 | max_seq u64 |
//! smallest (varint len + bytes) | largest (varint len + bytes)`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::coding::{put_length_prefixed, DecodeError, Reader};
use super::error::{Error, Result};
use super::types::{SeqNo, MAX_KEY_SIZE};

/// File name of the manifest inside the data directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
const MANIFEST_TMP: &str = "MANIFEST.tmp";
const MAGIC: &[u8; 8] = b"LSMMANIF";
/// The manifest format this build writes and the newest it reads.
pub const MANIFEST_VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
/// A manifest larger than this is refused rather than read (a corrupt length field).
const MAX_MANIFEST_LEN: usize = 1 << 30;

/// One live table as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// File id: the table lives in `tables/{id:020}.sst`.
    pub id: u64,
    /// LSM level (0 for freshly flushed tables).
    pub level: u32,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Smallest sequence number in the table.
    pub min_seq: SeqNo,
    /// Largest sequence number in the table.
    pub max_seq: SeqNo,
    /// Smallest user key.
    pub smallest: Vec<u8>,
    /// Largest user key.
    pub largest: Vec<u8>,
}

/// The durable state of a database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The next unused file id (shared by WAL segments and tables).
    pub next_file_id: u64,
    /// The oldest WAL segment that may still hold writes not in any table.
    pub log_number: u64,
    /// Every write with a sequence number `<= last_seq` is in the tables.
    pub last_seq: SeqNo,
    /// Live tables.
    pub tables: Vec<TableEntry>,
}

impl Manifest {
    /// Encodes the manifest, header and checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64 + self.tables.len() * 64);
        body.extend_from_slice(&self.next_file_id.to_le_bytes());
        body.extend_from_slice(&self.log_number.to_le_bytes());
        body.extend_from_slice(&self.last_seq.to_le_bytes());
        body.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for t in &self.tables {
            body.extend_from_slice(&t.id.to_le_bytes());
            body.extend_from_slice(&t.level.to_le_bytes());
            body.extend_from_slice(&t.file_size.to_le_bytes());
            body.extend_from_slice(&t.min_seq.to_le_bytes());
            body.extend_from_slice(&t.max_seq.to_le_bytes());
            put_length_prefixed(&mut body, &t.smallest);
            put_length_prefixed(&mut body, &t.largest);
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a manifest read from `path` (used in error messages only).
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let corrupt = |offset: usize, reason: &str| Error::corruption(path, offset as u64, reason);
        if bytes.len() < HEADER_LEN + 4 {
            return Err(corrupt(0, "manifest is shorter than its header"));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt(0, "not a manifest (bad magic)"));
        }
        let mut header = Reader::new(&bytes[8..HEADER_LEN]);
        let version = header.u32().map_err(|e| corrupt(8, e.0))?;
        let body_len = header.u32().map_err(|e| corrupt(12, e.0))? as usize;
        if version > MANIFEST_VERSION || version == 0 {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: MANIFEST_VERSION,
            });
        }
        if body_len > MAX_MANIFEST_LEN || HEADER_LEN + body_len + 4 != bytes.len() {
            return Err(corrupt(12, "manifest length does not match the file size"));
        }
        let crc_at = HEADER_LEN + body_len;
        let stored = u32::from_le_bytes([
            bytes[crc_at],
            bytes[crc_at + 1],
            bytes[crc_at + 2],
            bytes[crc_at + 3],
        ]);
        let computed = crc32fast::hash(&bytes[..crc_at]);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                offset: 0,
                expected: stored,
                got: computed,
            });
        }
        let mut r = Reader::new(&bytes[HEADER_LEN..crc_at]);
        Self::decode_body(&mut r).map_err(|e| corrupt(HEADER_LEN + r.position(), e.0))
    }

    fn decode_body(r: &mut Reader<'_>) -> std::result::Result<Manifest, DecodeError> {
        let next_file_id = r.u64()?;
        let log_number = r.u64()?;
        let last_seq = r.u64()?;
        let count = r.u32()? as usize;
        let mut tables = Vec::with_capacity(count.min(r.remaining() / 40));
        for _ in 0..count {
            tables.push(TableEntry {
                id: r.u64()?,
                level: r.u32()?,
                file_size: r.u64()?,
                min_seq: r.u64()?,
                max_seq: r.u64()?,
                smallest: r.length_prefixed(MAX_KEY_SIZE)?.to_vec(),
                largest: r.length_prefixed(MAX_KEY_SIZE)?.to_vec(),
            });
        }
        if !r.is_empty() {
            return Err(DecodeError("trailing bytes after the table list"));
        }
        Ok(Manifest {
            next_file_id,
            log_number,
            last_seq,
            tables,
        })
    }

    /// Reads `dir/MANIFEST`, or `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        match fs::read(&path) {
            Ok(bytes) => Manifest::decode(&bytes, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Replaces `dir/MANIFEST` with this state, atomically and durably.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(MANIFEST_TMP);
        let bytes = self.encode();
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        let path = dir.join(MANIFEST_FILE);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(dir)
    }
}

/// fsyncs a directory so that file creations, renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Path of the table with file id `id`.
pub fn table_path(tables_dir: &Path, id: u64) -> PathBuf {
    tables_dir.join(format!("{id:020}.sst"))
}

/// Parses a table file name back into its id.
pub fn parse_table_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".sst")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            next_file_id: 42,
            log_number: 40,
            last_seq: 1234,
            tables: vec![TableEntry {
                id: 7,
                level: 0,
                file_size: 4096,
                min_seq: 1,
                max_seq: 99,
                smallest: b"a".to_vec(),
                largest: b"zz".to_vec(),
            }],
        }
    }

    #[test]
    fn store_and_load_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Manifest::load(dir.path()).expect("load"), None);
        sample().store(dir.path()).expect("store");
        assert_eq!(Manifest::load(dir.path()).expect("load"), Some(sample()));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            let err = Manifest::decode(&b, Path::new("MANIFEST")).expect_err("must fail");
            assert!(err.is_corruption(), "byte {i}: {err}");
        }
        for len in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..len], Path::new("M")).is_err());
        }
    }

    #[test]
    fn future_version_is_refused_clearly() {
        let mut b = sample().encode();
        b[8..12].copy_from_slice(&9u32.to_le_bytes());
        let n = b.len();
        let crc = crc32fast::hash(&b[..n - 4]);
        b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let err = Manifest::decode(&b, Path::new("M")).expect_err("must fail");
        assert!(
            matches!(err, Error::UnsupportedVersion { found: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn table_names_round_trip() {
        let p = table_path(Path::new("/x"), 17);
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(parse_table_name(name), Some(17));
        assert_eq!(parse_table_name("17.sst"), None);
        assert_eq!(parse_table_name("0000000000000000001x.sst"), None);
    }
}
