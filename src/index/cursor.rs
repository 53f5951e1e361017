//! Query cursors: the opaque `next_cursor` text, and the table of open cursors that
//! keeps each query's snapshot (and the index generations its plan used) on the server
//! until the cursor's time-to-live runs out.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;

use super::error::{IndexError, Result};
use super::registry::Gen;
use crate::engine::Snapshot;

/// An open cursor: the snapshot and generations its query reads.
pub(super) struct OpenCursor {
    pub(super) snap: Arc<Snapshot>,
    pub(super) gens: HashMap<String, Arc<Gen>>,
    pub(super) fingerprint: u64,
    pub(super) used: Instant,
}

/// The open cursors of an instance.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<HashMap<u64, OpenCursor>>,
}

impl Cursors {
    /// Open cursors right now.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Whether no cursor is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes cursor `id` out of the table, first dropping every cursor idle for longer
    /// than `ttl`.
    pub(super) fn take(&self, id: u64, ttl: Duration) -> Option<OpenCursor> {
        let mut open = self.open.lock();
        let now = Instant::now();
        open.retain(|_, c| now.duration_since(c.used) <= ttl);
        open.remove(&id)
    }

    /// Keeps `cursor` as `id`, dropping the least recently used ones beyond `max`.
    pub(super) fn put(&self, id: u64, cursor: OpenCursor, max: usize) {
        let mut open = self.open.lock();
        while open.len() >= max.max(1) {
            let oldest = open.iter().min_by_key(|(_, c)| c.used).map(|(k, _)| *k);
            match oldest {
                Some(k) => open.remove(&k),
                None => break,
            };
        }
        open.insert(id, cursor);
    }
}

pub(super) fn random_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

pub(super) fn encode_cursor(id: u64, after: u64, fingerprint: u64) -> String {
    let mut raw = Vec::with_capacity(25);
    raw.push(1u8);
    raw.extend_from_slice(&id.to_be_bytes());
    raw.extend_from_slice(&after.to_be_bytes());
    raw.extend_from_slice(&fingerprint.to_be_bytes());
    format!(
        "q1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

pub(super) fn decode_cursor(text: &str) -> Result<(u64, u64, u64)> {
    let bad = || IndexError::BadCursor("not a cursor from this server".into());
    let body = text.strip_prefix("q1.").ok_or_else(bad)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad())?;
    if raw.len() != 25 || raw[0] != 1 {
        return Err(bad());
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[1 + i * 8..9 + i * 8]);
        u64::from_be_bytes(b)
    };
    Ok((word(0), word(1), word(2)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = encode_cursor(7, 1234, 99);
        assert_eq!(decode_cursor(&c).unwrap(), (7, 1234, 99));
        for bad in ["", "q1.", "q1.!!!", "k1.AAAA", &c[..c.len() - 2]] {
            assert!(
                matches!(decode_cursor(bad), Err(IndexError::BadCursor(_))),
                "{bad}"
            );
        }
    }
}
