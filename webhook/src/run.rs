//! The process lifecycle: load the certificate, bind, serve, and shut down gracefully on SIGTERM
//! (readiness fails first, in-flight requests finish, then exit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::admission::{Admission, Enforcement};
use crate::metrics::Metrics;
use crate::server::{self, Limits, Webhook};
use crate::tls::{self, CertReloader, MinTlsVersion};

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind_address: SocketAddr,
    pub metrics_bind_address: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub tls_min_version: MinTlsVersion,
    pub enforcement: Enforcement,
    pub shutdown_delay: Duration,
    pub shutdown_timeout: Duration,
    pub cert_poll_interval: Duration,
    pub limits: Limits,
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    tls::install_default_provider();
    let metrics = Arc::new(Metrics::new());
    let certs = Arc::new(
        CertReloader::new(&config.cert_file, &config.key_file, Arc::clone(&metrics))
            .context("loading the serving certificate")?,
    );
    let tls_config = Arc::new(tls::server_config(certs.clone(), config.tls_min_version)?);
    let listener = tokio::net::TcpListener::bind(config.bind_address)
        .await
        .with_context(|| format!("binding {}", config.bind_address))?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics_bind_address)
        .await
        .with_context(|| format!("binding {}", config.metrics_bind_address))?;
    let webhook = Arc::new(Webhook::new(
        Admission::new(config.enforcement),
        Arc::clone(&metrics),
        config.limits.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let poller = certs.spawn_poller(config.cert_poll_interval);
    let probes = tokio::spawn(server::serve_metrics(
        metrics_listener,
        Arc::clone(&metrics),
        stop_rx.clone(),
    ));
    let served = tokio::spawn(server::serve_tls(
        listener,
        tls_config,
        webhook,
        stop_rx,
        config.shutdown_timeout,
    ));
    metrics.set_ready(true);
    tracing::info!(
        address = %config.bind_address,
        metrics = %config.metrics_bind_address,
        enforcement = ?config.enforcement,
        "serving admission reviews"
    );

    wait_for_signal().await?;
    // Readiness first: the endpoint controller removes us while we still serve.
    metrics.set_ready(false);
    tracing::info!(delay = ?config.shutdown_delay, "shutting down: readiness now fails");
    tokio::time::sleep(config.shutdown_delay).await;
    let _ = stop_tx.send(true);
    if let Err(e) = served.await {
        tracing::error!(error = %e, "server task failed");
    }
    poller.abort();
    probes.abort();
    tracing::info!("shut down");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
