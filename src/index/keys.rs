//! Where index records live in the instance's engine.
//!
//! Every internal key starts with U+0000, which user keys may not: the server refuses
//! such keys and user scans start after them, so no user key can reach or collide with
//! an index record (a user is free to write `idx:...`).
//!
//! ```text
//! \0idx:{index}@{generation}:{term}:meta          Meta (postings::Meta)
//! \0idx:{index}@{generation}:{term}:blk:{000001}  block of postings (postings::encode_block)
//! \0doc:{id as 16 hex digits}                      the key of a live record version
//! \0skip:{index}@{generation}:{key}                why the record is not indexed (on_error = skip)
//! \0sys:registry                                   the index registry (JSON)
//! ```
//!
//! `{term}` is the term's order-preserving text ([`super::term::encode`]); the
//! generation changes on every (re)build, so a new build never mixes with the one being
//! served, and the old one's records are deleted after the swap.
//!
//! A doc id is the engine sequence number of the write that put a record's current
//! version ([`crate::engine::Db::get_versioned`] returns it with the value): a posting
//! `(id, key)` is live exactly while the record at `key` still has that version. The
//! `doc` records list the live versions of the records in some index's scope in id
//! order, which is the order builds and `verify` go through them.

use std::fmt::Write as _;

/// The first byte of every internal key.
pub const INTERNAL: &str = "\0";
/// The smallest key a user may write: user scans start here.
pub const FIRST_USER_KEY: &str = "\u{1}";

/// The registry record.
pub const REGISTRY: &str = "\0sys:registry";
/// Format 1's doc id counter (deleted when an instance is upgraded).
pub const OLD_NEXT_ID: &str = "\0sys:next_id";

/// Whether `key` is internal (a user may not write or see it).
pub fn is_internal(key: &[u8]) -> bool {
    key.first() == Some(&0)
}

/// `\0idx:{index}@{generation}:`: the prefix of one generation's postings.
pub fn index_prefix(index: &str, generation: u64) -> String {
    format!("\0idx:{index}@{generation}:")
}

/// The prefix of one term's records: `\0idx:{index}@{gen}:{term}:`.
pub fn term_base(index_prefix: &str, term_text: &str) -> String {
    let mut s = String::with_capacity(index_prefix.len() + term_text.len() + 1);
    s.push_str(index_prefix);
    s.push_str(term_text);
    s.push(':');
    s
}

/// A term's meta key.
pub fn meta_key(term_base: &str) -> String {
    format!("{term_base}meta")
}

/// A term's block key.
pub fn block_key(term_base: &str, number: u32) -> String {
    format!("{term_base}blk:{number:06}")
}

/// The term text of a meta key under `index_prefix`, or `None` if `key` is not one.
pub fn term_of_meta_key<'a>(index_prefix: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(index_prefix)?.strip_suffix(":meta")
}

/// The prefix of format 1's `pk` records (deleted when an instance is upgraded).
pub const OLD_PK_PREFIX: &str = "\0pk:";
/// The prefix of every `doc` record.
pub const DOC_PREFIX: &str = "\0doc:";

/// `\0doc:{id:016x}`: ids sort in key order.
pub fn doc_key(id: u64) -> String {
    let mut s = String::with_capacity(21);
    s.push_str(DOC_PREFIX);
    let _ = write!(s, "{id:016x}");
    s
}

/// The id of a `doc` key.
pub fn id_of_doc_key(key: &str) -> Option<u64> {
    let hex = key.strip_prefix(DOC_PREFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// `\0skip:{index}@{gen}:` — the prefix of one generation's skipped records.
pub fn skip_prefix(index: &str, generation: u64) -> String {
    format!("\0skip:{index}@{generation}:")
}

/// An exclusive upper bound for the keys of every term whose text is `<= hi` under
/// `index_prefix` (range scans start at `index_prefix + lo`).
///
/// Keys are `prefix + term + ":" + suffix`, so key order is the order of `term + ":"`,
/// which differs from term order when one term is a prefix of another: `"a"` sorts
/// before `"a!"` but `"a:meta"` after `"a!:meta"`. Every term `t <= hi` has
/// `t + ":" + anything < hi[..k] + ";"`, where `k` is the first byte of `hi` below `;`
/// (or the end of `hi`); callers filter the terms they read by their decoded value.
pub fn range_upper_bound(index_prefix: &str, hi: &str) -> String {
    let k = hi.bytes().position(|b| b < b';').unwrap_or(hi.len());
    format!("{index_prefix}{};", &hi[..k])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_round_trip() {
        let p = index_prefix("by_city", 3);
        let base = term_base(&p, "sPorto:Alegre");
        assert_eq!(meta_key(&base), "\0idx:by_city@3:sPorto:Alegre:meta");
        assert_eq!(
            block_key(&base, 1),
            "\0idx:by_city@3:sPorto:Alegre:blk:000001"
        );
        assert_eq!(
            term_of_meta_key(&p, &meta_key(&base)),
            Some("sPorto:Alegre")
        );
        assert_eq!(term_of_meta_key(&p, &block_key(&base, 7)), None);
        assert_eq!(id_of_doc_key(&doc_key(0xabc)), Some(0xabc));
        assert!(doc_key(9) < doc_key(10) && doc_key(255) < doc_key(256));
        assert!(is_internal(doc_key(1).as_bytes()) && !is_internal(b"idx:x"));
    }

    proptest! {
        /// Every term <= hi has all its keys below the bound.
        #[test]
        fn range_bound_covers_every_smaller_term(
            hi in "[ -~]{0,6}",
            t in "[ -~]{0,6}",
            suffix in prop_oneof![Just("meta".to_string()), (1u32..999_999).prop_map(|n| format!("blk:{n:06}"))],
        ) {
            let p = index_prefix("i", 1);
            let bound = range_upper_bound(&p, &hi);
            let key = format!("{}{}", term_base(&p, &t), suffix);
            if t <= hi {
                prop_assert!(key < bound, "{key:?} !< {bound:?}");
            }
            prop_assert!(key > p);
        }
    }
}
