//! The memtable's ordered map: an append-only skiplist whose nodes, keys and values all
//! live in a few large chunks of words.
//!
//! Why an arena: a memtable of 32 MiB holds a few hundred thousand versions. With one
//! heap allocation (or three) per version, the flush thread that drops a flushed memtable
//! frees them one by one, while the writer allocates; under glibc's malloc the two then
//! contend for the writer's arena, and during sustained writes one get in a hundred
//! waited tens of microseconds (docs/benchmarks.md, "Overwrite"). Here a memtable is a
//! handful of allocations, freed in a handful of calls.
//!
//! Without `unsafe`: chunks are slices of `AtomicU64`, a node is addressed by (chunk,
//! word offset), and key and value bytes are packed big-endian into words, so comparing
//! two keys word by word orders them as their bytes. One writer at a time (inserts are
//! serialized by a mutex) fills a node with relaxed stores, then links it in bottom-up
//! with release stores; readers follow links with acquire loads and so never see a node
//! before its contents. Nothing is ever removed or rewritten once linked, so readers
//! need no lock and no epoch.
//!
//! A node's words:
//!
//! ```text
//! [0]            seq << 8 | kind
//! [1]            key_len | value_len << 32            (bytes)
//! [2]            height (1..=MAX_HEIGHT)
//! [3 .. 3+h]     next node at each level (0 = none)
//! [.. + kw]      key bytes, 8 per word, big-endian, the last word padded with zeros
//! [.. + vw]      value bytes, the same way
//! ```

use std::cmp::Ordering as KeyOrdering;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::super::types::{SeqNo, ValueKind};

/// Tallest node. With a branching factor of 4, enough for tens of millions of versions.
const MAX_HEIGHT: usize = 12;

/// Words of the first chunk (64 KiB); each next chunk is twice as large, up to
/// `MAX_CHUNK_WORDS`. A version larger than a chunk gets a chunk of its own size.
const FIRST_CHUNK_WORDS: usize = 1 << 13;

/// Words of the largest regular chunk (8 MiB).
const MAX_CHUNK_WORDS: usize = 1 << 20;

/// Chunks a list can have: with 8 MiB chunks, about 32 GiB, far beyond any memtable.
const MAX_CHUNKS: usize = 4096;

/// Words before a node's links.
const HEADER_WORDS: usize = 3;

/// A node's address: chunk index in the high half, word offset in the low half. 0 is no
/// node (chunk 0's first word is never handed out).
type Addr = u64;

const NULL: Addr = 0;

fn addr(chunk: usize, offset: usize) -> Addr {
    ((chunk as u64) << 32) | offset as u64
}

fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

/// The memtable did not have room for a version (it would pass `MAX_CHUNKS` chunks).
#[derive(Debug)]
pub struct ArenaFull;

/// A key searched for, packed into words once so each comparison compares words.
pub struct SearchKey {
    words: Vec<u64>,
    len: usize,
    seq: SeqNo,
}

impl SearchKey {
    pub fn new(user_key: &[u8], seq: SeqNo) -> Self {
        let mut words = Vec::with_capacity(words_for(user_key.len()));
        pack(user_key, |w| words.push(w));
        SearchKey {
            words,
            len: user_key.len(),
            seq,
        }
    }
}

/// Calls `put` with each word of `bytes`, packed big-endian, the last one zero-padded.
fn pack(bytes: &[u8], mut put: impl FnMut(u64)) {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        put(u64::from_be_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        put(u64::from_be_bytes(w));
    }
}

/// What only the writer touches.
struct Writer {
    /// The chunk being filled, and the words of it in use.
    chunk: usize,
    used: usize,
    /// Xorshift state for node heights.
    rng: u64,
}

/// The skiplist. See the module documentation.
pub struct SkipList {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// The head's links, one per level.
    head: [AtomicU64; MAX_HEIGHT],
    writer: Mutex<Writer>,
    len: AtomicU64,
    /// Words allocated in chunks so far.
    allocated_words: AtomicU64,
}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList")
            .field("len", &self.len())
            .field("allocated_bytes", &self.allocated_bytes())
            .finish()
    }
}

/// One version as the list stores it.
#[derive(Debug, Clone, Copy)]
pub struct NodeInfo {
    pub seq: SeqNo,
    pub kind: ValueKind,
    pub key_len: usize,
    pub value_len: usize,
}

