//! Building a generation of an index over existing data while writes go on, and
//! deleting a generation's records.
//!
//! A build runs in three steps:
//! 1. **Ids.** Records in the scope that have no doc id yet (no index covered them)
//!    get one, under the writer lock, unless a write got there first.
//! 2. **Postings, in doc id order.** The `doc` records are read in id order from a
//!    snapshot; every live record in scope is extracted and its id appended to its
//!    terms' lists, so lists are written already sorted and memory stays bounded.
//!    Writes during the build keep assigning ids (the generation being built is in
//!    the set, so its scope gets ids) but do not touch its postings: the build reads
//!    them in a later round.
//! 3. **Swap.** When the rounds have caught up, the last one runs under the writer lock
//!    and the generation becomes the served one in the same step (skip records of
//!    records since fixed or deleted are dropped first); the previous one is deleted in
//!    the background.

use std::sync::Arc;

use super::error::{IndexError, Result};
use super::keys;
use super::registry::Gen;
use super::tasks::Task;
use super::write::{self, current_id, encode_id, Appender, Outcome};
use super::Indexes;
use crate::engine::{Db, WriteBatch};

/// Records per engine batch during builds and drops.
const CHUNK: usize = 512;
/// A build's last round runs under the writer lock once fewer ids than this are left.
const CATCH_UP: u64 = 2_000;

fn cancelled(task: &Task) -> Result<()> {
    if task.is_cancelled() {
        Err(IndexError::Conflict("cancelled".into()))
    } else {
        Ok(())
    }
}

/// Deletes every key starting with one of `prefixes`, in batches.
fn delete_prefixes(db: &Db, prefixes: &[String], task: &Task) -> Result<u64> {
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
                task.progress(deleted, deleted);
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
        task,
    )?;
    task.progress(n, n);
    ix.update(|s| s.garbage.retain(|g| g != &(name.to_string(), generation)))?;
    Ok(())
}

/// Builds `gen` (registered as the building generation of its index).
pub fn build(ix: &Indexes, gen: &Arc<Gen>, task: &Task) -> Result<()> {
    let shared = ix.shared();
    let db = &shared.db;
    // A build resumed after a restart starts from nothing.
    delete_prefixes(db, &[gen.prefix.clone(), gen.skip_prefix()], task)?;
    assign_ids(ix, gen, task)?;
    // Every record has a doc id now: the ids to go through are known before the first
    // round (which reports its progress without a total).
    task.progress(0, shared.writer.lock().next_id.saturating_sub(1));

    let mut appender = Appender::default();
    let mut after = 0u64;
    loop {
        cancelled(task)?;
        let snap = db.snapshot();
        let docs = snap.iter_range(keys::doc_key(after + 1)..keys::doc_key(u64::MAX))?;
        let read = |k: &str| -> Result<Option<Vec<u8>>> { Ok(snap.get(k)?) };
        after = postings_round(db, gen, task, &mut appender, after, &read, docs)?;
        let next = shared.writer.lock().next_id;
        task.progress(after, next.saturating_sub(1));
        if next.saturating_sub(after) > CATCH_UP {
            continue;
        }
        // The last round, under the writer lock: nothing is written meanwhile.
        let w = ix.lock_settled()?;
        cancelled(task)?;
        let docs = db.iter_range(keys::doc_key(after + 1)..keys::doc_key(u64::MAX))?;
        let read = |k: &str| -> Result<Option<Vec<u8>>> { Ok(db.get(k)?) };
        after = postings_round(db, gen, task, &mut appender, after, &read, docs)?;
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
        task.progress(after, after);
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

/// Gives every record in `gen`'s scope that has no doc id one.
fn assign_ids(ix: &Indexes, gen: &Gen, task: &Task) -> Result<()> {
    let shared = ix.shared();
    let db = &shared.db;
    let snap = db.snapshot();
    let mut missing: Vec<String> = Vec::new();
    let scope = if gen.def.scope_prefix.is_empty() {
        keys::FIRST_USER_KEY.to_string()
    } else {
        gen.def.scope_prefix.clone()
    };
    let flush = |missing: &mut Vec<String>| -> Result<()> {
        if missing.is_empty() {
            return Ok(());
        }
        let mut w = ix.lock_settled()?;
        let mut batch = WriteBatch::new();
        for key in missing.drain(..) {
            // A write since the snapshot gave it an id, or deleted it: nothing to do.
            if current_id(db, &key)?.is_some() || db.get(&key)?.is_none() {
                continue;
            }
            let id = w.next_id;
            w.next_id += 1;
            batch.put(keys::pk_key(&key), encode_id(id));
            batch.put(keys::doc_key(id), key.as_bytes());
        }
        batch.put(keys::NEXT_ID, encode_id(w.next_id));
        db.write_batch(batch)?;
        Ok(())
    };
    let iter = if gen.def.scope_prefix.is_empty() {
        snap.iter_range(scope.as_str()..)?
    } else {
        snap.iter_prefix(&scope)?
    };
    for item in iter {
        let (key, _) = item?;
        if keys::is_internal(key.as_bytes()) {
            break;
        }
        if snap.get(keys::pk_key(&key))?.is_none() {
            missing.push(key);
            if missing.len() >= CHUNK {
                cancelled(task)?;
                flush(&mut missing)?;
            }
        }
    }
    flush(&mut missing)
}

/// Appends the postings of the live docs that `docs` yields (`doc` records in id
/// order), reading values with `read`, writing every [`CHUNK`] docs. Returns the last
/// id seen (or `after` when there was none).
fn postings_round(
    db: &Db,
    gen: &Gen,
    task: &Task,
    appender: &mut Appender,
    mut after: u64,
    read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>,
    docs: impl Iterator<Item = crate::engine::Result<(String, Vec<u8>)>>,
) -> Result<u64> {
    let mut chunk = Vec::with_capacity(CHUNK);
    for item in docs {
        let (doc, key) = item?;
        let Some(id) = keys::id_of_doc_key(&doc) else {
            continue;
        };
        after = id;
        let Ok(key) = String::from_utf8(key) else {
            continue;
        };
        if !gen.def.in_scope(&key) {
            continue;
        }
        let Some(value) = read(&key)? else {
            continue;
        };
        chunk.push((id, key, value));
        if chunk.len() >= CHUNK {
            cancelled(task)?;
            write_chunk(db, gen, task, appender, &chunk)?;
            chunk.clear();
            task.progress(after, 0);
        }
    }
    write_chunk(db, gen, task, appender, &chunk)?;
    Ok(after)
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
    for ((id, key, _), outcome) in chunk.iter().zip(outcomes) {
        match outcome {
            Outcome::Terms(terms) => {
                for t in terms {
                    // (A generation being built has no dictionary yet: it is not
                    // queried until it is swapped in.)
                    appender.append(&keys::term_base(&gen.prefix, &t), *id, &read)?;
                }
            }
            Outcome::Skipped(message) => {
                skipped += 1;
                batch.put(format!("{}{key}", gen.skip_prefix()), message);
            }
        }
    }
    appender.emit(&mut batch);
    if let Err(e) = db.write_batch(batch) {
        appender.clear();
        return Err(e.into());
    }
    task.add_skipped(skipped);
    Ok(())
}
