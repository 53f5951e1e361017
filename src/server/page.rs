//! Pages of key-ordered results: bounds, limits and opaque cursors.
//!
//! A cursor names the last key a page returned; the next page starts strictly after
//! it. Keys are totally ordered, so following cursors never repeats or skips a key that
//! exists for the whole walk, whatever is written meanwhile.

use std::ops::Bound;

use base64::Engine as _;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use crate::engine::Db;

/// Values returned in one page stop growing past this many bytes (at least one entry
/// is always returned).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Query of the list routes (`GET /keys`, `GET /scan`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
    /// Only keys `>= start`.
    pub start: Option<String>,
    /// Only keys `< end`.
    pub end: Option<String>,
    /// Entries per page (default 100, at most 10000).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Resume after this key (the plain-text form of a cursor).
    pub start_after: Option<String>,
    /// `relaxed` (default) or `canonical` extended JSON for bson values.
    pub format: Option<String>,
}

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most entries one page may hold.
pub const MAX_LIMIT: usize = 10_000;

const CURSOR_TAG: &str = "k1.";

/// An opaque position: resume after this key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    /// The cursor as given to clients: `k1.` + base64url of the key.
    pub fn encode(&self) -> String {
        let mut s = String::from(CURSOR_TAG);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&self.0, &mut s);
        s
    }

    /// Reads a cursor a client sent back.
    pub fn decode(text: &str) -> ApiResult<Cursor> {
        let bad = || {
            ApiError::bad_parameter(format!(
                "cursor {text:?} is not a cursor this server issued"
            ))
        };
        let body = text.strip_prefix(CURSOR_TAG).ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad())?;
        String::from_utf8(bytes).map(Cursor).map_err(|_| bad())
    }
}

/// The checked `limit` of a request.
pub fn limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_parameter(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {n}"
        ))),
    }
}

/// The key range and size of one page.
#[derive(Debug, Clone)]
pub struct Page {
    /// Lower bound of keys.
    pub lower: Bound<Vec<u8>>,
    /// Upper bound of keys.
    pub upper: Bound<Vec<u8>>,
    /// Entries at most.
    pub limit: usize,
}

impl Page {
    /// The page a list request asks for.
    pub fn from_params(q: &ListParams) -> ApiResult<Page> {
        if q.cursor.is_some() && q.start_after.is_some() {
            return Err(ApiError::bad_parameter(
                "give cursor or start_after, not both",
            ));
        }
        // Keys starting with U+0000 are the indexes' records: user scans start after.
        let mut page = Page {
            lower: Bound::Included(crate::index::keys::FIRST_USER_KEY.as_bytes().to_vec()),
            upper: Bound::Unbounded,
            limit: limit(q.limit)?,
        };
        if let Some(start) = &q.start {
            page.raise_lower(Bound::Included(start.clone().into_bytes()));
        }
        if let Some(end) = &q.end {
            page.lower_upper(Bound::Excluded(end.clone().into_bytes()));
        }
        if let Some(prefix) = &q.prefix {
            page.restrict_to_prefix(prefix);
        }
        let after = match (&q.cursor, &q.start_after) {
            (Some(c), _) => Some(Cursor::decode(c)?.0),
            (None, Some(key)) => Some(key.clone()),
            (None, None) => None,
        };
        if let Some(after) = after {
            page.resume_after(after);
        }
        Ok(page)
    }

    /// Keeps only keys starting with `prefix`.
    pub fn restrict_to_prefix(&mut self, prefix: &str) {
        self.raise_lower(Bound::Included(prefix.as_bytes().to_vec()));
        if let Some(end) = prefix_end(prefix.as_bytes()) {
            self.lower_upper(Bound::Excluded(end));
        }
    }

    /// Keeps only keys after `key`.
    pub fn resume_after(&mut self, key: String) {
        self.raise_lower(Bound::Excluded(key.into_bytes()));
    }

    fn raise_lower(&mut self, bound: Bound<Vec<u8>>) {
        let tighter = match (&self.lower, &bound) {
            (Bound::Unbounded, _) => true,
            (_, Bound::Unbounded) => false,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b)) => b > a,
            (Bound::Included(a), Bound::Excluded(b)) => b >= a,
            (Bound::Excluded(a), Bound::Excluded(b)) => b > a,
        };
        if tighter {
            self.lower = bound;
        }
    }

    fn lower_upper(&mut self, bound: Bound<Vec<u8>>) {
        let tighter = match (&self.upper, &bound) {
            (Bound::Unbounded, _) => true,
            (_, Bound::Unbounded) => false,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b)) => b < a,
            (Bound::Included(a), Bound::Excluded(b)) => b <= a,
            (Bound::Excluded(a), Bound::Excluded(b)) => b < a,
        };
        if tighter {
            self.upper = bound;
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Reads one page from `db`, handing each entry to `visit`, which returns the bytes
/// it adds to the answer. Returns the cursor of the next page if more entries remain.
pub fn read(
    db: &Db,
    page: &Page,
    mut visit: impl FnMut(String, Vec<u8>) -> ApiResult<usize>,
) -> ApiResult<Option<Cursor>> {
    let iter = db.iter_range((page.lower.clone(), page.upper.clone()))?;
    let mut bytes = 0usize;
    let mut last: Option<String> = None;
    for (count, entry) in iter.enumerate() {
        let (key, value) = entry?;
        if count >= page.limit || bytes >= PAGE_BYTES {
            return Ok(last.map(Cursor));
        }
        last = Some(key.clone());
        bytes += visit(key, value)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for key in ["a", "users:1", "ünï/cødé ?&=", ""] {
            let c = Cursor(key.to_string());
            assert_eq!(Cursor::decode(&c.encode()).expect("decode"), c);
        }
        assert!(Cursor::decode("users:1").is_err());
        assert!(Cursor::decode("k1.!!!").is_err());
        assert!(Cursor::decode("k1._w").is_err(), "not UTF-8");
    }

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn bounds_keep_the_tightest() {
        let q = ListParams {
            prefix: Some("b".into()),
            start: Some("a".into()),
            end: Some("bm".into()),
            start_after: Some("b1".into()),
            ..ListParams::default()
        };
        let page = Page::from_params(&q).expect("page");
        assert_eq!(page.lower, Bound::Excluded(b"b1".to_vec()));
        assert_eq!(page.upper, Bound::Excluded(b"bm".to_vec()));
        assert!(Page::from_params(&ListParams {
            limit: Some(0),
            ..ListParams::default()
        })
        .is_err());
    }
}
