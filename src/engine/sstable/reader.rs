//! Reading a table: [`Table`] opens and validates a file (footer, filter, properties and
//! index are loaded eagerly and checked), answers point lookups reading at most one data
//! block, and hands out [`TableIterator`]s that load data blocks lazily.
//!
//! Every read is a positioned read on the one `File` the table holds, so a table is
//! shared freely between threads. Data blocks go through the shared [`BlockCache`];
//! their checksum is checked when they come from disk. Whole-table verification lives in
//! `verify.rs`.

use std::cmp::Ordering;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use super::block::{block_crc, Block, BlockError, BlockIter, BLOCK_TRAILER_LEN, COMPRESSION_NONE};
use super::bloom::BloomFilter;
use super::cache::BlockCache;
use super::footer::{BlockHandle, Footer, FOOTER_LEN, HANDLE_LEN};
use super::index::BlockIndex;
use super::properties::TableProperties;
use crate::engine::bloom::KeyHash;
use crate::engine::coding::Reader;
use crate::engine::error::{Error, Result};
use crate::engine::iter::InternalIterator;
use crate::engine::stats::ReadCounters;
use crate::engine::types::{compare_internal, SeqNo, ValueKind};

/// An open, immutable table file. Shared as `Arc<Table>`; safe to use from many threads.
pub struct Table {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) cache: Arc<BlockCache>,
    pub(crate) counters: Arc<ReadCounters>,
    pub(crate) props: TableProperties,
    pub(crate) footer: Footer,
    pub(crate) index: BlockIndex,
    pub(crate) filter: BloomFilter,
    blocks_read: AtomicU64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("data_blocks", &self.index.len())
            .field("properties", &self.props)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Opens `path` as table `id` (its key in the block cache) and validates the footer,
    /// the layout of the blocks, the filter, the properties and the index, including
    /// their checksums. Data blocks are read lazily.
    pub fn open(
        path: &Path,
        id: u64,
        cache: Arc<BlockCache>,
        counters: Arc<ReadCounters>,
    ) -> Result<Arc<Table>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if file_len < FOOTER_LEN as u64 {
            let reason = format!("file is {file_len} bytes, shorter than a table footer");
            return Err(Error::corruption(path, 0, reason));
        }
        let footer_offset = file_len - FOOTER_LEN as u64;
        let mut footer_bytes = [0u8; FOOTER_LEN];
        read_at(&file, path, &mut footer_bytes, footer_offset)?;
        let footer = Footer::decode(&footer_bytes, path, footer_offset)?;
        check_layout(&footer, footer_offset, path)?;

        let filter_bytes = read_block_bytes(&file, path, file_len, footer.filter)?;
        let filter = BloomFilter::decode(&filter_bytes)
            .map_err(|r| Error::corruption(path, footer.filter.offset, r))?;
        let props_bytes = read_block_bytes(&file, path, file_len, footer.properties)?;
        let mut props = decode_properties(&props_bytes, path, footer.properties.offset)?;
        props.file_size = file_len;
        let index = load_index(&file, path, file_len, &footer)?;
        check_properties(&props, &index, &footer, path)?;

        Ok(Arc::new(Table {
            id,
            path: path.to_path_buf(),
            file,
            cache,
            counters,
            props,
            footer,
            index,
            filter,
            blocks_read: AtomicU64::new(0),
        }))
    }

    /// The id this table was opened with.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The table's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the table holds, as recorded when it was written (`file_size` is measured).
    pub fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// Data block accesses made through this table (cache hits included).
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read.load(AtomicOrdering::Relaxed)
    }

    /// The newest version of `user_key` with sequence number `<= seq`, if the table holds
    /// one. Consults the bloom filter first and reads at most one data block.
    pub fn get(&self, user_key: &[u8], seq: SeqNo) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        self.get_with_hash(user_key, KeyHash::of(user_key), seq)
    }

    /// [`get`](Table::get) for a caller that already hashed the key: a read that consults
    /// several tables hashes its key once and passes the same `hash` to each.
    /// `hash` must be `KeyHash::of(user_key)`.
    pub fn get_with_hash(
        &self,
        user_key: &[u8],
        hash: KeyHash,
        seq: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        if !self.filter.may_contain(hash) {
            ReadCounters::bump(&self.counters.bloom_negatives);
            return Ok(None);
        }
        let i = self.index.find(user_key, seq);
        let found = match self.index.handle(i) {
            None => None,
            Some(handle) => {
                let block = self.data_block(handle)?;
                self.point(&block, handle, user_key, hash, seq)?
            }
        };
        if self.filter.is_enabled() {
            let counter = match found {
                Some(_) => &self.counters.bloom_true_positives,
                None => &self.counters.bloom_false_positives,
            };
            ReadCounters::bump(counter);
        }
        Ok(found)
    }

    /// [`get_with_hash`](Table::get_with_hash) for many keys at once, `(key, hash)` each:
    /// one answer per key, in order. It goes stage by stage across the keys (the filter
    /// for all of them, then the index for those it admits, then their blocks, then the
    /// searches in the blocks, then the value copies), and asks the CPU to prefetch what
    /// a later stage will read (restart arrays, the first entries each search compares,
    /// the values found), so that the cache misses of different keys overlap instead of
    /// following one another. Keys in ascending order are found fastest: each index
    /// search then starts from the block of the key before.
    #[allow(clippy::type_complexity)]
    pub fn get_many(
        &self,
        keys: &[(&[u8], KeyHash)],
        seq: SeqNo,
    ) -> Result<Vec<Option<(SeqNo, ValueKind, Vec<u8>)>>> {
        let mut out = vec![None; keys.len()];
        for (_, hash) in keys {
            self.filter.prefetch(*hash);
        }
        let admitted: Vec<usize> = (0..keys.len())
            .filter(|&i| {
                let pass = self.filter.may_contain(keys[i].1);
                if !pass {
                    ReadCounters::bump(&self.counters.bloom_negatives);
                }
                pass
            })
            .collect();
        // A key not smaller than the previous one is in the previous one's block or
        // a later one.
        let mut prev: Option<(&[u8], usize)> = None;
        let found: Vec<(usize, BlockHandle)> = admitted
            .iter()
            .filter_map(|&i| {
                let key = keys[i].0;
                let b = match prev {
                    Some((p, from)) if p <= key => self.index.find_from(from, key, seq),
                    _ => self.index.find(key, seq),
                };
                prev = Some((key, b));
                self.index.handle(b).map(|h| (i, h))
            })
            .collect();
        let mut blocks: Vec<(usize, BlockHandle, Arc<Block>)> = Vec::with_capacity(found.len());
        for (i, handle) in found {
            let block = match blocks.last() {
                Some((_, h, b)) if h.offset == handle.offset => Arc::clone(b),
                _ => self.data_block(handle)?,
            };
            block.prefetch_restarts(keys[i].1);
            blocks.push((i, handle, block));
        }
        // By now the restart arrays have arrived (or are on their way): ask for the
        // entries each search compares first, then search, asking for each value found
        // and copying the values only after the last search.
        for (i, _, b) in &blocks {
            b.prefetch_probes(keys[*i].1);
        }
        let mut hits = Vec::with_capacity(blocks.len());
        for (i, handle, block) in &blocks {
            let found = block
                .get(keys[*i].0, keys[*i].1, seq)
                .map_err(|e| self.block_error(*handle, e))?;
            if let Some((_, _, range)) = &found {
                block.prefetch_range(range.clone());
            }
            hits.push(found);
        }
        for ((i, _, block), found) in blocks.iter().zip(hits) {
            out[*i] = found.map(|(s, kind, range)| (s, kind, block.value(range).to_vec()));
        }
        if self.filter.is_enabled() {
            for &i in &admitted {
                let counter = match out[i] {
                    Some(_) => &self.counters.bloom_true_positives,
                    None => &self.counters.bloom_false_positives,
                };
                ReadCounters::bump(counter);
            }
        }
        Ok(out)
    }

    /// [`get_with_hash`](Table::get_with_hash) without any I/O: answers from the bloom
    /// filter, the index and the block cache, or says [`Probe::NeedsIo`]. Touches no
    /// counter; [`count_probe`](Table::count_probe) records a probe whose answer is used.
    pub fn probe_cached(&self, user_key: &[u8], hash: KeyHash, seq: SeqNo) -> Result<Probe> {
        if !self.filter.may_contain(hash) {
            return Ok(Probe::Filtered);
        }
        let i = self.index.find(user_key, seq);
        let Some(handle) = self.index.handle(i) else {
            return Ok(Probe::NoBlock);
        };
        let Some(block) = self.cache.get(&(self.id, handle.offset)) else {
            return Ok(Probe::NeedsIo);
        };
        Ok(Probe::Hit(self.point(&block, handle, user_key, hash, seq)?))
    }

    /// The version of `user_key` (hashed to `hash`) visible at `seq` in `block` (the
    /// data block at `handle`), with its value copied out.
    fn point(
        &self,
        block: &Block,
        handle: BlockHandle,
        user_key: &[u8],
        hash: KeyHash,
        seq: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        let found = block
            .get(user_key, hash, seq)
            .map_err(|e| self.block_error(handle, e))?;
        Ok(found.map(|(s, kind, value)| (s, kind, block.value(value).to_vec())))
    }

    /// Counts a probe's work as [`get_with_hash`](Table::get_with_hash) would have.
    pub fn count_probe(&self, probe: &Probe) {
        let found = match probe {
            Probe::NeedsIo => return,
            Probe::Filtered => {
                ReadCounters::bump(&self.counters.bloom_negatives);
                return;
            }
            Probe::NoBlock => false,
            Probe::Hit(found) => {
                self.blocks_read.fetch_add(1, AtomicOrdering::Relaxed);
                ReadCounters::bump(&self.counters.blocks_read);
                found.is_some()
            }
        };
        if self.filter.is_enabled() {
            ReadCounters::bump(if found {
                &self.counters.bloom_true_positives
            } else {
                &self.counters.bloom_false_positives
            });
        }
    }

    /// True if the table's key range `[smallest, largest]` may overlap `[start, end)`;
    /// `end == None` means unbounded. An empty table overlaps nothing.
    pub fn overlaps(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        if self.props.entries == 0 {
            return false;
        }
        self.props.largest_key.as_slice() >= start
            && end.is_none_or(|end| self.props.smallest_key.as_slice() < end)
    }

    /// A cursor over every version in the table. It reads a data block only when it is
    /// positioned inside it.
    pub fn iter(self: &Arc<Self>) -> TableIterator {
        TableIterator {
            table: Arc::clone(self),
            block_idx: 0,
            block: None,
            cached: true,
        }
    }

    /// A cursor for reading the whole table once (compaction): blocks are read from
    /// disk and checked, but neither looked up in nor added to the block cache, so a
    /// compaction does not evict the blocks that reads are using, and is not counted
    /// in the read statistics.
    pub fn iter_uncached(self: &Arc<Self>) -> TableIterator {
        TableIterator {
            cached: false,
            ..self.iter()
        }
    }

    /// The data block at `handle`, from the cache or from disk; counts the access.
    fn data_block(&self, handle: BlockHandle) -> Result<Arc<Block>> {
        self.blocks_read.fetch_add(1, AtomicOrdering::Relaxed);
        ReadCounters::bump(&self.counters.blocks_read);
        self.cache
            .get_or_insert_with(&(self.id, handle.offset), || {
                ReadCounters::bump(&self.counters.blocks_read_from_disk);
                self.read_data_block(handle).map(Arc::new)
            })
    }

    /// Reads and checks one data block from disk, bypassing the cache.
    pub(crate) fn read_data_block(&self, handle: BlockHandle) -> Result<Block> {
        let bytes = read_block_bytes(&self.file, &self.path, self.props.file_size, handle)?;
        Block::new(bytes).map_err(|e| self.block_error(handle, e))
    }

    /// A decoding failure in the data block at `handle`, as an error naming the file.
    pub(crate) fn block_error(&self, handle: BlockHandle, e: BlockError) -> Error {
        let offset = handle.offset + e.pos as u64;
        Error::corruption(&self.path, offset, format!("data block: {}", e.reason))
    }
}

