//! A loaded plugin: its compiled component, a pool of warm instances, call statistics.
//!
//! Every call takes an instance from the pool (or instantiates one), arms the deadline,
//! calls, and puts the instance back. An instance that failed (trap, timeout, memory
//! cap) is dropped, never reused: wasmtime refuses to re-enter it, and its state is
//! suspect anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wasmtime::component::{Component, InstancePre};
use wasmtime::{Store, Trap};

use super::bindings::{codec, extractor};
use super::host::{HostState, Limits, PluginHost};
use super::PluginError;
use lsm_extract::Term;

/// The version of the `lsm:plugin` package this host supports.
pub const PACKAGE_VERSION: &str = "0.1.0";
const EXTRACT_EXPORT: &str = "lsm:plugin/extract@0.1.0";
const ENCODING_EXPORT: &str = "lsm:plugin/encoding@0.1.0";
/// Longest a batch call may run, however many entries it has.
const MAX_BATCH_DEADLINE: Duration = Duration::from_secs(60);

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `lsm:plugin/extractor`.
    Extractor,
    /// `lsm:plugin/codec`.
    Codec,
}

impl World {
    /// The world's name in the WIT package.
    pub fn name(self) -> &'static str {
        match self {
            World::Extractor => "extractor",
            World::Codec => "codec",
        }
    }
}

enum Pre {
    Extractor(extractor::ExtractorPre<HostState>),
    Codec(codec::CodecPre<HostState>),
}

enum Bindings {
    Extractor(extractor::Extractor),
    Codec(codec::Codec),
}

struct Warm {
    store: Store<HostState>,
    bindings: Bindings,
}

/// Call counters of a plugin.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    errors: AtomicU64,
    nanos: AtomicU64,
}

