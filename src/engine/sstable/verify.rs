//! Whole-table verification: [`Table::verify`] re-reads every block from disk (bypassing
//! the block cache), checks every checksum, every restart array, the order of every
//! version across the table, the index against the blocks, the filter against the keys, and the properties
//! against what the blocks hold.

use std::sync::Arc;

use super::block::BlockIter;
use super::properties::TableProperties;
use super::reader::{read_block_bytes, Table};
use super::writer::follows;
use crate::engine::bloom::KeyHash;
use crate::engine::error::{Error, Result};
use crate::engine::types::SeqNo;

impl Table {
    /// Reads every block from disk and checks checksums, that internal keys strictly
    /// increase across the whole table, that each data block ends with its index key,
    /// that the bloom filter admits every key, and that the properties match. Returns
    /// the number of versions, or the first problem found.
    pub fn verify(&self) -> Result<u64> {
        let file_len = self.props.file_size;
        for handle in [
            self.footer.filter,
            self.footer.properties,
            self.footer.index,
        ] {
            read_block_bytes(&self.file, &self.path, file_len, handle)?;
        }

        let mut seen = TableProperties::default();
        let mut last: Option<(Vec<u8>, SeqNo)> = None;
        for (i, &handle) in self.index.handles().iter().enumerate() {
            let block = self.read_data_block(handle)?;
            let block_err = |e| self.block_error(handle, e);
            block.check_restarts().map_err(block_err)?;
            let mut it = BlockIter::new(Arc::new(block));
            let mut pos = 0;
            it.seek_to_first().map_err(block_err)?;
            if !it.valid() {
                return Err(self.corrupt(handle.offset, "empty data block"));
            }
            while it.valid() {
                let (key, seq) = (it.user_key(), it.seq());
                let prev = last.as_ref().map(|(k, s)| (k.as_slice(), *s));
                let Some(new_key) = follows(prev, key, seq) else {
                    let at = handle.offset + pos as u64;
                    return Err(self.corrupt(at, "versions out of order"));
                };
                if new_key && !self.filter.may_contain(KeyHash::of(key)) {
                    let at = handle.offset + pos as u64;
                    return Err(self.corrupt(at, "bloom filter does not admit a stored key"));
                }
                seen.record(key, seq, it.kind(), it.value().len());
                match &mut last {
                    Some(l) if !new_key => l.1 = seq,
                    _ => last = Some((key.to_vec(), seq)),
                }
                pos = it.next_offset();
                it.next().map_err(block_err)?;
            }
            let ends_with_index_key = last
                .as_ref()
                .is_some_and(|(k, s)| (k.as_slice(), *s) == self.index.last_key(i));
            if !ends_with_index_key {
                let reason = "data block does not end with its index key";
                return Err(self.corrupt(handle.offset, reason));
            }
        }
        seen.largest_key = last.map(|l| l.0).unwrap_or_default();
        self.check_counts(&seen)?;
        Ok(seen.entries)
    }

    fn check_counts(&self, seen: &TableProperties) -> Result<()> {
        let p = &self.props;
        let fields = [
            ("entries", p.entries, seen.entries),
            ("deletions", p.deletions, seen.deletions),
            ("min_seq", p.min_seq, seen.min_seq),
            ("max_seq", p.max_seq, seen.max_seq),
            ("raw_key_bytes", p.raw_key_bytes, seen.raw_key_bytes),
            ("raw_value_bytes", p.raw_value_bytes, seen.raw_value_bytes),
        ];
        for (name, stored, counted) in fields {
            if stored != counted {
                let reason = format!("properties say {name} = {stored}, the blocks hold {counted}");
                return Err(self.corrupt(self.footer.properties.offset, reason));
            }
        }
        if p.smallest_key != seen.smallest_key || p.largest_key != seen.largest_key {
            let reason = "key range in the properties differs from the stored keys";
            return Err(self.corrupt(self.footer.properties.offset, reason));
        }
        Ok(())
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::corruption(&self.path, offset, reason)
    }
}
