//! The memtable: an ordered, concurrent in-memory map of versions.
//!
//! Writers insert under the engine's single write leader; readers never block, since the
//! map is a lock-free skiplist kept in a few large chunks of memory (`skiplist.rs`, which
//! says why). A memtable only grows: it is frozen when it reaches
//! `memtable_max_size` and flushed to an SSTable by a background thread, after which it
//! is dropped. It remembers the first WAL segment that holds its writes, so the WAL can
//! be trimmed once it is flushed.
//!
//! A blocked bloom filter over the memtable's user keys, sized when the memtable is
//! made, lets a point read of a key the memtable does not hold (the common case once
//! most data is in tables) skip the skiplist search, which costs a cache miss or two
//! per level.

mod skiplist;

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use skiplist::{SearchKey, SkipList};

use super::bloom::{ConcurrentBloom, KeyHash};
use super::error::{Error, Result};
use super::iter::InternalIterator;
use super::types::{SeqNo, ValueKind, MAX_SEQNO};

/// Bytes of bookkeeping charged per entry on top of key and value (the skiplist node's
/// header and links, and padding). An estimate, used to decide when to flush and to size
/// the filter.
const ENTRY_OVERHEAD: usize = 64;

/// An ordered in-memory table of versions.
#[derive(Debug)]
pub struct Memtable {
    map: SkipList,
    approximate_size: AtomicUsize,
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
            map: SkipList::new(),
            approximate_size: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            first_wal_segment,
            filter: ConcurrentBloom::new(max_size / ENTRY_OVERHEAD, bloom_bits_per_key),
        }
    }

    /// The first WAL segment holding this memtable's writes.
    pub fn first_wal_segment(&self) -> u64 {
        self.first_wal_segment
    }

    /// Inserts one version. Fails only if the memtable has grown past any sensible size
    /// (tens of GiB), far beyond `memtable_max_size`.
    pub fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) -> Result<()> {
        let charge = user_key.len() + value.len() + ENTRY_OVERHEAD;
        // Before the version is in the map, and so before its sequence number is
        // published: a reader that can see the version also sees the filter bits.
        self.filter.add(KeyHash::of(user_key));
        self.map.insert(user_key, seq, kind, value).map_err(|_| {
            Error::Poisoned(format!(
                "memtable full: {} bytes in {} versions",
                self.map.allocated_bytes(),
                self.map.len()
            ))
        })?;
        self.approximate_size.fetch_add(charge, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
        Ok(())
    }

    /// The newest version of `user_key` with sequence `<= seq`.
    pub fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        self.get_with_hash(user_key, KeyHash::of(user_key), seq)
    }

    /// Starts loading what [`get_with_hash`](Memtable::get_with_hash) reads first for
    /// `hash` (its filter block) into the CPU caches; a batched read calls it for all
    /// its keys before looking any up.
    pub fn prefetch(&self, hash: KeyHash) {
        self.filter.prefetch(hash);
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
        let node = self.map.seek(&SearchKey::new(user_key, seq), true);
        if node == 0 || !self.map.key_eq(node, user_key) {
            return None;
        }
        let info = self.map.info(node);
        let mut value = Vec::new();
        self.map.copy_value(node, &mut value);
        Some((info.seq, info.kind, value))
    }

    /// Estimated memory use in bytes.
    pub fn approximate_size(&self) -> usize {
        self.approximate_size.load(Ordering::Relaxed)
    }

    /// Number of versions held (puts and tombstones).
    pub fn len(&self) -> u64 {
        self.map.len()
    }

    /// The largest sequence number inserted (0 when empty).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// A cursor over all versions, in internal-key order.
    pub fn iter(self: &Arc<Self>) -> MemtableIterator {
        self.iter_until(None)
    }

    /// A cursor over the versions whose user key is below `upper` (all of them when
    /// `None`), in internal-key order. The cursor ends at the first version at or past
    /// `upper`, so a bounded scan never copies versions it would throw away.
    pub fn iter_until(self: &Arc<Self>, upper: Option<&[u8]>) -> MemtableIterator {
        MemtableIterator {
            mem: Arc::clone(self),
            upper: upper.map(<[u8]>::to_vec),
            bytes: Vec::new(),
            slots: Vec::with_capacity(FIRST_CHUNK),
            pos: 0,
            chunk: FIRST_CHUNK,
            exhausted: true,
        }
    }
}

