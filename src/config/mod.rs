//! `lsm.toml`: the server's configuration, one `[[instance]]` table per database.
//!
//! This module only reads and checks the file; it opens nothing. Every mistake is
//! reported with the file, the line and the reason, before anything starts. Relative
//! paths (`data_dir`, `indexes_file`, a codec plugin) are resolved against the directory
//! of the configuration file, so a configuration means the same wherever it is run from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::codec::BuiltinCodec;
use crate::engine::{CompactionOptions, CompactionStrategy, Options, SyncPolicy};
pub use crate::names::check_name;

/// A configuration error, with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub path: PathBuf,
    /// 1-based line of the problem, when it is known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// How an instance stores values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CodecConfig {
    /// A built-in codec: `"raw"`, `"json"` or `"bson"`.
    Builtin(BuiltinCodec),
    /// A WebAssembly codec component: `{ plugin = "path/to/codec.wasm" }`.
    Plugin {
        /// Path of the component.
        plugin: PathBuf,
    },
}

/// The WAL sync policy as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncSetting {
    /// fsync before acknowledging (group commit).
    Always,
    /// fsync every `sync_interval_ms`.
    Periodic,
    /// Never fsync explicitly.
    Never,
}

/// The compaction strategy as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategySetting {
    /// Leveled compaction.
    Leveled,
    /// Size-tiered compaction.
    SizeTiered,
}

/// One `[[instance]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Name, used in URLs (`/db/{name}/...`): 1 to 64 of `a-z`, `0-9`, `_`, `-`,
    /// starting with a letter or digit.
    pub name: String,
    /// Data directory of the instance's database.
    pub data_dir: PathBuf,
    /// Memtable size in bytes that triggers a flush (default 32 MiB).
    #[serde(default = "default_memtable")]
    pub memtable_max_size: usize,
    /// Value codec (default `"raw"`).
    #[serde(default = "default_codec")]
    pub codec: CodecConfig,
    /// Whether the instance keeps secondary indexes and serves indexed queries
    /// (default true). `false` makes it a plain key-value store: no index is loaded or
    /// maintained, and `/query` and index creation are refused.
    #[serde(default = "default_true")]
    pub query: bool,
    /// Index registry of the instance (TOML or JSON), if any.
    #[serde(default)]
    pub indexes_file: Option<PathBuf>,
    /// WAL sync policy (default `"always"`).
    #[serde(default = "default_sync")]
    pub sync: SyncSetting,
    /// Interval of the periodic sync policy, in milliseconds (default 100).
    #[serde(default = "default_sync_interval")]
    pub sync_interval_ms: u64,
    /// `"leveled"` (default) or `"size_tiered"`.
    #[serde(default = "default_strategy")]
    pub compaction_strategy: StrategySetting,
    /// L0 tables (or similar runs) that start a compaction (default 4).
    #[serde(default = "default_l0_trigger")]
    pub max_sstables_before_compact: usize,
    /// Block cache size in bytes (default 64 MiB).
    #[serde(default = "default_cache")]
    pub block_cache_size: u64,
}

fn default_memtable() -> usize {
    Options::default().memtable_max_size
}
fn default_codec() -> CodecConfig {
    CodecConfig::Builtin(BuiltinCodec::Raw)
}
fn default_sync() -> SyncSetting {
    SyncSetting::Always
}
fn default_sync_interval() -> u64 {
    100
}
fn default_strategy() -> StrategySetting {
    StrategySetting::Leveled
}
fn default_l0_trigger() -> usize {
    CompactionOptions::default().l0_trigger
}
fn default_cache() -> u64 {
    Options::default().block_cache_size
}

impl InstanceConfig {
    /// The engine options this instance opens its database with.
    pub fn engine_options(&self) -> Options {
        let defaults = CompactionOptions::default();
        let l0_trigger = self.max_sstables_before_compact;
        Options {
            memtable_max_size: self.memtable_max_size,
            sync: match self.sync {
                SyncSetting::Always => SyncPolicy::Always,
                SyncSetting::Periodic => {
                    SyncPolicy::Periodic(Duration::from_millis(self.sync_interval_ms))
                }
                SyncSetting::Never => SyncPolicy::Never,
            },
            block_cache_size: self.block_cache_size,
            compaction: CompactionOptions {
                strategy: match self.compaction_strategy {
                    StrategySetting::Leveled => CompactionStrategy::Leveled,
                    StrategySetting::SizeTiered => CompactionStrategy::SizeTiered,
                },
                l0_trigger,
                // Keep the slowdown and stop points above a raised trigger.
                l0_slowdown: defaults.l0_slowdown.max(l0_trigger * 5),
                l0_stop: defaults.l0_stop.max(l0_trigger * 9),
                ..defaults
            },
            ..Options::default()
        }
    }
}

