//! The read path: snapshots and the database iterator.
//!
//! A [`DbIterator`] walks a [`MergeIterator`] over the memtables and the tables of one
//! pinned [`Version`], and turns the stream of versions into the user's view: for each
//! key, only the newest version with a sequence number at or below the read's snapshot,
//! and nothing for a key whose newest version is a tombstone.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::super::error::{Error, Result};
use super::super::iter::InternalIterator;
use super::super::memtable::MemtableIterator;
use super::super::merge::MergeIterator;
use super::super::sstable::TableIterator;
use super::super::types::{compare_keys, SeqNo, ValueKind, MAX_SEQNO};
use super::{Inner, Version};

/// One source of a database iterator: a memtable or a table. An enum rather than a
/// boxed trait object, so the merge's key comparisons are direct (inlinable) calls.
enum Source {
    Mem(MemtableIterator),
    Table(TableIterator),
}

impl InternalIterator for Source {
    #[inline]
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()> {
        match self {
            Source::Mem(it) => it.seek(user_key, seq),
            Source::Table(it) => it.seek(user_key, seq),
        }
    }

    #[inline]
    fn seek_to_first(&mut self) -> Result<()> {
        match self {
            Source::Mem(it) => it.seek_to_first(),
            Source::Table(it) => it.seek_to_first(),
        }
    }

    #[inline]
    fn next(&mut self) -> Result<()> {
        match self {
            Source::Mem(it) => it.next(),
            Source::Table(it) => it.next(),
        }
    }

    #[inline]
    fn valid(&self) -> bool {
        match self {
            Source::Mem(it) => it.valid(),
            Source::Table(it) => it.valid(),
        }
    }

    #[inline]
    fn user_key(&self) -> &[u8] {
        match self {
            Source::Mem(it) => it.user_key(),
            Source::Table(it) => it.user_key(),
        }
    }

    #[inline]
    fn seq(&self) -> SeqNo {
        match self {
            Source::Mem(it) => it.seq(),
            Source::Table(it) => it.seq(),
        }
    }

    #[inline]
    fn kind(&self) -> ValueKind {
        match self {
            Source::Mem(it) => it.kind(),
            Source::Table(it) => it.kind(),
        }
    }

    #[inline]
    fn value(&self) -> &[u8] {
        match self {
            Source::Mem(it) => it.value(),
            Source::Table(it) => it.value(),
        }
    }
}

/// An iterator over `(key, value)` pairs in ascending key order.
///
/// Items are `Result`s: a damaged block ends the iteration with an error naming the
/// file, never with a wrong value.
pub struct DbIterator {
    merge: MergeIterator<Source>,
    seq: SeqNo,
    end: Bound<Vec<u8>>,
    /// The user key whose versions are being skipped (already emitted or deleted), when
    /// `skipping_set`; the buffer is reused from key to key.
    skipping: Vec<u8>,
    skipping_set: bool,
    /// The merge is still on the version last emitted: advance it before reading on.
    /// Advancing lazily means a caller that stops early never loads a block it does not
    /// need.
    advance: bool,
    finished: bool,
    /// Keeps the memtables and tables alive while the iterator reads them.
    _version: Arc<Version>,
}

impl DbIterator {
    #[inline]
    fn past_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Unbounded => false,
            Bound::Included(end) => compare_keys(key, end) == Ordering::Greater,
            Bound::Excluded(end) => compare_keys(key, end) != Ordering::Less,
        }
    }

    /// The next record with the sequence number that wrote its value, or `None` at
    /// the end (the [`Iterator`] items without the sequence numbers).
    pub fn next_versioned(&mut self) -> Option<Result<(String, SeqNo, Vec<u8>)>> {
        if self.finished {
            return None;
        }
        match self.step() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }

    fn step(&mut self) -> Result<Option<(String, SeqNo, Vec<u8>)>> {
        if self.advance {
            self.advance = false;
            self.merge.next()?;
        }
        loop {
            if !self.merge.valid() {
                return Ok(None);
            }
            let key = self.merge.user_key();
            if self.past_end(key) {
                return Ok(None);
            }
            if self.merge.seq() > self.seq || (self.skipping_set && self.skipping == key) {
                self.merge.next()?;
                continue;
            }
            self.skipping.clear();
            self.skipping.extend_from_slice(key);
            self.skipping_set = true;
            if self.merge.kind() == ValueKind::Delete {
                self.merge.next()?;
                continue;
            }
            let key = std::str::from_utf8(key).map_err(|e| {
                Error::InvalidKey(format!("stored key is not UTF-8 (damaged data?): {e}"))
            })?;
            let item = (
                key.to_owned(),
                self.merge.seq(),
                self.merge.value().to_vec(),
            );
            self.advance = true;
            return Ok(Some(item));
        }
    }
}

impl Iterator for DbIterator {
    type Item = Result<(String, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_versioned()
            .map(|item| item.map(|(key, _, value)| (key, value)))
    }
}

fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Builds an iterator over `range` at sequence number `seq`.
pub(super) fn iter_range<K: AsRef<[u8]>>(
    inner: &Inner,
    seq: SeqNo,
    range: impl RangeBounds<K>,
) -> Result<DbIterator> {
    let start = range.start_bound().map(|k| k.as_ref());
    let end = range.end_bound().map(|k| k.as_ref());
    iter_bounds(inner, seq, start, end)
}

/// Builds an iterator over the keys starting with `prefix` at sequence number `seq`.
pub(super) fn iter_prefix(inner: &Inner, seq: SeqNo, prefix: &[u8]) -> Result<DbIterator> {
    let end = prefix_successor(prefix);
    let end = match &end {
        Some(e) => Bound::Excluded(e.as_slice()),
        None => Bound::Unbounded,
    };
    iter_bounds(inner, seq, Bound::Included(prefix), end)
}

/// The smallest key greater than every key starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn iter_bounds(
    inner: &Inner,
    seq: SeqNo,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
) -> Result<DbIterator> {
    super::super::stats::ReadCounters::bump(&inner.counters.range_reads);
    let version = inner.current_version();
    let lo: &[u8] = match start {
        Bound::Included(k) | Bound::Excluded(k) => k,
        Bound::Unbounded => b"",
    };
    // Sources whose key range cannot meet the query are left out: they would cost a
    // block read on seek for nothing.
    let hi = match end {
        Bound::Excluded(k) => Some(k.to_vec()),
        Bound::Included(k) => Some([k, &[0u8][..]].concat()),
        Bound::Unbounded => None,
    };
    let mut sources = Vec::with_capacity(1 + version.immutables.len() + version.table_count());
    for mem in version.memtables_newest_first() {
        // No range check for memtables: finding a skiplist's last key costs as much as
        // the seek itself, and a seek reads no block. The iterator is bounded, so it
        // copies nothing past the end of the range.
        if !mem.is_empty() {
            sources.push(Source::Mem(mem.iter_until(hi.as_deref())));
        }
    }
    for (_, table) in version.tables() {
        if table.overlaps(lo, hi.as_deref()) {
            sources.push(Source::Table(table.iter()));
        }
    }
    let mut merge = MergeIterator::new(sources);
    let (skipping, skipping_set) = match start {
        Bound::Included(k) => {
            merge.seek(k, MAX_SEQNO)?;
            (Vec::new(), false)
        }
        Bound::Excluded(k) => {
            merge.seek(k, MAX_SEQNO)?;
            (k.to_vec(), true)
        }
        Bound::Unbounded => {
            merge.seek_to_first()?;
            (Vec::new(), false)
        }
    };
    Ok(DbIterator {
        merge,
        seq,
        end: owned(end),
        skipping,
        skipping_set,
        advance: false,
        finished: false,
        _version: version,
    })
}

/// A consistent read view: it sees exactly the writes acknowledged before it was taken,
/// however many writes, flushes or compactions happen after.
pub struct Snapshot {
    inner: Arc<Inner>,
    seq: SeqNo,
}

impl Snapshot {
    pub(super) fn new(inner: Arc<Inner>) -> Snapshot {
        let mut snapshots = inner.snapshots.lock();
        // Registered under the lock, so a compaction that reads the oldest snapshot
        // never misses one being taken.
        let seq = inner.visible_seq();
        *snapshots.entry(seq).or_insert(0) += 1;
        drop(snapshots);
        Snapshot { inner, seq }
    }

    /// The sequence number this snapshot reads at.
    pub fn seq(&self) -> SeqNo {
        self.seq
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.get_at(key.as_ref(), self.seq)
    }

    /// The value of `key` as of the snapshot, with the sequence number that wrote it
    /// (see [`Db::get_versioned`](super::Db::get_versioned)).
    pub fn get_versioned(&self, key: impl AsRef<[u8]>) -> Result<Option<(SeqNo, Vec<u8>)>> {
        self.inner.get_versioned_at(key.as_ref(), self.seq)
    }

    /// [`get_versioned`](Snapshot::get_versioned) of many keys, one answer per key in
    /// order: the keys are looked up together, so the cache misses of one overlap those
    /// of the others (cheaper than one `get` after another when the data is cached).
    #[allow(clippy::type_complexity)]
    pub fn get_many_versioned<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<(SeqNo, Vec<u8>)>>> {
        let keys: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
        self.inner.get_many_versioned_at(&keys, self.seq)
    }

    /// Iterates `range` as of the snapshot.
    pub fn iter_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<DbIterator> {
        iter_range(&self.inner, self.seq, range)
    }

    /// Iterates the keys starting with `prefix` as of the snapshot.
    pub fn iter_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIterator> {
        iter_prefix(&self.inner, self.seq, prefix.as_ref())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut snapshots = self.inner.snapshots.lock();
        if let Entry::Occupied(mut e) = snapshots.entry(self.seq) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn prefix_successor_handles_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
