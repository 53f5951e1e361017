//! The plugin store of an instance: uploaded components, content-addressed, with their
//! compiled artifacts, in `{data_dir}/plugins/`:
//!
//! ```text
//! plugins/registry.json                 name -> sha256, world, size, upload time
//! plugins/blobs/{sha256}.wasm           the components as uploaded
//! plugins/cache/{sha256}.{engine}.cwasm compiled code for this engine (+ .sha256)
//! ```
//!
//! Opening the store loads every registered plugin from its cached artifact (compiling
//! only when the artifact is missing, damaged or from another engine version).
//! Registering a plugin validates, compiles and caches it first, then replaces the
//! registry atomically; calls in flight finish on the version they started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::artifact::{self, hex};
use super::fs::write_atomically;
use super::host::{Limits, PluginHost};
use super::loaded::{Plugin, World};
use super::PluginError;
use crate::names::check_name;

const REGISTRY_FORMAT: u32 = 1;

/// One line of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// Plugin name.
    pub name: String,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// `extractor` or `codec`.
    pub world: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// Upload time, milliseconds since the Unix epoch.
    pub uploaded_at_ms: u64,
    /// Per-call deadline of this plugin in milliseconds, if not the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Memory cap of this plugin in bytes, if not the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<usize>,
}

/// Limits given to one plugin instead of the server's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// Per-call deadline in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory cap in bytes.
    pub memory_bytes: Option<usize>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    format: u32,
    plugins: Vec<Registered>,
}

/// The plugins of one instance.
pub struct PluginStore {
    dir: PathBuf,
    host: Arc<PluginHost>,
    plugins: RwLock<BTreeMap<String, (Registered, Arc<Plugin>)>>,
    /// Registered plugins that could not be loaded at open, with the reason.
    broken: RwLock<BTreeMap<String, (Registered, String)>>,
    /// Serializes registrations and deletions (the registry file has one writer).
    writer: Mutex<()>,
}

