//! The block format shared by data blocks and the index block: a run of prefix-compressed
//! entries followed by an array of restart offsets. This file owns building a block,
//! parsing one read from disk ([`Block`]) and walking it ([`BlockIter`]), plus the 5-byte
//! trailer (compression byte + CRC32) that follows every block on disk.
//!
//! It does not know about files: decoding failures come back as [`BlockError`] with the
//! offset inside the block, and the table turns them into an `Error` naming the file.

use std::cmp::Ordering;
use std::ops::Range;

use crate::engine::bloom::KeyHash;
use crate::engine::coding::{put_varint, Reader};
use crate::engine::prefetch::prefetch_byte;
use crate::engine::types::{compare_internal, SeqNo, ValueKind};

mod hash_index;
mod iter;
pub(crate) use hash_index::HASH_INDEX_FLAG;
use hash_index::{HashIndex, HashIndexBuilder};
pub(crate) use iter::BlockIter;

/// Bytes after every block on disk: `compression u8 | crc32 u32`.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;

/// The only compression byte version 1 writes or reads: the block is stored as is.
pub(crate) const COMPRESSION_NONE: u8 = 0;

/// Computes the trailer that follows `block` on disk.
pub(crate) fn block_trailer(block: &[u8]) -> [u8; BLOCK_TRAILER_LEN] {
    let crc = block_crc(block, COMPRESSION_NONE);
    let mut out = [0u8; BLOCK_TRAILER_LEN];
    out[0] = COMPRESSION_NONE;
    out[1..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The CRC32 of `block` followed by its compression byte, as stored in the trailer.
pub(crate) fn block_crc(block: &[u8], compression: u8) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(block);
    hasher.update(&[compression]);
    hasher.finalize()
}

/// A decoding failure inside one block: `pos` is the byte offset within the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockError {
    /// Offset inside the block where decoding failed.
    pub pos: usize,
    /// What was wrong.
    pub reason: &'static str,
}

fn fail<T>(pos: usize, reason: &'static str) -> Result<T, BlockError> {
    Err(BlockError { pos, reason })
}

/// An entry of this many bytes or more ends its restart run, whatever the restart
/// interval: the next entry starts a new one. A point read that the hash index sends to
/// a run then never passes over a large entry before its key (200-byte documents are
/// each alone in a run, their keys stored whole, which costs little next to them),
/// while runs of small entries keep their prefix compression.
const LARGE_ENTRY: usize = 128;

/// Accumulates sorted entries into one block's bytes.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    entries: usize,
    last_key: Vec<u8>,
    /// Encoded bytes of the last entry added.
    last_entry_len: usize,
    /// The keys for the block's hash index, if it gets one.
    hashed: Option<HashIndexBuilder>,
}

