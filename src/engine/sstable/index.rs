//! The in-memory index of an open table: for each data block, the block's last internal
//! key and its handle, in file order (so in key order).
//!
//! The keys are stored back to back in one buffer, each as `seq u64 | user key`, with a
//! separate array of their start offsets. A point lookup binary-searches this index in
//! every table its filter lets through; with one buffer, a probe reads an offset (the
//! offsets of the first probes stay in cache) and then one spot of the buffer, instead of
//! an index entry and then a separate heap allocation per key.

use std::cmp::Ordering;

use super::footer::BlockHandle;
use crate::engine::types::{compare_internal, SeqNo};

/// Bytes of the sequence number stored before each key.
const SEQ_LEN: usize = 8;

/// The last internal key and the handle of every data block of a table.
#[derive(Debug, Default)]
pub(crate) struct BlockIndex {
    /// For each block, `seq u64 (little-endian) | user key`, back to back.
    keys: Vec<u8>,
    /// Where each block's entry in `keys` starts, plus the end of the last one.
    starts: Vec<usize>,
    handles: Vec<BlockHandle>,
    /// Length of the prefix every key shares, once [`seal`](BlockIndex::seal)ed.
    shared: usize,
    /// Once sealed, for each key the `HEAD_LEN` bytes after the shared prefix
    /// (zero-padded) as a big-endian number: ordered like the keys (a smaller number
    /// means a smaller key; equal numbers say nothing), and dense, so a lookup narrows
    /// down most of the way in this one array and compares whole keys only among equal
    /// numbers. Sixteen bytes, because a table often holds several families of keys
    /// (`users:…` beside internal records): their shared prefix is then empty, and
    /// eight bytes would not get past a family's own prefix (`users:00`).
    heads: Vec<u128>,
}

/// Bytes of a key that a head holds.
const HEAD_LEN: usize = 16;

/// The `HEAD_LEN` bytes of `key` after `shared`, zero-padded, as a big-endian number.
fn head(key: &[u8], shared: usize) -> u128 {
    let mut b = [0u8; HEAD_LEN];
    let rest = key.get(shared..).unwrap_or_default();
    let n = rest.len().min(HEAD_LEN);
    b[..n].copy_from_slice(&rest[..n]);
    u128::from_be_bytes(b)
}