/// What [`Table::probe_cached`] found without reading the file.
#[derive(Debug)]
pub enum Probe {
    /// The bloom filter rules the key out.
    Filtered,
    /// No data block can hold the key.
    NoBlock,
    /// The data block that may hold the key is not in the block cache.
    NeedsIo,
    /// The cached block was searched: the newest visible version, if any.
    Hit(Option<(SeqNo, ValueKind, Vec<u8>)>),
}

/// Checks that the filter, properties and index blocks and the footer follow each other
/// with no gap or overlap, as version 1 writes them.
fn check_layout(footer: &Footer, footer_offset: u64, path: &Path) -> Result<()> {
    let chain = [
        ("filter", footer.filter, footer.properties.offset),
        ("properties", footer.properties, footer.index.offset),
        ("index", footer.index, footer_offset),
    ];
    for (name, handle, next) in chain {
        if handle.end_with_trailer() != Some(next) {
            let reason = format!(
                "{name} block handle (offset {}, size {}) does not end where the next part \
                 starts ({next})",
                handle.offset, handle.size
            );
            return Err(Error::corruption(path, footer_offset, reason));
        }
    }
    Ok(())
}

/// Reads the block at `handle` with its trailer, checks the CRC and the compression
/// byte, and returns the block without trailer.
pub(crate) fn read_block_bytes(
    file: &File,
    path: &Path,
    file_len: u64,
    handle: BlockHandle,
) -> Result<Vec<u8>> {
    match handle.end_with_trailer() {
        Some(end) if end <= file_len => {}
        _ => {
            let reason = format!(
                "block of {} bytes runs past the end of the file",
                handle.size
            );
            return Err(Error::corruption(path, handle.offset, reason));
        }
    }
    let size = handle.size as usize;
    let mut buf = vec![0u8; size + BLOCK_TRAILER_LEN];
    read_at(file, path, &mut buf, handle.offset)?;
    let compression = buf[size];
    let stored = u32::from_le_bytes([buf[size + 1], buf[size + 2], buf[size + 3], buf[size + 4]]);
    let computed = block_crc(&buf[..size], compression);
    if stored != computed {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            offset: handle.offset,
            expected: stored,
            got: computed,
        });
    }
    if compression != COMPRESSION_NONE {
        let reason = format!("unknown block compression {compression}");
        return Err(Error::corruption(path, handle.offset + size as u64, reason));
    }
    buf.truncate(size);
    Ok(buf)
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corruption(path, offset, "file ends before the block does")
        } else {
            Error::io(path, e)
        }
    })
}

