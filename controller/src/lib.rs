//! The Orkestra operator. One process per replica; with leader election on, only the holder of
//! the Lease reconciles, the others wait to take over.
//!
//! - [`Args`], the flags;
//! - `leader`: leader election on a `coordination.k8s.io/v1` Lease;
//! - `reconcile`: the kube-rs runtime `Controller` on ApplicationGroups, woken by their
//!   Workflows and HelmReleases, carrying out what `orkestra_cluster::automation` decides;
//! - `metrics` and `server`: Prometheus counters, `/healthz`, `/readyz` and `/metrics`.

mod args;
mod leader;
mod metrics;
mod reconcile;
mod server;

use std::sync::Arc;

use anyhow::{Context as _, Result};

pub use args::{Args, LogFormat};

/// Sets up tracing: plain text or JSON lines on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the controller until SIGTERM or SIGINT (then it stops reconciling, gives the Lease up and
/// returns), or until it loses the Lease (then it fails, and its Deployment restarts it).
pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(async move {
            let client = kube::Client::try_default()
                .await
                .context("no cluster configured (set KUBECONFIG, or run in a pod)")?;
            let metrics = Arc::new(metrics::Metrics::default());
            let stop = shutdown_signal();
            let server = server::serve(args.metrics_bind_address, metrics.clone()).await?;
            let result = leader::run(&args, client, metrics, stop).await;
            server.abort();
            result
        })
}

/// Resolves on SIGTERM or SIGINT.
fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}
