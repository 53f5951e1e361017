//! The write path: a user batch becomes one engine batch holding the records, their doc
//! ids and the postings of every index they are in, so records and postings never
//! disagree, even after a crash.
//!
//! Terms are extracted before the writer lock is taken (extraction may run plugins);
//! the lock covers assigning doc ids, updating the posting tails and committing, so
//! every read-modify-write of a posting block sees the previous one.

use std::collections::HashMap;
use std::sync::Arc;

use super::def::{index_terms, OnError, MAX_TERMS_PER_RECORD, MAX_TERM_LEN};
use super::error::{IndexError, Result};
use super::keys;
use super::postings::{encode_block, Block, Meta, Posting};
use super::registry::{Gen, IndexSet};
use super::term;
use crate::engine::{BatchOp, Db, WriteBatch};
use crate::extractor::ExtractError;

/// Posting tails cached between writes; beyond this many the cache is emptied.
const MAX_CACHED_TAILS: usize = 100_000;

/// The tail of one term's list: its meta record and the postings of its last block.
struct Tail {
    meta: Meta,
    last: Vec<Posting>,
    dirty: bool,
}

/// Appends postings to posting lists, keeping the tails it touched, and writes the
/// changed meta records and blocks into a batch.
///
/// Reading a tail can fail and appending to one needs the posting's doc id, which a
/// write learns only as its batch is queued: [`load`](Appender::load) reads first,
/// [`append`](Appender::append) then only works in memory.
#[derive(Default)]
pub struct Appender {
    tails: HashMap<String, Tail>,
    touched: Vec<String>,
    sealed: Vec<(String, u32, Vec<Posting>)>,
}

fn damaged(message: String) -> IndexError {
    IndexError::Damaged(super::postings::PostingsError(message))
}

impl Appender {
    /// Caches the tail of the term whose records start with `base`, reading it with
    /// `read` unless it is cached already.
    pub fn load(
        &mut self,
        base: &str,
        read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>,
    ) -> Result<()> {
        if self.tails.contains_key(base) {
            return Ok(());
        }
        let meta = match read(&keys::meta_key(base))? {
            Some(b) => Meta::decode(&b)?,
            None => Meta::default(),
        };
        let last = match meta.last_block() {
            Some(n) => match read(&keys::block_key(base, n))? {
                Some(b) => Block::decode(&b)?.to_postings()?,
                None => return Err(damaged(format!("block {n} of {base:?} is missing"))),
            },
            None => Vec::new(),
        };
        self.tails.insert(
            base.to_string(),
            Tail {
                meta,
                last,
                dirty: false,
            },
        );
        Ok(())
    }

    /// Appends the posting `(id, key)` (`id` larger than every id in the list) to the
    /// list of the term whose records start with `base`, whose tail must be
    /// [loaded](Appender::load). Returns whether the term is new (its list had no
    /// posting).
    pub fn append(&mut self, base: &str, id: u64, key: &str) -> Result<bool> {
        let Some(tail) = self.tails.get_mut(base) else {
            return Err(IndexError::Invalid(format!(
                "the tail of {base:?} was not loaded before an append"
            )));
        };
        let created = tail.meta.total == 0;
        let previous = tail.meta.last_block();
        let (_, new_block) = tail.meta.append(id)?;
        if new_block {
            let full = std::mem::take(&mut tail.last);
            if let (true, Some(n)) = (tail.dirty, previous) {
                self.sealed.push((base.to_string(), n, full));
            }
        }
        tail.last.push((id, key.to_string()));
        if !tail.dirty {
            tail.dirty = true;
            self.touched.push(base.to_string());
        }
        Ok(created)
    }

    /// Writes every meta record and block changed since the last call into `out`.
    pub fn emit(&mut self, out: &mut WriteBatch) {
        let encode = |p: &[Posting]| encode_block(p.iter().map(|(id, k)| (*id, k.as_str())));
        for (base, n, postings) in self.sealed.drain(..) {
            out.put(keys::block_key(&base, n), encode(&postings));
        }
        for base in self.touched.drain(..) {
            if let Some(tail) = self.tails.get_mut(&base) {
                tail.dirty = false;
                out.put(keys::meta_key(&base), tail.meta.encode());
                if let Some(n) = tail.meta.last_block() {
                    out.put(keys::block_key(&base, n), encode(&tail.last));
                }
            }
        }
    }