/// How many versions a [`MemtableIterator`] copies out of the skiplist on its first
/// fill after a seek: short scans need few, so the first copy is small.
const FIRST_CHUNK: usize = 16;

/// The most versions one refill copies; each refill doubles the previous one up to this.
const MAX_CHUNK: usize = 256;

/// The most bytes a fill reserves ahead for the versions it is about to copy.
const MAX_RESERVE: usize = 64 * 1024;

/// Where one copied version lies in [`MemtableIterator::bytes`].
#[derive(Debug, Clone, Copy)]
struct Slot {
    key_start: usize,
    key_end: usize,
    value_end: usize,
    seq: SeqNo,
    kind: ValueKind,
}

/// A cursor over a memtable that owns its memtable (so it can outlive the caller's
/// borrow): it copies chunks of versions out of the skiplist into one reused buffer and
/// re-seeks past the last one when the chunk is used up.
pub struct MemtableIterator {
    mem: Arc<Memtable>,
    /// Exclusive upper bound on user keys; the cursor ends there.
    upper: Option<Vec<u8>>,
    /// Keys and values of the copied versions, back to back.
    bytes: Vec<u8>,
    /// The copied versions, in order; `slots[pos]` is the current one.
    slots: Vec<Slot>,
    pos: usize,
    /// Versions the next refill may copy.
    chunk: usize,
    /// True when the skiplist has nothing (within `upper`) after the copied versions.
    exhausted: bool,
}

impl MemtableIterator {
    /// Copies up to `chunk` versions starting at `from` (a user key and sequence).
    fn fill(&mut self, from: Bound<(&[u8], SeqNo)>) {
        self.bytes.clear();
        self.slots.clear();
        self.pos = 0;
        self.exhausted = true;
        let map = &self.mem.map;
        let mut node = match from {
            Bound::Unbounded => map.first(),
            Bound::Included((key, seq)) => map.seek(&SearchKey::new(key, seq), true),
            Bound::Excluded((key, seq)) => map.seek(&SearchKey::new(key, seq), false),
        };
        while node != 0 {
            let info = map.info(node);
            if self.slots.is_empty() {
                // Room for the whole chunk if its versions are about this size, so the
                // buffer does not grow step by step.
                let guess = (info.key_len + info.value_len).saturating_mul(self.chunk);
                self.bytes.reserve(guess.min(MAX_RESERVE));
            }
            let key_start = self.bytes.len();
            map.copy_key(node, &mut self.bytes);
            let key_end = self.bytes.len();
            let past_upper = self
                .upper
                .as_deref()
                .is_some_and(|upper| &self.bytes[key_start..key_end] >= upper);
            if past_upper || self.slots.len() == self.chunk {
                self.exhausted = past_upper;
                self.bytes.truncate(key_start);
                break;
            }
            map.copy_value(node, &mut self.bytes);
            self.slots.push(Slot {
                key_start,
                key_end,
                value_end: self.bytes.len(),
                seq: info.seq,
                kind: info.kind,
            });
            node = map.next(node);
        }
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
    }

    fn current(&self) -> &Slot {
        self.slots
            .get(self.pos)
            .expect("MemtableIterator read while not valid")
    }
}

impl InternalIterator for MemtableIterator {
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()> {
        self.chunk = FIRST_CHUNK;
        self.fill(Bound::Included((user_key, seq.min(MAX_SEQNO))));
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.chunk = FIRST_CHUNK;
        self.fill(Bound::Unbounded);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if self.pos >= self.slots.len() {
            return Ok(());
        }
        self.pos += 1;
        if self.pos == self.slots.len() && !self.exhausted {
            let last = self.slots[self.pos - 1];
            let key = self.bytes[last.key_start..last.key_end].to_vec();
            self.fill(Bound::Excluded((&key, last.seq)));
        }
        Ok(())
    }

