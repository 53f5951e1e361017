//! Key and value generation shared by every engine, so all see the same bytes.
//!
//! Keys are 16-byte zero-padded decimal numbers (`0000000000000042`): ordered like the
//! integers they encode, valid UTF-8, and grouped by their 14-byte prefix into runs of
//! 100 consecutive keys. Values are pseudo-random (incompressible) bytes derived from
//! the key's number, so a read can check that it got the value written for its key.

/// Length of every key in bytes.
pub const KEY_LEN: usize = 16;

/// Length of the prefix shared by a group of [`GROUP_SIZE`] consecutive keys.
pub const PREFIX_LEN: usize = 14;

/// Number of keys sharing one [`PREFIX_LEN`]-byte prefix (the last two digits vary).
pub const GROUP_SIZE: u64 = 100;

/// Largest key number that fits in [`KEY_LEN`] decimal digits.
pub const MAX_KEY_NUMBER: u64 = 9_999_999_999_999_999;

/// A key.
pub type Key = [u8; KEY_LEN];

/// The key of number `i`: `i` in decimal, zero-padded to 16 bytes.
pub fn key(i: u64) -> Key {
    debug_assert!(i <= MAX_KEY_NUMBER);
    let mut k = [b'0'; KEY_LEN];
    let mut n = i;
    let mut pos = KEY_LEN;
    while n > 0 {
        pos -= 1;
        k[pos] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// A key of the same length as [`key`]`(i)` that is never written: its last byte is
/// `x` instead of a digit, so it sorts among the existing keys (inside every table's
/// key range) but matches none of them.
pub fn missing_key(i: u64) -> Key {
    let mut k = key(i);
    k[KEY_LEN - 1] = b'x';
    k
}

/// The prefix shared by keys `group * 100 ..= group * 100 + 99`.
pub fn group_prefix(group: u64) -> [u8; PREFIX_LEN] {
    let k = key(group * GROUP_SIZE);
    let mut p = [0u8; PREFIX_LEN];
    p.copy_from_slice(&k[..PREFIX_LEN]);
    p
}

/// Fills `out` with the value of key number `i` (pseudo-random bytes, SplitMix64).
pub fn fill_value(i: u64, out: &mut [u8]) {
    let mut state = i ^ 0x5bd1_e995_9e37_79b9;
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let bytes = z.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(i: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        fill_value(i, &mut v);
        v
    }

    #[test]
    fn keys_are_padded_decimal_and_ordered() {
        assert_eq!(&key(0), b"0000000000000000");
        assert_eq!(&key(42), b"0000000000000042");
        assert_eq!(&key(MAX_KEY_NUMBER), b"9999999999999999");
        assert!(key(99) < key(100));
        assert_eq!(&missing_key(42), b"000000000000004x");
        assert!(key(42) < missing_key(42) && missing_key(42) < key(50));
    }

    #[test]
    fn a_group_prefix_covers_exactly_its_hundred_keys() {
        let p = group_prefix(7);
        assert_eq!(&p, b"00000000000007");
        assert!((700..800).all(|i| key(i).starts_with(&p)));
        assert!(!key(699).starts_with(&p) && !key(800).starts_with(&p));
    }

    #[test]
    fn values_depend_on_the_key_and_have_the_requested_length() {
        assert_eq!(value(1, 100).len(), 100);
        assert_eq!(value(1, 100), value(1, 100));
        assert_ne!(value(1, 100), value(2, 100));
        assert_eq!(value(3, 13)[..], value(3, 100)[..13]);
    }
}