/// The optional `[server]` table: how the HTTP server listens and guards itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:7700`, loopback only). `--listen`
    /// overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token required by the admin routes. The environment variable
    /// `LSM_ADMIN_TOKEN` overrides it. With neither, admin routes are open (which is
    /// why the default bind is loopback).
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes (default 32 MiB); larger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_body_size: usize,
    /// The instance the root routes (`/keys`, `/stats`, ...) serve. Default: the
    /// instance named `default`, else the first `[[instance]]`.
    #[serde(default)]
    pub default_instance: Option<String>,
    /// Largest plugin upload, in bytes (default 64 MiB: interpreted-language
    /// components are large).
    #[serde(default = "default_max_plugin")]
    pub max_plugin_size: usize,
    /// Default deadline of one plugin call, in milliseconds (default 1000).
    #[serde(default = "default_plugin_deadline")]
    pub plugin_deadline_ms: u64,
    /// Default memory cap of a plugin instance, in bytes (default 64 MiB).
    #[serde(default = "default_plugin_memory")]
    pub plugin_memory_size: usize,
    /// Results per query page when the request gives no `limit` (default 100).
    #[serde(default = "default_query_limit")]
    pub query_default_limit: usize,
    /// The largest `limit` a query may ask for (default 10000).
    #[serde(default = "default_query_max_limit")]
    pub query_max_limit: usize,
    /// The longest a query page may run, in milliseconds (default 10000); a request's
    /// `timeout_ms` can only lower it.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_ms: u64,
    /// The most postings one query page may read (default 10 000 000); a request's
    /// `max_postings_scanned` can only lower it.
    #[serde(default = "default_query_postings")]
    pub query_max_postings_scanned: u64,
    /// How long an idle query cursor keeps its snapshot, in seconds (default 300).
    #[serde(default = "default_cursor_ttl")]
    pub query_cursor_ttl_s: u64,
}

fn default_true() -> bool {
    true
}
fn default_query_limit() -> usize {
    100
}
fn default_query_max_limit() -> usize {
    10_000
}
fn default_query_timeout() -> u64 {
    10_000
}
fn default_query_postings() -> u64 {
    10_000_000
}
fn default_cursor_ttl() -> u64 {
    300
}

fn default_max_plugin() -> usize {
    64 << 20
}
fn default_plugin_deadline() -> u64 {
    1000
}
fn default_plugin_memory() -> usize {
    64 << 20
}

impl ServerConfig {
    /// The guards on indexed queries.
    pub fn query_limits(&self) -> crate::index::QueryLimits {
        crate::index::QueryLimits {
            default_limit: self
                .query_default_limit
                .clamp(1, self.query_max_limit.max(1)),
            max_limit: self.query_max_limit.max(1),
            timeout: Duration::from_millis(self.query_timeout_ms),
            max_postings_scanned: self.query_max_postings_scanned,
            cursor_ttl: Duration::from_secs(self.query_cursor_ttl_s),
            ..crate::index::QueryLimits::default()
        }
    }

