//! The internal iterator contract and the merge iterator built on it.
//!
//! Every source of versions (a memtable, an SSTable) exposes an [`InternalIterator`]:
//! a cursor over internal keys in their order (user key ascending, sequence number
//! descending). A merge over several of them yields one ordered stream of versions.

use super::error::Result;
use super::types::{SeqNo, ValueKind};

/// A cursor over versions in internal-key order.
///
/// A fresh iterator is not positioned: call [`seek`](Self::seek) or
/// [`seek_to_first`](Self::seek_to_first) first. Reading `user_key`, `seq`, `kind` or
/// `value` while `!valid()` may panic, so callers check `valid()` first.
pub trait InternalIterator: Send {
    /// Positions at the first version `>= (user_key, seq)` in internal order, that is the
    /// newest version of `user_key` with sequence `<= seq`, or else the first version of
    /// the next larger user key.
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()>;
    /// Positions at the first version of all.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Moves to the next version.
    fn next(&mut self) -> Result<()>;
    /// True while positioned on a version.
    fn valid(&self) -> bool;
    /// The current version's user key.
    fn user_key(&self) -> &[u8];
    /// The current version's sequence number.
    fn seq(&self) -> SeqNo;
    /// The current version's kind.
    fn kind(&self) -> ValueKind;
    /// The current version's value (empty for a tombstone).
    fn value(&self) -> &[u8];
}

impl<T: InternalIterator + ?Sized> InternalIterator for Box<T> {
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()> {
        (**self).seek(user_key, seq)
    }

    fn seek_to_first(&mut self) -> Result<()> {
        (**self).seek_to_first()
    }

    fn next(&mut self) -> Result<()> {
        (**self).next()
    }

    fn valid(&self) -> bool {
        (**self).valid()
    }

    fn user_key(&self) -> &[u8] {
        (**self).user_key()
    }

    fn seq(&self) -> SeqNo {
        (**self).seq()
    }

    fn kind(&self) -> ValueKind {
        (**self).kind()
    }

    fn value(&self) -> &[u8] {
        (**self).value()
    }
}
