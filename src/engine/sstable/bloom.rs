//! The table's bloom filter over user keys: built by the writer, checked by `Table::get`
//! before any data block is read.
//!
//! The filter is *cache-line blocked* (see `engine::bloom` for the hash and the probe
//! scheme, shared with the memtable filter): one 64-byte block per key, so ruling a
//! table out costs one cache line. The caller hashes the key once per read and reuses
//! the [`KeyHash`] for every table it consults. On disk the filter is
//! `k u8 | blocks of 64 bytes`; see docs/format.md.

use crate::engine::bloom::{probes_for, KeyHash, BLOCK_BYTES, BLOCK_WORDS, MAX_PROBES};

/// One 64-byte block of a decoded filter, aligned so that it is exactly one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct FilterBlock([u64; BLOCK_WORDS]);

/// Collects key hashes while a table is written, then lays out the filter.
#[derive(Debug)]
pub(crate) struct BloomBuilder {
    bits_per_key: u32,
    hashes: Vec<KeyHash>,
}

impl BloomBuilder {
    /// A builder spending `bits_per_key` bits per distinct key; 0 disables the filter.
    pub fn new(bits_per_key: u32) -> Self {
        BloomBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    /// Records one distinct user key (tests; the table writer hashes each key once and
    /// calls [`add_hash`](BloomBuilder::add_hash)).
    #[cfg(test)]
    pub fn add_key(&mut self, user_key: &[u8]) {
        self.add_hash(KeyHash::of(user_key));
    }

    /// Records one distinct user key by its hash (`KeyHash::of` the key).
    pub fn add_hash(&mut self, hash: KeyHash) {
        if self.bits_per_key > 0 {
            self.hashes.push(hash);
        }
    }

    /// The encoded filter: `k u8 | blocks`. The number of blocks is
    /// `ceil(max(keys * bits_per_key, 512) / 512)`. With the filter disabled there are
    /// no blocks and every query answers "maybe".
    pub fn finish(self) -> Vec<u8> {
        let k = probes_for(self.bits_per_key);
        if self.bits_per_key == 0 {
            return vec![k];
        }
        let bits = self
            .hashes
            .len()
            .saturating_mul(self.bits_per_key as usize)
            .max(1);
        let mut blocks = vec![FilterBlock::default(); bits.div_ceil(BLOCK_BYTES * 8)];
        let n = blocks.len();
        for h in self.hashes {
            let block = &mut blocks[h.block(n)].0;
            for (word, m) in block.iter_mut().zip(h.probe_mask(k)) {
                *word |= m;
            }
        }
        let mut out = Vec::with_capacity(1 + n * BLOCK_BYTES);
        out.push(k);
        for word in blocks.iter().flat_map(|b| b.0) {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }
}

/// A decoded filter, kept in memory by an open table.
#[derive(Debug, Clone)]
pub(crate) struct BloomFilter {
    k: u8,
    blocks: Vec<FilterBlock>,
}

impl BloomFilter {
    /// Parses `k u8 | blocks`; fails on a missing or out-of-range `k` or a bit array
    /// that is not a whole number of 64-byte blocks.
    pub fn decode(block: &[u8]) -> Result<BloomFilter, &'static str> {
        let (&k, bits) = block.split_first().ok_or("empty filter block")?;
        if k == 0 || k > MAX_PROBES {
            return Err("filter probe count out of range");
        }
        if bits.len() % BLOCK_BYTES != 0 {
            return Err("filter bit array is not a whole number of 64-byte blocks");
        }
        if (bits.len() / BLOCK_BYTES) as u64 > u64::from(u32::MAX) {
            return Err("filter has too many blocks");
        }
        let blocks = bits
            .chunks_exact(BLOCK_BYTES)
            .map(|chunk| {
                let mut block = FilterBlock::default();
                for (word, bytes) in block.0.iter_mut().zip(chunk.chunks_exact(8)) {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(bytes);
                    *word = u64::from_le_bytes(le);
                }
                block
            })
            .collect();
        Ok(BloomFilter { k, blocks })
    }

    /// False when the table was written without a filter (every query answers "maybe").
    pub fn is_enabled(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// Starts loading the 64-byte block [`may_contain`](Self::may_contain) will read
    /// for `hash` into the CPU caches, so that checking many keys overlaps their misses.
    #[inline]
    pub fn prefetch(&self, hash: KeyHash) {
        if !self.blocks.is_empty() {
            crate::engine::prefetch::prefetch(&self.blocks[hash.block(self.blocks.len())]);
        }
    }

    /// False when the key hashed to `hash` is certainly absent from the table; true when
    /// it may be there. Reads one 64-byte block.
    #[inline]
    pub fn may_contain(&self, hash: KeyHash) -> bool {
        if self.blocks.is_empty() {
            return true;
        }
        let block = &self.blocks[hash.block(self.blocks.len())].0;
        block
            .iter()
            .zip(hash.probe_mask(self.k))
            .all(|(word, m)| word & m == m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::xxh3_64;

    fn filter_of(keys: impl Iterator<Item = Vec<u8>>, bits_per_key: u32) -> BloomFilter {
        let mut b = BloomBuilder::new(bits_per_key);
        for k in keys {
            b.add_key(&k);
        }
        BloomFilter::decode(&b.finish()).expect("valid filter")
    }

    fn contains(f: &BloomFilter, key: &[u8]) -> bool {
        f.may_contain(KeyHash::of(key))
    }

    /// False positives among `absent` keys that were never added, as a fraction.
    fn fp_rate(f: &BloomFilter, absent: impl Iterator<Item = Vec<u8>>) -> f64 {
        let (mut n, mut fp) = (0u32, 0u32);
        for k in absent {
            n += 1;
            fp += u32::from(contains(f, &k));
        }
        f64::from(fp) / f64::from(n)
    }

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        // Keys shaped like the benchmark's (16-byte zero-padded numbers) and like
        // typical string keys; absent keys interleave with present ones.
        let shapes: [fn(u32) -> Vec<u8>; 2] = [
            |i| format!("{i:016}").into_bytes(),
            |i| format!("user:{i}").into_bytes(),
        ];
        for key in shapes {
            let f = filter_of((0..100_000).map(|i| key(2 * i)), 10);
            assert!((0..100_000).all(|i| contains(&f, &key(2 * i))));
            let rate = fp_rate(&f, (0..100_000).map(|i| key(2 * i + 1)));
            println!(
                "false-positive rate at 10 bits per key: {:.3} %",
                rate * 100.0
            );
            // Measured: 0.96 % and 1.03 % (an unblocked filter of this size: about 0.82 %).
            assert!(rate < 0.0115, "false-positive rate {rate}");
        }
    }

    #[test]
    fn small_filters_filter_too() {
        let key = |i: u32| format!("key-{i:08}").into_bytes();
        let f = filter_of((0..10).map(key), 10);
        assert_eq!(f.blocks.len(), 1);
        assert!((0..10).all(|i| contains(&f, &key(i))));
        assert!(fp_rate(&f, (10..10_010).map(key)) < 0.02);
    }

    #[test]
    fn disabled_and_empty_filters() {
        let off = filter_of((0..10u8).map(|i| vec![i]), 0);
        assert!(!off.is_enabled());
        assert!(contains(&off, b"anything"));
        let empty = filter_of(std::iter::empty(), 10);
        assert!(empty.is_enabled());
        assert!(!contains(&empty, b"anything"));
    }

    #[test]
    fn hashing_and_layout_are_stable() {
        // The on-disk filter depends on this exact hash and probe scheme; changing
        // either breaks the filters of existing tables.
        let mut b = BloomBuilder::new(10);
        b.add_key(b"lsm");
        let bytes = b.finish();
        assert_eq!(bytes.len(), 1 + 64);
        assert_eq!(bytes[0], 6);
        let set: Vec<usize> = (0..512)
            .filter(|i| bytes[1 + i / 8] & (1 << (i % 8)) != 0)
            .collect();
        let mut x = xxh3_64(b"lsm") as u32;
        let mut expected: Vec<usize> = (0..6)
            .map(|_| {
                x = x.wrapping_mul(0x9E37_79B9);
                (x >> 23) as usize
            })
            .collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(set, expected);
    }

    #[test]
    fn decode_rejects_bad_probe_counts_and_sizes() {
        assert!(BloomFilter::decode(&[]).is_err());
        assert!(BloomFilter::decode(&[0]).is_err());
        assert!(BloomFilter::decode(&[31]).is_err());
        assert!(BloomFilter::decode(&[7, 1]).is_err());
        assert!(BloomFilter::decode(&[7; 64]).is_err());
        assert!(BloomFilter::decode(&[7; 65]).is_ok());
        assert!(BloomFilter::decode(&[7]).is_ok());
    }
}
