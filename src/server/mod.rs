//! The HTTP server: the REST API over the instances of a configuration.
//!
//! Routes under `/db/{instance}/...` address a named instance; the same routes at the
//! root (`/keys`, `/stats`, ...) address the default instance. Handlers never block the
//! async runtime: every engine call runs on tokio's blocking pool ([`blocking`]), while
//! the engine runs its own flush and compaction threads.
//!
//! The API is described in `docs/http-api.md` and served as OpenAPI at `/openapi.json`.

pub mod admin;
pub mod error;
pub mod extract;
pub mod indexes;
pub mod info;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod plugins;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

use self::admin::AdminToken;
use self::error::{ApiError, ApiResult};
use self::metrics::Metrics;
use crate::config::Config;
use crate::instance::Instances;

/// What every handler can reach.
pub struct AppState {
    /// The instances, by name.
    pub instances: Instances,
    /// The admin guard, when a token is configured.
    pub admin_token: Option<AdminToken>,
    /// Request, engine-operation and engine-state metrics.
    pub metrics: Metrics,
    /// Largest plugin upload, in bytes.
    pub max_plugin_size: usize,
}

/// Runs engine work `f` on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
}

/// The routes every instance has, relative to its prefix.
fn instance_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let admin = Router::new()
        .route("/admin/compact", post(admin::compact))
        .route("/admin/verify", post(admin::verify))
        .route("/plugins", get(plugins::list))
        .route(
            "/plugins/{name}",
            get(plugins::show)
                .put(plugins::upload)
                .delete(plugins::delete)
                .layer(DefaultBodyLimit::max(state.max_plugin_size)),
        )
        .route("/plugins/{name}/test", post(plugins::test))
        .route("/indexes", post(indexes::create))
        .route("/indexes/{name}", axum::routing::delete(indexes::drop))
        .route("/indexes/{name}/rebuild", post(indexes::rebuild))
        .route_layer(from_fn_with_state(Arc::clone(state), admin::require_token));
    Router::new()
        .route("/keys", get(keys::list_keys).post(keys::put_key))
        .route(
            "/keys/batch",
            post(keys::put_batch).delete(keys::delete_batch),
        )
        .route("/keys/search", get(keys::search))
        .route(
            "/keys/{key}",
            get(keys::get_key)
                .put(keys::put_key_at)
                .delete(keys::delete_key),
        )
        .route("/scan", get(keys::scan))
        .route("/stats", get(info::stats))
        .route("/stats_all", get(info::stats_all))
        .route("/query", post(indexes::query))
        .route("/indexes", get(indexes::list))
        .route("/indexes/{name}", get(indexes::show))
        .route("/tasks", get(indexes::tasks))
        .route("/tasks/{id}", get(indexes::task))
        .merge(admin)
}

/// The whole API, with a request body limit of `max_body_size` bytes.
///
/// The outermost layer, [`metrics::track`], sees every request after routing (so it
/// knows the matched route template) and every response, errors included.
pub fn router(state: Arc<AppState>, max_body_size: usize) -> Router {
    let per_instance = instance_routes(&state);
    Router::new()
        .route("/health", get(info::health))
        .route("/instances", get(info::instances))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(metrics::serve))
        .route("/db/{instance}/health", get(info::instance_health))
        .merge(per_instance.clone())
        .nest("/db/{instance}", per_instance)
        .fallback(info::not_found)
        .method_not_allowed_fallback(info::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_size))
        .layer(from_fn_with_state(Arc::clone(&state), metrics::track))
        .with_state(state)
}

/// Opens the instances of `config`; fails when none of them opens.
pub fn open_state(config: &Config) -> anyhow::Result<Arc<AppState>> {
    let instances = Instances::open(config);
    if instances.ready().next().is_none() {
        let reasons: Vec<String> = instances
            .slots()
            .filter_map(|(name, slot)| match slot {
                crate::instance::Slot::Unavailable(r) => Some(format!("{name}: {r}")),
                crate::instance::Slot::Ready(_) => None,
            })
            .collect();
        anyhow::bail!("no instance could be opened:\n  {}", reasons.join("\n  "));
    }
    let metrics = Metrics::new(&instances);
    Ok(Arc::new(AppState {
        instances,
        admin_token: config.server.admin_token.as_deref().map(AdminToken::new),
        metrics,
        max_plugin_size: config.server.max_plugin_size,
    }))
}

/// Serves `config` on `listener` until `shutdown` resolves, then finishes the requests
/// in flight and closes every instance.
pub async fn serve(
    config: &Config,
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = router(Arc::clone(&state), config.server.max_body_size);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    let closing = Arc::clone(&state);
    let failures = tokio::task::spawn_blocking(move || closing.instances.close())
        .await
        .context("closing instances")?;
    if !failures.is_empty() {
        anyhow::bail!("some instances did not close cleanly: {failures:?}");
    }
    Ok(())
}

/// A server running on its own runtime thread, for embedding and tests.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Opens the instances of `config` and serves them on `listen` (`127.0.0.1:0` picks
    /// a free port; see [`addr`](Server::addr)).
    pub fn start(config: Config, listen: &str) -> anyhow::Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("lsm-http")
            .build()
            .context("starting the async runtime")?;
        let state = open_state(&config)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lsm-server".into())
            .spawn(move || {
                runtime.block_on(serve(&config, listener, state, async {
                    let _ = rx.await;
                }))
            })
            .context("starting the server thread")?;
        Ok(Server {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes requests in flight, closes the instances.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown_and_join()
    }

    fn shutdown_and_join(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("the server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_and_join() {
            tracing::error!(error = %e, "server shutdown failed");
        }
    }
}
