//! The hash index of a data block (table format version 2): from a user key to the
//! restart run holding its first (newest) version in the block.
//!
//! Layout, between the restart array and the restart count (whose top bit,
//! [`HASH_INDEX_FLAG`], says the index is there):
//!
//! ```text
//! bucket[0] (run u8, tag u8) | ... | bucket[B-1] | B u16
//! ```
//!
//! Each distinct key has one bucket: its run and an 8-bit tag of its hash
//! ([`KeyHash::tag`]). A key's home bucket is [`KeyHash::bucket`]; a key whose home is
//! taken goes to the next free bucket, wrapping around (linear probing). `B` is about
//! 4/3 of the keys and always larger, so some bucket is free; a free bucket is
//! `(255, 0)`, and a lookup stops at the first one. A block has an index only with at
//! most [`MAX_RUNS`] restart points and fewer than `u16::MAX` keys.

use super::{fail, BlockError};
use crate::engine::bloom::KeyHash;

/// Set in a block's restart count when a hash index follows the restart array.
pub(crate) const HASH_INDEX_FLAG: u32 = 1 << 31;

/// The run byte of a free bucket.
pub(super) const EMPTY: u8 = 255;

/// The most restart runs an indexed block has (run numbers are one byte, below
/// [`EMPTY`]).
const MAX_RUNS: usize = EMPTY as usize;

/// Buckets for `keys` distinct keys (fewer than `u16::MAX`): about 4 for every 3, and
/// always at least one more than the keys.
fn buckets_for(keys: usize) -> usize {
    (keys + keys / 3).max(keys + 1).min(u16::MAX as usize)
}

/// The keys of the block being built, for its index.
#[derive(Debug, Default)]
pub(super) struct HashIndexBuilder {
    /// The hash of each distinct key and the run of its first version.
    keys: Vec<(KeyHash, u8)>,
}

impl HashIndexBuilder {
    /// Records a key whose first version is in run `run`.
    pub fn add(&mut self, hash: KeyHash, run: usize) {
        // Runs past the last run number leave the block without an index (`fits`).
        self.keys.push((hash, u8::try_from(run).unwrap_or(u8::MAX)));
    }

    /// True when an index can describe a block of `runs` restart runs and these keys.
    pub fn fits(&self, runs: usize) -> bool {
        (1..=MAX_RUNS).contains(&runs) && self.keys.len() < u16::MAX as usize
    }

    /// Bytes the index takes (buckets and their count), when it fits.
    pub fn encoded_len(&self) -> usize {
        2 * buckets_for(self.keys.len()) + 2
    }

    /// Appends the buckets and their count to `out`, and forgets the keys.
    pub fn finish_into(&mut self, out: &mut Vec<u8>) {
        let m = buckets_for(self.keys.len());
        let mut buckets = vec![[EMPTY, 0u8]; m];
        for &(hash, run) in &self.keys {
            let mut b = hash.bucket(m);
            // There are more buckets than keys: a free one is always found.
            while buckets[b][0] != EMPTY {
                b = (b + 1) % m;
            }
            buckets[b] = [run, hash.tag()];
        }
        out.extend(buckets.iter().flatten());
        out.extend_from_slice(&(m as u16).to_le_bytes());
        self.keys.clear();
    }

    /// Forgets the keys (the block was finished without an index).
    pub fn clear(&mut self) {
        self.keys.clear();
    }
}

/// Where a parsed block's index lies: `buckets` buckets from byte `offset` (none when
/// the block has no index).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HashIndex {
    pub(super) offset: usize,
    pub(super) buckets: usize,
}

impl HashIndex {
    /// Parses and checks the index of `data`, whose restart count (with the flag) is at
    /// `count_pos` and counts `runs` restart points. Returns it and where the restart
    /// array ends.
    pub fn parse(data: &[u8], count_pos: usize, runs: usize) -> Result<HashIndex, BlockError> {
        if count_pos < 2 {
            return fail(0, "block shorter than its hash index");
        }
        let m_pos = count_pos - 2;
        let m = usize::from(u16::from_le_bytes([data[m_pos], data[m_pos + 1]]));
        if m == 0 || 2 * m > m_pos {
            return fail(m_pos, "hash index larger than the block");
        }
        if runs == 0 || runs > MAX_RUNS {
            return fail(count_pos, "hash index over too many restart points");
        }
        let offset = m_pos - 2 * m;
        let buckets = || data[offset..m_pos].chunks_exact(2);
        if let Some(i) = buckets().position(|b| usize::from(b[0]) >= runs && b[0] != EMPTY) {
            return fail(offset + 2 * i, "hash bucket names no restart point");
        }
        // Lookups stop at a free bucket: there must be one. Free buckets carry tag 0,
        // so no byte of the index goes unchecked.
        if !buckets().any(|b| b[0] == EMPTY) {
            return fail(offset, "hash index without a free bucket");
        }
        if let Some(i) = buckets().position(|b| b[0] == EMPTY && b[1] != 0) {
            return fail(offset + 2 * i + 1, "free hash bucket with a tag");
        }
        Ok(HashIndex { offset, buckets: m })
    }

    /// True when the block has an index.
    pub fn is_present(&self) -> bool {
        self.buckets > 0
    }

    /// The offset in the block of `hash`'s home bucket (with an index).
    pub fn home(&self, hash: KeyHash) -> usize {
        self.offset + 2 * hash.bucket(self.buckets)
    }

    /// The runs the index names for keys with `hash`'s tag along the probe sequence
    /// from its home bucket to the first free one: the run of the key's first version
    /// is among them if the block holds the key. Nothing without an index.
    pub fn candidates<'a>(
        &self,
        data: &'a [u8],
        hash: KeyHash,
    ) -> impl Iterator<Item = usize> + 'a {
        let (offset, m) = (self.offset, self.buckets);
        let home = if m == 0 { 0 } else { hash.bucket(m) };
        let tag = hash.tag();
        // `parse` checked that a free bucket exists, so the walk ends within m.
        (0..m)
            .map(move |i| {
                let at = offset + 2 * ((home + i) % m);
                (data[at], data[at + 1])
            })
            .take_while(|&(run, _)| run != EMPTY)
            .filter(move |&(_, t)| t == tag)
            .map(|(run, _)| usize::from(run))
    }
}