impl BlockBuilder {
    /// A builder that restarts prefix compression every `restart_interval` entries
    /// (and after an entry of [`LARGE_ENTRY`] bytes or more), without a hash index: the
    /// index block.
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            entries: 0,
            last_key: Vec::new(),
            last_entry_len: 0,
            hashed: None,
        }
    }

    /// [`new`](BlockBuilder::new), and blocks carry a hash index from user key to
    /// restart run (data blocks): a point read then goes straight to the run holding
    /// its key instead of searching the restart points.
    pub fn with_hash_index(restart_interval: usize) -> Self {
        BlockBuilder {
            hashed: Some(HashIndexBuilder::default()),
            ..BlockBuilder::new(restart_interval)
        }
    }

    /// Appends one entry. The caller guarantees internal-key order.
    pub fn add(&mut self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) {
        self.add_hashed(user_key, None, seq, kind, value);
    }

    /// [`add`](BlockBuilder::add) for a caller that already hashed the key (a table
    /// writer hashes each user key once, for its filter and this block's hash index).
    /// `hash`, if given, must be `KeyHash::of(user_key)`.
    pub fn add_hashed(
        &mut self,
        user_key: &[u8],
        hash: Option<KeyHash>,
        seq: SeqNo,
        kind: ValueKind,
        value: &[u8],
    ) {
        let restart = self.entries == 0
            || self.since_restart >= self.restart_interval
            || self.last_entry_len >= LARGE_ENTRY;
        let shared = if restart {
            // Offsets past u32::MAX are refused when the block is finished.
            self.restarts
                .push(u32::try_from(self.buf.len()).unwrap_or(u32::MAX));
            self.since_restart = 0;
            0
        } else {
            common_prefix(&self.last_key, user_key)
        };
        if let Some(hashed) = &mut self.hashed {
            if self.entries == 0 || self.last_key != user_key {
                let hash = hash.unwrap_or_else(|| KeyHash::of(user_key));
                hashed.add(hash, self.restarts.len() - 1);
            }
        }
        let unshared = &user_key[shared..];
        let entry_start = self.buf.len();
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, unshared.len() as u64);
        put_varint(&mut self.buf, seq);
        self.buf.push(kind as u8);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(unshared);
        self.buf.extend_from_slice(value);
        self.last_entry_len = self.buf.len() - entry_start;
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Size of the block if it were finished now.
    pub fn size_estimate(&self) -> usize {
        let hash_index = match &self.hashed {
            Some(h) if h.fits(self.restarts.len()) => h.encoded_len(),
            _ => 0,
        };
        self.buf.len() + 4 * self.restarts.len() + hash_index + 4
    }

    /// True when no entry was added since the last reset.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends the restart array and returns the block's bytes, leaving the builder empty.
    /// `None` when the block is too large for its offsets to fit in 32 bits.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let too_large = self.size_estimate() > u32::MAX as usize;
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        let mut n = self.restarts.len() as u32;
        if let Some(h) = &mut self.hashed {
            if h.fits(self.restarts.len()) {
                h.finish_into(&mut out);
                n |= HASH_INDEX_FLAG;
            } else {
                h.clear();
            }
        }
        out.extend_from_slice(&n.to_le_bytes());
        self.restarts.clear();
        self.since_restart = 0;
        self.entries = 0;
        self.last_key.clear();
        self.last_entry_len = 0;
        (!too_large).then_some(out)
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A parsed block: its bytes (without trailer) and the location of its restart array.
/// Immutable and shared through the block cache.
pub struct Block {
    data: Vec<u8>,
    restarts_offset: usize,
    num_restarts: usize,
    /// The data block's hash index (none in index blocks and version 1 tables).
    hash: HashIndex,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("size", &self.data.len())
            .field("restarts", &self.num_restarts)
            .finish_non_exhaustive()
    }
}

impl Block {
    /// Validates the restart array of `data` (a block without its trailer).
    pub(crate) fn new(data: Vec<u8>) -> Result<Block, BlockError> {
        let len = data.len();
        if len < 4 {
            return fail(0, "block shorter than its restart count");
        }
        let count_pos = len - 4;
        let raw = read_u32(&data, count_pos);
        let n = (raw & !HASH_INDEX_FLAG) as usize;
        // Without a hash index the restart array ends at the count; with one, the
        // buckets and their number come between.
        let hash = if raw & HASH_INDEX_FLAG == 0 {
            HashIndex::default()
        } else {
            HashIndex::parse(&data, count_pos, n)?
        };
        let restarts_end = if hash.is_present() {
            hash.offset
        } else {
            count_pos
        };
        if n > restarts_end / 4 {
            return fail(count_pos, "restart count larger than the block");
        }
        let restarts_offset = restarts_end - 4 * n;
        let block = Block {
            data,
            restarts_offset,
            num_restarts: n,
            hash,
        };
        let mut prev: Option<usize> = None;
        for i in 0..n {
            let r = block.restart(i);
            let ok = r < restarts_offset && prev.map_or(r == 0, |p| r > p);
            if !ok {
                return fail(
                    restarts_offset + 4 * i,
                    "restart offset out of order or range",
                );
            }
            prev = Some(r);
        }
        if n == 0 && restarts_offset != 0 {
            return fail(count_pos, "entries without a restart point");
        }
        Ok(block)
    }

