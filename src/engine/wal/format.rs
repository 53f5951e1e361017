//! The WAL's byte layout: the segment header, the record frame and the write-batch
//! payload, with their encoders and bounds-checked decoders.
//!
//! Everything here works on byte slices and knows nothing of files; the reader turns
//! the errors into an [`Error`](crate::engine::Error) naming the file and offset. The
//! layout is documented byte by byte in `docs/format.md`, "WAL format (version 1)".

use crate::engine::coding::{put_length_prefixed, DecodeError, Reader};
use crate::engine::types::{BatchOp, SeqNo, ValueKind, WriteBatch, MAX_BATCH_SIZE, MAX_SEQNO};

/// First 8 bytes of every segment. The high first byte and the trailing newline make
/// the file unmistakable and catch transfers that mangle 8-bit or line-ending bytes.
pub const MAGIC: [u8; 8] = *b"\x89LSMWAL\n";

/// The format version this build writes, and the highest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes in the segment header: magic, version, segment id, header crc.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Bytes before a record's payload: payload length, crc, record type.
pub const FRAME_HEADER_LEN: usize = 4 + 4 + 1;

/// Record type of a write batch, the only type version 1 defines.
pub const RECORD_TYPE_BATCH: u8 = 1;

/// Largest payload a reader accepts. A valid batch encodes to at most
/// `MAX_BATCH_SIZE + BATCH_HEADER_LEN` bytes; the slack only keeps the bound simple.
/// Anything longer is damage, and is rejected before any allocation.
pub const MAX_PAYLOAD_LEN: usize = MAX_BATCH_SIZE + 64 * 1024;

/// Bytes of the batch payload before its operations: first sequence number and count.
pub const BATCH_HEADER_LEN: usize = 8 + 4;

/// Why a segment header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// The first 8 bytes are not [`MAGIC`].
    Magic,
    /// The version is 0, which was never written.
    InvalidVersion,
    /// A version newer than [`FORMAT_VERSION`].
    FutureVersion(u32),
    /// The header crc does not match the header bytes.
    Checksum { expected: u32, got: u32 },
}

/// Encodes the header of segment `id`.
pub(crate) fn encode_header(id: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header, returning the segment id it names.
///
/// The version is checked before the crc: a future version may lay out (and checksum)
/// its header differently, and deserves "unsupported version" rather than "damaged".
pub(crate) fn decode_header(h: &[u8; HEADER_LEN]) -> Result<u64, HeaderError> {
    if h[0..8] != MAGIC {
        return Err(HeaderError::Magic);
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version == 0 {
        return Err(HeaderError::InvalidVersion);
    }
    if version > FORMAT_VERSION {
        return Err(HeaderError::FutureVersion(version));
    }
    let expected = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    let got = crc32fast::hash(&h[0..20]);
    if expected != got {
        return Err(HeaderError::Checksum { expected, got });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[12..20]);
    Ok(u64::from_le_bytes(id))
}

/// Why the bytes at some offset are not a complete record frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The frame header or the payload runs past the end of the data.
    Incomplete { needed: u64, available: u64 },
    /// The length field exceeds [`MAX_PAYLOAD_LEN`].
    TooLong { len: u32 },
}

/// A record frame whose bounds are known but whose crc is not yet checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawFrame<'a> {
    /// The record type byte.
    pub kind: u8,
    /// The payload bytes.
    pub payload: &'a [u8],
    /// The crc stored in the frame.
    pub stored_crc: u32,
}

impl RawFrame<'_> {
    /// Total bytes of the frame, header included.
    pub fn len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload.len()
    }

    /// The crc of the type byte and payload, as computed from the bytes.
    pub fn computed_crc(&self) -> u32 {
        frame_crc(self.kind, self.payload)
    }
}

fn frame_crc(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// Splits the frame at the start of `buf` (which runs to the end of the segment) without
/// checking its crc, so that callers can apply cheaper tests first.
pub(crate) fn split_frame(buf: &[u8]) -> Result<RawFrame<'_>, FrameError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Incomplete {
            needed: FRAME_HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let stored_crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let kind = buf[8];
    if len as usize > MAX_PAYLOAD_LEN {
        return Err(FrameError::TooLong { len });
    }
    let payload = buf[FRAME_HEADER_LEN..]
        .get(..len as usize)
        .ok_or(FrameError::Incomplete {
            needed: FRAME_HEADER_LEN as u64 + u64::from(len),
            available: buf.len() as u64,
        })?;
    Ok(RawFrame {
        kind,
        payload,
        stored_crc,
    })
}

