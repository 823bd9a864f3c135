//! The process lifecycle: load the certificate, bind, serve, and shut down gracefully on SIGTERM
//! (readiness fails first, in-flight requests finish, then exit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use orkestra::admission::policy::Policy;
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
    pub policy: Policy,
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
    let limits = fit_open_files(config.limits.clone(), open_files_limit());
    let webhook = Arc::new(Webhook::new(
        Admission::new(config.enforcement).with_policy(config.policy.clone()),
        Arc::clone(&metrics),
        limits.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let poller = certs.spawn_poller(config.cert_poll_interval);
    let probes = tokio::spawn(server::serve_metrics(
        metrics_listener,
        Arc::clone(&metrics),
        limits.max_metrics_connections,
        stop_rx.clone(),
    ));
    let served = tokio::spawn(server::serve_tls(
        listener,
        tls_config,
        Arc::clone(&webhook),
        stop_rx,
        config.shutdown_timeout,
    ));
    metrics.set_ready(true);
    tracing::info!(
        address = %config.bind_address,
        metrics = %config.metrics_bind_address,
        enforcement = ?config.enforcement,
        policy = ?config.policy,
        "serving admission reviews"
    );

    wait_for_signal().await?;
    // Readiness first: the endpoint controller removes us while we still serve.
    metrics.set_ready(false);
    webhook.start_draining();
    tracing::info!(
        delay = ?config.shutdown_delay,
        "shutting down: readiness now fails, answers say Connection: close"
    );
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

/// File descriptors every listener and the process itself need besides connections.
const SPARE_FILES: usize = 64;

/// The soft limit on open files of this process (`/proc/self/limits`), when it can be read.
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Lowers the connection caps so both listeners together stay below the open-files limit: at
/// the cap a connection is refused and counted, rather than `accept` failing with EMFILE on both
/// listeners.
pub fn fit_open_files(mut limits: Limits, open_files: Option<usize>) -> Limits {
    let Some(files) = open_files else {
        return limits;
    };
    let room = files.saturating_sub(SPARE_FILES).max(2);
    if limits.max_connections + limits.max_metrics_connections > room {
        let metrics = limits.max_metrics_connections.min(room / 8).max(1);
        let webhook = room.saturating_sub(metrics).max(1);
        tracing::warn!(
            open_files = files,
            max_connections = webhook,
            max_metrics_connections = metrics,
            "connection caps lowered to fit the open-files limit"
        );
        limits.max_connections = webhook;
        limits.max_metrics_connections = metrics;
        limits.max_connections_per_client = limits.max_connections_per_client.min(webhook);
    }
    limits
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_fit_the_open_files_limit() {
        let limits = fit_open_files(Limits::default(), Some(1024));
        assert_eq!(limits.max_metrics_connections, 64);
        assert_eq!(limits.max_connections, 1024 - SPARE_FILES - 64);
        assert!(limits.max_connections_per_client <= limits.max_connections);
        let roomy = fit_open_files(Limits::default(), Some(1 << 20));
        assert_eq!(roomy.max_connections, Limits::default().max_connections);
        assert_eq!(
            fit_open_files(Limits::default(), None).max_connections,
            1024
        );
    }
}
