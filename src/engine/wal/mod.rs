//! The write-ahead log: a directory of numbered segment files, each a header followed by
//! checksummed records, one record per write batch. See `docs/format.md`,
//! "WAL format (version 1)".
//!
//! This module owns the segment naming and listing; [`format`](mod@format) owns the bytes,
//! [`WalWriter`] the appending and [`replay_segment`] the recovery.

pub mod format;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use crate::engine::error::{Error, Result};

pub use format::encode_batch_record;
pub use reader::{check_segment, replay_segment, ReplayOutcome};
pub use writer::WalWriter;

/// File-name suffix of a segment.
const SEGMENT_SUFFIX: &str = ".wal";

/// Digits in a segment file name (zero-padded, so that names sort like ids).
const SEGMENT_DIGITS: usize = 20;

/// The path of segment `id` in `dir`: `{id:020}.wal`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:0SEGMENT_DIGITS$}{SEGMENT_SUFFIX}"))
}

/// The id named by a segment file name, if `name` is exactly one that
/// [`segment_path`] produces.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Ids of the `*.wal` segments in `dir`, ascending. Other files (and directories) are
/// ignored, as are names that [`segment_path`] would not produce.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) else {
            continue;
        };
        let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if !file_type.is_dir() {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Makes the directory's entries (a created, renamed or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Fuzzing entry point: decodes `data` as a whole segment, both as the last segment and
/// as an older one, and also with a valid header prepended (so that random input reaches
/// the record decoder). Errors are expected and swallowed; a panic is a bug, and so is a
/// broken invariant, which this asserts:
/// - the valid prefix never exceeds the input, and a torn tail is only ever reported
///   for the last segment;
/// - whatever decodes as an older segment decodes identically as the last one;
/// - the valid prefix of a torn segment decodes cleanly to the same records.
#[doc(hidden)]
pub fn fuzz_wal_bytes(data: &[u8]) {
    let mut with_header = format::encode_header(0).to_vec();
    with_header.extend_from_slice(data);
    fuzz_one(data);
    fuzz_one(&with_header);
}

fn fuzz_one(data: &[u8]) {
    let path = Path::new("fuzz.wal");
    let decode = |bytes: &[u8], is_last: bool| {
        let mut batches = Vec::new();
        let outcome = reader::decode_segment(path, bytes, is_last, None, |seq, batch| {
            batches.push((seq, batch));
            Ok(())
        });
        outcome.map(|o| (o, batches))
    };
    let as_last = decode(data, true);
    if let Ok((o, _)) = &as_last {
        assert!(o.valid_len <= data.len() as u64);
        assert!(o.truncated_at.is_none_or(|t| t == o.valid_len));
    }
    if let Ok((o, batches)) = decode(data, false) {
        assert!(o.truncated_at.is_none());
        assert_eq!(o.valid_len, data.len() as u64);
        let Ok((last, last_batches)) = &as_last else {
            panic!("decodes as an older segment but not as the last one");
        };
        assert_eq!((last, last_batches), (&o, &batches));
    }
    if let Ok((o, batches)) = as_last {
        if let Some(cut) = o.truncated_at {
            let prefix = &data[..cut as usize];
            match decode(prefix, true) {
                Ok((p, again)) => {
                    assert!(p.truncated_at.is_none());
                    assert_eq!(p.records, o.records);
                    assert_eq!(again, batches);
                }
                Err(e) => panic!("the valid prefix of a torn segment fails: {e}"),
            }
        }
    }
}
