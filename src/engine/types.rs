//! Keys, sequence numbers, value kinds and write batches: the vocabulary shared by the
//! WAL, the memtable, the SSTables and the iterators.
//!
//! Every stored version of a key is an *internal key*: the user key plus the sequence
//! number of the write that produced it and its kind (a value or a tombstone). Internal
//! keys sort by user key ascending, then by sequence number **descending**, so the newest
//! version of a key is met first by every iterator.

use std::cmp::Ordering;

use super::error::{Error, Result};

/// Sequence number: a write's position in the total order of all writes.
pub type SeqNo = u64;

/// The largest sequence number; reading "at" it sees everything.
pub const MAX_SEQNO: SeqNo = u64::MAX >> 8;

/// Longest accepted key, in bytes of UTF-8.
pub const MAX_KEY_SIZE: usize = 16 * 1024;

/// Longest accepted value, in bytes.
pub const MAX_VALUE_SIZE: usize = 16 * 1024 * 1024;

/// Largest accepted write batch, encoded (keys + values + framing).
pub const MAX_BATCH_SIZE: usize = 256 * 1024 * 1024;

/// Whether a version holds a value or deletes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key is deleted as of this version.
    Delete = 0,
    /// A value.
    Put = 1,
}

impl ValueKind {
    /// Decodes the on-disk byte.
    pub fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// A user key with the sequence number and kind of one version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    /// The user's key (valid UTF-8, checked on write).
    pub user_key: Vec<u8>,
    /// Sequence number of the write.
    pub seq: SeqNo,
    /// Value or tombstone.
    pub kind: ValueKind,
}

impl InternalKey {
    /// Builds an internal key.
    pub fn new(user_key: impl Into<Vec<u8>>, seq: SeqNo, kind: ValueKind) -> Self {
        InternalKey {
            user_key: user_key.into(),
            seq,
            kind,
        }
    }

    /// The smallest internal key for `user_key` that is visible at `seq`: seeking to it
    /// lands on the newest version with sequence number `<= seq`.
    pub fn seek_key(user_key: &[u8], seq: SeqNo) -> Self {
        InternalKey::new(user_key, seq, ValueKind::Put)
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(&self.user_key, self.seq, &other.user_key, other.seq)
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two internal keys given as parts: user key ascending, sequence descending.
#[inline]
pub fn compare_internal(a_key: &[u8], a_seq: SeqNo, b_key: &[u8], b_seq: SeqNo) -> Ordering {
    compare_keys(a_key, b_key).then_with(|| b_seq.cmp(&a_seq))
}

/// Orders two byte strings exactly like `a.cmp(b)`, comparing 8 bytes at a time. Keys
/// are short, and for them this inlined loop is cheaper than a call to `memcmp`; the
/// read path compares keys several times per version it visits.
#[inline]
pub fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let (mut x, mut y) = ([0u8; 8], [0u8; 8]);
        x.copy_from_slice(&a[i..i + 8]);
        y.copy_from_slice(&b[i..i + 8]);
        if x != y {
            return u64::from_be_bytes(x).cmp(&u64::from_be_bytes(y));
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// Checks a user key against the documented limits.
pub fn validate_key(key: &[u8]) -> Result<&str> {
    if key.is_empty() {
        return Err(Error::InvalidKey("the key is empty".into()));
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_SIZE,
        });
    }
    std::str::from_utf8(key)
        .map_err(|e| Error::InvalidKey(format!("the key is not valid UTF-8 ({e})")))
}

/// Checks a value against the documented limit.
pub fn validate_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_SIZE,
        });
    }
    Ok(())
}

/// One operation inside a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

impl BatchOp {
    /// The key this operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

/// A group of writes applied atomically: after a crash either all of them are present
/// or none is, and no reader ever sees a part of the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    approximate_size: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put. Keys and values are validated when the batch is written.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref().to_vec(), value.as_ref().to_vec());
        self.approximate_size += key.len() + value.len() + 16;
        self.ops.push(BatchOp::Put { key, value });
        self
    }

    /// Adds a delete (a tombstone).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref().to_vec();
        self.approximate_size += key.len() + 16;
        self.ops.push(BatchOp::Delete { key });
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Rough encoded size in bytes.
    pub fn approximate_size(&self) -> usize {
        self.approximate_size
    }

    /// Validates every key and value and the total size.
    pub fn validate(&self) -> Result<()> {
        if self.approximate_size > MAX_BATCH_SIZE {
            return Err(Error::BatchTooLarge {
                len: self.approximate_size,
                max: MAX_BATCH_SIZE,
            });
        }
        for op in &self.ops {
            validate_key(op.key())?;
            if let BatchOp::Put { value, .. } = op {
                validate_value(value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_sorts_first() {
        let old = InternalKey::new("a", 1, ValueKind::Put);
        let new = InternalKey::new("a", 2, ValueKind::Delete);
        let b = InternalKey::new("b", 0, ValueKind::Put);
        assert!(new < old);
        assert!(old < b);
    }

    #[test]
    fn compare_keys_agrees_with_slice_order() {
        let keys: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![1],
            vec![0xff],
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefgi".to_vec(),
            b"abcdefghijklmnop".to_vec(),
            b"abcdefghijklmnoq".to_vec(),
            b"abcdefghijklmno".to_vec(),
            b"abcdefghijklmnopq".to_vec(),
            b"abcdefgh\xffjklmnop".to_vec(),
            b"abcdefgh\x00jklmnop".to_vec(),
            b"0000000000012345".to_vec(),
            b"0000000000012346".to_vec(),
        ];
        for a in &keys {
            for b in &keys {
                assert_eq!(compare_keys(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn keys_are_validated() {
        assert!(matches!(validate_key(b""), Err(Error::InvalidKey(_))));
        assert!(matches!(
            validate_key(&[0xff, 0xfe]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            validate_key(&vec![b'a'; MAX_KEY_SIZE + 1]),
            Err(Error::KeyTooLarge { .. })
        ));
        assert_eq!(validate_key(b"users:1").ok(), Some("users:1"));
        assert!(matches!(
            validate_value(&vec![0; MAX_VALUE_SIZE + 1]),
            Err(Error::ValueTooLarge { .. })
        ));
    }
}