impl PluginStore {
    /// Opens (or creates) the store in `dir` and loads every registered plugin.
    pub fn open(dir: &Path, host: Arc<PluginHost>) -> Result<PluginStore, PluginError> {
        for sub in ["blobs", "cache"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
                PluginError::Io(format!("creating {}: {e}", dir.join(sub).display()))
            })?;
        }
        let store = PluginStore {
            dir: dir.to_path_buf(),
            host,
            plugins: RwLock::new(BTreeMap::new()),
            broken: RwLock::new(BTreeMap::new()),
            writer: Mutex::new(()),
        };
        for entry in store.read_registry()?.plugins {
            match store.load(&entry) {
                Ok(plugin) => {
                    store
                        .plugins
                        .write()
                        .insert(entry.name.clone(), (entry, Arc::new(plugin)));
                }
                Err(e) => {
                    tracing::error!(plugin = %entry.name, error = %e, "plugin cannot be loaded");
                    store
                        .broken
                        .write()
                        .insert(entry.name.clone(), (entry, e.to_string()));
                }
            }
        }
        Ok(store)
    }

    fn registry_path(&self) -> PathBuf {
        self.dir.join("registry.json")
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("blobs").join(format!("{sha256}.wasm"))
    }

    fn artifact_path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join("cache")
            .join(format!("{sha256}.{}.cwasm", self.host.fingerprint()))
    }

    fn read_registry(&self) -> Result<RegistryFile, PluginError> {
        let path = self.registry_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryFile {
                    format: REGISTRY_FORMAT,
                    plugins: Vec::new(),
                })
            }
            Err(e) => return Err(PluginError::Io(format!("reading {}: {e}", path.display()))),
        };
        let file: RegistryFile = serde_json::from_str(&text)
            .map_err(|e| PluginError::Io(format!("{} is damaged: {e}", path.display())))?;
        if file.format != REGISTRY_FORMAT {
            return Err(PluginError::Io(format!(
                "{} has format {}, this build reads {REGISTRY_FORMAT}",
                path.display(),
                file.format
            )));
        }
        Ok(file)
    }

    fn write_registry(&self, plugins: Vec<Registered>) -> Result<(), PluginError> {
        let file = RegistryFile {
            format: REGISTRY_FORMAT,
            plugins,
        };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|e| PluginError::Io(format!("encoding the registry: {e}")))?;
        write_atomically(&self.registry_path(), &text)
    }

    /// Loads a registered plugin from its blob, using the cached artifact if possible.
    fn load(&self, entry: &Registered) -> Result<Plugin, PluginError> {
        let blob = std::fs::read(self.blob_path(&entry.sha256)).map_err(|e| {
            PluginError::Io(format!(
                "reading {}: {e}",
                self.blob_path(&entry.sha256).display()
            ))
        })?;
        if hex(&Sha256::digest(&blob)) != entry.sha256 {
            return Err(PluginError::Io(format!(
                "{} does not match its hash: the file is damaged",
                self.blob_path(&entry.sha256).display()
            )));
        }
        let overrides = LimitOverrides {
            deadline_ms: entry.deadline_ms,
            memory_bytes: entry.memory_bytes,
        };
        self.prepare(&entry.name, &entry.sha256, &blob, overrides)
    }

    /// Compiles (or loads the artifact of) a component and checks its world.
    fn prepare(
        &self,
        name: &str,
        sha256: &str,
        wasm: &[u8],
        overrides: LimitOverrides,
    ) -> Result<Plugin, PluginError> {
        let limits = self.limits(overrides);
        let artifact_path = self.artifact_path(sha256);
        let size = wasm.len() as u64;
        if let Some(component) = artifact::load(&self.host, &artifact_path) {
            let plugin = Plugin::new(
                Arc::clone(&self.host),
                name,
                sha256,
                size,
                &component,
                limits,
            )?;
            return Ok(plugin.loaded_from_cache());
        }
        let component = self.host.compile(wasm)?;
        // Validated before caching, so only real plugins leave artifacts.
        let plugin = Plugin::new(
            Arc::clone(&self.host),
            name,
            sha256,
            size,
            &component,
            limits,
        )?;
        artifact::save(&component, &artifact_path)?;
        Ok(plugin)
    }

    fn limits(&self, overrides: LimitOverrides) -> Limits {
        let mut limits = self.host.limits();
        if let Some(ms) = overrides.deadline_ms {
            limits.deadline = std::time::Duration::from_millis(ms);
        }
        if let Some(bytes) = overrides.memory_bytes {
            limits.memory = bytes;
        }
        limits
    }

    /// Loads the component file at `path` as `name` without registering it (a codec
    /// named in `lsm.toml`), compiling it only if its artifact is not cached yet.
    pub fn load_file(&self, name: &str, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let wasm = std::fs::read(path)
            .map_err(|e| PluginError::Io(format!("reading {}: {e}", path.display())))?;
        check_header(&wasm)?;
        let sha256 = hex(&Sha256::digest(&wasm));
        self.prepare(name, &sha256, &wasm, LimitOverrides::default())
            .map(Arc::new)
    }

    /// Validates `wasm`, compiles it, stores it and registers it as `name`, replacing
    /// any plugin of that name atomically.
    pub fn put(&self, name: &str, wasm: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        self.put_with(name, wasm, LimitOverrides::default())
    }

    /// [`put`](Self::put) with limits of its own for this plugin.
    pub fn put_with(
        &self,
        name: &str,
        wasm: &[u8],
        overrides: LimitOverrides,
    ) -> Result<Arc<Plugin>, PluginError> {
        check_name(name).map_err(PluginError::Invalid)?;
        check_header(wasm)?;
        if overrides.deadline_ms == Some(0) || overrides.memory_bytes == Some(0) {
            return Err(PluginError::Invalid("limits must be greater than 0".into()));
        }
        let _writer = self.writer.lock();
        let sha256 = hex(&Sha256::digest(wasm));
        let plugin = Arc::new(self.prepare(name, &sha256, wasm, overrides)?);
        let blob = self.blob_path(&sha256);
        if !blob.exists() {
            write_atomically(&blob, wasm)?;
        }
        let entry = Registered {
            name: name.to_string(),
            sha256: sha256.clone(),
            world: plugin.world().name().to_string(),
            size: wasm.len() as u64,
            uploaded_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            deadline_ms: overrides.deadline_ms,
            memory_bytes: overrides.memory_bytes,
        };
        let mut all = self.registered();
        all.retain(|r| r.name != name);
        all.push(entry.clone());
        all.sort_by(|a, b| a.name.cmp(&b.name));
        self.write_registry(all)?;
        let previous = self
            .plugins
            .write()
            .insert(name.to_string(), (entry, Arc::clone(&plugin)));
        self.broken.write().remove(name);
        if let Some((old, _)) = previous {
            self.collect_garbage(&old.sha256);
        }
        tracing::info!(plugin = %name, sha256 = %sha256, world = plugin.world().name(), "plugin registered");
        Ok(plugin)
    }

    /// Every registered plugin, loaded or not.
    pub fn registered(&self) -> Vec<Registered> {
        let mut all: Vec<Registered> = self
            .plugins
            .read()
            .values()
            .map(|(r, _)| r.clone())
            .collect();
        all.extend(self.broken.read().values().map(|(r, _)| r.clone()));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The plugin `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Plugin>, PluginError> {
        if let Some((_, p)) = self.plugins.read().get(name) {
            return Ok(Arc::clone(p));
        }
        match self.broken.read().get(name) {
            Some((_, reason)) => Err(PluginError::Io(format!(
                "plugin {name:?} could not be loaded: {reason}"
            ))),
            None => Err(PluginError::NotFound(name.to_string())),
        }
    }

    /// The registry line of `name`, and the reason if it failed to load.
    pub fn describe(
        &self,
        name: &str,
    ) -> Option<(Registered, Option<Arc<Plugin>>, Option<String>)> {
        if let Some((r, p)) = self.plugins.read().get(name) {
            return Some((r.clone(), Some(Arc::clone(p)), None));
        }
        self.broken
            .read()
            .get(name)
            .map(|(r, why)| (r.clone(), None, Some(why.clone())))
    }

    /// Removes `name`. `users` names what still uses it, if anything: then nothing is
    /// removed.
    pub fn delete(&self, name: &str, users: Option<String>) -> Result<(), PluginError> {
        let _writer = self.writer.lock();
        if !self.plugins.read().contains_key(name) && !self.broken.read().contains_key(name) {
            return Err(PluginError::NotFound(name.to_string()));
        }
        if let Some(users) = users {
            return Err(PluginError::InUse {
                plugin: name.to_string(),
                users,
            });
        }
        let mut all = self.registered();
        let sha = all
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.sha256.clone());
        all.retain(|r| r.name != name);
        self.write_registry(all)?;
        self.plugins.write().remove(name);
        self.broken.write().remove(name);
        if let Some(sha) = sha {
            self.collect_garbage(&sha);
        }
        tracing::info!(plugin = %name, "plugin deleted");
        Ok(())
    }

    /// Removes the blob and artifacts of `sha256` if no plugin refers to it any more.
    fn collect_garbage(&self, sha256: &str) {
        if self.registered().iter().any(|r| r.sha256 == sha256) {
            return;
        }
        let _ = std::fs::remove_file(self.blob_path(sha256));
        if let Ok(entries) = std::fs::read_dir(self.dir.join("cache")) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(sha256) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// The world of `name`, if it is loaded.
    pub fn world(&self, name: &str) -> Option<World> {
        self.plugins.read().get(name).map(|(_, p)| p.world())
    }
}

/// Refuses what is not a component before compiling anything.
pub fn check_header(wasm: &[u8]) -> Result<(), PluginError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(PluginError::Invalid(
            "the file is not WebAssembly (no \\0asm header)".into(),
        ));
    }
    // Bytes 4..8: version 1, layer 0 for a core module; layer 1 for a component.
    if wasm[6..8] == [0, 0] {
        return Err(PluginError::Invalid(
            "this is a core WebAssembly module, not a component; wrap it with `wasm-tools component new` or build for wasm32-wasip2".into(),
        ));
    }
    Ok(())
}
