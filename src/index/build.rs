//! Building a generation of an index over existing data while writes go on, and
//! deleting a generation's records.
//!
//! A build runs in three steps:
//! 1. **Catalog.** Records in the scope that are not in the `doc` catalog yet (no
//!    index covered them when they were written) get their `doc` record, under the
//!    writer lock, unless a write got there first. A doc id is the sequence number of
//!    the record's current version, so nothing else about the record changes.
//! 2. **Postings, in doc id order.** The `doc` records are read in id order from a
//!    snapshot; every live record in scope is extracted and its posting appended to its
//!    terms' lists, so lists are written already sorted and memory stays bounded.
//!    Writes during the build keep the catalog current (the generation being built is
//!    in the set, so its scope is catalogued) but do not touch its postings: the build
//!    reads them in a later round.
//! 3. **Swap.** When a round finds few new records, the last one runs under the writer
//!    lock and the generation becomes the served one in the same step (skip records of
//!    records since fixed or deleted are dropped first); the previous one is deleted in
//!    the background.

use std::sync::Arc;

use super::error::{IndexError, Result};
use super::keys;
use super::registry::Gen;
use super::tasks::Task;
use super::write::{self, current_id, Appender, Outcome};
use super::Indexes;
use crate::engine::{Db, Snapshot, WriteBatch};

/// Records per engine batch during builds and drops.
const CHUNK: usize = 512;
/// A build's last round runs under the writer lock once a round finds fewer records
/// than this.
const CATCH_UP: u64 = 2_000;

fn cancelled(task: &Task) -> Result<()> {
    if task.is_cancelled() {
        Err(IndexError::Conflict("cancelled".into()))
    } else {
        Ok(())
    }
}

/// Deletes every key starting with one of `prefixes`, in batches, reporting the count
/// deleted so far to `progress`.
pub(crate) fn delete_prefixes(db: &Db, prefixes: &[String], progress: &dyn Fn(u64)) -> Result<u64> {
    let mut deleted = 0;
    for prefix in prefixes {
        let snap = db.snapshot();
        let mut batch = WriteBatch::new();
        for item in snap.iter_prefix(prefix)? {
            let (k, _) = item?;
            batch.delete(k);
            if batch.len() >= CHUNK * 4 {
                deleted += batch.len() as u64;
                db.write_batch(std::mem::take(&mut batch))?;
                progress(deleted);
            }
        }
        deleted += batch.len() as u64;
        db.write_batch(batch)?;
    }
    Ok(deleted)
}

/// Deletes generation `generation` of `name` and takes it off the garbage list.
pub fn drop_generation(ix: &Indexes, name: &str, generation: u64, task: &Task) -> Result<()> {
    let db = &ix.shared().db;
    let n = delete_prefixes(
        db,
        &[
            keys::index_prefix(name, generation),
            keys::skip_prefix(name, generation),
        ],
        &|n| task.progress(n, n),
    )?;
    task.progress(n, n);
    // A generation replaced by a rebuild leaves its scope covered: only a dropped
    // index can leave `doc` records no index needs.
    if !ix.set().entries.contains_key(name) {
        sweep_catalog(ix, task)?;
    }
    ix.update(|s| s.garbage.retain(|g| g != &(name.to_string(), generation)))?;
    Ok(())
}

