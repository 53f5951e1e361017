//! Posting blocks and the per-term meta record.
//!
//! A term's posting list is the list of the records that have the term, in doc id
//! order, cut into blocks of at most [`BLOCK_CAPACITY`] postings. A doc id is the
//! sequence number of the engine write that put the record's current version, and a
//! posting holds the record's key beside it: a query reads the record by that key and
//! keeps it only if its version still carries that sequence number (a later write or
//! a delete of the record leaves the posting behind, dead, until a rebuild). Ids only
//! grow, so appending keeps a list sorted and only the last block is ever rewritten.
//! The meta record keeps, per block, its number, first and last id and count: the
//! skip table that lets an intersection jump over blocks that cannot hold the id it
//! looks for, without reading them.
//!
//! ```text
//! block: version u8 = 2 | count varint | per posting:
//!        id varint (the first) or id - previous id (the others)
//!        | shared varint | suffix length varint | suffix bytes
//!        (the key is the previous key's first `shared` bytes, then the suffix)
//! meta:  version u8 = 1 | total varint | blocks varint | per block:
//!        number varint | first id varint | (last - first) varint | count varint
//! ```

use crate::engine::coding::{put_varint, DecodeError, Reader};

/// Postings per block.
pub const BLOCK_CAPACITY: usize = 128;
const VERSION: u8 = 1;
const BLOCK_VERSION: u8 = 2;

/// Why stored index bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged index record: {0}")]
pub struct PostingsError(pub String);

impl From<DecodeError> for PostingsError {
    fn from(e: DecodeError) -> Self {
        PostingsError(e.0.to_string())
    }
}

/// One posting: a doc id and its record's key.
pub type Posting = (u64, String);

/// Encodes a block of postings with strictly increasing ids.
pub fn encode_block<'a>(postings: impl IntoIterator<Item = (u64, &'a str)>) -> Vec<u8> {
    let postings = postings.into_iter();
    let mut out = Vec::with_capacity(2 + postings.size_hint().0 * 8);
    out.push(BLOCK_VERSION);
    let count_at = out.len();
    out.push(0);
    let mut count = 0u64;
    let mut previous: Option<(u64, &str)> = None;
    for (id, key) in postings {
        let (delta, shared) = match previous {
            None => (id, 0),
            Some((p, pk)) => (id - p, common_prefix(pk.as_bytes(), key.as_bytes())),
        };
        put_varint(&mut out, delta);
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, (key.len() - shared) as u64);
        out.extend_from_slice(&key.as_bytes()[shared..]);
        previous = Some((id, key));
        count += 1;
    }
    let mut head = Vec::with_capacity(2);
    put_varint(&mut head, count);
    out.splice(count_at..count_at + 1, head);
    out
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A decoded block: ids in order, and the key of each, rebuilt on demand (an
/// intersection reads the ids of many postings and the keys of few).
#[derive(Debug, Clone, Default)]
pub struct Block {
    raw: Vec<u8>,
    ids: Vec<u64>,
    /// Per posting: bytes shared with the previous key, and its suffix's place in `raw`.
    parts: Vec<(usize, usize, usize)>,
    /// The key of posting `at`, when `at` is `Some`.
    key: Vec<u8>,
    at: Option<usize>,
}

impl Block {
    /// Decodes a block, checking that its ids strictly increase and its keys can be
    /// rebuilt (whether they are UTF-8 is checked where a key is used as text).
    pub fn decode(bytes: &[u8]) -> Result<Block, PostingsError> {
        let mut block = Block::default();
        block.decode_into(bytes)?;
        Ok(block)
    }

    /// [`decode`](Block::decode) into `self`, reusing its buffers.
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), PostingsError> {
        self.raw.clear();
        self.raw.extend_from_slice(bytes);
        self.ids.clear();
        self.parts.clear();
        self.key.clear();
        self.at = None;
        let mut r = Reader::new(bytes);
        if r.u8()? != BLOCK_VERSION {
            return Err(PostingsError("unknown block version".into()));
        }
        let count = r.varint()? as usize;
        if count > BLOCK_CAPACITY {
            return Err(PostingsError(format!("block of {count} postings")));
        }
        let mut previous: u64 = 0;
        let mut previous_len = 0usize;
        for i in 0..count {
            let v = r.varint()?;
            let id = if i == 0 {
                v
            } else {
                if v == 0 {
                    return Err(PostingsError("ids do not increase".into()));
                }
                previous
                    .checked_add(v)
                    .ok_or_else(|| PostingsError("id overflows".into()))?
            };
            let shared = r.varint()? as usize;
            let suffix = r.varint()? as usize;
            if shared > previous_len {
                return Err(PostingsError(
                    "a key shares more than its predecessor".into(),
                ));
            }
            let start = r.position();
            r.bytes(suffix)?;
            self.parts.push((shared, start, suffix));
            self.ids.push(id);
            previous = id;
            previous_len = shared + suffix;
        }
        if !r.is_empty() {
            return Err(PostingsError("trailing bytes after the block".into()));
        }
        Ok(())
    }

    /// The ids, in order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// The key of posting `i` (cheapest when asked in increasing `i`).
    pub fn key(&mut self, i: usize) -> Option<&[u8]> {
        if i >= self.ids.len() {
            return None;
        }
        let from = match self.at {
            Some(at) if at == i => return Some(&self.key),
            Some(at) if at < i => at + 1,
            _ => 0,
        };
        for &(shared, start, len) in &self.parts[from..=i] {
            self.key.truncate(shared);
            self.key.extend_from_slice(&self.raw[start..start + len]);
        }
        self.at = Some(i);
        Some(&self.key)
    }

    /// Postings in the block.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the block holds no posting.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The postings as owned pairs, refusing a key that is not UTF-8.
    pub fn to_postings(&mut self) -> Result<Vec<Posting>, PostingsError> {
        let mut out = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let id = self.ids[i];
            let key = self.key(i).unwrap_or_default();
            let key = std::str::from_utf8(key)
                .map_err(|_| PostingsError("a posting's key is not UTF-8".into()))?;
            out.push((id, key.to_string()));
        }
        Ok(out)
    }
}