impl SkipList {
    pub fn new() -> Self {
        SkipList {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            head: std::array::from_fn(|_| AtomicU64::new(NULL)),
            writer: Mutex::new(Writer {
                chunk: 0,
                // Word 0 of chunk 0 is never a node, so address 0 can mean "none".
                used: 1,
                rng: 0x9E37_79B9_7F4A_7C15,
            }),
            len: AtomicU64::new(0),
            allocated_words: AtomicU64::new(0),
        }
    }

    /// Versions inserted.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    /// Bytes of chunks allocated.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated_words.load(Ordering::Relaxed) * 8
    }

    fn chunk(&self, i: usize) -> &[AtomicU64] {
        self.chunks
            .get(i)
            .and_then(OnceLock::get)
            .map_or(&[], |c| &c[..])
    }

    /// The node at `a`: its words from the first to the end of its chunk. A published
    /// address always lies in an allocated chunk; any other reads as an empty node
    /// rather than panicking.
    #[inline]
    fn node(&self, a: Addr) -> Node<'_> {
        let chunk = self.chunk((a >> 32) as usize);
        Node(chunk.get((a & 0xFFFF_FFFF) as usize..).unwrap_or(&[]))
    }

    #[inline]
    fn link(&self, a: Addr, level: usize) -> Addr {
        match a {
            NULL => self.head[level].load(Ordering::Acquire),
            _ => self.node(a).link(level),
        }
    }

    fn set_link(&self, a: Addr, level: usize, to: Addr) {
        let node = self.node(a);
        let slot = match a {
            NULL => self.head.get(level),
            _ => node.0.get(HEADER_WORDS + level),
        };
        if let Some(w) = slot {
            w.store(to, Ordering::Release);
        }
    }

    /// The version stored at `a`.
    pub fn info(&self, a: Addr) -> NodeInfo {
        self.node(a).info()
    }

    /// Appends the user key of the node at `a` to `out`.
    pub fn copy_key(&self, a: Addr, out: &mut Vec<u8>) {
        let node = self.node(a);
        node.copy_bytes(node.key_start(), node.info().key_len, out);
    }

    /// Appends the value of the node at `a` to `out`.
    pub fn copy_value(&self, a: Addr, out: &mut Vec<u8>) {
        let node = self.node(a);
        let info = node.info();
        node.copy_bytes(
            node.key_start() + words_for(info.key_len),
            info.value_len,
            out,
        );
    }

    /// True if the node at `a` holds `user_key`.
    pub fn key_eq(&self, a: Addr, user_key: &[u8]) -> bool {
        let node = self.node(a);
        if node.info().key_len != user_key.len() {
            return false;
        }
        let start = node.key_start();
        let mut i = 0;
        let mut equal = true;
        pack(user_key, |w| {
            equal &= node.word(start + i) == w;
            i += 1;
        });
        equal
    }

    /// The first node at or after `key` (`inclusive`), or strictly after it; `NULL` if
    /// there is none. Fills `preds` (when given) with the last node before `key` at each
    /// level, for an insert.
    fn find(
        &self,
        key: &SearchKey,
        inclusive: bool,
        mut preds: Option<&mut [Addr; MAX_HEIGHT]>,
    ) -> Addr {
        let mut node = NULL;
        let mut found = NULL;
        for level in (0..MAX_HEIGHT).rev() {
            loop {
                let next = self.link(node, level);
                if next == NULL {
                    found = NULL;
                    break;
                }
                let ord = self.node(next).compare(key);
                let before = match inclusive {
                    true => ord == KeyOrdering::Less,
                    false => ord != KeyOrdering::Greater,
                };
                if before {
                    node = next;
                } else {
                    found = next;
                    break;
                }
            }
            if let Some(p) = preds.as_deref_mut() {
                p[level] = node;
            }
        }
        found
    }

    /// The first node at or after (`inclusive`), or after, `key`.
    pub fn seek(&self, key: &SearchKey, inclusive: bool) -> Addr {
        self.find(key, inclusive, None)
    }

    /// The first node, if any.
    pub fn first(&self) -> Addr {
        self.link(NULL, 0)
    }

    /// The node after `a`.
    pub fn next(&self, a: Addr) -> Addr {
        self.link(a, 0)
    }

    /// Inserts one version. Versions of the same key and sequence number must not be
    /// inserted twice (the engine never does: each write has its own sequence number).
    pub fn insert(
        &self,
        user_key: &[u8],
        seq: SeqNo,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<(), ArenaFull> {
        let mut w = self.writer.lock();
        let height = random_height(&mut w.rng);
        let words = HEADER_WORDS + height + words_for(user_key.len()) + words_for(value.len());
        let a = self.allocate(&mut w, words)?;
        let key = SearchKey::new(user_key, seq);
        let mut preds = [NULL; MAX_HEIGHT];
        self.find(&key, true, Some(&mut preds));

        let chunk = self.chunk((a >> 32) as usize);
        let base = (a & 0xFFFF_FFFF) as usize;
        let node = chunk.get(base..base + words).ok_or(ArenaFull)?;
        node[0].store(seq << 8 | kind as u64, Ordering::Relaxed);
        node[1].store(
            user_key.len() as u64 | (value.len() as u64) << 32,
            Ordering::Relaxed,
        );
        node[2].store(height as u64, Ordering::Relaxed);
        let mut i = HEADER_WORDS + height;
        for bytes in [user_key, value] {
            pack(bytes, |word| {
                node[i].store(word, Ordering::Relaxed);
                i += 1;
            });
        }
        // Bottom-up: once the node is reachable at level 0 every reader sees all of it
        // (its contents were stored before this release), and higher levels only make
        // it faster to find.
        for (level, &pred) in preds.iter().enumerate().take(height) {
            node[HEADER_WORDS + level].store(self.link(pred, level), Ordering::Relaxed);
            self.set_link(pred, level, a);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Reserves `words` consecutive words, starting a new chunk when the current one
    /// has no room.
    fn allocate(&self, w: &mut Writer, words: usize) -> Result<Addr, ArenaFull> {
        let current = self.chunk(w.chunk).len();
        if current > 0 && w.used + words <= current {
            let a = addr(w.chunk, w.used);
            w.used += words;
            return Ok(a);
        }
        // The first chunk is allocated here too (its `used` starts at 1).
        let next = if current == 0 { w.chunk } else { w.chunk + 1 };
        let regular = (FIRST_CHUNK_WORDS << next.min(16)).min(MAX_CHUNK_WORDS);
        let first_offset = usize::from(next == 0);
        let size = regular.max(words + first_offset);
        let slot = self.chunks.get(next).ok_or(ArenaFull)?;
        let chunk: Box<[AtomicU64]> = (0..size).map(|_| AtomicU64::new(0)).collect();
        if slot.set(chunk).is_err() {
            return Err(ArenaFull);
        }
        self.allocated_words
            .fetch_add(size as u64, Ordering::Relaxed);
        w.chunk = next;
        w.used = first_offset + words;
        Ok(addr(next, first_offset))
    }
}

/// A node's words (see the module documentation).
#[derive(Clone, Copy)]
struct Node<'a>(&'a [AtomicU64]);

impl Node<'_> {
    #[inline]
    fn word(self, i: usize) -> u64 {
        self.0.get(i).map_or(0, |w| w.load(Ordering::Relaxed))
    }

    #[inline]
    fn link(self, level: usize) -> Addr {
        self.0
            .get(HEADER_WORDS + level)
            .map_or(NULL, |w| w.load(Ordering::Acquire))
    }

    #[inline]
    fn info(self) -> NodeInfo {
        let (meta, lens) = (self.word(0), self.word(1));
        NodeInfo {
            seq: meta >> 8,
            kind: ValueKind::from_u8((meta & 0xFF) as u8).unwrap_or(ValueKind::Delete),
            key_len: (lens & 0xFFFF_FFFF) as usize,
            value_len: (lens >> 32) as usize,
        }
    }

    /// The index of the node's first key word (after its links).
    #[inline]
    fn key_start(self) -> usize {
        HEADER_WORDS + self.word(2) as usize
    }

    fn copy_bytes(self, first_word: usize, len: usize, out: &mut Vec<u8>) {
        out.reserve(len);
        let mut left = len;
        let mut i = first_word;
        while left > 0 {
            let bytes = self.word(i).to_be_bytes();
            let n = left.min(8);
            out.extend_from_slice(&bytes[..n]);
            left -= n;
            i += 1;
        }
    }

    /// Orders this node against `key`: user key ascending, then sequence descending.
    fn compare(self, key: &SearchKey) -> KeyOrdering {
        let info = self.info();
        let start = self.key_start();
        let nw = words_for(info.key_len);
        for (i, &w) in key.words.iter().enumerate().take(nw) {
            match self.word(start + i).cmp(&w) {
                KeyOrdering::Equal => {}
                other => return other,
            }
        }
        // Equal over the shorter key's words (zero-padded): the shorter key is a prefix
        // of the longer one, or they are equal.
        info.key_len
            .cmp(&key.len)
            .then_with(|| key.seq.cmp(&info.seq))
    }
}

