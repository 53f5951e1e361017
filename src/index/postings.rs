//! Posting blocks and the per-term meta record.
//!
//! A term's posting list is the sorted list of the document ids that have the term,
//! cut into blocks of at most [`BLOCK_CAPACITY`] ids. Ids only grow (every write of a
//! record gets a new one), so appending keeps a list sorted and only the last block is
//! ever rewritten. The meta record keeps, per block, its number, first and last id and
//! count: the skip table that lets an intersection jump over blocks that cannot hold
//! the id it looks for, without reading them.
//!
//! ```text
//! block: version u8 = 1 | count varint | first id varint | (id - previous id) varint ...
//! meta:  version u8 = 1 | total varint | blocks varint | per block:
//!        number varint | first id varint | (last - first) varint | count varint
//! ```

use crate::engine::coding::{put_varint, DecodeError, Reader};

/// Ids per block.
pub const BLOCK_CAPACITY: usize = 128;
const VERSION: u8 = 1;

/// Why stored index bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged index record: {0}")]
pub struct PostingsError(pub String);

impl From<DecodeError> for PostingsError {
    fn from(e: DecodeError) -> Self {
        PostingsError(e.0.to_string())
    }
}

/// Encodes a block of strictly increasing ids.
pub fn encode_block(ids: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + ids.len() * 2);
    out.push(VERSION);
    put_varint(&mut out, ids.len() as u64);
    let mut previous = 0;
    for (i, &id) in ids.iter().enumerate() {
        put_varint(&mut out, if i == 0 { id } else { id - previous });
        previous = id;
    }
    out
}

/// Decodes a block, checking that its ids strictly increase.
pub fn decode_block(bytes: &[u8]) -> Result<Vec<u64>, PostingsError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != VERSION {
        return Err(PostingsError("unknown block version".into()));
    }
    let count = r.varint()? as usize;
    if count > BLOCK_CAPACITY {
        return Err(PostingsError(format!("block of {count} ids")));
    }
    let mut ids = Vec::with_capacity(count);
    let mut previous: u64 = 0;
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
        ids.push(id);
        previous = id;
    }
    if !r.is_empty() {
        return Err(PostingsError("trailing bytes after the block".into()));
    }
    Ok(ids)
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
        fn blocks_round_trip(mut ids in proptest::collection::btree_set(any::<u64>(), 0..BLOCK_CAPACITY)) {
            let ids: Vec<u64> = std::mem::take(&mut ids).into_iter().collect();
            prop_assert_eq!(decode_block(&encode_block(&ids)).expect("decode"), ids);
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
            let _ = decode_block(&bytes);
            let _ = Meta::decode(&bytes);
        }
    }

    #[test]
    fn damage_is_refused() {
        assert!(decode_block(&[1, 2, 5, 0]).is_err(), "a zero delta");
        assert!(decode_block(&[2, 0]).is_err(), "a version from the future");
        assert!(decode_block(&[1, 1, 5, 9]).is_err(), "trailing bytes");
        let mut meta = Meta::default();
        meta.append(5).expect("append");
        assert!(meta.append(5).is_err(), "ids only grow");
        let mut bytes = meta.encode();
        bytes[1] = 9;
        assert!(Meta::decode(&bytes).is_err(), "total does not match");
    }
}