impl CallStats {
    /// Calls made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    /// Calls that failed (trap, timeout, memory, bad output or the plugin's own error).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    /// Mean time of a call, in microseconds.
    pub fn mean_call_us(&self) -> f64 {
        let calls = self.calls();
        if calls == 0 {
            0.0
        } else {
            self.nanos.load(Ordering::Relaxed) as f64 / calls as f64 / 1000.0
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("world", &self.world)
            .finish_non_exhaustive()
    }
}

/// A compiled, validated plugin, ready to call from any thread.
pub struct Plugin {
    name: String,
    sha256: String,
    size: u64,
    world: World,
    host: Arc<PluginHost>,
    limits: Limits,
    pre: Pre,
    pool: Mutex<Vec<Warm>>,
    stats: CallStats,
    from_cache: bool,
}

impl Plugin {
    /// Checks that `component` exports a supported world and needs nothing but WASI,
    /// and prepares it for calls.
    pub fn new(
        host: Arc<PluginHost>,
        name: &str,
        sha256: &str,
        size: u64,
        component: &Component,
        limits: Limits,
    ) -> Result<Plugin, PluginError> {
        let world = world_of(&host, component)?;
        let instance_pre: InstancePre<HostState> =
            host.linker().instantiate_pre(component).map_err(|e| {
                PluginError::Invalid(format!(
                    "{e:#} (plugins may import WASI interfaces only; nothing else is provided)"
                ))
            })?;
        let pre = match world {
            World::Extractor => Pre::Extractor(
                extractor::ExtractorPre::new(instance_pre)
                    .map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?,
            ),
            World::Codec => Pre::Codec(
                codec::CodecPre::new(instance_pre)
                    .map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?,
            ),
        };
        Ok(Plugin {
            name: name.to_string(),
            sha256: sha256.to_string(),
            size,
            world,
            host,
            limits,
            pre,
            pool: Mutex::new(Vec::new()),
            stats: CallStats::default(),
            from_cache: false,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// SHA-256 of the component, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// Size of the component in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Its world.
    pub fn world(&self) -> World {
        self.world
    }
    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// Its call counters.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }
    /// Whether its code came from the artifact cache rather than a compilation.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
    pub(super) fn loaded_from_cache(mut self) -> Self {
        self.from_cache = true;
        self
    }

    fn wrong_kind(&self, wanted: World) -> PluginError {
        PluginError::WrongKind {
            plugin: self.name.clone(),
            found: self.world.name(),
            wanted: wanted.name(),
        }
    }

    /// Runs `f` on a warm instance with `deadline`.
    fn call<R>(
        &self,
        deadline: Duration,
        f: impl FnOnce(&mut Store<HostState>, &Bindings) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, PluginError> {
        let started = Instant::now();
        let result = self.call_inner(deadline, f);
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if result.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn call_inner<R>(
        &self,
        deadline: Duration,
        f: impl FnOnce(&mut Store<HostState>, &Bindings) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, PluginError> {
        let ticks = PluginHost::ticks(deadline);
        let warm = self.pool.lock().pop();
        let mut warm = match warm {
            Some(w) => w,
            None => {
                let mut store = self.host.store(&self.limits);
                store.set_epoch_deadline(ticks);
                let bindings = match &self.pre {
                    Pre::Extractor(pre) => pre.instantiate(&mut store).map(Bindings::Extractor),
                    Pre::Codec(pre) => pre.instantiate(&mut store).map(Bindings::Codec),
                };
                match bindings {
                    Ok(bindings) => Warm { store, bindings },
                    Err(e) => return Err(self.failure(&mut store, e, deadline)),
                }
            }
        };
        warm.store.set_epoch_deadline(ticks);
        warm.store.data_mut().limiter.exceeded = false;
        let outcome = f(&mut warm.store, &warm.bindings);
        self.log_output(&warm.store);
        match outcome {
            Ok(Ok(r)) => {
                self.give_back(warm);
                Ok(r)
            }
            Ok(Err(message)) => {
                self.give_back(warm);
                Err(PluginError::Guest {
                    plugin: self.name.clone(),
                    message,
                })
            }
            Err(e) => Err(self.failure(&mut warm.store, e, deadline)),
        }
    }

    fn give_back(&self, warm: Warm) {
        let mut pool = self.pool.lock();
        if pool.len() < self.limits.pool {
            pool.push(warm);
        }
    }

    fn log_output(&self, store: &Store<HostState>) {
        if let Some((text, dropped)) = store.data().output.take() {
            tracing::info!(plugin = %self.name, dropped_bytes = dropped, output = %text.trim_end(), "plugin output");
        }
    }

    /// Classifies a failed call; the instance is not reused.
    fn failure(
        &self,
        store: &mut Store<HostState>,
        e: wasmtime::Error,
        deadline: Duration,
    ) -> PluginError {
        self.log_output(store);
        let plugin = self.name.clone();
        let error = if store.data().limiter.exceeded {
            PluginError::OutOfMemory {
                plugin,
                limit: self.limits.memory,
            }
        } else {
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => PluginError::Timeout {
                    plugin,
                    deadline_ms: deadline.as_millis() as u64,
                },
                Some(_) => PluginError::Trap {
                    plugin,
                    message: format!("{e:#}"),
                },
                None => PluginError::BadOutput {
                    plugin,
                    reason: format!("{e:#}"),
                },
            }
        };
        tracing::warn!(error = %error, "plugin call failed; its instance is discarded");
        error
    }

    /// The terms of one record (extractor plugins).
    pub fn extract(
        &self,
        key: &str,
        value: &[u8],
        options: &str,
    ) -> Result<Vec<Term>, PluginError> {
        if self.world != World::Extractor {
            return Err(self.wrong_kind(World::Extractor));
        }
        let terms = self.call(self.limits.deadline, |store, b| match b {
            Bindings::Extractor(x) => x
                .lsm_plugin_extract()
                .call_extract(store, key, value, options),
            Bindings::Codec(_) => Ok(Err("not an extractor".into())),
        })?;
        self.convert_terms(terms)
    }

    /// The terms of many records in one call (extractor plugins); one result per entry.
    pub fn extract_batch(
        &self,
        entries: &[(&str, &[u8])],
        options: &str,
    ) -> Result<Vec<Result<Vec<Term>, PluginError>>, PluginError> {
        if self.world != World::Extractor {
            return Err(self.wrong_kind(World::Extractor));
        }
        let wit_entries: Vec<extractor::lsm::plugin::types::Entry> = entries
            .iter()
            .map(|(k, v)| extractor::lsm::plugin::types::Entry {
                key: (*k).to_string(),
                value: v.to_vec(),
            })
            .collect();
        let deadline = self
            .limits
            .deadline
            .saturating_mul(entries.len().max(1) as u32)
            .min(MAX_BATCH_DEADLINE);
        let results = self.call(deadline, |store, b| match b {
            Bindings::Extractor(x) => x
                .lsm_plugin_extract()
                .call_extract_batch(store, &wit_entries, options)
                .map(Ok),
            Bindings::Codec(_) => Ok(Err("not an extractor".into())),
        })?;
        if results.len() != entries.len() {
            return Err(PluginError::BadOutput {
                plugin: self.name.clone(),
                reason: format!("{} results for {} entries", results.len(), entries.len()),
            });
        }
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(terms) => self.convert_terms(terms),
                Err(message) => Err(PluginError::Guest {
                    plugin: self.name.clone(),
                    message,
                }),
            })
            .collect())
    }

    fn convert_terms(
        &self,
        terms: Vec<extractor::lsm::plugin::types::Term>,
    ) -> Result<Vec<Term>, PluginError> {
        use extractor::lsm::plugin::types::Term as W;
        terms
            .into_iter()
            .map(|t| match t {
                W::Text(s) => Ok(Term::Text(s)),
                W::Integer(i) => Ok(Term::Integer(i)),
                W::Float(f) if f.is_nan() => Err(PluginError::BadOutput {
                    plugin: self.name.clone(),
                    reason: "a float term is NaN".into(),
                }),
                W::Float(f) => Ok(Term::Float(f)),
                W::Boolean(b) => Ok(Term::Boolean(b)),
                W::Bytes(b) => Ok(Term::Bytes(b)),
            })
            .collect()
    }

    /// JSON text → stored bytes (codec plugins).
    pub fn encode(&self, json: &str) -> Result<Vec<u8>, PluginError> {
        if self.world != World::Codec {
            return Err(self.wrong_kind(World::Codec));
        }
        self.call(self.limits.deadline, |store, b| match b {
            Bindings::Codec(c) => c.lsm_plugin_encoding().call_encode(store, json),
            Bindings::Extractor(_) => Ok(Err("not a codec".into())),
        })
    }

    /// Stored bytes → JSON text (codec plugins).
    pub fn decode(&self, stored: &[u8]) -> Result<String, PluginError> {
        if self.world != World::Codec {
            return Err(self.wrong_kind(World::Codec));
        }
        self.call(self.limits.deadline, |store, b| match b {
            Bindings::Codec(c) => c.lsm_plugin_encoding().call_decode(store, stored),
            Bindings::Extractor(_) => Ok(Err("not a codec".into())),
        })
    }

    /// Checks bytes given in the stored form (codec plugins).
    pub fn validate(&self, stored: &[u8]) -> Result<(), PluginError> {
        if self.world != World::Codec {
            return Err(self.wrong_kind(World::Codec));
        }
        self.call(self.limits.deadline, |store, b| match b {
            Bindings::Codec(c) => c.lsm_plugin_encoding().call_validate(store, stored),
            Bindings::Extractor(_) => Ok(Err("not a codec".into())),
        })
    }
}

/// The world `component` exports, or why it is not a plugin.
fn world_of(host: &PluginHost, component: &Component) -> Result<World, PluginError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(host.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    if exports.iter().any(|e| e == EXTRACT_EXPORT) {
        return Ok(World::Extractor);
    }
    if exports.iter().any(|e| e == ENCODING_EXPORT) {
        return Ok(World::Codec);
    }
    if let Some(other) = exports
        .iter()
        .find(|e| e.starts_with("lsm:plugin/extract@") || e.starts_with("lsm:plugin/encoding@"))
    {
        return Err(PluginError::WrongWorld(format!(
            "it exports {other}, built against a version of lsm:plugin this server does not support (supported: {PACKAGE_VERSION})"
        )));
    }
    Err(PluginError::WrongWorld(format!(
        "it exports [{}]; a plugin exports {EXTRACT_EXPORT} (world extractor) or {ENCODING_EXPORT} (world codec)",
        exports.join(", ")
    )))
}
