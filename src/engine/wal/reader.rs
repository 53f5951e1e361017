//! Replay of one WAL segment: header check, record-by-record decoding, and the
//! torn-tail rule that tells a crash mid-write apart from damage.
//!
//! The decoding runs over a byte slice ([`decode_segment`]); [`replay_segment`] only
//! reads the file into memory and, when a torn tail was found, truncates it.

use std::fs::{self, OpenOptions};
use std::path::Path;

use super::format::{
    decode_batch_payload, decode_header, split_frame, walk_batch, FrameError, HeaderError,
    FORMAT_VERSION, HEADER_LEN, RECORD_TYPE_BATCH,
};
use crate::engine::error::{Error, Result};
use crate::engine::types::{SeqNo, WriteBatch};

/// What replaying one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Records (batches) applied.
    pub records: u64,
    /// Sequence number of the last operation applied, if any.
    pub last_seq: Option<SeqNo>,
    /// Offset where a torn tail was cut off (the file was truncated there), if any.
    pub truncated_at: Option<u64>,
    /// Length of the valid prefix: the end of the last valid record, or the header's
    /// end when the segment holds no record. 0 when the header itself was torn (the file
    /// is then left as it is).
    pub valid_len: u64,
}

/// Replays one segment, calling `apply(first_seq, batch)` for each record in order.
///
/// If `is_last` (the newest segment, the only one that can have a torn tail): an
/// incomplete or checksum-failing record that is the tail of the file (no valid record
/// anywhere after it, searching byte by byte) is a torn write: the file is truncated to
/// the end of the last valid record (and fsynced) and `truncated_at` reports where. A
/// bad record followed by a valid one, or any bad record in a non-last segment, is
/// [`Error::Corruption`] or [`Error::ChecksumMismatch`] naming the file and the offset of
/// the bad record. A record whose checksum holds but whose contents are invalid is
/// always an error.
///
/// A segment whose header is torn (shorter than the header, or all zero bytes as a
/// crash right after creation can leave it) is empty if `is_last`, and an error
/// otherwise. When the file name is a segment name, the id in the header must match it.
/// An error returned by `apply` stops the replay and is returned as is.
pub fn replay_segment(
    path: &Path,
    is_last: bool,
    apply: impl FnMut(SeqNo, WriteBatch) -> Result<()>,
) -> Result<ReplayOutcome> {
    let data = fs::read(path).map_err(|e| Error::io(path, e))?;
    let expected_id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(super::parse_segment_name);
    let outcome = decode_segment(path, &data, is_last, expected_id, apply)?;
    if let Some(at) = outcome.truncated_at {
        tracing::warn!(
            path = %path.display(),
            offset = at,
            dropped_bytes = data.len() as u64 - at,
            "WAL segment ends in a torn write; truncating it to its last complete record"
        );
        truncate(path, at)?;
    } else if outcome.valid_len == 0 && !data.is_empty() {
        tracing::warn!(
            path = %path.display(),
            len = data.len(),
            "WAL segment header is torn; treating the segment as empty"
        );
    }
    Ok(outcome)
}