/// A height from 1 to `MAX_HEIGHT`, each level kept with probability 1/4.
fn random_height(state: &mut u64) -> usize {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    // Two bits per level: all zero (1 in 4) grows the node one more level.
    let mut height = 1;
    let mut bits = x;
    while height < MAX_HEIGHT && bits & 3 == 0 {
        height += 1;
        bits >>= 2;
    }
    height
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// Internal key (user key, sequence descending) to version, as the list orders them.
    type Model = BTreeMap<(Vec<u8>, std::cmp::Reverse<SeqNo>), (ValueKind, Vec<u8>)>;

    fn collect(list: &SkipList) -> Vec<(Vec<u8>, SeqNo, ValueKind, Vec<u8>)> {
        let mut out = Vec::new();
        let mut a = list.first();
        while a != NULL {
            let info = list.info(a);
            let (mut k, mut v) = (Vec::new(), Vec::new());
            list.copy_key(a, &mut k);
            list.copy_value(a, &mut v);
            out.push((k, info.seq, info.kind, v));
            a = list.next(a);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The list holds what was inserted, in internal-key order, and seeks land
        /// where a sorted map's range would.
        #[test]
        fn matches_a_sorted_map(
            ops in prop::collection::vec(
                (prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', b'b', 0xff]), 0..20),
                 prop::collection::vec(any::<u8>(), 0..40),
                 any::<bool>()),
                1..300),
            probes in prop::collection::vec(
                (prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', b'b', 0xff]), 0..20),
                 0u64..400),
                1..50),
        ) {
            let list = SkipList::new();
            // Key ascending, then sequence descending.
            let mut model: Model = BTreeMap::new();
            for (i, (k, v, put)) in ops.iter().enumerate() {
                let seq = i as u64 + 1;
                let kind = if *put { ValueKind::Put } else { ValueKind::Delete };
                list.insert(k, seq, kind, v).unwrap();
                model.insert((k.clone(), std::cmp::Reverse(seq)), (kind, v.clone()));
            }
            let want: Vec<_> = model
                .iter()
                .map(|((k, s), (kind, v))| (k.clone(), s.0, *kind, v.clone()))
                .collect();
            prop_assert_eq!(collect(&list), want);
            prop_assert_eq!(list.len(), ops.len() as u64);
            for (k, seq) in probes {
                let probe = (k.clone(), std::cmp::Reverse(seq));
                for inclusive in [true, false] {
                    let a = list.seek(&SearchKey::new(&k, seq), inclusive);
                    let expected = if inclusive {
                        model.range(probe.clone()..).next()
                    } else {
                        model
                            .range((std::ops::Bound::Excluded(probe.clone()), std::ops::Bound::Unbounded))
                            .next()
                    };
                    match expected {
                        None => prop_assert_eq!(a, NULL),
                        Some(((ek, es), _)) => {
                            prop_assert!(a != NULL);
                            prop_assert!(list.key_eq(a, ek));
                            prop_assert_eq!(list.info(a).seq, es.0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn large_values_get_chunks_of_their_own() {
        let list = SkipList::new();
        let big = vec![7u8; 3 * MAX_CHUNK_WORDS * 8];
        list.insert(b"a", 1, ValueKind::Put, b"small").unwrap();
        list.insert(b"b", 2, ValueKind::Put, &big).unwrap();
        list.insert(b"c", 3, ValueKind::Put, b"after").unwrap();
        let got = collect(&list);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].3, big);
        assert_eq!(got[2].3, b"after");
    }

    #[test]
    fn readers_see_whole_versions_while_one_thread_inserts() {
        let list = Arc::new(SkipList::new());
        let writer = {
            let list = Arc::clone(&list);
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    let key = format!("k{:08}", (i * 7919) % 20_000);
                    list.insert(key.as_bytes(), i + 1, ValueKind::Put, key.as_bytes())
                        .unwrap();
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let list = Arc::clone(&list);
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let got = collect(&list);
                        for pair in got.windows(2) {
                            assert!(pair[0].0 < pair[1].0, "out of order");
                        }
                        for (k, _, _, v) in &got {
                            assert_eq!(k, v, "a version seen before its contents");
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(collect(&list).len(), 20_000);
    }
}