    /// Forgets every cached tail (after a failed write, or to bound memory).
    pub fn clear(&mut self) {
        self.tails.clear();
        self.touched.clear();
        self.sealed.clear();
    }

    /// Empties the cache when it has grown past its bound (nothing may be pending).
    pub fn trim(&mut self) {
        if self.tails.len() > MAX_CACHED_TAILS {
            self.clear();
        }
    }
}

/// What one index made of one record.
pub enum Outcome {
    /// The term texts to post the record under.
    Terms(Vec<String>),
    /// Extraction failed and the index skips such records: why.
    Skipped(String),
}

/// The terms of `key`/`value` for `gen`, encoded, or why there are none.
fn finish(
    gen: &Gen,
    extracted: std::result::Result<Vec<crate::extractor::Term>, ExtractError>,
) -> std::result::Result<Vec<String>, String> {
    let terms = extracted.map_err(|e| e.message)?;
    let terms = index_terms(gen.def.index_type, terms);
    if terms.len() > MAX_TERMS_PER_RECORD {
        return Err(format!(
            "{} terms (at most {MAX_TERMS_PER_RECORD} per record)",
            terms.len()
        ));
    }
    let mut out = Vec::with_capacity(terms.len());
    for t in &terms {
        let text = term::encode(t).map_err(|e| e.to_string())?;
        if text.len() > MAX_TERM_LEN {
            return Err(format!(
                "a term of {} bytes (at most {MAX_TERM_LEN})",
                text.len()
            ));
        }
        out.push(text);
    }
    Ok(out)
}

/// Extracts the terms of `entries` (key, value) for `gen`: one outcome per entry. A
/// failure is a rejection of the whole batch when `reject` and the index says
/// `on_error = "reject"`, a skip otherwise.
pub fn extract(gen: &Gen, entries: &[(&str, &[u8])], reject: bool) -> Result<Vec<Outcome>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let results = gen.extractor.extract_batch(entries);
    let mut out = Vec::with_capacity(entries.len());
    for ((key, _), r) in entries.iter().zip(results) {
        match finish(gen, r) {
            Ok(terms) => out.push(Outcome::Terms(terms)),
            Err(message) if reject && gen.def.on_error == OnError::Reject => {
                return Err(IndexError::Rejected {
                    index: gen.def.index_name.clone(),
                    key: key.to_string(),
                    message,
                })
            }
            Err(message) => out.push(Outcome::Skipped(message)),
        }
    }
    if out.len() != entries.len() {
        return Err(IndexError::Invalid(format!(
            "extractor {} returned {} results for {} records",
            gen.extractor.describe(),
            out.len(),
            entries.len()
        )));
    }
    Ok(out)
}

/// The outcomes of every served index for every put of a batch: `per_op[i]` lists
/// `(generation, outcome)` for op `i`.
pub struct Extracted {
    /// The set the terms were extracted under.
    pub version: u64,
    per_op: Vec<Vec<(Arc<Gen>, Outcome)>>,
}

/// Batches with at least this many (record, index) extractions extract for each index on
/// its own thread; below it, a thread costs more than it saves.
const PARALLEL_EXTRACTIONS: usize = 256;

/// One index's share of a batch: which ops are in its scope, and their keys and values.
struct Share<'a> {
    gen: &'a Arc<Gen>,
    which: Vec<usize>,
    entries: Vec<(&'a str, &'a [u8])>,
}