    /// The bytes at `range`, a value range [`get`](Block::get) returned.
    pub(crate) fn value(&self, range: Range<usize>) -> &[u8] {
        &self.data[range]
    }

    /// Starts loading the restart array and the hash index's buckets for `hash` into
    /// the CPU caches (a hint, see `engine/prefetch.rs`).
    pub(crate) fn prefetch_restarts(&self, hash: KeyHash) {
        prefetch_byte(&self.data, self.restarts_offset);
        if self.hash.is_present() {
            prefetch_byte(&self.data, self.hash.home(hash));
        }
    }

    /// Starts loading the entries a point read of the key hashed to `hash` compares
    /// first: the restart run the hash index names first, or without an index the first
    /// restart point and the middle one (the binary search's first probe). Reads the
    /// restart array and the hash index.
    pub(crate) fn prefetch_probes(&self, hash: KeyHash) {
        if self.num_restarts == 0 {
            return;
        }
        if self.hash.is_present() {
            if let Some(run) = self.hash.candidates(&self.data, hash).next() {
                prefetch_byte(&self.data, self.restart(run));
            }
        } else {
            prefetch_byte(&self.data, 0);
            prefetch_byte(&self.data, self.restart(self.num_restarts / 2));
        }
    }

    /// Starts loading the bytes at `range` (a value [`get`](Block::get) returned).
    pub(crate) fn prefetch_range(&self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        for at in range.clone().step_by(64) {
            prefetch_byte(&self.data, at);
        }
        // The last line, which the steps miss when the range does not start on one.
        prefetch_byte(&self.data, range.end - 1);
    }

    /// Size of the block in bytes (without trailer); the block cache's weight.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Walks every entry and checks that each restart offset is the start of an entry
    /// that shares no prefix, and that the hash index (if any) sends every key of the
    /// block to the restart run holding its first version (or to the binary search).
    /// Reads only use restart points through binary search or the hash index, so this is
    /// what catches a restart array that points mid-entry or a bucket that points
    /// elsewhere.
    pub(crate) fn check_restarts(&self) -> Result<(), BlockError> {
        let entries = &self.data[..self.restarts_offset];
        let (mut pos, mut next) = (0, 0);
        let mut key: Vec<u8> = Vec::new();
        while pos < entries.len() {
            let h = decode_header(entries, pos)?;
            if next < self.num_restarts && self.restart(next) == pos {
                if h.shared != 0 {
                    return fail(pos, "restart entry shares a prefix");
                }
                next += 1;
            }
            if h.shared > key.len() {
                return fail(pos, "shared key prefix longer than the previous key");
            }
            let suffix = &entries[h.key_suffix.clone()];
            let same_key =
                pos > 0 && h.shared + suffix.len() == key.len() && &key[h.shared..] == suffix;
            key.truncate(h.shared);
            key.extend_from_slice(suffix);
            // `next` restart points start at or before this entry: it is in run
            // `next - 1`, which the key's probe sequence must name before it ends.
            if !same_key
                && self.hash.is_present()
                && !self
                    .hash
                    .candidates(&self.data, KeyHash::of(&key))
                    .any(|run| run + 1 == next)
            {
                return fail(pos, "hash index does not lead to the key's restart run");
            }
            pos = h.value.end;
        }
        if next != self.num_restarts {
            return fail(
                self.restarts_offset + 4 * next,
                "restart offset is not at an entry",
            );
        }
        Ok(())
    }

    fn restart(&self, i: usize) -> usize {
        read_u32(&self.data, self.restarts_offset + 4 * i) as usize
    }

