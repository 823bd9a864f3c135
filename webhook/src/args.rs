//! Command-line flags, in the style of Kubernetes components, and the dispatch to serving or to
//! minting certificates.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use orkestra::admission::policy::Policy;

use crate::admission::Enforcement;
use crate::certs;
use crate::run::{self, ServeConfig};
use crate::server::Limits;
use crate::tls::MinTlsVersion;

/// Validating and mutating admission webhooks for Orkestra ApplicationGroups.
#[derive(Debug, Parser)]
#[command(
    name = "orkestra-webhook",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint a CA and a serving certificate (for installs without cert-manager) and print the
    /// base64 caBundle to put in the webhook configurations.
    Certs(CertsArgs),
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the HTTPS server (POST /validate, POST /mutate).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub bind_address: SocketAddr,
    /// PEM certificate chain served (reloaded when the file changes).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate (reloaded when the file changes).
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Lowest TLS version offered.
    #[arg(long, value_enum, default_value = "1.2")]
    pub tls_min_version: MinTlsVersion,
    /// Address of the plain-HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// deny: reject groups that break a rule. warn: admit them, with the violations as warnings.
    #[arg(long, value_enum, default_value = "deny")]
    pub enforcement: Enforcement,
    /// After SIGTERM, keep serving this long with /readyz failing, so endpoints are removed
    /// before the listener closes.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// Then wait at most this long for in-flight requests to finish.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Time allowed for a request head. hyper also applies it to idle keep-alive connections, so
    /// it is longer than the apiserver's 90 s idle timeout: the client always closes first and no
    /// request is lost to a close race.
    #[arg(long, default_value = "100s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Time allowed for a request body.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long, default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// Bodies over 128 KiB reviewed at once, at most. The others wait until the API server's
    /// timeout less 0.5 s, then get 503; a review keeps its permit until its work ends.
    #[arg(long, default_value_t = 1)]
    pub max_large_requests: usize,
    /// Request body bytes held in memory at once, over all requests (503 beyond).
    #[arg(long, default_value_t = 32 << 20)]
    pub max_buffered_bytes: usize,
    /// Open connections to the HTTPS listener, at most.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Open connections from one client address, at most.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_client: usize,
    /// Open connections to the health and metrics listener, at most (a quarter per client).
    #[arg(long, default_value_t = 64)]
    pub max_metrics_connections: usize,
    /// Namespaces a group's Workflows may run in (comma-separated; empty: any). Groups asking
    /// for another are denied in every enforcement mode.
    #[arg(long, value_delimiter = ',')]
    pub allowed_workflow_namespaces: Vec<String>,
    /// Service accounts a group's Workflows may run as (comma-separated; empty: any).
    #[arg(long, value_delimiter = ',')]
    pub allowed_service_accounts: Vec<String>,
    /// Prefixes every executor image must start with (comma-separated; empty: any). End each
    /// with `/` or `:`.
    #[arg(long, value_delimiter = ',')]
    pub allowed_image_prefixes: Vec<String>,
    /// How often the certificate files are checked, besides every TLS handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub cert_poll_interval: Duration,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Name of the webhook Service.
    #[arg(long, default_value = "orkestra-webhook")]
    pub service: String,
    /// Namespace of the webhook Service.
    #[arg(long, default_value = "orkestra-system")]
    pub namespace: String,
    /// Extra DNS names for the serving certificate.
    #[arg(long = "dns-name")]
    pub dns_names: Vec<String>,
    /// IP addresses for the serving certificate (e.g. 127.0.0.1 for a webhook registered by URL).
    #[arg(long = "ip-address")]
    pub ip_addresses: Vec<IpAddr>,
    /// Lifetime of the serving certificate, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Lifetime of the CA, in days.
    #[arg(long, default_value_t = 3650)]
    pub ca_days: u32,
}

