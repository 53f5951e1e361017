//! The table's bloom filter over user keys: built by the writer, checked by `Table::get`
//! before any data block is read.
//!
//! Keys are hashed once with xxh3-64 (a fixed, documented function, so filters stay valid
//! across builds and platforms); the `k` probe positions come from double hashing that
//! one 64-bit hash. On disk the filter is `k u8 | bit array`; see docs/format.md.

use xxhash_rust::xxh3::xxh3_64;

/// Most probes a filter may ask for; more only costs time.
pub(crate) const MAX_PROBES: u8 = 30;

/// Smallest bit array written for a non-empty filter, so tiny tables still filter well.
const MIN_BITS: usize = 64;

/// Probe count for `bits_per_key`: `round(bits_per_key * ln 2)` clamped to `1..=30`.
pub(crate) fn probes_for(bits_per_key: u32) -> u8 {
    let k = (f64::from(bits_per_key) * std::f64::consts::LN_2).round();
    k.clamp(1.0, f64::from(MAX_PROBES)) as u8
}

/// The start and step that generate every probe position of a key hashed to `h`.
fn probe_sequence(h: u64) -> (u64, u64) {
    // An odd step visits distinct positions for as long as possible.
    (h, h.rotate_left(32) | 1)
}

/// Collects key hashes while a table is written, then lays out the filter.
#[derive(Debug)]
pub(crate) struct BloomBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// A builder spending `bits_per_key` bits per distinct key; 0 disables the filter.
    pub fn new(bits_per_key: u32) -> Self {
        BloomBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    /// Records one distinct user key.
    pub fn add_key(&mut self, user_key: &[u8]) {
        if self.bits_per_key > 0 {
            self.hashes.push(xxh3_64(user_key));
        }
    }

    /// The encoded filter: `k u8 | bit array`. With the filter disabled the bit array is
    /// empty and every query answers "maybe".
    pub fn finish(self) -> Vec<u8> {
        let k = probes_for(self.bits_per_key);
        if self.bits_per_key == 0 {
            return vec![k];
        }
        let bits = (self.hashes.len().saturating_mul(self.bits_per_key as usize)).max(MIN_BITS);
        let bytes = bits.div_ceil(8);
        let mut out = vec![0u8; 1 + bytes];
        out[0] = k;
        let m = (bytes * 8) as u64;
        for h in self.hashes {
            let (mut pos, step) = probe_sequence(h);
            for _ in 0..k {
                let bit = (pos % m) as usize;
                out[1 + bit / 8] |= 1 << (bit % 8);
                pos = pos.wrapping_add(step);
            }
        }
        out
    }
}

/// A decoded filter, kept in memory by an open table.
#[derive(Debug, Clone)]
pub(crate) struct BloomFilter {
    k: u8,
    bits: Vec<u8>,
}

impl BloomFilter {
    /// Parses `k u8 | bit array`; fails on a missing or out-of-range `k`.
    pub fn decode(block: &[u8]) -> Result<BloomFilter, &'static str> {
        let (&k, bits) = block.split_first().ok_or("empty filter block")?;
        if k == 0 || k > MAX_PROBES {
            return Err("filter probe count out of range");
        }
        Ok(BloomFilter {
            k,
            bits: bits.to_vec(),
        })
    }

    /// False when the table was written without a filter (every query answers "maybe").
    pub fn is_enabled(&self) -> bool {
        !self.bits.is_empty()
    }

    /// False when `user_key` is certainly absent from the table; true when it may be there.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        if self.bits.is_empty() {
            return true;
        }
        let m = (self.bits.len() * 8) as u64;
        let (mut pos, step) = probe_sequence(xxh3_64(user_key));
        for _ in 0..self.k {
            let bit = (pos % m) as usize;
            if self.bits[bit / 8] & (1 << (bit % 8)) == 0 {
                return false;
            }
            pos = pos.wrapping_add(step);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(keys: impl Iterator<Item = Vec<u8>>, bits_per_key: u32) -> BloomFilter {
        let mut b = BloomBuilder::new(bits_per_key);
        for k in keys {
            b.add_key(&k);
        }
        BloomFilter::decode(&b.finish()).expect("valid filter")
    }

    #[test]
    fn probe_count_follows_bits_per_key() {
        assert_eq!(probes_for(0), 1);
        assert_eq!(probes_for(1), 1);
        assert_eq!(probes_for(10), 7);
        assert_eq!(probes_for(100), 30);
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let key = |i: u32| format!("key-{i:08}").into_bytes();
        let f = filter_of((0..10_000).map(key), 10);
        assert!((0..10_000).all(|i| f.may_contain(&key(i))));
        let fp = (10_000..20_000).filter(|&i| f.may_contain(&key(i))).count();
        assert!(fp < 300, "{fp} false positives in 10000 absent keys");
    }

    #[test]
    fn disabled_and_empty_filters() {
        let off = filter_of((0..10u8).map(|i| vec![i]), 0);
        assert!(off.may_contain(b"anything"));
        let empty = filter_of(std::iter::empty(), 10);
        assert!(!empty.may_contain(b"anything"));
    }

    #[test]
    fn hashing_is_stable() {
        // The on-disk filter depends on this exact hash; changing it breaks old tables.
        assert_eq!(xxh3_64(b"lsm"), xxh3_64(b"lsm"));
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
    }

    #[test]
    fn decode_rejects_bad_probe_counts() {
        assert!(BloomFilter::decode(&[]).is_err());
        assert!(BloomFilter::decode(&[0, 1]).is_err());
        assert!(BloomFilter::decode(&[31, 1]).is_err());
    }
}
