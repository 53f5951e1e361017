//! Searching a table's block index without touching every probed key.
//!
//! Every seek into a table starts with a binary search over its index (one last key per
//! data block, about 5,000 blocks for a 20 MB table). Comparing the probed keys one by
//! one means a pointer chase and a likely cache miss per probe. [`IndexHeads`] keeps,
//! next to the index, one `u64` per entry: the 8 bytes that follow the prefix shared by
//! every index key. The search runs over that dense array and compares whole keys only
//! among entries whose 8 bytes tie with the target's.

use std::cmp::Ordering;

use super::reader::IndexEntry;
use crate::engine::types::{compare_internal, SeqNo};

/// The index's keys reduced to what usually tells them apart.
#[derive(Debug, Default)]
pub(crate) struct IndexHeads {
    /// Bytes every index key starts with (the common prefix of the first and last).
    prefix: Vec<u8>,
    /// Per index entry, the 8 bytes after `prefix`, zero-padded, as a big-endian number.
    heads: Vec<u64>,
}

/// The first 8 bytes of `bytes`, zero-padded, as a big-endian number. For two strings
/// that share everything before them, `head(a) < head(b)` implies `a < b` and
/// `head(a) > head(b)` implies `a > b`; equal heads decide nothing.
fn head(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(b)
}

impl IndexHeads {
    /// Builds the heads of `index`, whose keys are in strictly increasing order.
    pub fn new(index: &[IndexEntry]) -> IndexHeads {
        let (Some(first), Some(last)) = (index.first(), index.last()) else {
            return IndexHeads::default();
        };
        let shared = first
            .last_key
            .iter()
            .zip(&last.last_key)
            .take_while(|(a, b)| a == b)
            .count();
        // Keys between the first and the last share their common prefix.
        let heads = index
            .iter()
            .map(|e| head(e.last_key.get(shared..).unwrap_or_default()))
            .collect();
        IndexHeads {
            prefix: first.last_key[..shared].to_vec(),
            heads,
        }
    }

    /// The first entry of `index` (the index these heads were built from) whose key is
    /// not smaller than `(user_key, seq)` in internal order; `index.len()` if none.
    pub fn partition_point(&self, index: &[IndexEntry], user_key: &[u8], seq: SeqNo) -> usize {
        let less = |e: &IndexEntry| {
            compare_internal(&e.last_key, e.last_seq, user_key, seq) == Ordering::Less
        };
        let rest = match user_key.strip_prefix(self.prefix.as_slice()) {
            Some(rest) if self.heads.len() == index.len() => rest,
            // A key outside the shared prefix sorts before or after every entry; the
            // plain search settles it in a few comparisons.
            _ => return index.partition_point(less),
        };
        let target = head(rest);
        let lo = self.heads.partition_point(|&h| h < target);
        let tied = self.heads[lo..].partition_point(|&h| h == target);
        lo + index[lo..lo + tied].partition_point(less)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sstable::footer::BlockHandle;

    fn entry(key: &[u8], seq: SeqNo) -> IndexEntry {
        IndexEntry {
            last_key: key.to_vec(),
            last_seq: seq,
            handle: BlockHandle { offset: 0, size: 0 },
        }
    }

    #[test]
    fn agrees_with_a_plain_binary_search() {
        let keys: Vec<&[u8]> = vec![
            b"user:0001",
            b"user:0001",
            b"user:0001\x00",
            b"user:00010000000",
            b"user:000100000000",
            b"user:000100000000\x01",
            b"user:0002",
            b"user:0002xyzzzzzzzzzzz",
            b"user:0003",
            b"user:01",
        ];
        let seqs = [9, 3, 5, 5, 5, 5, 1, 1, 7, 2];
        let index: Vec<IndexEntry> = keys.iter().zip(seqs).map(|(k, s)| entry(k, s)).collect();
        let heads = IndexHeads::new(&index);
        assert_eq!(heads.prefix, b"user:0");
        let targets: Vec<&[u8]> = vec![
            b"",
            b"a",
            b"user:",
            b"user:0",
            b"user:00",
            b"user:0001",
            b"user:0001\x00",
            b"user:00010000000",
            b"user:000100000000",
            b"user:000100000000\x00",
            b"user:000100000000\x02",
            b"user:0002",
            b"user:0002xyzzzzzzzzzzz",
            b"user:0002xz",
            b"user:0003",
            b"user:01",
            b"user:02",
            b"v",
        ];
        for t in targets {
            for seq in [0, 1, 3, 4, 5, 6, 9, 10, u64::MAX >> 8] {
                let plain = index.partition_point(|e| {
                    compare_internal(&e.last_key, e.last_seq, t, seq) == Ordering::Less
                });
                assert_eq!(
                    heads.partition_point(&index, t, seq),
                    plain,
                    "{t:?} @ {seq}"
                );
            }
        }
    }

    #[test]
    fn empty_and_single_entry_indexes() {
        let heads = IndexHeads::new(&[]);
        assert_eq!(heads.partition_point(&[], b"k", 1), 0);
        let index = vec![entry(b"k", 5)];
        let heads = IndexHeads::new(&index);
        assert_eq!(heads.partition_point(&index, b"j", 1), 0);
        assert_eq!(heads.partition_point(&index, b"k", 9), 0);
        assert_eq!(heads.partition_point(&index, b"k", 4), 1);
        assert_eq!(heads.partition_point(&index, b"l", 9), 1);
    }
}