fn decode_properties(bytes: &[u8], path: &Path, offset: u64) -> Result<TableProperties> {
    TableProperties::decode(bytes).map_err(|(pos, e)| {
        Error::corruption(
            path,
            offset + pos as u64,
            format!("properties block: {}", e.0),
        )
    })
}

/// Loads the index: entries strictly increasing, handles tiling the data area exactly.
fn load_index(file: &File, path: &Path, file_len: u64, footer: &Footer) -> Result<BlockIndex> {
    let base = footer.index.offset;
    let bytes = read_block_bytes(file, path, file_len, footer.index)?;
    let block_err = |e: BlockError| {
        Error::corruption(
            path,
            base + e.pos as u64,
            format!("index block: {}", e.reason),
        )
    };
    let mut it = BlockIter::new(Arc::new(Block::new(bytes).map_err(block_err)?));
    let mut index = BlockIndex::default();
    let mut expected_offset = 0u64;
    let mut pos = 0;
    it.seek_to_first().map_err(block_err)?;
    while it.valid() {
        let bad = |reason: &str| Error::corruption(path, base + pos as u64, reason);
        if let Some((prev_key, prev_seq)) = index.last() {
            let order = compare_internal(it.user_key(), it.seq(), prev_key, prev_seq);
            if order != Ordering::Greater {
                return Err(bad("index keys out of order"));
            }
        }
        let value = it.value();
        let handle = (value.len() == HANDLE_LEN)
            .then(|| BlockHandle::decode_from(&mut Reader::new(value)))
            .flatten()
            .ok_or_else(|| bad("index entry is not a block handle"))?;
        if handle.offset != expected_offset {
            return Err(bad(
                "data block handle leaves a gap or overlaps the previous block",
            ));
        }
        expected_offset = handle
            .end_with_trailer()
            .filter(|&end| end <= footer.filter.offset)
            .ok_or_else(|| bad("data block handle runs into the filter block"))?;
        index.push(it.user_key(), it.seq(), handle);
        pos = it.next_offset();
        it.next().map_err(block_err)?;
    }
    if expected_offset != footer.filter.offset {
        let reason = "data blocks listed in the index do not reach the filter block";
        return Err(Error::corruption(path, base, reason));
    }
    index.seal();
    Ok(index)
}