/// One line of the skip table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// The block's number (its key suffix).
    pub number: u32,
    /// Its smallest id.
    pub first: u64,
    /// Its largest id.
    pub last: u64,
    /// Ids in it.
    pub count: u32,
}

/// The meta record of a term: totals and the skip table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Ids in all blocks (dead ones included until a rebuild drops them).
    pub total: u64,
    /// The blocks, in id order.
    pub blocks: Vec<BlockRef>,
}

impl Meta {
    /// The number of the last block, if any.
    pub fn last_block(&self) -> Option<u32> {
        self.blocks.last().map(|b| b.number)
    }

    /// The first block that may hold an id `>= id` (the skip-table lookup).
    pub fn seek(&self, id: u64) -> usize {
        self.blocks.partition_point(|b| b.last < id)
    }

    /// Records `id` (larger than every id so far) as appended; returns the block it
    /// goes to and whether that block is new.
    pub fn append(&mut self, id: u64) -> Result<(u32, bool), PostingsError> {
        if let Some(last) = self.blocks.last_mut() {
            if id <= last.last {
                return Err(PostingsError(format!(
                    "id {id} appended after {}",
                    last.last
                )));
            }
            if (last.count as usize) < BLOCK_CAPACITY {
                last.last = id;
                last.count += 1;
                self.total += 1;
                return Ok((last.number, false));
            }
        }
        let number = self.last_block().map_or(1, |n| n + 1);
        self.blocks.push(BlockRef {
            number,
            first: id,
            last: id,
            count: 1,
        });
        self.total += 1;
        Ok((number, true))
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.blocks.len() * 8);
        out.push(VERSION);
        put_varint(&mut out, self.total);
        put_varint(&mut out, self.blocks.len() as u64);
        for b in &self.blocks {
            put_varint(&mut out, u64::from(b.number));
            put_varint(&mut out, b.first);
            put_varint(&mut out, b.last - b.first);
            put_varint(&mut out, u64::from(b.count));
        }
        out
    }

    /// Decodes a record, checking the skip table is ordered and consistent.
    pub fn decode(bytes: &[u8]) -> Result<Meta, PostingsError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != VERSION {
            return Err(PostingsError("unknown meta version".into()));
        }
        let total = r.varint()?;
        let n = r.varint()? as usize;
        if n > r.remaining() {
            return Err(PostingsError(format!(
                "{n} blocks in {} bytes",
                r.remaining()
            )));
        }
        let mut blocks = Vec::with_capacity(n);
        let mut sum = 0u64;
        for _ in 0..n {
            let number = u32::try_from(r.varint()?)
                .map_err(|_| PostingsError("block number out of range".into()))?;
            let first = r.varint()?;
            let last = first
                .checked_add(r.varint()?)
                .ok_or_else(|| PostingsError("id overflows".into()))?;
            let count = r.varint()?;
            if count == 0 || count > BLOCK_CAPACITY as u64 {
                return Err(PostingsError(format!("block of {count} ids")));
            }
            if let Some(prev) = blocks.last() {
                let prev: &BlockRef = prev;
                if number <= prev.number || first <= prev.last {
                    return Err(PostingsError("skip table out of order".into()));
                }
            }
            sum += count;
            blocks.push(BlockRef {
                number,
                first,
                last,
                count: count as u32,
            });
        }
        if sum != total || !r.is_empty() {
            return Err(PostingsError("totals do not add up".into()));
        }
        Ok(Meta { total, blocks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blocks_round_trip(
            entries in proptest::collection::btree_map(any::<u64>(), "(users:|u|)[a-zé0-9]{0,12}", 0..BLOCK_CAPACITY)
        ) {
            let postings: Vec<Posting> = entries.into_iter().collect();
            let bytes = encode_block(postings.iter().map(|(id, k)| (*id, k.as_str())));
            let mut block = Block::decode(&bytes).expect("decode");
            prop_assert_eq!(block.to_postings().expect("utf-8"), postings.clone());
            // Keys asked for out of order come back the same.
            for i in (0..postings.len()).rev() {
                prop_assert_eq!(block.key(i).expect("key"), postings[i].1.as_bytes());
            }
            let ids: Vec<u64> = postings.iter().map(|p| p.0).collect();
            prop_assert_eq!(block.ids(), ids.as_slice());
        }

        #[test]
        fn appends_build_a_consistent_skip_table(gaps in proptest::collection::vec(1u64..1000, 0..600)) {
            let mut meta = Meta::default();
            let mut blocks: Vec<Vec<u64>> = Vec::new();
            let mut id = 0;
            for gap in gaps {
                id += gap;
                let (number, new) = meta.append(id).expect("append");
                if new { blocks.push(Vec::new()); }
                prop_assert_eq!(number as usize, blocks.len());
                blocks.last_mut().expect("block").push(id);
            }
            let back = Meta::decode(&meta.encode()).expect("decode");
            prop_assert_eq!(&back, &meta);
            for (b, ids) in meta.blocks.iter().zip(&blocks) {
                prop_assert_eq!(b.first, ids[0]);
                prop_assert_eq!(b.last, *ids.last().expect("last"));
                prop_assert_eq!(b.count as usize, ids.len());
                prop_assert!(ids.len() <= BLOCK_CAPACITY);
                // seek finds the block of every id.
                prop_assert_eq!(&meta.blocks[meta.seek(ids[0])], b);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Block::decode(&bytes);
            let _ = Meta::decode(&bytes);
        }
    }

    #[test]
    fn damage_is_refused() {
        let ok = encode_block([(5, "ab"), (7, "ac")]);
        assert_eq!(ok, [2, 2, 5, 0, 2, b'a', b'b', 2, 1, 1, b'c']);
        assert_eq!(
            Block::decode(&ok)
                .expect("ok")
                .to_postings()
                .expect("utf-8")
                .len(),
            2
        );
        assert!(
            Block::decode(&[2, 2, 5, 0, 0, 0, 0, 0]).is_err(),
            "a zero delta"
        );
        assert!(
            Block::decode(&[2, 1, 5, 1, 0]).is_err(),
            "shares with no predecessor"
        );
        let mut bad = Block::decode(&[2, 1, 5, 0, 1, 0xff]).expect("bytes");
        assert!(bad.to_postings().is_err(), "a key that is not UTF-8");
        assert!(Block::decode(&[1, 1, 5]).is_err(), "the old block version");
        assert!(Block::decode(&[3, 0]).is_err(), "a version from the future");
        assert!(
            Block::decode(&[2, 1, 5, 0, 0, 9]).is_err(),
            "trailing bytes"
        );
        let mut meta = Meta::default();
        meta.append(5).expect("append");
        assert!(meta.append(5).is_err(), "ids only grow");
        let mut bytes = meta.encode();
        bytes[1] = 9;
        assert!(Meta::decode(&bytes).is_err(), "total does not match");
    }
}
