//! The memtable: an ordered, concurrent in-memory map of versions.
//!
//! Writers insert under the engine's single write leader; readers never block, since the
//! map is a lock-free skiplist. A memtable only grows: it is frozen when it reaches
//! `memtable_max_size` and flushed to an SSTable by a background thread, after which it
//! is dropped. It remembers the first WAL segment that holds its writes, so the WAL can
//! be trimmed once it is flushed.
//!
//! A blocked bloom filter over the memtable's user keys, sized when the memtable is
//! made, lets a point read of a key the memtable does not hold (the common case once
//! most data is in tables) skip the skiplist search, which costs a cache miss or two
//! per level.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use super::bloom::{ConcurrentBloom, KeyHash};
use super::error::Result;
use super::iter::InternalIterator;
use super::types::{InternalKey, SeqNo, ValueKind, MAX_SEQNO};

/// Bytes of bookkeeping charged per entry on top of key and value (skiplist node, key
/// and value headers). An estimate, used only to decide when to flush.
const ENTRY_OVERHEAD: usize = 64;

/// An ordered in-memory table of versions.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<InternalKey, Vec<u8>>,
    approximate_size: AtomicUsize,
    entries: AtomicU64,
    deletions: AtomicU64,
    max_seq: AtomicU64,
    first_wal_segment: u64,
    /// Every user key inserted, for [`get_with_hash`](Memtable::get_with_hash).
    filter: ConcurrentBloom,
}

impl Memtable {
    /// An empty memtable whose writes start in WAL segment `first_wal_segment`, with a
    /// key filter of `bloom_bits_per_key` bits for each of the `max_size /
    /// ENTRY_OVERHEAD` entries a memtable of `max_size` bytes can hold at most (about
    /// 2 % of `max_size`; 0 bits per key disables the filter).
    pub fn new(first_wal_segment: u64, max_size: usize, bloom_bits_per_key: u32) -> Self {
        Memtable {
            map: SkipMap::new(),
            approximate_size: AtomicUsize::new(0),
            entries: AtomicU64::new(0),
            deletions: AtomicU64::new(0),
            max_seq: AtomicU64::new(0),
            first_wal_segment,
            filter: ConcurrentBloom::new(max_size / ENTRY_OVERHEAD, bloom_bits_per_key),
        }
    }

    /// The first WAL segment holding this memtable's writes.
    pub fn first_wal_segment(&self) -> u64 {
        self.first_wal_segment
    }