impl BlockIndex {
    /// Appends the next data block. The caller keeps the keys strictly increasing.
    pub fn push(&mut self, last_key: &[u8], last_seq: SeqNo, handle: BlockHandle) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.keys.extend_from_slice(&last_seq.to_le_bytes());
        self.keys.extend_from_slice(last_key);
        self.starts.push(self.keys.len());
        self.handles.push(handle);
        self.heads.clear();
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Handle of data block `i`, if there is one.
    pub fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.handles.get(i).copied()
    }

    /// Every data block's handle, in file order.
    pub fn handles(&self) -> &[BlockHandle] {
        &self.handles
    }

    /// The last internal key of data block `i`, which must exist.
    pub fn last_key(&self, i: usize) -> (&[u8], SeqNo) {
        let entry = &self.keys[self.starts[i]..self.starts[i + 1]];
        let (seq, key) = entry.split_at(SEQ_LEN);
        let mut le = [0u8; SEQ_LEN];
        le.copy_from_slice(seq);
        (key, SeqNo::from_le_bytes(le))
    }

    /// The last internal key of the last data block, if there is one.
    pub fn last(&self) -> Option<(&[u8], SeqNo)> {
        self.len().checked_sub(1).map(|i| self.last_key(i))
    }

    /// Computes the shared prefix and the dense array of heads that speed up
    /// [`find`](BlockIndex::find); call once every block is pushed (a later push
    /// unseals the index, which `find` then searches without them).
    pub fn seal(&mut self) {
        let n = self.len();
        let Some((first, _)) = (n > 0).then(|| self.last_key(0)) else {
            return;
        };
        let mut shared = first.len();
        for i in 1..n {
            let (k, _) = self.last_key(i);
            shared = first[..shared]
                .iter()
                .zip(k)
                .take_while(|(a, b)| a == b)
                .count();
        }
        let heads = (0..n).map(|i| head(self.last_key(i).0, shared)).collect();
        self.shared = shared;
        self.heads = heads;
    }

    /// Index of the only data block that can hold the first version `>= (user_key, seq)`:
    /// the first block whose last key is not smaller. `len()` when there is none.
    pub fn find(&self, user_key: &[u8], seq: SeqNo) -> usize {
        self.search(0, false, user_key, seq)
    }

    /// [`find`](BlockIndex::find) for a target known to be in block `from` or later
    /// (it is not smaller than a target that `find` put in block `from`): gallops
    /// forward from there, so that looking up keys in ascending order touches the
    /// index near where the previous lookup ended instead of searching it whole.
    pub fn find_from(&self, from: usize, user_key: &[u8], seq: SeqNo) -> usize {
        self.search(from.min(self.len()), true, user_key, seq)
    }

    fn search(&self, from: usize, gallop: bool, user_key: &[u8], seq: SeqNo) -> usize {
        let (mut lo, mut hi) = (from, self.len());
        if self.heads.len() == hi && hi > from {
            let (first, _) = self.last_key(0);
            if user_key.get(..self.shared) == Some(&first[..self.shared]) {
                // Keys with a smaller head are smaller than the target, keys with a
                // larger head larger: only those with an equal head need comparing.
                let h = head(user_key, self.shared);
                let rest = &self.heads[from..];
                lo = from
                    + if gallop {
                        gallop_partition(rest, |x| x < h)
                    } else {
                        rest.partition_point(|&x| x < h)
                    };
                // Equal heads are few as a rule.
                hi = lo + gallop_partition(&self.heads[lo..], |x| x == h);
            }
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (key, last_seq) = self.last_key(mid);
            if compare_internal(key, last_seq, user_key, seq) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// `s.partition_point(pred)` found by exponential search from the front: it reads
/// about `2 log2(p)` elements for a result `p`, all near the front when `p` is small.
fn gallop_partition(s: &[u128], pred: impl Fn(u128) -> bool) -> usize {
    let mut bound = 1;
    while bound < s.len() && pred(s[bound]) {
        bound *= 2;
    }
    // `pred` holds at `bound / 2` (unless that is 0) and not at `bound` (or past the end).
    let start = bound / 2;
    let end = (bound + 1).min(s.len());
    start + s[start..end].partition_point(|&x| pred(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(i: u64) -> BlockHandle {
        BlockHandle {
            offset: i * 100,
            size: 95,
        }
    }

    #[test]
    fn keys_and_handles_round_trip_and_find_matches_a_linear_scan() {
        let blocks: Vec<(Vec<u8>, SeqNo)> = vec![
            (b"b".to_vec(), 7),
            (b"b".to_vec(), 3),
            (b"dd".to_vec(), u64::MAX >> 8),
            (b"dd".to_vec(), 0),
            (b"f".to_vec(), 5),
        ];
        let mut index = BlockIndex::default();
        assert_eq!(index.find(b"a", 1), 0);
        assert_eq!(index.last(), None);
        for (i, (k, s)) in blocks.iter().enumerate() {
            index.push(k, *s, handle(i as u64));
        }
        assert_eq!(index.len(), 5);
        for (i, (k, s)) in blocks.iter().enumerate() {
            assert_eq!(index.last_key(i), (k.as_slice(), *s));
            assert_eq!(index.handle(i), Some(handle(i as u64)));
        }
        assert_eq!(index.handle(5), None);
        assert_eq!(index.last(), Some((&b"f"[..], 5)));
        for key in [&b"a"[..], b"b", b"c", b"dd", b"e", b"f", b"g"] {
            for seq in [0, 3, 4, 5, 7, 8, u64::MAX >> 8] {
                let linear = blocks
                    .iter()
                    .position(|(k, s)| compare_internal(k, *s, key, seq) != Ordering::Less)
                    .unwrap_or(blocks.len());
                assert_eq!(index.find(key, seq), linear, "{key:?} {seq}");
            }
        }
    }

    proptest::proptest! {
        /// Sealed or not, `find` agrees with a linear scan, whatever prefixes the
        /// keys share (including keys that are prefixes of others, targets outside
        /// the shared prefix, and keys equal over a whole head).
        #[test]
        fn find_agrees_with_a_linear_scan(
            keys in proptest::collection::btree_set(("(users:0000|users:01|u||a long prefix of twenty)", proptest::collection::vec(0u8..4, 0..10)), 1..60),
            targets in proptest::collection::vec(("(users:0000|users:01|u|v|a long prefix of twenty|)", proptest::collection::vec(0u8..4, 0..10), 0u64..4), 1..40),
        ) {
            let mut blocks: Vec<(Vec<u8>, SeqNo)> = keys
                .into_iter()
                .map(|(p, rest)| ([p.as_bytes(), &rest].concat(), 2))
                .collect();
            blocks.sort();
            blocks.dedup();
            let mut index = BlockIndex::default();
            for (i, (k, s)) in blocks.iter().enumerate() {
                index.push(k, *s, handle(i as u64));
            }
            let unsealed: Vec<usize> = targets
                .iter()
                .map(|(p, rest, seq)| index.find(&[p.as_bytes(), rest].concat(), *seq))
                .collect();
            index.seal();
            for ((p, rest, seq), before) in targets.iter().zip(unsealed) {
                let key = [p.as_bytes(), rest].concat();
                let linear = blocks
                    .iter()
                    .position(|(k, s)| compare_internal(k, *s, &key, *seq) != Ordering::Less)
                    .unwrap_or(blocks.len());
                proptest::prop_assert_eq!(before, linear);
                proptest::prop_assert_eq!(index.find(&key, *seq), linear, "{:?} {}", key, seq);
                for from in [0, linear / 3, linear / 2, linear.saturating_sub(1), linear] {
                    proptest::prop_assert_eq!(index.find_from(from, &key, *seq), linear);
                }
            }
        }
    }
}
