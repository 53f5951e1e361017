//! The WebAssembly runtime shared by every plugin: one wasmtime `Engine`, the sandbox
//! (WASI with no authority, a memory cap, a deadline per call) and the epoch ticker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::output::CapturedOutput;
use super::PluginError;

/// How often the deadline clock ticks.
pub const TICK: Duration = Duration::from_millis(2);

/// Sandbox limits of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest a single call may run (default 1 s; a batch call gets this per entry,
    /// up to 60 s).
    pub deadline: Duration,
    /// Most linear memory an instance may have, in bytes (default 64 MiB).
    pub memory: usize,
    /// Instances kept warm per plugin (default 4).
    pub pool: usize,
    /// Bytes of stdout + stderr kept per call for the log (default 16 KiB).
    pub output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(1),
            memory: 64 << 20,
            pool: 4,
            output: 16 << 10,
        }
    }
}

/// What a store holds: the WASI context (no authority), limits and captured output.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryCap,
    pub(super) output: CapturedOutput,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps memory and counts of instances, tables and memories; remembers a refused growth
/// so the resulting trap can be reported as what it is.
pub(super) struct MemoryCap {
    memory: usize,
    pub(super) exceeded: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes reached", self.memory);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > 1_000_000 {
            wasmtime::bail!("table limit reached");
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        16
    }
}

/// The shared runtime. Cheap to share (`Arc`); dropping the last handle stops the
/// ticker.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    compiles: AtomicU64,
    stop: Arc<AtomicBool>,
}

impl PluginHost {
    /// A host with `limits` as the default for its plugins.
    pub fn new(limits: Limits) -> Result<Arc<PluginHost>, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.parallel_compilation(true);
        let engine = Engine::new(&config)
            .map_err(|e| PluginError::Io(format!("starting the WebAssembly engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Io(format!("linking WASI: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("lsm-plugin-clock".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Io(format!("starting the plugin clock: {e}")))?;
        Ok(Arc::new(PluginHost {
            engine,
            linker,
            limits,
            compiles: AtomicU64::new(0),
            stop,
        }))
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker: WASI with no authority, nothing else.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Default limits of plugins.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Components compiled from source since start (loading a cached artifact does not
    /// count).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Compiles a component (slow: cranelift).
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, PluginError> {
        self.compiles.fetch_add(1, Ordering::Relaxed);
        Component::new(&self.engine, bytes).map_err(|e| PluginError::Invalid(format!("{e:#}")))
    }

    /// A fresh store with `limits`.
    pub fn store(&self, limits: &Limits) -> Store<HostState> {
        let output = CapturedOutput::new(limits.output);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap {
                memory: limits.memory,
                exceeded: false,
            },
            output,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    /// Epoch ticks for `deadline`.
    pub fn ticks(deadline: Duration) -> u64 {
        (deadline.as_millis() as u64)
            .div_ceil(TICK.as_millis() as u64)
            .max(1)
    }

    /// Identifies the engine's compiled-code format: artifacts cached under another
    /// fingerprint are not loaded.
    pub fn fingerprint(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("w{}-{:016x}", wasmtime_version(), hasher.finish())
    }
}

fn wasmtime_version() -> &'static str {
    "48.0.8"
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