    /// The default sandbox limits of plugins.
    pub fn plugin_limits(&self) -> crate::plugin::Limits {
        crate::plugin::Limits {
            deadline: Duration::from_millis(self.plugin_deadline_ms),
            memory: self.plugin_memory_size,
            ..crate::plugin::Limits::default()
        }
    }
}

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_max_body() -> usize {
    32 * 1024 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            admin_token: None,
            max_body_size: default_max_body(),
            default_instance: None,
            max_plugin_size: default_max_plugin(),
            plugin_deadline_ms: default_plugin_deadline(),
            plugin_memory_size: default_plugin_memory(),
            query_default_limit: default_query_limit(),
            query_max_limit: default_query_max_limit(),
            query_timeout_ms: default_query_timeout(),
            query_max_postings_scanned: default_query_postings(),
            query_cursor_ttl_s: default_cursor_ttl(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    server: Option<toml::Spanned<ServerConfig>>,
    #[serde(default)]
    instance: Vec<toml::Spanned<InstanceConfig>>,
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `[server]` table (defaults when absent).
    pub server: ServerConfig,
    /// The instances, in file order.
    pub instances: Vec<InstanceConfig>,
}

impl Config {
    /// The embedded default: one instance `default` in `./.lsmdata`, raw codec.
    pub fn embedded_default() -> Config {
        Config {
            server: ServerConfig::default(),
            instances: vec![InstanceConfig {
                name: "default".into(),
                data_dir: PathBuf::from("./.lsmdata"),
                memtable_max_size: default_memtable(),
                codec: default_codec(),
                query: true,
                indexes_file: None,
                sync: default_sync(),
                sync_interval_ms: default_sync_interval(),
                compaction_strategy: default_strategy(),
                max_sstables_before_compact: default_l0_trigger(),
                block_cache_size: default_cache(),
            }],
        }
    }

    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Checks configuration `text`, read from `path` (which names it in errors and
    /// anchors its relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let error = |span: Option<std::ops::Range<usize>>, message: String| ConfigError {
            path: path.to_path_buf(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        };
        let shape: FileShape =
            toml::from_str(text).map_err(|e| error(e.span(), e.message().to_string()))?;
        if shape.instance.is_empty() {
            return Err(error(None, "no [[instance]] is configured".into()));
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut instances: Vec<InstanceConfig> = Vec::new();
        for spanned in shape.instance {
            let span = Some(spanned.span());
            let mut inst = spanned.into_inner();
            check_name(&inst.name).map_err(|m| error(span.clone(), m))?;
            if instances.iter().any(|i| i.name == inst.name) {
                return Err(error(
                    span,
                    format!("instance name {:?} is used twice", inst.name),
                ));
            }
            inst.data_dir = base.join(&inst.data_dir);
            inst.indexes_file = inst.indexes_file.map(|f| base.join(f));
            if let CodecConfig::Plugin { plugin } = &mut inst.codec {
                *plugin = base.join(&*plugin);
            }
            if let Some(other) = instances.iter().find(|i| i.data_dir == inst.data_dir) {
                return Err(error(
                    span,
                    format!(
                        "instance {:?} uses the data_dir of instance {:?}; each instance needs its own",
                        inst.name, other.name
                    ),
                ));
            }
            if inst.sync == SyncSetting::Periodic && inst.sync_interval_ms == 0 {
                return Err(error(
                    span,
                    "sync_interval_ms must be greater than 0".into(),
                ));
            }
            inst.engine_options()
                .validate()
                .map_err(|e| error(span.clone(), format!("instance {:?}: {e}", inst.name)))?;
            instances.push(inst);
        }
        let server = match shape.server {
            None => ServerConfig::default(),
            Some(spanned) => {
                let span = Some(spanned.span());
                let server = spanned.into_inner();
                if server.listen.parse::<std::net::SocketAddr>().is_err() {
                    return Err(error(
                        span,
                        format!(
                            "listen = {:?} is not an address such as \"127.0.0.1:7700\"",
                            server.listen
                        ),
                    ));
                }
                if server.max_body_size < 1024 {
                    return Err(error(span, "max_body_size must be at least 1024".into()));
                }
                if let Some(name) = &server.default_instance {
                    if !instances.iter().any(|i| &i.name == name) {
                        return Err(error(
                            span,
                            format!("default_instance {name:?} is not an [[instance]]"),
                        ));
                    }
                }
                if server.plugin_deadline_ms == 0 || server.plugin_memory_size < (1 << 20) {
                    return Err(error(
                        span,
                        "plugin_deadline_ms must be > 0 and plugin_memory_size at least 1 MiB"
                            .into(),
                    ));
                }
                if server.admin_token.as_deref().is_some_and(str::is_empty) {
                    return Err(error(span, "admin_token must not be empty".into()));
                }
                server
            }
        };
        Ok(Config { server, instances })
    }

    /// The name of the instance the root routes serve.
    pub fn default_instance(&self) -> &str {
        if let Some(name) = &self.server.default_instance {
            return name;
        }
        self.instances
            .iter()
            .find(|i| i.name == "default")
            .or(self.instances.first())
            .map(|i| i.name.as_str())
            .unwrap_or("default")
    }
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
