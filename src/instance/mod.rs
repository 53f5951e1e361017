//! Instances: the named databases a server runs, each an engine plus a codec.
//!
//! An [`Instance`] owns its own [`Db`] (WAL, memtables, tables, background threads,
//! statistics) in its own data directory; nothing is shared between instances, so one
//! instance's compaction or damage never touches another.
//!
//! [`Instances`] opens every instance of a [`Config`]. An instance that cannot open
//! (its directory is damaged, locked by another process, unreadable, or its codec
//! cannot load) does not stop the others: it is kept as *unavailable* with the reason,
//! logged at error level, reported by `/health`, and every request to it is refused
//! with that reason. A server with a broken `log` instance keeps serving `app`.
//!
//! This layer knows nothing of HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{self, Codec};
use crate::config::{CodecConfig, Config, InstanceConfig};
use crate::engine::{Db, SeqNo, WriteBatch};
use crate::extractor::{Extractor, ExtractorSpec};
use crate::index::{IndexError, Indexes, QueryLimits};
use crate::plugin::{PluginHost, PluginStore, WasmCodec, WasmExtractor, World};

/// One open database with its codec and its plugins.
pub struct Instance {
    config: InstanceConfig,
    db: Db,
    codec: Arc<dyn Codec>,
    plugins: Arc<PluginStore>,
    /// `None` when the instance has `query = false`.
    indexes: Option<Indexes>,
}

/// The extractor of `spec`: native, or the instance's plugin for `custom`.
fn resolve_extractor(
    plugins: &PluginStore,
    spec: &ExtractorSpec,
) -> Result<Arc<dyn Extractor>, String> {
    if let Some(native) = crate::extractor::native(spec).map_err(|e| e.to_string())? {
        return Ok(Arc::from(native));
    }
    match spec {
        ExtractorSpec::Custom { plugin, options } => {
            let loaded = plugins.get(plugin).map_err(|e| e.to_string())?;
            let ex = WasmExtractor::new(loaded, options).map_err(|e| e.to_string())?;
            Ok(Arc::new(ex))
        }
        _ => Err("no extractor for this spec".into()),
    }
}

impl Instance {
    /// Opens the instance described by `config`; its plugins run on `host`.
    ///
    /// The database is opened first: its lock keeps a second process away from the
    /// plugin store in the same directory too.
    pub fn open(
        config: InstanceConfig,
        host: Arc<PluginHost>,
        limits: QueryLimits,
    ) -> Result<Instance, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("cannot create data_dir {}: {e}", config.data_dir.display()))?;
        let db = Db::open(&config.data_dir, config.engine_options())
            .map_err(|e| format!("cannot open {}: {e}", config.data_dir.display()))?;
        let plugins = Arc::new(
            PluginStore::open(&config.data_dir.join("plugins"), host)
                .map_err(|e| format!("cannot open the plugin store: {e}"))?,
        );
        let codec: Arc<dyn Codec> = match &config.codec {
            CodecConfig::Builtin(kind) => codec::builtin(*kind),
            CodecConfig::Plugin { plugin } => {
                let loaded = plugins
                    .load_file("codec", plugin)
                    .map_err(|e| format!("codec plugin {}: {e}", plugin.display()))?;
                if loaded.world() != World::Codec {
                    return Err(format!(
                        "codec plugin {} implements the {} world, not codec",
                        plugin.display(),
                        loaded.world().name()
                    ));
                }
                Arc::new(WasmCodec::new(loaded))
            }
        };
        let indexes = if config.query {
            let file = config
                .indexes_file
                .as_deref()
                .map(crate::index::def::load_file)
                .transpose()?;
            let store = Arc::clone(&plugins);
            let resolver: crate::index::Resolver =
                Arc::new(move |spec: &ExtractorSpec| resolve_extractor(&store, spec));
            Some(
                Indexes::open(db.clone(), resolver, file, limits)
                    .map_err(|e| format!("indexes: {e}"))?,
            )
        } else {
            if let Some(f) = &config.indexes_file {
                tracing::warn!(instance = %config.name, file = %f.display(), "query = false: indexes_file is ignored");
            }
            None
        };
        Ok(Instance {
            config,
            db,
            codec,
            plugins,
            indexes,
        })
    }

    /// The instance's indexes, unless it has `query = false`.
    pub fn indexes(&self) -> Result<&Indexes, IndexError> {
        self.indexes
            .as_ref()
            .ok_or_else(|| IndexError::Disabled(self.config.name.clone()))
    }

    /// Applies a user batch (with its index changes, in one atomic engine write).
    /// Keys starting with U+0000 are refused: they belong to the indexes.
    pub fn write(&self, batch: WriteBatch) -> Result<SeqNo, IndexError> {
        match &self.indexes {
            Some(ix) => ix.write(batch),
            None => {
                if batch
                    .ops()
                    .iter()
                    .any(|op| crate::index::keys::is_internal(op.key()))
                {
                    return Err(IndexError::ReservedKey);
                }
                Ok(self.db.write_batch(batch)?)
            }
        }
    }

    /// Sets one key (see [`write`](Self::write)).
    pub fn put(&self, key: &str, value: &[u8]) -> Result<SeqNo, IndexError> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b)
    }

    /// Deletes one key (see [`write`](Self::write)).
    pub fn delete(&self, key: &str) -> Result<SeqNo, IndexError> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b)
    }

    /// The instance's plugins.
    pub fn plugins(&self) -> &PluginStore {
        &self.plugins
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The value codec.
    pub fn codec(&self) -> &dyn Codec {
        &*self.codec
    }
}