/// Extracts, for every served index, the terms of the puts in its scope.
///
/// With several indexes and a large batch, each index extracts on its own (scoped)
/// thread: extractors are independent (a plugin gives each concurrent call its own
/// instance), and extraction is most of the CPU an indexed write costs. Outcomes and
/// errors are reported in index order either way, so the result does not depend on
/// which thread finished first.
pub fn extract_batch(set: &IndexSet, batch: &WriteBatch) -> Result<Extracted> {
    let ops = batch.ops();
    let mut per_op: Vec<Vec<(Arc<Gen>, Outcome)>> = (0..ops.len()).map(|_| Vec::new()).collect();
    let work: Vec<Share> = set
        .ready()
        .map(|gen| {
            let mut which = Vec::new();
            let mut entries: Vec<(&str, &[u8])> = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                if let BatchOp::Put { key, value } = op {
                    let Ok(key) = std::str::from_utf8(key) else {
                        continue;
                    };
                    if gen.def.in_scope(key) {
                        which.push(i);
                        entries.push((key, value));
                    }
                }
            }
            Share {
                gen,
                which,
                entries,
            }
        })
        .collect();
    let total: usize = work.iter().map(|w| w.entries.len()).sum();
    let parallel = work.len() > 1
        && total >= PARALLEL_EXTRACTIONS
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let outcomes: Vec<Result<Vec<Outcome>>> = if parallel {
        std::thread::scope(|scope| {
            let (first, rest) = work
                .split_first()
                .map_or((None, &[][..]), |(f, r)| (Some(f), r));
            let handles: Vec<_> = rest
                .iter()
                .map(|w| scope.spawn(move || extract(w.gen, &w.entries, true)))
                .collect();
            let mut all = Vec::with_capacity(work.len());
            all.extend(first.map(|w| extract(w.gen, &w.entries, true)));
            for h in handles {
                all.push(h.join().unwrap_or_else(|_| {
                    Err(IndexError::Invalid("an extractor thread panicked".into()))
                }));
            }
            all
        })
    } else {
        work.iter()
            .map(|w| extract(w.gen, &w.entries, true))
            .collect()
    };
    for (w, outcome) in work.iter().zip(outcomes) {
        for (i, outcome) in w.which.iter().zip(outcome?) {
            per_op[*i].push((Arc::clone(w.gen), outcome));
        }
    }
    Ok(Extracted {
        version: set.version,
        per_op,
    })
}

/// The writer's state, behind the instance's writer lock.
///
/// A write holds the lock while it reads what it needs, *submits* its engine batch
/// (which fixes its place in the commit order and so its sequence numbers, which are
/// its records' doc ids) and appends to the tails, then waits for the commit without
/// the lock, so concurrent writers share WAL syncs (group commit). Batches submitted
/// but not yet committed are invisible to engine reads, so the state they changed is
/// kept here until they commit: the tails stay cached (never trimmed while a write is
/// in flight) and the doc ids they gave their records are in `pending`.
#[derive(Default)]
pub struct WriterState {
    /// Posting tails of the served generations.
    pub appender: Appender,
    /// Records written by submitted, uncommitted batches: key → (doc id of the new
    /// version, or `None` when deleted; the ticket of the batch that wrote it).
    pub pending: HashMap<String, (Option<u64>, u64)>,
    /// Batches submitted and not yet committed.
    pub in_flight: u64,
    /// The last ticket handed out.
    pub last_ticket: u64,
}

/// The doc id of the current version of `key` in the engine's current state: the
/// sequence number that wrote it.
pub fn current_id(db: &Db, key: &str) -> Result<Option<u64>> {
    Ok(db.get_versioned(key)?.map(|(seq, _)| seq))
}