    /// The key at restart point `i`, where no prefix is shared.
    fn restart_key(&self, i: usize) -> Result<(&[u8], SeqNo), BlockError> {
        let pos = self.restart(i);
        let h = decode_header(&self.data[..self.restarts_offset], pos)?;
        if h.shared != 0 {
            return fail(pos, "restart entry shares a prefix");
        }
        Ok((&self.data[h.key_suffix.clone()], h.seq))
    }

    /// A point read: the first entry `>= (user_key, seq)` in internal-key order if it
    /// has `user_key` (the newest version visible at `seq`), as `(seq, kind, value
    /// range)`; `None` when that entry has another key or the block ends first. Gives
    /// what [`BlockIter::seek`] followed by a key comparison gives, without building
    /// any key: restart keys are compared where they lie, and between restarts only
    /// the number of leading bytes the current key shares with the target is tracked,
    /// so most entries are passed over on their header alone. `hash` is
    /// `KeyHash::of(user_key)`: in a block with a hash index it leads to the restart run
    /// that holds the key's first version (or shows the key is absent), and the scan
    /// starts there instead of after a search of the restart points.
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        hash: KeyHash,
        seq: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Range<usize>)>, BlockError> {
        let n = self.num_restarts;
        if n == 0 {
            return Ok(None);
        }
        if !self.hash.is_present() {
            let start = self.restart(self.search_restarts(user_key, seq)?);
            return self.scan(start, usize::MAX, user_key, seq);
        }
        // Each run the hash index names for the key (almost always one) is scanned
        // until the key is found; a run ends the scan unless the key's versions go on.
        for run in self.hash.candidates(&self.data, hash) {
            let end = if run + 1 < n {
                self.restart(run + 1)
            } else {
                self.restarts_offset
            };
            if let Some(found) = self.scan(self.restart(run), end, user_key, seq)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first entry `>= (user_key, seq)` from the restart point at `pos` on, if it
    /// has `user_key`. `None` too when the scan reaches `run_end` (a restart point)
    /// with the entry before it of another key.
    fn scan(
        &self,
        mut pos: usize,
        run_end: usize,
        user_key: &[u8],
        seq: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Range<usize>)>, BlockError> {
        let entries = &self.data[..self.restarts_offset];
        // Bytes the current entry's key has in common with `user_key`, and its length;
        // no current entry yet at the restart point (which must share nothing).
        let (mut matched, mut key_len) = (0usize, 0usize);
        // Whether the entry before `pos` has the key (an older version may follow).
        let mut same_as_prev = false;
        while pos < entries.len() {
            if pos == run_end && !same_as_prev {
                return Ok(None);
            }
            let h = decode_header(entries, pos)?;
            if h.shared > key_len {
                return fail(pos, "shared key prefix longer than the previous key");
            }
            let suffix = &entries[h.key_suffix.clone()];
            // An entry that keeps more bytes of its predecessor than the predecessor
            // had in common with the target has the predecessor's smaller byte at
            // `matched`: still below the target. Otherwise its first `shared` bytes
            // are the target's, and the rest decides.
            if h.shared <= matched {
                matched = h.shared;
                let rest = &user_key[matched..];
                let common = common_prefix(suffix, rest);
                matched += common;
                let order = match (suffix.get(common), rest.get(common)) {
                    (Some(a), Some(b)) => a.cmp(b),
                    (Some(_), None) => Ordering::Greater,
                    (None, Some(_)) => Ordering::Less,
                    // Same user key: newer versions (larger seq) come first.
                    (None, None) => seq.cmp(&h.seq),
                };
                let same_key = common == suffix.len() && common == rest.len();
                if order != Ordering::Less {
                    return Ok(same_key.then_some((h.seq, h.kind, h.value)));
                }
                same_as_prev = same_key;
            } else {
                same_as_prev = false;
            }
            key_len = h.shared + suffix.len();
            pos = h.value.end;
        }
        Ok(None)
    }

    /// The last restart point whose key is below `(user_key, seq)` (or the first).
    fn search_restarts(&self, user_key: &[u8], seq: SeqNo) -> Result<usize, BlockError> {
        let (mut lo, mut hi) = (0, self.num_restarts.saturating_sub(1));
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let (k, s) = self.restart_key(mid)?;
            if compare_internal(k, s, user_key, seq) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }
}

fn read_u32(data: &[u8], pos: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[pos..pos + 4]);
    u32::from_le_bytes(b)
}

