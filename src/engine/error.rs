//! The engine's error type.
//!
//! Every failure the engine can report is one variant of [`Error`]. Variants that come
//! from the disk name the file (and where it helps, the byte offset) so an operator can
//! find the damage; variants that come from the caller name the limit that was crossed.

use std::path::PathBuf;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Bytes on disk failed their CRC32 check: the file is damaged.
    #[error(
        "checksum mismatch in {path} at offset {offset}: stored {expected:#010x}, computed {got:#010x}; \
         the file is damaged (run verify, restore it from a backup or remove it)"
    )]
    ChecksumMismatch {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged record or block.
        offset: u64,
        /// The checksum stored on disk.
        expected: u32,
        /// The checksum computed over the bytes read.
        got: u32,
    },

    /// A file's structure is invalid (bad magic, impossible length, unsorted keys, ...).
    #[error("corrupt file {path} at offset {offset}: {reason}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset where the problem was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// A file was written by a format version this build does not understand.
    #[error(
        "{path} has format version {found}, this build supports up to {supported}; \
         open it with a newer release"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The highest version this build reads.
        supported: u32,
    },

    /// The key is not acceptable (empty or not valid UTF-8).
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// The key is longer than [`MAX_KEY_SIZE`](crate::engine::MAX_KEY_SIZE).
    #[error("key is {len} bytes, the maximum is {max}")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The value is longer than [`MAX_VALUE_SIZE`](crate::engine::MAX_VALUE_SIZE).
    #[error("value is {len} bytes, the maximum is {max}")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A write batch is larger than [`MAX_BATCH_SIZE`](crate::engine::MAX_BATCH_SIZE).
    #[error("write batch is {len} bytes, the maximum is {max}")]
    BatchTooLarge {
        /// Encoded size of the rejected batch.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Another process (or another handle in this one) holds the data directory.
    #[error(
        "data directory {path} is in use by another process (lock file held); \
         stop that process or open another directory"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },

    /// The options given to `open` are inconsistent.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// The engine hit an earlier fatal error (for example a failed WAL write) and refuses
    /// further writes to avoid acknowledging data it could not persist.
    #[error("engine is read-only after an earlier fatal error: {0}")]
    Poisoned(String),

    /// A background job (a memtable flush) keeps failing, so the engine cannot make room
    /// for more writes; it retries, and writes are accepted again once it succeeds.
    #[error("writes are refused while a background flush is failing (it is retried): {0}")]
    Background(String),

    /// The database was closed.
    #[error("database is closed")]
    Closed,
}

impl Error {
    /// Wraps an `io::Error` with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a [`Error::Corruption`].
    pub fn corruption(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for errors that mean the bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::ChecksumMismatch { .. }
                | Error::Corruption { .. }
                | Error::UnsupportedVersion { .. }
        )
    }
}