/// Encodes one batch (with its first sequence number) as a complete framed record,
/// appended to `out`.
///
/// The batch is expected to have passed [`WriteBatch::validate`], which bounds its
/// encoded size well below [`MAX_PAYLOAD_LEN`].
///
/// # Panics
///
/// If the encoded payload exceeds [`MAX_PAYLOAD_LEN`] (a batch that skipped
/// validation): such a record could never be read back, so it is refused loudly rather
/// than written and lost.
pub fn encode_batch_record(out: &mut Vec<u8>, first_seq: SeqNo, batch: &WriteBatch) {
    let start = out.len();
    out.reserve(FRAME_HEADER_LEN + BATCH_HEADER_LEN + batch.approximate_size());
    out.extend_from_slice(&[0u8; 8]);
    out.push(RECORD_TYPE_BATCH);
    encode_batch_payload(out, first_seq, batch);
    let payload_len = out.len() - start - FRAME_HEADER_LEN;
    assert!(
        payload_len <= MAX_PAYLOAD_LEN,
        "write batch encodes to {payload_len} bytes, over the WAL limit of {MAX_PAYLOAD_LEN}; \
         batches must be validated before they are logged"
    );
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the batch payload: first sequence number, count, then the operations.
fn encode_batch_payload(out: &mut Vec<u8>, first_seq: SeqNo, batch: &WriteBatch) {
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    for op in batch.ops() {
        match op {
            BatchOp::Put { key, value } => {
                out.push(ValueKind::Put as u8);
                put_length_prefixed(out, key);
                put_length_prefixed(out, value);
            }
            BatchOp::Delete { key } => {
                out.push(ValueKind::Delete as u8);
                put_length_prefixed(out, key);
            }
        }
    }
}

/// Walks a batch payload, calling `on_op(kind, key, value)` for each operation (the
/// value is empty for a delete), and returns the first sequence number and the count.
///
/// Fails unless the payload holds exactly `count` well-formed operations whose
/// sequence numbers stay within [`MAX_SEQNO`].
pub(crate) fn walk_batch<'a>(
    payload: &'a [u8],
    mut on_op: impl FnMut(ValueKind, &'a [u8], &'a [u8]),
) -> Result<(SeqNo, u32), DecodeError> {
    let mut r = Reader::new(payload);
    let first_seq = r.u64()?;
    let count = r.u32()?;
    if count > 0 {
        first_seq
            .checked_add(u64::from(count) - 1)
            .filter(|&last| last <= MAX_SEQNO)
            .ok_or(DecodeError("sequence numbers out of range"))?;
    }
    for _ in 0..count {
        let kind = ValueKind::from_u8(r.u8()?).ok_or(DecodeError("unknown operation kind"))?;
        let key = r.length_prefixed(payload.len())?;
        let value = match kind {
            ValueKind::Put => r.length_prefixed(payload.len())?,
            ValueKind::Delete => &[],
        };
        on_op(kind, key, value);
    }
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after the last operation"));
    }
    Ok((first_seq, count))
}

/// Decodes a batch payload into its first sequence number and the batch.
pub(crate) fn decode_batch_payload(payload: &[u8]) -> Result<(SeqNo, WriteBatch), DecodeError> {
    let mut batch = WriteBatch::new();
    let (first_seq, _) = walk_batch(payload, |kind, key, value| match kind {
        ValueKind::Put => {
            batch.put(key, value);
        }
        ValueKind::Delete => {
            batch.delete(key);
        }
    })?;
    Ok((first_seq, batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h), Ok(42));

        let mut bad = h;
        bad[0] ^= 1;
        assert_eq!(decode_header(&bad), Err(HeaderError::Magic));

        let mut bad = h;
        bad[13] ^= 1;
        assert!(matches!(
            decode_header(&bad),
            Err(HeaderError::Checksum { .. })
        ));

        let mut future = h;
        future[8..12].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(decode_header(&future), Err(HeaderError::FutureVersion(7)));

        let mut zero = h;
        zero[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode_header(&zero), Err(HeaderError::InvalidVersion));
    }

    #[test]
    fn batch_record_round_trips() {
        let mut batch = WriteBatch::new();
        batch
            .put("a", "1")
            .delete("b")
            .put("c", "")
            .put("d", vec![7u8; 300]);
        let mut out = vec![0xAA]; // appending keeps what was there
        encode_batch_record(&mut out, 10, &batch);
        assert_eq!(out[0], 0xAA);

        let frame = split_frame(&out[1..]).expect("complete frame");
        assert_eq!(frame.len(), out.len() - 1);
        assert_eq!(frame.kind, RECORD_TYPE_BATCH);
        assert_eq!(frame.stored_crc, frame.computed_crc());
        let (seq, decoded) = decode_batch_payload(frame.payload).expect("valid payload");
        assert_eq!(seq, 10);
        assert_eq!(decoded, batch);
    }

    #[test]
    fn frames_are_bounds_checked() {
        let mut out = Vec::new();
        encode_batch_record(&mut out, 1, WriteBatch::new().put("k", "v"));
        for cut in 0..out.len() {
            assert!(matches!(
                split_frame(&out[..cut]),
                Err(FrameError::Incomplete { .. })
            ));
        }
        let mut huge = out.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            split_frame(&huge),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        let mut payload = Vec::new();
        encode_batch_payload(&mut payload, 5, WriteBatch::new().put("k", "v"));
        assert!(decode_batch_payload(&payload).is_ok());

        let mut trailing = payload.clone();
        trailing.push(0);
        assert!(decode_batch_payload(&trailing).is_err());

        let mut bad_kind = payload.clone();
        bad_kind[BATCH_HEADER_LEN] = 9;
        assert!(decode_batch_payload(&bad_kind).is_err());

        let mut overflow = payload.clone();
        overflow[0..8].copy_from_slice(&MAX_SEQNO.to_le_bytes());
        overflow[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(decode_batch_payload(&overflow).is_err());

        for cut in 0..payload.len() {
            assert!(decode_batch_payload(&payload[..cut]).is_err());
        }
    }
}