/// One decoded entry header, with the ranges of its key suffix and value in the block.
struct EntryHeader {
    shared: usize,
    key_suffix: Range<usize>,
    seq: SeqNo,
    kind: ValueKind,
    value: Range<usize>,
}

/// Decodes the entry at `pos` of `entries` (the block bytes before the restart array).
#[inline]
fn decode_header(entries: &[u8], pos: usize) -> Result<EntryHeader, BlockError> {
    match decode_header_fast(entries, pos) {
        Some(h) => Ok(h),
        // Only damaged entries get here; the checked decoder says what is wrong.
        None => decode_header_checked(entries, pos),
    }
}

/// Reads the varint at `*pos` of `data` and moves `*pos` past it: the same encoding
/// and limits as [`Reader::varint`], without building a reader for every field.
#[inline(always)]
fn varint_at(data: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *data.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    varint_at_multi_byte(data, pos)
}

#[inline(always)]
fn varint_at_multi_byte(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut result: u64 = 0;
    for i in 0..10 {
        let byte = *data.get(*pos + i)?;
        if i == 9 && byte > 1 {
            return None;
        }
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Some(result);
        }
    }
    None
}

/// The common case of [`decode_header`]: `None` when anything is out of place, and
/// then [`decode_header_checked`] finds the same problem and names it.
#[inline(always)]
fn decode_header_fast(entries: &[u8], pos: usize) -> Option<EntryHeader> {
    let mut p = pos;
    let shared = usize::try_from(varint_at(entries, &mut p)?).ok()?;
    let unshared = usize::try_from(varint_at(entries, &mut p)?).ok()?;
    let seq = varint_at(entries, &mut p)?;
    let kind = ValueKind::from_u8(*entries.get(p)?)?;
    p += 1;
    let value_len = usize::try_from(varint_at(entries, &mut p)?).ok()?;
    let value_start = p.checked_add(unshared)?;
    let value_end = value_start.checked_add(value_len)?;
    if value_end > entries.len() {
        return None;
    }
    Some(EntryHeader {
        shared,
        key_suffix: p..value_start,
        seq,
        kind,
        value: value_start..value_end,
    })
}

/// [`decode_header`] with every field checked and every failure explained.
#[cold]
fn decode_header_checked(entries: &[u8], pos: usize) -> Result<EntryHeader, BlockError> {
    let Some(tail) = entries.get(pos..) else {
        return fail(pos, "entry offset past the entries");
    };
    let mut r = Reader::new(tail);
    let err = |e: crate::engine::coding::DecodeError| BlockError { pos, reason: e.0 };
    let shared = r.varint_len(usize::MAX).map_err(err)?;
    let unshared = r.varint_len(tail.len()).map_err(err)?;
    let seq = r.varint().map_err(err)?;
    let kind_pos = pos + r.position();
    let kind = ValueKind::from_u8(r.u8().map_err(err)?);
    let Some(kind) = kind else {
        return fail(kind_pos, "unknown value kind");
    };
    let value_len = r.varint_len(tail.len()).map_err(err)?;
    let key_start = pos + r.position();
    r.bytes(unshared).map_err(err)?;
    let value_start = pos + r.position();
    r.bytes(value_len).map_err(err)?;
    Ok(EntryHeader {
        shared,
        key_suffix: key_start..value_start,
        seq,
        kind,
        value: value_start..value_start + value_len,
    })
}

#[cfg(test)]
mod tests;