    #[inline]
    fn valid(&self) -> bool {
        self.pos < self.slots.len()
    }

    #[inline]
    fn user_key(&self) -> &[u8] {
        let s = self.current();
        &self.bytes[s.key_start..s.key_end]
    }

    #[inline]
    fn seq(&self) -> SeqNo {
        self.current().seq
    }

    #[inline]
    fn kind(&self) -> ValueKind {
        self.current().kind
    }

    #[inline]
    fn value(&self) -> &[u8] {
        let s = self.current();
        &self.bytes[s.key_end..s.value_end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_sees_newest_version_at_or_below_seq() {
        let m = Memtable::new(1, 1 << 20, 10);
        m.insert(b"a", 1, ValueKind::Put, b"v1").expect("insert");
        m.insert(b"a", 3, ValueKind::Put, b"v3").expect("insert");
        m.insert(b"a", 5, ValueKind::Delete, b"").expect("insert");
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"a", 2), Some((1, ValueKind::Put, b"v1".to_vec())));
        assert_eq!(m.get(b"a", 4), Some((3, ValueKind::Put, b"v3".to_vec())));
        assert_eq!(m.get(b"a", 9).map(|v| v.1), Some(ValueKind::Delete));
        assert_eq!(m.get(b"b", 9), None);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn get_answers_the_same_with_and_without_a_filter() {
        // A 4 KiB memtable sized for 64 entries, overfilled: its filter saturates but
        // must never hide a key.
        for bits_per_key in [0, 10] {
            let m = Memtable::new(1, 4096, bits_per_key);
            for i in 0..2000u64 {
                m.insert(format!("k{i}").as_bytes(), i + 1, ValueKind::Put, b"v")
                    .expect("insert");
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
        let total = FIRST_CHUNK + 2 * FIRST_CHUNK + 4 * FIRST_CHUNK + MAX_CHUNK * 3 + 5;
        for i in 0..total as u64 {
            m.insert(format!("k{i:05}").as_bytes(), i + 1, ValueKind::Put, b"x")
                .expect("insert");
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
        assert_eq!(n, total);
        it.seek(b"k00100", MAX_SEQNO).expect("seek");
        assert_eq!(it.user_key(), b"k00100");
    }

    #[test]
    fn bounded_iterator_stops_before_upper_across_refills() {
        let m = Arc::new(Memtable::new(1, 1 << 20, 10));
        for i in 0..1000u64 {
            m.insert(format!("k{i:05}").as_bytes(), i + 1, ValueKind::Put, b"x")
                .expect("insert");
            m.insert(
                format!("k{i:05}").as_bytes(),
                i + 5000,
                ValueKind::Delete,
                b"",
            )
            .expect("insert");
        }
        let mut it = m.iter_until(Some(b"k00700"));
        it.seek(b"k00100", MAX_SEQNO).expect("seek");
        let mut got = Vec::new();
        while it.valid() {
            got.push((
                it.user_key().to_vec(),
                it.seq(),
                it.kind(),
                it.value().to_vec(),
            ));
            it.next().expect("next");
        }
        assert_eq!(got.len(), 1200);
        assert_eq!(
            got[0],
            (b"k00100".to_vec(), 5100, ValueKind::Delete, Vec::new())
        );
        assert_eq!(
            got[1],
            (b"k00100".to_vec(), 101, ValueKind::Put, b"x".to_vec())
        );
        assert_eq!(got[1199].0, b"k00699".to_vec());
        it.next().expect("next past the end is a no-op");
        assert!(!it.valid());
        // A seek at or past the bound finds nothing.
        it.seek(b"k00700", MAX_SEQNO).expect("seek");
        assert!(!it.valid());
        // Seeking again restarts with a small chunk and still sees everything.
        it.seek(b"k00698", 0).expect("seek");
        assert_eq!(it.user_key(), b"k00699");
    }
}
