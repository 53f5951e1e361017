//! What the index layer reports.

use super::postings::PostingsError;

/// Why an index operation or query failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    /// An index record does not decode.
    #[error(transparent)]
    Damaged(#[from] PostingsError),
    /// No index has this name.
    #[error("no index is named {name:?}; indexes: {known}")]
    UnknownIndex {
        /// The name asked for.
        name: String,
        /// The indexes that exist, for the message.
        known: String,
    },
    /// `POST /indexes` with a name in use.
    #[error("an index named {0:?} already exists")]
    Exists(String),
    /// The index is still being built.
    #[error("index {name:?} is not queryable yet: it is being built (task {task})")]
    NotReady {
        /// The index.
        name: String,
        /// The build task.
        task: u64,
    },
    /// A definition or query that cannot be used, with the reason.
    #[error("{0}")]
    Invalid(String),
    /// A write refused because an extractor failed and the index says `reject`.
    #[error("index {index:?} cannot index {key:?}: {message}")]
    Rejected {
        /// The index.
        index: String,
        /// The record's key.
        key: String,
        /// What the extractor said.
        message: String,
    },
    /// The query read more postings than allowed.
    #[error("the query read more than max_postings_scanned = {0} postings; narrow it or raise the limit")]
    TooManyPostings(u64),
    /// The query ran out of time.
    #[error("the query ran longer than its timeout of {0} ms")]
    Timeout(u64),
    /// A cursor that is not one of ours, or belongs to another query.
    #[error("invalid cursor: {0}")]
    BadCursor(String),
    /// A cursor whose snapshot has been released.
    #[error("the cursor has expired (idle longer than the cursor time-to-live, or too many open cursors); run the query again from the first page")]
    CursorExpired,
    /// A user key in the internal namespace.
    #[error("keys starting with U+0000 are reserved for index records")]
    ReservedKey,
    /// The index comes from `indexes_file` and can only change there.
    #[error("index {0:?} is defined in the instance's indexes_file; change it there")]
    FromFile(String),
    /// The instance has `query = false`.
    #[error("instance {0:?} has query = false: it keeps no indexes and serves no queries")]
    Disabled(String),
    /// A plugin the index needs is in use or missing.
    #[error("{0}")]
    Conflict(String),
}

/// The layer's result type.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
