//! The term dictionary of a `range` index: its terms in order, in memory, so a range
//! query finds the terms it covers without iterating over their posting blocks (a
//! term's blocks sort between its neighbours' meta records in the engine).
//!
//! Loaded on the first range query of a generation, then kept up to date by the writer,
//! which adds a term before the write that creates it is submitted: the dictionary
//! always holds every committed term (a query reads each term's meta record at its
//! snapshot, so a term too new for the snapshot is an empty list). Terms are never
//! removed: lists keep their dead postings until a rebuild, which is a new generation
//! with its own dictionary. Past [`MAX_TERMS`] the dictionary is dropped and range
//! queries iterate the engine instead.

use std::collections::BTreeSet;
use std::ops::Bound;

use parking_lot::RwLock;

/// The most terms kept in memory per generation.
pub const MAX_TERMS: usize = 1_000_000;

enum State {
    Unloaded,
    /// Being read from a snapshot; terms created meanwhile are collected here.
    Loading(BTreeSet<String>),
    Loaded(BTreeSet<String>),
    TooBig,
}

/// A generation's term dictionary.
pub struct TermDict(RwLock<State>);

impl Default for TermDict {
    fn default() -> Self {
        TermDict(RwLock::new(State::Unloaded))
    }
}

impl TermDict {
    /// Records a new term (called by the writer, under its lock).
    pub fn insert(&self, term: &str) {
        let mut state = self.0.write();
        match &mut *state {
            State::Loading(terms) | State::Loaded(terms) => {
                terms.insert(term.to_string());
                if terms.len() > MAX_TERMS {
                    *state = State::TooBig;
                }
            }
            State::Unloaded | State::TooBig => {}
        }
    }

    /// Starts loading, if nobody has: returns true when the caller must load it (and
    /// then call [`loaded`](Self::loaded)). Called under the writer lock.
    pub fn begin_load(&self) -> bool {
        let mut state = self.0.write();
        if matches!(*state, State::Unloaded) {
            *state = State::Loading(BTreeSet::new());
            true
        } else {
            false
        }
    }

    /// Whether a range query can use it.
    pub fn is_loaded(&self) -> bool {
        matches!(*self.0.read(), State::Loaded(_))
    }

    /// Ends a load with the terms read from the snapshot (`None`: too many).
    pub fn loaded(&self, read: Option<BTreeSet<String>>) {
        let mut state = self.0.write();
        let created = match std::mem::replace(&mut *state, State::TooBig) {
            State::Loading(t) => t,
            other => {
                *state = other;
                return;
            }
        };
        if let Some(mut terms) = read {
            terms.extend(created);
            if terms.len() <= MAX_TERMS {
                *state = State::Loaded(terms);
            }
        }
    }

    /// A failed load: back to unloaded, so a later query tries again.
    pub fn failed(&self) {
        let mut state = self.0.write();
        if matches!(*state, State::Loading(_)) {
            *state = State::Unloaded;
        }
    }

    /// The terms between `lower` and `upper` (as term texts), when loaded.
    pub fn range(&self, lower: Bound<&str>, upper: Bound<&str>) -> Option<Vec<String>> {
        match &*self.0.read() {
            State::Loaded(terms) => Some(terms.range::<str, _>((lower, upper)).cloned().collect()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_created_while_loading_are_kept() {
        let d = TermDict::default();
        d.insert("a");
        assert_eq!(d.range(Bound::Unbounded, Bound::Unbounded), None);
        assert!(d.begin_load());
        assert!(!d.begin_load());
        d.insert("c");
        d.loaded(Some(BTreeSet::from(["a".to_string(), "b".to_string()])));
        assert!(d.is_loaded());
        d.insert("d");
        assert_eq!(
            d.range(Bound::Included("b"), Bound::Excluded("d")),
            Some(vec!["b".to_string(), "c".to_string()])
        );
        let d = TermDict::default();
        assert!(d.begin_load());
        d.failed();
        assert!(d.begin_load());
        d.loaded(None);
        assert!(!d.is_loaded() && !d.begin_load());
    }
}