/// Cross-checks the properties against the footer and the index.
fn check_properties(
    props: &TableProperties,
    index: &BlockIndex,
    footer: &Footer,
    path: &Path,
) -> Result<()> {
    let with_trailer = |h: BlockHandle| u64::from(h.size) + BLOCK_TRAILER_LEN as u64;
    let problem = if props.data_blocks != index.len() as u64 {
        Some(format!(
            "properties count {} data blocks, the index lists {}",
            props.data_blocks,
            index.len()
        ))
    } else if props.data_size != footer.filter.offset
        || props.filter_size != with_trailer(footer.filter)
        || props.index_size != with_trailer(footer.index)
    {
        Some("block sizes in the properties disagree with the footer".to_string())
    } else if props.deletions > props.entries || props.entries < props.data_blocks {
        Some("entry counts in the properties are inconsistent".to_string())
    } else if let Some((last_key, _)) = index.last() {
        let bad_range = props.smallest_key > props.largest_key
            || props.min_seq > props.max_seq
            || props.largest_key != last_key;
        bad_range.then(|| "key or sequence range in the properties is inconsistent".to_string())
    } else {
        (props.entries != 0).then(|| "properties count entries in a table without data".into())
    };
    match problem {
        None => Ok(()),
        Some(reason) => Err(Error::corruption(path, footer.properties.offset, reason)),
    }
}

