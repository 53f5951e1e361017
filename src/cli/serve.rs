//! `lsm serve`: loads the configuration, opens the instances and runs the HTTP server
//! until SIGINT or SIGTERM.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::server;

/// Environment variable that sets (and overrides) the admin token.
pub const ADMIN_TOKEN_ENV: &str = "LSM_ADMIN_TOKEN";

/// Runs the server; returns after a graceful shutdown.
pub fn run(config_path: Option<&Path>, listen: Option<&str>) -> anyhow::Result<()> {
    let mut config = match config_path {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default(),
    };
    if let Ok(token) = std::env::var(ADMIN_TOKEN_ENV) {
        if token.is_empty() {
            anyhow::bail!("{ADMIN_TOKEN_ENV} is set but empty");
        }
        config.server.admin_token = Some(token);
    }
    let listen = listen.unwrap_or(&config.server.listen).to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lsm-http")
        .build()
        .context("starting the async runtime")?;
    let state = server::open_state(&config)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    if config.server.admin_token.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "admin routes are open: set {ADMIN_TOKEN_ENV} or [server] admin_token");
    }
    tracing::info!(%addr, instances = config.instances.len(), "listening");
    println!("lsm: listening on http://{addr}");
    runtime.block_on(server::serve(&config, listener, state, shutdown_signal()))?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
