//! The merge iterator: one ordered stream of versions out of many sources.
//!
//! Sources (memtables and tables) are each in internal-key order; the merge keeps a
//! binary min-heap of source indices keyed by each source's current version, so every
//! step costs `O(log n)` comparisons. It yields *every* version; choosing the visible one
//! (newest at the snapshot, tombstones hidden) is the job of the database iterator above.

use std::cmp::Ordering;

use super::error::Result;
use super::iter::InternalIterator;
use super::types::{compare_internal, SeqNo, ValueKind};

/// Merges several [`InternalIterator`]s into one.
///
/// Generic over the source type so that a merge over a closed set of sources (the read
/// path's memtables and tables) compares keys without a virtual call per access; a
/// `MergeIterator<Box<dyn InternalIterator>>` merges anything.
pub struct MergeIterator<I: InternalIterator = Box<dyn InternalIterator>> {
    sources: Vec<I>,
    /// Indices of valid sources, arranged as a binary min-heap.
    heap: Vec<usize>,
}

impl<I: InternalIterator> MergeIterator<I> {
    /// Merges `sources`. Versions of one key never share a sequence number across
    /// sources, so ties cannot happen; if they did, the lower source index wins.
    pub fn new(sources: Vec<I>) -> Self {
        MergeIterator {
            heap: Vec::with_capacity(sources.len()),
            sources,
        }
    }

    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.sources[a], &self.sources[b]);
        match compare_internal(x.user_key(), x.seq(), y.user_key(), y.seq()) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => a < b,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                return;
            }
            // The smaller child, then one comparison against it.
            let r = l + 1;
            let child = if r < n && self.less(self.heap[r], self.heap[l]) {
                r
            } else {
                l
            };
            if !self.less(self.heap[child], self.heap[i]) {
                return;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }

    fn rebuild_heap(&mut self) {
        self.heap.clear();
        self.heap
            .extend((0..self.sources.len()).filter(|&i| self.sources[i].valid()));
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    #[inline]
    fn top(&self) -> &I {
        &self.sources[self.heap[0]]
    }
}

impl<I: InternalIterator> InternalIterator for MergeIterator<I> {
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()> {
        for s in &mut self.sources {
            s.seek(user_key, seq)?;
        }
        self.rebuild_heap();
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        for s in &mut self.sources {
            s.seek_to_first()?;
        }
        self.rebuild_heap();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        self.sources[top].next()?;
        if !self.sources[top].valid() {
            self.heap.swap_remove(0);
        }
        if self.heap.len() > 1 {
            self.sift_down(0);
        }
        Ok(())
    }

    #[inline]
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    #[inline]
    fn user_key(&self) -> &[u8] {
        self.top().user_key()
    }

    #[inline]
    fn seq(&self) -> SeqNo {
        self.top().seq()
    }

    #[inline]
    fn kind(&self) -> ValueKind {
        self.top().kind()
    }

    #[inline]
    fn value(&self) -> &[u8] {
        self.top().value()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::memtable::Memtable;

    fn collect(it: &mut MergeIterator) -> Vec<(String, SeqNo)> {
        let mut out = Vec::new();
        while it.valid() {
            out.push((
                String::from_utf8_lossy(it.user_key()).into_owned(),
                it.seq(),
            ));
            it.next().expect("next");
        }
        out
    }

    #[test]
    fn merges_in_internal_order() {
        let a = Arc::new(Memtable::new(1));
        let b = Arc::new(Memtable::new(2));
        let c = Arc::new(Memtable::new(3));
        a.insert(b"k1", 1, ValueKind::Put, b"");
        a.insert(b"k3", 2, ValueKind::Put, b"");
        b.insert(b"k1", 5, ValueKind::Put, b"");
        b.insert(b"k2", 4, ValueKind::Delete, b"");
        c.insert(b"k3", 9, ValueKind::Put, b"");
        let mut it: MergeIterator = MergeIterator::new(vec![
            Box::new(a.iter()),
            Box::new(b.iter()),
            Box::new(c.iter()),
        ]);
        it.seek_to_first().expect("seek");
        let got = collect(&mut it);
        let want: Vec<(String, SeqNo)> = [("k1", 5), ("k1", 1), ("k2", 4), ("k3", 9), ("k3", 2)]
            .iter()
            .map(|(k, s)| (k.to_string(), *s))
            .collect();
        assert_eq!(got, want);
        it.seek(b"k2", 100).expect("seek");
        assert_eq!(collect(&mut it).len(), 3);
    }

    #[test]
    fn empty_sources_are_fine() {
        let mut it: MergeIterator =
            MergeIterator::new(vec![Box::new(Arc::new(Memtable::new(1)).iter())]);
        it.seek_to_first().expect("seek");
        assert!(!it.valid());
        it.next().expect("next on empty");
        let mut none: MergeIterator = MergeIterator::new(Vec::new());
        none.seek(b"a", 1).expect("seek");
        assert!(!none.valid());
    }
}