    /// Inserts one version.
    pub fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) {
        let charge = user_key.len() + value.len() + ENTRY_OVERHEAD;
        // Before the version is in the map, and so before its sequence number is
        // published: a reader that can see the version also sees the filter bits.
        self.filter.add(KeyHash::of(user_key));
        self.map
            .insert(InternalKey::new(user_key, seq, kind), value.to_vec());
        self.approximate_size.fetch_add(charge, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
        if kind == ValueKind::Delete {
            self.deletions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The newest version of `user_key` with sequence `<= seq`.
    pub fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        self.get_with_hash(user_key, KeyHash::of(user_key), seq)
    }

    /// [`get`](Memtable::get) for a caller that already hashed the key (a read hashes
    /// it once for every memtable and table). `hash` must be `KeyHash::of(user_key)`.
    /// Searches the skiplist only if the filter admits the key.
    pub fn get_with_hash(
        &self,
        user_key: &[u8],
        hash: KeyHash,
        seq: SeqNo,
    ) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        if !self.filter.may_contain(hash) {
            return None;
        }
        let seek = InternalKey::seek_key(user_key, seq);
        let entry = self.map.lower_bound(Bound::Included(&seek))?;
        let key = entry.key();
        (key.user_key == user_key).then(|| (key.seq, key.kind, entry.value().clone()))
    }

    /// Estimated memory use in bytes.
    pub fn approximate_size(&self) -> usize {
        self.approximate_size.load(Ordering::Relaxed)
    }

    /// Number of versions held (puts and tombstones).
    pub fn len(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Number of tombstones held.
    pub fn deletions(&self) -> u64 {
        self.deletions.load(Ordering::Relaxed)
    }

    /// The largest sequence number inserted (0 when empty).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True if `[start, end)` may hold any of this memtable's keys.
    pub fn overlaps(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        let (Some(first), Some(last)) = (self.map.front(), self.map.back()) else {
            return false;
        };
        last.key().user_key.as_slice() >= start
            && end.is_none_or(|end| first.key().user_key.as_slice() < end)
    }

    /// A cursor over all versions, in internal-key order.
    pub fn iter(self: &Arc<Self>) -> MemtableIterator {
        MemtableIterator {
            mem: Arc::clone(self),
            buf: VecDeque::new(),
            exhausted: true,
        }
    }
}

/// How many versions a [`MemtableIterator`] copies out of the skiplist at a time.
const CHUNK: usize = 64;

/// A cursor over a memtable that owns its memtable (so it can outlive the caller's
/// borrow): it copies small chunks of versions out of the skiplist and re-seeks past the
/// last one when the chunk is used up.
pub struct MemtableIterator {
    mem: Arc<Memtable>,
    /// Versions copied but not yet consumed; the front is the current one.
    buf: VecDeque<(InternalKey, Vec<u8>)>,
    /// True when the skiplist has nothing after the buffered versions.
    exhausted: bool,
}

impl MemtableIterator {
    fn fill(&mut self, from: Bound<&InternalKey>) {
        self.buf.clear();
        let mut taken = 0;
        for entry in self.mem.map.range((from, Bound::Unbounded)) {
            self.buf
                .push_back((entry.key().clone(), entry.value().clone()));
            taken += 1;
            if taken == CHUNK {
                break;
            }
        }
        self.exhausted = taken < CHUNK;
    }

    fn current(&self) -> &(InternalKey, Vec<u8>) {
        self.buf
            .front()
            .expect("MemtableIterator read while not valid")
    }
}

impl InternalIterator for MemtableIterator {
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()> {
        let seek = InternalKey::seek_key(user_key, seq.min(MAX_SEQNO));
        self.fill(Bound::Included(&seek));
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.fill(Bound::Unbounded);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if let Some((last, _)) = self.buf.pop_front() {
            if self.buf.is_empty() && !self.exhausted {
                self.fill(Bound::Excluded(&last));
            }
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        !self.buf.is_empty()
    }

    fn user_key(&self) -> &[u8] {
        &self.current().0.user_key
    }

    fn seq(&self) -> SeqNo {
        self.current().0.seq
    }

    fn kind(&self) -> ValueKind {
        self.current().0.kind
    }

    fn value(&self) -> &[u8] {
        &self.current().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_sees_newest_version_at_or_below_seq() {
        let m = Memtable::new(1, 1 << 20, 10);
        m.insert(b"a", 1, ValueKind::Put, b"v1");
        m.insert(b"a", 3, ValueKind::Put, b"v3");
        m.insert(b"a", 5, ValueKind::Delete, b"");
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"a", 2), Some((1, ValueKind::Put, b"v1".to_vec())));
        assert_eq!(m.get(b"a", 4), Some((3, ValueKind::Put, b"v3".to_vec())));
        assert_eq!(m.get(b"a", 9).map(|v| v.1), Some(ValueKind::Delete));
        assert_eq!(m.get(b"b", 9), None);
        assert_eq!(m.len(), 3);
        assert_eq!(m.deletions(), 1);
    }

    #[test]
    fn get_answers_the_same_with_and_without_a_filter() {
        // A 4 KiB memtable sized for 64 entries, overfilled: its filter saturates but
        // must never hide a key.
        for bits_per_key in [0, 10] {
            let m = Memtable::new(1, 4096, bits_per_key);
            for i in 0..2000u64 {
                m.insert(format!("k{i}").as_bytes(), i + 1, ValueKind::Put, b"v");
            }
            for i in 0..2000u64 {
                let got = m.get(format!("k{i}").as_bytes(), MAX_SEQNO);
                assert_eq!(got, Some((i + 1, ValueKind::Put, b"v".to_vec())));
                assert_eq!(m.get(format!("x{i}").as_bytes(), MAX_SEQNO), None);
            }
        }
    }

    #[test]
    fn iterator_crosses_chunk_boundaries_in_order() {
        let m = Arc::new(Memtable::new(1, 1 << 20, 10));
        for i in 0..(CHUNK as u64 * 3 + 5) {
            m.insert(format!("k{i:05}").as_bytes(), i + 1, ValueKind::Put, b"x");
        }
        let mut it = m.iter();
        it.seek_to_first().expect("seek");
        let mut n = 0;
        let mut prev: Option<Vec<u8>> = None;
        while it.valid() {
            let k = it.user_key().to_vec();
            assert!(prev.as_ref().is_none_or(|p| p < &k));
            prev = Some(k);
            n += 1;
            it.next().expect("next");
        }
        assert_eq!(n, CHUNK * 3 + 5);
        it.seek(b"k00100", MAX_SEQNO).expect("seek");
        assert_eq!(it.user_key(), b"k00100");
    }

    #[test]
    fn overlaps_uses_key_range() {
        let m = Memtable::new(1, 1 << 20, 10);
        assert!(!m.overlaps(b"a", None));
        m.insert(b"m", 1, ValueKind::Put, b"");
        assert!(m.overlaps(b"a", None));
        assert!(!m.overlaps(b"a", Some(b"m")));
        assert!(m.overlaps(b"m", Some(b"n")));
        assert!(!m.overlaps(b"n", None));
    }
}
