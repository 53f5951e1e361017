//! The ceiling: an axum server with the shape of lsm's key routes whose handlers do no
//! work, so its throughput is what axum and hyper allow on this machine.
//!
//! - `GET /keys/{key}` answers `200` with a constant `application/json` body of exactly
//!   the size lsm's answer has for a 16-byte key and a value of `value_size` bytes:
//!   `{"key":"0000000000000000","value":"aaa..."}`.
//! - `POST /keys` reads the whole request body, discards it unparsed, and answers the
//!   constant `{"key":"0000000000000000"}`.
//!
//! With `hop`, each handler first runs an empty closure on tokio's blocking pool
//! (`spawn_blocking(|| ()).await`), the hop lsm's handlers make for every engine call:
//! the difference to the plain ceiling is what that hop costs on this machine.
//!
//! The runtime is built exactly as `lsm::server::Server::start` builds its own
//! (multi-thread, default worker count, everything enabled) and served with
//! `axum::serve`, as lsm is.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::header;
use axum::routing::{get, post};
use axum::Router;

/// A ceiling server running on its own runtime thread.
pub struct Ceiling {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<()>>,
}

async fn maybe_hop(hop: bool) {
    if hop {
        tokio::task::spawn_blocking(|| ())
            .await
            .expect("an empty closure does not panic");
    }
}

/// The routes.
pub fn router(value_size: usize, hop: bool) -> Router {
    let get_body = Bytes::from(format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        "0".repeat(16),
        "a".repeat(value_size)
    ));
    let post_body = Bytes::from(format!(r#"{{"key":"{}"}}"#, "0".repeat(16)));
    Router::new()
        .route(
            "/keys/{key}",
            get(move || {
                let body = get_body.clone();
                async move {
                    maybe_hop(hop).await;
                    ([(header::CONTENT_TYPE, "application/json")], body)
                }
            }),
        )
        .route(
            "/keys",
            post(move |_discarded: Bytes| {
                let body = post_body.clone();
                async move {
                    maybe_hop(hop).await;
                    ([(header::CONTENT_TYPE, "application/json")], body)
                }
            }),
        )
}

impl Ceiling {
    /// Serves [`router`] on `listen`.
    pub fn start(listen: &str, value_size: usize, hop: bool) -> Result<Ceiling> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("ceiling-http")
            .build()
            .context("starting the async runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(value_size, hop);
        let thread = std::thread::Builder::new()
            .name("ceiling-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await
                        .context("serving HTTP")
                })
            })
            .context("starting the server thread")?;
        Ok(Ceiling {
            addr,
            shutdown: tx,
            thread,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes the requests in flight.
    pub fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the ceiling server thread panicked"))?
    }
}
