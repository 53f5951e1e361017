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
    /// Heap position (1 or 2) of the root's smaller child, when known. It stays valid
    /// while only the root changes, so a run of versions from one source costs one
    /// comparison per step instead of two.
    root_child: Option<usize>,
}

impl<I: InternalIterator> MergeIterator<I> {
    /// Merges `sources`. Versions of one key never share a sequence number across
    /// sources, so ties cannot happen; if they did, the lower source index wins.
    pub fn new(sources: Vec<I>) -> Self {
        MergeIterator {
            heap: Vec::with_capacity(sources.len()),
            sources,
            root_child: None,
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

    /// Heap position of the smaller child of position `i`, if it has children.
    #[inline]
    fn smaller_child(&self, i: usize) -> Option<usize> {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        if l >= self.heap.len() {
            None
        } else if r < self.heap.len() && self.less(self.heap[r], self.heap[l]) {
            Some(r)
        } else {
            Some(l)
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        while let Some(child) = self.smaller_child(i) {
            if !self.less(self.heap[child], self.heap[i]) {
                return;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }

    /// Restores the heap after the root source moved forward (and is still valid).
    #[inline]
    fn sift_root(&mut self) {
        let child = match self.root_child {
            Some(c) => c,
            None => match self.smaller_child(0) {
                Some(c) => c,
                None => return,
            },
        };
        if !self.less(self.heap[child], self.heap[0]) {
            // The root stays smallest; its children did not change.
            self.root_child = Some(child);
            return;
        }
        self.heap.swap(0, child);
        self.root_child = None;
        self.sift_down(child);
    }

    fn rebuild_heap(&mut self) {
        self.root_child = None;
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
        if let Err(e) = self.sources[top].next() {
            self.root_child = None;
            return Err(e);
        }
        if self.sources[top].valid() {
            self.sift_root();
        } else {
            self.heap.swap_remove(0);
            self.root_child = None;
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
        let a = Arc::new(Memtable::new(1, 1 << 20, 10));
        let b = Arc::new(Memtable::new(2, 1 << 20, 10));
        let c = Arc::new(Memtable::new(3, 1 << 20, 10));
        a.insert(b"k1", 1, ValueKind::Put, b"").expect("insert");
        a.insert(b"k3", 2, ValueKind::Put, b"").expect("insert");
        b.insert(b"k1", 5, ValueKind::Put, b"").expect("insert");
        b.insert(b"k2", 4, ValueKind::Delete, b"").expect("insert");
        c.insert(b"k3", 9, ValueKind::Put, b"").expect("insert");
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
    fn random_merges_match_a_sorted_list() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..200 {
            let n_sources = 1 + rand(7) as usize;
            let mems: Vec<Arc<Memtable>> = (0..n_sources)
                .map(|i| Arc::new(Memtable::new(i as u64, 1 << 20, 10)))
                .collect();
            let mut all = Vec::new();
            // Some rounds let one source hold long runs of consecutive keys.
            let runs = round % 2 == 0;
            for seq in 1..=(rand(300) + 1) {
                let key = format!("k{:03}", rand(120));
                let src = if runs {
                    (seq / 25) as usize % n_sources
                } else {
                    rand(n_sources as u64) as usize
                };
                mems[src]
                    .insert(key.as_bytes(), seq, ValueKind::Put, b"")
                    .expect("insert");
                all.push((key, seq));
            }
            all.sort_by(|a, b| compare_internal(a.0.as_bytes(), a.1, b.0.as_bytes(), b.1));
            let mut it: MergeIterator = MergeIterator::new(
                mems.iter()
                    .map(|m| Box::new(m.iter()) as Box<dyn InternalIterator>)
                    .collect(),
            );
            it.seek_to_first().expect("seek");
            assert_eq!(collect(&mut it), all);
            let from = format!("k{:03}", rand(130));
            let at = rand(400);
            it.seek(from.as_bytes(), at).expect("seek");
            let want: Vec<_> = all
                .iter()
                .filter(|(k, s)| {
                    compare_internal(k.as_bytes(), *s, from.as_bytes(), at) != Ordering::Less
                })
                .cloned()
                .collect();
            assert_eq!(collect(&mut it), want);
        }
    }

    #[test]
    fn empty_sources_are_fine() {
        let mut it: MergeIterator = MergeIterator::new(vec![Box::new(
            Arc::new(Memtable::new(1, 1 << 20, 10)).iter(),
        )]);
        it.seek_to_first().expect("seek");
        assert!(!it.valid());
        it.next().expect("next on empty");
        let mut none: MergeIterator = MergeIterator::new(Vec::new());
        none.seek(b"a", 1).expect("seek");
        assert!(!none.valid());
    }
}
