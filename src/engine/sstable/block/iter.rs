//! [`BlockIter`]: a cursor over the entries of one block, for iterators and seeks
//! (point reads use [`Block::get`], which builds no keys).

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use super::{decode_header, fail, Block, BlockError};
use crate::engine::types::{compare_internal, SeqNo, ValueKind};

/// A cursor over the entries of one [`Block`].
#[derive(Debug)]
pub(crate) struct BlockIter {
    block: Arc<Block>,
    /// Offset of the entry after the current one (`restarts_offset` at the end).
    next_pos: usize,
    key: Vec<u8>,
    seq: SeqNo,
    kind: ValueKind,
    value: Range<usize>,
    valid: bool,
}

impl BlockIter {
    /// An unpositioned cursor over `block`.
    pub fn new(block: Arc<Block>) -> Self {
        BlockIter {
            block,
            next_pos: 0,
            key: Vec::new(),
            seq: 0,
            kind: ValueKind::Put,
            value: 0..0,
            valid: false,
        }
    }

    /// Makes this an unpositioned cursor over `block`, keeping the key buffer's memory.
    pub fn reset(&mut self, block: Arc<Block>) {
        self.block = block;
        self.next_pos = 0;
        self.key.clear();
        self.value = 0..0;
        self.valid = false;
    }

    /// True while positioned on an entry.
    #[inline]
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current entry's user key.
    #[inline]
    pub fn user_key(&self) -> &[u8] {
        &self.key
    }

    /// The current entry's sequence number.
    #[inline]
    pub fn seq(&self) -> SeqNo {
        self.seq
    }

    /// The current entry's kind.
    #[inline]
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// The current entry's value.
    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.block.data[self.value.clone()]
    }

    /// Offset of the current entry's successor inside the block (for error reports).
    pub fn next_offset(&self) -> usize {
        self.next_pos
    }

    /// Positions at the first entry.
    pub fn seek_to_first(&mut self) -> Result<(), BlockError> {
        self.seek_to_restart(0);
        self.next()
    }

    fn seek_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.valid = false;
        self.next_pos = if i < self.block.num_restarts {
            self.block.restart(i)
        } else {
            self.block.restarts_offset
        };
    }

    /// Moves to the next entry; past the last one the cursor becomes invalid.
    pub fn next(&mut self) -> Result<(), BlockError> {
        let end = self.block.restarts_offset;
        if self.next_pos >= end {
            self.valid = false;
            return Ok(());
        }
        let pos = self.next_pos;
        let decoded = decode_header(&self.block.data[..end], pos);
        let h = match decoded {
            Ok(h) if h.shared <= self.key.len() => h,
            Ok(_) => {
                self.valid = false;
                return fail(pos, "shared key prefix longer than the previous key");
            }
            Err(e) => {
                self.valid = false;
                return Err(e);
            }
        };
        self.key.truncate(h.shared);
        self.key
            .extend_from_slice(&self.block.data[h.key_suffix.clone()]);
        self.seq = h.seq;
        self.kind = h.kind;
        self.next_pos = h.value.end;
        self.value = h.value;
        self.valid = true;
        Ok(())
    }

    /// Positions at the first entry `>= (user_key, seq)` in internal-key order, or makes
    /// the cursor invalid when every entry is smaller.
    pub fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<(), BlockError> {
        let n = self.block.num_restarts;
        if n == 0 {
            self.seek_to_restart(0);
            return Ok(());
        }
        // Last restart point whose key is < target (or the first one).
        let (mut lo, mut hi) = (0, n - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let (k, s) = self
                .block
                .restart_key(mid)
                .inspect_err(|_| self.valid = false)?;
            if compare_internal(k, s, user_key, seq) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.seek_to_restart(lo);
        loop {
            self.next()?;
            if !self.valid || compare_internal(&self.key, self.seq, user_key, seq) != Ordering::Less
            {
                return Ok(());
            }
        }
    }
}
