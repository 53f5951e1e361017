//! The plugin host's error type.

/// Everything that can go wrong with a plugin. Variants about a call name the plugin, so
/// an error reaching a client or the log says which plugin failed and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The bytes are not a WebAssembly component this host accepts.
    #[error("not a valid plugin: {0}")]
    Invalid(String),

    /// A valid component that does not export a world of a supported version.
    #[error("wrong world: {0}")]
    WrongWorld(String),

    /// A plugin of the wrong kind for its use (a codec where an extractor is needed).
    #[error("plugin {plugin:?} is a {found}, not a {wanted}")]
    WrongKind {
        /// The plugin.
        plugin: String,
        /// Its world.
        found: &'static str,
        /// The world needed.
        wanted: &'static str,
    },

    /// The call ran past its deadline and was stopped.
    #[error("plugin {plugin:?} ran past its deadline of {deadline_ms} ms and was stopped")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The deadline.
        deadline_ms: u64,
    },

    /// The plugin tried to grow its memory past the cap.
    #[error("plugin {plugin:?} exceeded its memory limit of {limit} bytes")]
    OutOfMemory {
        /// The plugin.
        plugin: String,
        /// The cap.
        limit: usize,
    },

    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access, ...).
    #[error("plugin {plugin:?} trapped: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// wasmtime's description, with the guest backtrace when there is one.
        message: String,
    },

    /// The plugin answered, but not with something acceptable (a NaN term, invalid
    /// UTF-8 JSON, the wrong number of batch results, ...).
    #[error("plugin {plugin:?} returned an invalid result: {reason}")]
    BadOutput {
        /// The plugin.
        plugin: String,
        /// What was wrong.
        reason: String,
    },

    /// The plugin returned an error of its own.
    #[error("plugin {plugin:?} failed: {message}")]
    Guest {
        /// The plugin.
        plugin: String,
        /// The plugin's message.
        message: String,
    },

    /// No plugin has this name.
    #[error("no plugin is named {0:?}")]
    NotFound(String),

    /// The plugin cannot be deleted while something uses it.
    #[error("plugin {plugin:?} is used by {users}; drop or change those first")]
    InUse {
        /// The plugin.
        plugin: String,
        /// What uses it.
        users: String,
    },

    /// Reading or writing the plugin store failed.
    #[error("plugin store: {0}")]
    Io(String),
}

impl PluginError {
    /// Whether the error is the plugin's fault at run time (as opposed to a bad upload,
    /// a missing plugin or the store's disk).
    pub fn is_runtime_failure(&self) -> bool {
        matches!(
            self,
            PluginError::Timeout { .. }
                | PluginError::OutOfMemory { .. }
                | PluginError::Trap { .. }
                | PluginError::BadOutput { .. }
                | PluginError::Guest { .. }
        )
    }
}