/// Cuts `path` to `len` bytes and makes the new length durable.
fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.set_len(len).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Decodes a whole segment held in memory; the same rules as [`replay_segment`], except
/// that a torn tail is only reported (in `truncated_at`), not cut. `path` only names the
/// segment in errors. If `expected_id` is given, the header must carry it.
pub(crate) fn decode_segment(
    path: &Path,
    data: &[u8],
    is_last: bool,
    expected_id: Option<u64>,
    mut apply: impl FnMut(SeqNo, WriteBatch) -> Result<()>,
) -> Result<ReplayOutcome> {
    let empty = ReplayOutcome {
        records: 0,
        last_seq: None,
        truncated_at: None,
        valid_len: 0,
    };
    let Some(header) = data.first_chunk::<HEADER_LEN>() else {
        if is_last {
            return Ok(empty);
        }
        return Err(Error::corruption(
            path,
            0,
            format!(
                "the file is {} bytes, shorter than the {HEADER_LEN}-byte segment header",
                data.len()
            ),
        ));
    };
    if is_last && data.iter().all(|&b| b == 0) {
        return Ok(empty);
    }
    let id = decode_header(header).map_err(|e| header_error(path, e))?;
    if let Some(expected) = expected_id.filter(|&x| x != id) {
        return Err(Error::corruption(
            path,
            12,
            format!("the header names segment {id}, the file name segment {expected}"),
        ));
    }

    let mut out = ReplayOutcome {
        valid_len: HEADER_LEN as u64,
        ..empty
    };
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        let offset = pos as u64;
        let frame = match split_frame(&data[pos..]) {
            Ok(f) if f.stored_crc == f.computed_crc() => f,
            Ok(f) => {
                let bad = Error::ChecksumMismatch {
                    path: path.to_path_buf(),
                    offset,
                    expected: f.stored_crc,
                    got: f.computed_crc(),
                };
                return torn_or(bad, data, pos, is_last, out);
            }
            Err(e) => {
                let reason = match e {
                    FrameError::Incomplete { needed, available } => {
                        format!("record is incomplete: it needs {needed} bytes, {available} remain")
                    }
                    FrameError::TooLong { len } => {
                        format!("record length {len} is over the maximum")
                    }
                };
                return torn_or(
                    Error::corruption(path, offset, reason),
                    data,
                    pos,
                    is_last,
                    out,
                );
            }
        };
        // The checksum holds, so these bytes were written as they are: anything wrong
        // with them now is damage (or a bug), never a torn write.
        if frame.kind != RECORD_TYPE_BATCH {
            return Err(Error::corruption(
                path,
                offset,
                format!("unknown record type {}", frame.kind),
            ));
        }
        let (first_seq, batch) = decode_batch_payload(frame.payload)
            .map_err(|e| Error::corruption(path, offset, format!("bad write batch: {}", e.0)))?;
        if !batch.is_empty() {
            out.last_seq = Some(first_seq + batch.len() as u64 - 1);
        }
        apply(first_seq, batch)?;
        out.records += 1;
        pos += frame.len();
        out.valid_len = pos as u64;
    }
    Ok(out)
}

/// Decides what a bad record at `pos` means: a torn tail if the segment is the last one
/// and no valid record follows it, else the error `bad`.
fn torn_or(
    bad: Error,
    data: &[u8],
    pos: usize,
    is_last: bool,
    mut out: ReplayOutcome,
) -> Result<ReplayOutcome> {
    if !is_last {
        return Err(bad);
    }
    match valid_record_after(data, pos) {
        Some(next) => Err(match bad {
            Error::Corruption {
                path,
                offset,
                reason,
            } => Error::Corruption {
                path,
                offset,
                reason: format!("{reason}; a valid record follows at offset {next}"),
            },
            other => other,
        }),
        None => {
            out.truncated_at = Some(pos as u64);
            Ok(out)
        }
    }
}

/// The offset of the first valid record starting after `bad`, if any. Every offset is
/// tried; the length, the type and the payload structure are tested before the crc, so
/// the search stays cheap over garbage. A record's length field is never zero, so no
/// record starts where the next four bytes are zero: runs of zeros (a preallocated tail)
/// are skipped at memory speed.
fn valid_record_after(data: &[u8], bad: usize) -> Option<usize> {
    let mut q = bad + 1;
    while q < data.len() {
        let nonzero = q + data[q..].iter().position(|&b| b != 0)?;
        q = q.max(nonzero.saturating_sub(3));
        let valid = split_frame(&data[q..]).is_ok_and(|f| {
            f.kind == RECORD_TYPE_BATCH
                && walk_batch(f.payload, |_, _, _| {}).is_ok()
                && f.stored_crc == f.computed_crc()
        });
        if valid {
            return Some(q);
        }
        q += 1;
    }
    None
}

fn header_error(path: &Path, e: HeaderError) -> Error {
    match e {
        HeaderError::Magic => Error::corruption(path, 0, "not a WAL segment (bad magic)"),
        HeaderError::InvalidVersion => {
            Error::corruption(path, 8, "segment header has format version 0")
        }
        HeaderError::FutureVersion(found) => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        },
        HeaderError::Checksum { expected, got } => Error::ChecksumMismatch {
            path: path.to_path_buf(),
            offset: 0,
            expected,
            got,
        },
    }
}

/// Checks a segment without changing it: every record's frame, checksum and payload,
/// with the rules of [`replay_segment`] (a torn tail of the newest segment is reported
/// in `truncated_at`, not an error).
pub fn check_segment(path: &Path, is_last: bool) -> Result<ReplayOutcome> {
    let data = fs::read(path).map_err(|e| Error::io(path, e))?;
    let expected_id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(super::parse_segment_name);
    decode_segment(path, &data, is_last, expected_id, |_, _| Ok(()))
}
