//! Table properties: counts, key and sequence ranges and sizes, computed by the writer
//! and stored in the properties block so that an open table (and compaction planning)
//! knows them without reading data blocks.
//!
//! The record is fixed-width fields followed by two length-prefixed keys; see
//! docs/format.md. Cross-checking the properties against the rest of the file is the
//! reader's job.

use crate::engine::coding::{put_length_prefixed, DecodeError, Reader};
use crate::engine::types::{SeqNo, ValueKind};

/// What a table holds, as recorded when it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableProperties {
    /// Number of versions (puts and tombstones).
    pub entries: u64,
    /// Number of tombstones among them.
    pub deletions: u64,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// Smallest user key (empty when the table has no entries).
    pub smallest_key: Vec<u8>,
    /// Largest user key (empty when the table has no entries).
    pub largest_key: Vec<u8>,
    /// Smallest sequence number of any version (0 when empty).
    pub min_seq: SeqNo,
    /// Largest sequence number of any version (0 when empty).
    pub max_seq: SeqNo,
    /// Sum of the user key lengths of all versions.
    pub raw_key_bytes: u64,
    /// Sum of the value lengths of all versions.
    pub raw_value_bytes: u64,
    /// Bytes of all data blocks, trailers included (the offset of the filter block).
    pub data_size: u64,
    /// Bytes of the index block, trailer included.
    pub index_size: u64,
    /// Bytes of the filter block, trailer included.
    pub filter_size: u64,
    /// Length of the whole file. Not stored in the block: it is the file's length.
    pub file_size: u64,
    /// When the table was written, in seconds since the Unix epoch.
    pub created_unix: u64,
}

impl TableProperties {
    /// Counts one version into the entry counts, the sequence range, the raw sizes and
    /// (for the first version) the smallest key. Versions arrive in internal-key order;
    /// the largest key is set by the caller once the last version is known.
    pub(crate) fn record(
        &mut self,
        user_key: &[u8],
        seq: SeqNo,
        kind: ValueKind,
        value_len: usize,
    ) {
        if self.entries == 0 {
            self.smallest_key = user_key.to_vec();
            self.min_seq = seq;
        }
        self.entries += 1;
        self.deletions += u64::from(kind == ValueKind::Delete);
        self.min_seq = self.min_seq.min(seq);
        self.max_seq = self.max_seq.max(seq);
        self.raw_key_bytes += user_key.len() as u64;
        self.raw_value_bytes += value_len as u64;
    }

    /// The properties record (everything but `file_size`).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(88 + 10 + self.smallest_key.len() + self.largest_key.len());
        for v in [
            self.entries,
            self.deletions,
            self.data_blocks,
            self.min_seq,
            self.max_seq,
            self.raw_key_bytes,
            self.raw_value_bytes,
            self.data_size,
            self.index_size,
            self.filter_size,
            self.created_unix,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_length_prefixed(&mut out, &self.smallest_key);
        put_length_prefixed(&mut out, &self.largest_key);
        out
    }

    /// Decodes a properties record; `file_size` is left 0 for the caller to fill.
    /// Returns the offset inside the record where decoding failed.
    pub(crate) fn decode(block: &[u8]) -> Result<TableProperties, (usize, DecodeError)> {
        let mut r = Reader::new(block);
        let at = |r: &Reader<'_>, e| (r.position(), e);
        let mut fixed = [0u64; 11];
        for f in &mut fixed {
            *f = r.u64().map_err(|e| at(&r, e))?;
        }
        let smallest_key = r
            .length_prefixed(usize::MAX)
            .map_err(|e| at(&r, e))?
            .to_vec();
        let largest_key = r
            .length_prefixed(usize::MAX)
            .map_err(|e| at(&r, e))?
            .to_vec();
        if !r.is_empty() {
            return Err(at(&r, DecodeError("trailing bytes after the properties")));
        }
        let [entries, deletions, data_blocks, min_seq, max_seq, raw_key_bytes, raw_value_bytes, data_size, index_size, filter_size, created_unix] =
            fixed;
        Ok(TableProperties {
            entries,
            deletions,
            data_blocks,
            smallest_key,
            largest_key,
            min_seq,
            max_seq,
            raw_key_bytes,
            raw_value_bytes,
            data_size,
            index_size,
            filter_size,
            file_size: 0,
            created_unix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_except_file_size() {
        let p = TableProperties {
            entries: 10,
            deletions: 2,
            data_blocks: 3,
            smallest_key: b"apple".to_vec(),
            largest_key: b"zebra".to_vec(),
            min_seq: 4,
            max_seq: 99,
            raw_key_bytes: 50,
            raw_value_bytes: 500,
            data_size: 4000,
            index_size: 80,
            filter_size: 30,
            file_size: 4321,
            created_unix: 1_700_000_000,
        };
        let back = TableProperties::decode(&p.encode()).expect("decodes");
        assert_eq!(back, TableProperties { file_size: 0, ..p });
    }

    #[test]
    fn truncated_or_padded_records_are_rejected() {
        let bytes = TableProperties::default().encode();
        for cut in 0..bytes.len() {
            assert!(
                TableProperties::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(TableProperties::decode(&padded).is_err());
    }
}