/// A cursor over a table's versions in internal-key order; see [`InternalIterator`].
/// Holds the table alive; loads a data block only when positioned inside it.
#[derive(Debug)]
pub struct TableIterator {
    table: Arc<Table>,
    /// Index of the data block `block` walks.
    block_idx: usize,
    /// The current block's cursor; `None` when unpositioned, exhausted or after an error.
    block: Option<BlockIter>,
    /// Whether blocks go through the block cache (see [`Table::iter_uncached`]).
    cached: bool,
}

impl TableIterator {
    /// Opens data block `i` and positions in it with `position`.
    fn enter_block(
        &mut self,
        i: usize,
        position: impl FnOnce(&mut BlockIter) -> Result<(), BlockError>,
    ) -> Result<()> {
        // The cursor of the previous block is reused, with its key buffer.
        let previous = self.block.take();
        self.block_idx = i;
        let Some(handle) = self.table.index.handle(i) else {
            return Ok(());
        };
        let block = if self.cached {
            self.table.data_block(handle)?
        } else {
            Arc::new(self.table.read_data_block(handle)?)
        };
        let mut it = match previous {
            Some(mut it) => {
                it.reset(block);
                it
            }
            None => BlockIter::new(block),
        };
        position(&mut it).map_err(|e| self.table.block_error(handle, e))?;
        self.block = Some(it);
        Ok(())
    }

    /// Moves past exhausted blocks until positioned on a version or at the end.
    fn skip_exhausted_blocks(&mut self) -> Result<()> {
        while self.block.as_ref().is_some_and(|b| !b.valid()) {
            self.enter_block(self.block_idx + 1, BlockIter::seek_to_first)?;
        }
        Ok(())
    }

    /// Leaves the cursor unpositioned when `r` is an error.
    fn guard(&mut self, r: Result<()>) -> Result<()> {
        if r.is_err() {
            self.block = None;
        }
        r
    }
}

impl InternalIterator for TableIterator {
    fn seek(&mut self, user_key: &[u8], seq: SeqNo) -> Result<()> {
        let i = self.table.index.find(user_key, seq);
        let r = self
            .enter_block(i, |it| it.seek(user_key, seq))
            .and_then(|()| self.skip_exhausted_blocks());
        self.guard(r)
    }

    fn seek_to_first(&mut self) -> Result<()> {
        let r = self
            .enter_block(0, BlockIter::seek_to_first)
            .and_then(|()| self.skip_exhausted_blocks());
        self.guard(r)
    }

    fn next(&mut self) -> Result<()> {
        let Some(it) = self.block.as_mut() else {
            return Ok(());
        };
        let r = match it.next() {
            Ok(()) => self.skip_exhausted_blocks(),
            Err(e) => {
                let handle = self.table.index.handle(self.block_idx).unwrap_or_default();
                Err(self.table.block_error(handle, e))
            }
        };
        self.guard(r)
    }

    #[inline]
    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(BlockIter::valid)
    }

    #[inline]
    fn user_key(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], BlockIter::user_key)
    }

    #[inline]
    fn seq(&self) -> SeqNo {
        self.block.as_ref().map_or(0, BlockIter::seq)
    }

    #[inline]
    fn kind(&self) -> ValueKind {
        self.block.as_ref().map_or(ValueKind::Put, BlockIter::kind)
    }

    #[inline]
    fn value(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], BlockIter::value)
    }
}