/// An instance as the server holds it: open, or unavailable with the reason.
#[derive(Clone)]
pub enum Slot {
    /// Open and serving.
    Ready(Arc<Instance>),
    /// Could not be opened (or was closed); requests are refused with this reason.
    Unavailable(String),
}

/// Why an instance cannot serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No instance has this name.
    #[error("no instance is named {0:?}")]
    NotFound(String),
    /// The instance exists but could not be opened.
    #[error("instance {name:?} is unavailable: {reason}")]
    Unavailable {
        /// The instance.
        name: String,
        /// Why it could not be opened.
        reason: String,
    },
}

/// Every instance of a configuration, by name.
pub struct Instances {
    slots: BTreeMap<String, Slot>,
    default: String,
}

impl Instances {
    /// Opens every instance of `config`, one thread each. Failures are kept as
    /// [`Slot::Unavailable`] and logged; they do not stop the others.
    ///
    /// The default instance (served by the root routes such as `/keys`) is
    /// `default_instance` when given, else the instance named `default`, else the first
    /// instance of the file.
    pub fn open(config: &Config) -> Instances {
        let host = PluginHost::new(config.server.plugin_limits());
        let limits = config.server.query_limits();
        let opened: Vec<(String, Slot)> = std::thread::scope(|scope| {
            let handles: Vec<_> = config
                .instances
                .iter()
                .map(|ic| {
                    let ic = ic.clone();
                    let host = host.clone();
                    let limits = limits.clone();
                    scope.spawn(move || {
                        let name = ic.name.clone();
                        let opened = host
                            .map_err(|e| e.to_string())
                            .and_then(|host| Instance::open(ic, host, limits));
                        let slot = match opened {
                            Ok(instance) => {
                                tracing::info!(instance = %name, "instance opened");
                                Slot::Ready(Arc::new(instance))
                            }
                            Err(reason) => {
                                tracing::error!(instance = %name, %reason, "instance unavailable");
                                Slot::Unavailable(reason)
                            }
                        };
                        (name, slot)
                    })
                })
                .collect();
            handles
                .into_iter()
                .zip(&config.instances)
                .map(|(h, ic)| {
                    h.join().unwrap_or_else(|_| {
                        (
                            ic.name.clone(),
                            Slot::Unavailable("opening panicked".into()),
                        )
                    })
                })
                .collect()
        });
        let default = config.default_instance().to_string();
        Instances {
            slots: opened.into_iter().collect(),
            default,
        }
    }

    /// The name of the default instance.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// The instance `name`, if it is open.
    pub fn get(&self, name: &str) -> Result<Arc<Instance>, LookupError> {
        match self.slots.get(name) {
            None => Err(LookupError::NotFound(name.to_string())),
            Some(Slot::Ready(instance)) => Ok(Arc::clone(instance)),
            Some(Slot::Unavailable(reason)) => Err(LookupError::Unavailable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// The default instance, if it is open.
    pub fn default_instance(&self) -> Result<Arc<Instance>, LookupError> {
        self.get(&self.default)
    }

    /// Every instance, by name.
    pub fn slots(&self) -> impl Iterator<Item = (&str, &Slot)> {
        self.slots.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// The open instances.
    pub fn ready(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.slots.values().filter_map(|s| match s {
            Slot::Ready(i) => Some(i),
            Slot::Unavailable(_) => None,
        })
    }

    /// Closes every open instance: frozen memtables are flushed, WALs synced, threads
    /// stopped. The active memtables stay in their WALs (nothing is written twice).
    /// Returns the instances that failed to close, with the error.
    pub fn close(&self) -> Vec<(String, String)> {
        let mut failures = Vec::new();
        for (name, slot) in &self.slots {
            if let Slot::Ready(instance) = slot {
                if let Some(ix) = &instance.indexes {
                    ix.close();
                }
                if let Err(e) = instance.db.clone().close() {
                    tracing::error!(instance = %name, error = %e, "closing failed");
                    failures.push((name.clone(), e.to_string()));
                } else {
                    tracing::info!(instance = %name, "instance closed");
                }
            }
        }
        failures
    }
}