/// Parses a duration in the project's one grammar ([`orkestra::duration::parse`]: `500ms`, `5s`,
/// `2m`, `1m30s`), or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed = match s.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).ok(),
        Err(_) => orkestra::duration::parse(s),
    };
    parsed.ok_or_else(|| format!("{s:?} is not a duration like 500ms, 5s, 2m or 1m30s"))
}

impl Cli {
    /// Runs the command; the process exit code follows from the result.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Some(Command::Certs(args)) => args.run(),
            None => self.serve.run(),
        }
    }
}

impl CertsArgs {
    fn run(self) -> anyhow::Result<()> {
        let mut req = certs::Request::for_service(&self.service, &self.namespace);
        req.dns_names.extend(self.dns_names);
        req.ip_addresses = self.ip_addresses;
        req.days = self.days;
        req.ca_days = self.ca_days;
        let minted = certs::mint(&req).context("minting certificates")?;
        minted
            .write_to(&self.out_dir)
            .context("writing certificates")?;
        let bundle = base64::engine::general_purpose::STANDARD.encode(&minted.ca_cert_pem);
        println!("{bundle}");
        eprintln!(
            "wrote ca.crt, ca.key, tls.crt, tls.key to {}; stdout is the caBundle",
            self.out_dir.display()
        );
        Ok(())
    }
}

impl ServeArgs {
    fn run(self) -> anyhow::Result<()> {
        init_logging(self.log_format);
        let (Some(cert), Some(key)) = (self.tls_cert_file, self.tls_private_key_file) else {
            anyhow::bail!(
                "--tls-cert-file and --tls-private-key-file are required to serve \
                 (mint a pair with `orkestra-webhook certs --out-dir DIR`)"
            );
        };
        let config = ServeConfig {
            bind_address: self.bind_address,
            metrics_bind_address: self.metrics_bind_address,
            cert_file: cert,
            key_file: key,
            tls_min_version: self.tls_min_version,
            enforcement: self.enforcement,
            policy: Policy {
                workflow_namespaces: self.allowed_workflow_namespaces,
                service_accounts: self.allowed_service_accounts,
                image_prefixes: self.allowed_image_prefixes,
            },
            shutdown_delay: self.shutdown_delay,
            shutdown_timeout: self.shutdown_timeout,
            cert_poll_interval: self.cert_poll_interval,
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                max_large_in_flight: self.max_large_requests,
                header_read_timeout: self.header_read_timeout,
                body_read_timeout: self.body_read_timeout,
                max_connections: self.max_connections,
                max_connections_per_client: self.max_connections_per_client,
                max_metrics_connections: self.max_metrics_connections,
                max_buffered_bytes: self.max_buffered_bytes,
                ..Limits::default()
            },
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("orkestra-webhook")
            .build()
            .context("starting the tokio runtime")?;
        let result = runtime.block_on(run::serve(config));
        // A review still running on the blocking pool must not hold the process past
        // --shutdown-timeout: leave it behind.
        runtime.shutdown_background();
        result
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second initialisation (tests) is not an error.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn defaults_match_kubernetes_style() {
        let cli = Cli::parse_from(["orkestra-webhook"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind_address.to_string(), "0.0.0.0:8443");
        assert_eq!(cli.serve.metrics_bind_address.to_string(), "0.0.0.0:8080");
        assert_eq!(cli.serve.enforcement, Enforcement::Deny);
        assert_eq!(cli.serve.log_format, LogFormat::Text);
        let cli = Cli::parse_from([
            "orkestra-webhook",
            "--enforcement",
            "warn",
            "--log-format",
            "json",
            "--tls-min-version",
            "1.3",
        ]);
        assert_eq!(cli.serve.enforcement, Enforcement::Warn);
        assert_eq!(cli.serve.log_format, LogFormat::Json);
        assert_eq!(cli.serve.tls_min_version, MinTlsVersion::Tls13);
        let cli = Cli::parse_from(["orkestra-webhook", "certs", "--out-dir", "/tmp/x"]);
        assert!(matches!(cli.command, Some(Command::Certs(_))));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