/// Deletes the `doc` records that no longer name a live version in some index's scope.
///
/// Writes keep the catalog exact only for keys some index covers: a record rewritten or
/// deleted while no index covered it leaves its old `doc` record behind, and one whose
/// last index was dropped no longer needs its own. A stale record would make a later
/// build index a dead version, so every build sweeps before it catalogues, and every
/// drop of an index sweeps after it (a drop that only retires a generation replaced by
/// a rebuild does not: the index still covers its scope). A version never becomes live
/// again, so a stale record can be deleted at any time; one that is live but out of
/// scope is deleted under the writer lock, where the set cannot change.
fn sweep_catalog(ix: &Indexes, task: &Task) -> Result<()> {
    let db = &ix.shared().db;
    let snap = db.snapshot();
    let mut candidates: Vec<(String, u64, String)> = Vec::new();
    let sweep = |candidates: &mut Vec<(String, u64, String)>| -> Result<()> {
        if candidates.is_empty() {
            return Ok(());
        }
        let _w = ix.lock_settled()?;
        let set = ix.set();
        let mut batch = WriteBatch::new();
        for (doc, id, key) in candidates.drain(..) {
            if current_id(db, &key)? != Some(id) || !set.in_scope_anywhere(&key) {
                batch.delete(doc);
            }
        }
        db.write_batch(batch)?;
        Ok(())
    };
    let set = ix.set();
    for item in snap.iter_prefix(keys::DOC_PREFIX)? {
        let (doc, key) = item?;
        let Some(id) = keys::id_of_doc_key(&doc) else {
            continue;
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        if set.in_scope_anywhere(&key) && snap.get_versioned(&key)?.map(|(v, _)| v) == Some(id) {
            continue;
        }
        candidates.push((doc, id, key));
        if candidates.len() >= CHUNK {
            cancelled(task)?;
            sweep(&mut candidates)?;
        }
    }
    sweep(&mut candidates)
}

/// Builds `gen` (registered as the building generation of its index).
pub fn build(ix: &Indexes, gen: &Arc<Gen>, task: &Task) -> Result<()> {
    let shared = ix.shared();
    let db = &shared.db;
    // A build resumed after a restart starts from nothing.
    delete_prefixes(db, &[gen.prefix.clone(), gen.skip_prefix()], &|_| {})?;
    sweep_catalog(ix, task)?;
    let total = catalog(ix, gen, task)?;
    // Every record in scope is catalogued now: the records to go through are known
    // before the first round (writes meanwhile add to them).
    task.progress(0, total);

    let mut appender = Appender::default();
    let mut after = 0u64;
    let mut done = 0u64;
    loop {
        cancelled(task)?;
        let snap = db.snapshot();
        let round = postings_round(db, &snap, gen, task, &mut appender, after, (done, total))?;
        after = round.after;
        done += round.records;
        task.progress(done, total.max(done));
        if round.records >= CATCH_UP {
            continue;
        }
        // The last round, under the writer lock: nothing is written meanwhile.
        let w = ix.lock_settled()?;
        cancelled(task)?;
        // (Nothing is written meanwhile: a snapshot is the current state.)
        let snap = db.snapshot();
        let round = postings_round(db, &snap, gen, task, &mut appender, after, (done, total))?;
        done += round.records;
        drop_stale_skips(db, gen)?;
        let mut old = None;
        ix.update_locked(|s| {
            if let Some(e) = s.entries.get_mut(&gen.def.index_name) {
                if e.building
                    .as_ref()
                    .is_some_and(|b| b.gen.number == gen.number)
                {
                    e.building = None;
                    old = e.ready.replace(Arc::clone(gen));
                    if let Some(o) = &old {
                        s.garbage.push((gen.def.index_name.clone(), o.number));
                    }
                }
            }
        })?;
        drop(w);
        task.progress(done, done);
        if let Some(o) = old {
            ix.spawn_drop(&gen.def.index_name, o.number, None);
        }
        tracing::info!(index = %gen.def.index_name, generation = gen.number, "index built and swapped in");
        return Ok(());
    }
}

/// Deletes the skip records of `gen` whose record has been deleted, or rewritten into
/// one the extractor reads, since the round that skipped it: a round skips records as
/// its snapshot has them, and writes leave the skip records of a generation being built
/// alone. Runs in the last round, under the writer lock, so what it leaves is exactly
/// the records that cannot be indexed when the generation is swapped in.
fn drop_stale_skips(db: &Db, gen: &Gen) -> Result<()> {
    let prefix = gen.skip_prefix();
    let mut batch = WriteBatch::new();
    for item in db.iter_prefix(&prefix)? {
        let (skip_key, _) = item?;
        let key = &skip_key[prefix.len()..];
        let stale = match db.get(key)? {
            None => true,
            Some(value) => matches!(
                write::extract(gen, &[(key, value.as_slice())], false)?.as_slice(),
                [Outcome::Terms(_)]
            ),
        };
        if stale {
            batch.delete(skip_key);
        }
    }
    db.write_batch(batch)?;
    Ok(())
}

/// Adds a `doc` record for every record in `gen`'s scope that has none. Returns the
/// number of records in the scope.
fn catalog(ix: &Indexes, gen: &Gen, task: &Task) -> Result<u64> {
    let shared = ix.shared();
    let db = &shared.db;
    let snap = db.snapshot();
    let mut missing: Vec<String> = Vec::new();
    let mut records = 0u64;
    let scope = if gen.def.scope_prefix.is_empty() {
        keys::FIRST_USER_KEY.to_string()
    } else {
        gen.def.scope_prefix.clone()
    };
    let flush = |missing: &mut Vec<String>| -> Result<()> {
        if missing.is_empty() {
            return Ok(());
        }
        let _w = ix.lock_settled()?;
        let mut batch = WriteBatch::new();
        for key in missing.drain(..) {
            // A write since the snapshot catalogued its new version, or deleted it:
            // nothing to do.
            let Some(id) = current_id(db, &key)? else {
                continue;
            };
            let doc = keys::doc_key(id);
            if db.get(&doc)?.is_none() {
                batch.put(doc, key.as_bytes());
            }
        }
        db.write_batch(batch)?;
        Ok(())
    };
    let mut iter = if gen.def.scope_prefix.is_empty() {
        snap.iter_range(scope.as_str()..)?
    } else {
        snap.iter_prefix(&scope)?
    };
    while let Some(item) = iter.next_versioned() {
        let (key, id, _) = item?;
        if keys::is_internal(key.as_bytes()) {
            break;
        }
        records += 1;
        if snap.get(keys::doc_key(id))?.is_none() {
            missing.push(key);
            if missing.len() >= CHUNK {
                cancelled(task)?;
                flush(&mut missing)?;
            }
        }
    }
    flush(&mut missing)?;
    Ok(records)
}

/// What one round of postings went through.
struct Round {
    /// The last doc id seen (the round's start when it saw none).
    after: u64,
    /// Records in scope it indexed (or listed as skipped).
    records: u64,
}

/// Appends the postings of the live docs after doc id `after` at `snap` (its `doc`
/// records in id order), writing every [`CHUNK`] docs; `progress` is the records done
/// before the round and the total, for the task's progress.
fn postings_round(
    db: &Db,
    snap: &Snapshot,
    gen: &Gen,
    task: &Task,
    appender: &mut Appender,
    after: u64,
    progress: (u64, u64),
) -> Result<Round> {
    let (done, total) = progress;
    let docs = snap.iter_range(keys::doc_key(after + 1)..keys::doc_key(u64::MAX))?;
    let mut round = Round { after, records: 0 };
    let mut chunk = Vec::with_capacity(CHUNK);
    for item in docs {
        let (doc, key) = item?;
        let Some(id) = keys::id_of_doc_key(&doc) else {
            continue;
        };
        round.after = id;
        let Ok(key) = String::from_utf8(key) else {
            continue;
        };
        if !gen.def.in_scope(&key) {
            continue;
        }
        // The catalog and the records are read at one snapshot, so the version found
        // is the one the doc record names; anything else is not this doc's.
        let Some((version, value)) = snap.get_versioned(&key)? else {
            continue;
        };
        if version != id {
            continue;
        }
        chunk.push((id, key, value));
        round.records += 1;
        if chunk.len() >= CHUNK {
            cancelled(task)?;
            write_chunk(db, gen, task, appender, &chunk)?;
            chunk.clear();
            let done = done + round.records;
            task.progress(done, total.max(done));
        }
    }
    write_chunk(db, gen, task, appender, &chunk)?;
    Ok(round)
}

/// Appends the postings of one chunk of `(id, key, value)` and writes them.
pub(crate) fn write_chunk(
    db: &Db,
    gen: &Gen,
    task: &Task,
    appender: &mut Appender,
    chunk: &[(u64, String, Vec<u8>)],
) -> Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let entries: Vec<(&str, &[u8])> = chunk
        .iter()
        .map(|(_, k, v)| (k.as_str(), v.as_slice()))
        .collect();
    // Existing data cannot be refused: a build records failures as skips.
    let outcomes = write::extract(gen, &entries, false)?;
    let read = |k: &str| -> Result<Option<Vec<u8>>> { Ok(db.get(k)?) };
    let mut batch = WriteBatch::new();
    let mut skipped = 0;
    let appended = chunk
        .iter()
        .zip(outcomes)
        .try_for_each(|((id, key, _), outcome)| {
            match outcome {
                Outcome::Terms(terms) => {
                    for t in terms {
                        // (A generation being built has no dictionary yet: it is not
                        // queried until it is swapped in.)
                        let base = keys::term_base(&gen.prefix, &t);
                        appender.load(&base, &read)?;
                        appender.append(&base, *id, key)?;
                    }
                }
                Outcome::Skipped(message) => {
                    skipped += 1;
                    batch.put(format!("{}{key}", gen.skip_prefix()), message);
                }
            }
            Ok::<(), IndexError>(())
        });
    if let Err(e) = appended {
        appender.clear();
        return Err(e);
    }
    appender.emit(&mut batch);
    if let Err(e) = db.write_batch(batch) {
        appender.clear();
        return Err(e.into());
    }
    task.add_skipped(skipped);
    Ok(())
}