impl WriterState {
    /// Builds the engine batch for `batch` under `set` with the terms in `extracted`
    /// (extracted under the same set) and submits it. Updates the posting tails: on
    /// failure to commit the caller must [`reset`](WriterState::reset).
    ///
    /// The engine batch holds `batch`'s operations first, so operation `i` gets the
    /// sequence number `first + i`, which is the doc id of the record it puts; then the
    /// `doc` records and the postings that name those ids. Everything that reads the
    /// engine happens before the submit; what runs while the engine's queue is locked
    /// only assembles.
    ///
    /// Returns the pending commit and the ticket under which its records' ids were
    /// recorded in `pending`.
    pub fn submit(
        &mut self,
        db: &Db,
        set: &IndexSet,
        batch: &WriteBatch,
        extracted: Extracted,
    ) -> Result<(crate::engine::PendingCommit, u64)> {
        if self.in_flight == 0 {
            self.appender.trim();
        }
        // Reads: the version each key has before this batch, and the tails of every
        // term it posts to.
        let read = |k: &str| -> Result<Option<Vec<u8>>> { Ok(db.get(k)?) };
        let mut before: HashMap<&str, Option<u64>> = HashMap::new();
        let mut unread: Vec<&str> = Vec::new();
        for (op, outcomes) in batch.ops().iter().zip(&extracted.per_op) {
            let Ok(key) = std::str::from_utf8(op.key()) else {
                continue;
            };
            if !set.in_scope_anywhere(key) {
                continue;
            }
            if !before.contains_key(key) {
                // Keys an uncommitted batch wrote are known here; the others are read
                // below, all in one batched lookup.
                before.insert(key, self.pending.get(key).and_then(|(id, _)| *id));
                if !self.pending.contains_key(key) {
                    unread.push(key);
                }
            }
            for (gen, outcome) in outcomes {
                if let Outcome::Terms(terms) = outcome {
                    for t in terms {
                        self.appender
                            .load(&keys::term_base(&gen.prefix, t), &read)?;
                    }
                }
            }
        }
        if !unread.is_empty() {
            let versions = db.snapshot().get_many_versioned(&unread)?;
            for (key, version) in unread.into_iter().zip(versions) {
                before.insert(key, version.map(|(seq, _)| seq));
            }
        }
        let appender = &mut self.appender;
        let mut current = before;
        let pending = db.submit_with(|first| -> Result<WriteBatch> {
            let mut out = WriteBatch::new();
            for op in batch.ops() {
                match op {
                    BatchOp::Put { key, value } => out.put(key, value),
                    BatchOp::Delete { key } => out.delete(key),
                };
            }
            for (i, (op, outcomes)) in batch.ops().iter().zip(&extracted.per_op).enumerate() {
                let Ok(key) = std::str::from_utf8(op.key()) else {
                    continue;
                };
                let Some(old) = current.get(key).copied() else {
                    continue;
                };
                if let Some(old) = old {
                    out.delete(keys::doc_key(old));
                }
                match op {
                    BatchOp::Put { .. } => {
                        let id = first + i as u64;
                        out.put(keys::doc_key(id), key);
                        current.insert(key, Some(id));
                        for (gen, outcome) in outcomes {
                            let skip_key = format!("{}{key}", gen.skip_prefix());
                            match outcome {
                                Outcome::Terms(terms) => {
                                    for t in terms {
                                        let base = keys::term_base(&gen.prefix, t);
                                        if appender.append(&base, id, key)? {
                                            // Before the commit: the dictionary holds
                                            // every committed term.
                                            gen.terms.insert(t);
                                        }
                                    }
                                    // A build lists the records it cannot read whatever
                                    // on_error says: a record indexed now leaves the
                                    // list. A new key was never listed.
                                    if old.is_some() {
                                        out.delete(skip_key);
                                    }
                                }
                                Outcome::Skipped(message) => {
                                    out.put(skip_key, message.as_str());
                                }
                            }
                        }
                    }
                    BatchOp::Delete { .. } => {
                        current.insert(key, None);
                        if old.is_none() {
                            // No record: no doc id, no skip record to remove.
                            continue;
                        }
                        for gen in set.ready() {
                            if gen.def.in_scope(key) {
                                out.delete(format!("{}{key}", gen.skip_prefix()));
                            }
                        }
                    }
                }
            }
            appender.emit(&mut out);
            Ok(out)
        })?;
        self.last_ticket += 1;
        let ticket = self.last_ticket;
        for (key, id) in current {
            self.pending.insert(key.to_string(), (id, ticket));
        }
        Ok((pending, ticket))
    }

    /// Forgets what the batch of `ticket` changed, once it is committed.
    pub fn committed(&mut self, ticket: u64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.pending.retain(|_, (_, t)| *t != ticket);
    }

    /// Drops every cached state, after waiting for every submitted batch: the engine
    /// is then the whole truth again. Used after a failure that may have left the
    /// cached state ahead of the engine.
    pub fn reset(&mut self, db: &Db) {
        if let Err(e) = db.barrier() {
            tracing::warn!(error = %e, "index writer: barrier failed while resetting");
        }
        self.appender.clear();
        self.pending.clear();
    }
}
