//! The one kube client constructor, with kubectl's flags. No API discovery: every resource
//! type this plugin touches is known, so commands build their `Api`s from fixed GVKs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The help heading of kubectl's flags.
pub const HEADING: &str = "Kubectl flags";

/// kubectl's connection flags. `KUBECONFIG` (a path list) is read by kube itself, as kubectl does.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, help_heading = HEADING, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use.
    #[arg(long, global = true, help_heading = HEADING, value_name = "NAME")]
    pub context: Option<String>,

    /// The kubeconfig cluster to use.
    #[arg(long, global = true, help_heading = HEADING, value_name = "NAME")]
    pub cluster: Option<String>,

    /// The kubeconfig user to use.
    #[arg(long, global = true, help_heading = HEADING, value_name = "NAME")]
    pub user: Option<String>,

    /// How long to wait for one request to the API server (e.g. 30s, 1m; 0 means no limit).
    #[arg(long, global = true, help_heading = HEADING, value_name = "DURATION", value_parser = parse_timeout)]
    pub request_timeout: Option<Duration>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    // kubectl also accepts a bare number of seconds.
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    orkestra::duration::parse(s).ok_or_else(|| format!("{s:?} is not a duration (e.g. 30s, 1m)"))
}

/// The existing files of `KUBECONFIG`, when it lists some that do not exist (and at least one that
/// does); `None` otherwise, leaving the ordinary loading to kube.
fn kubeconfig_list_with_missing_files() -> Option<Vec<PathBuf>> {
    let list = std::env::var_os("KUBECONFIG")?;
    let paths: Vec<PathBuf> = std::env::split_paths(&list)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let existing: Vec<PathBuf> = paths.iter().filter(|p| p.is_file()).cloned().collect();
    (existing.len() < paths.len() && !existing.is_empty()).then_some(existing)
}

impl KubeArgs {
    /// The client configuration: the kubeconfig (with the chosen context, cluster and user), or
    /// the in-cluster service account when no kubeconfig exists (the executor inside Argo).
    pub async fn config(&self) -> Result<Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("loading kubeconfig {}", path.display()))?
            }
            // kubectl skips the files of a KUBECONFIG list that do not exist; kube fails on them.
            None if kubeconfig_list_with_missing_files().is_some() => {
                let mut merged: Option<Kubeconfig> = None;
                for path in kubeconfig_list_with_missing_files().unwrap_or_default() {
                    let next = Kubeconfig::read_from(&path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
                    merged = Some(match merged {
                        Some(m) => m.merge(next).context("merging the KUBECONFIG files")?,
                        None => next,
                    });
                }
                let merged = merged.context("no file of KUBECONFIG exists")?;
                Config::from_custom_kubeconfig(merged, &options).await.context("loading the KUBECONFIG files")?
            }
            None => match Config::from_kubeconfig(&options).await {
                Ok(config) => config,
                Err(kubeconfig_error) => Config::incluster().map_err(|_| {
                    anyhow!("no cluster configured: {kubeconfig_error} (set KUBECONFIG, pass --kubeconfig, or run in a pod)")
                })?,
            },
        };
        tracing::debug!(
            server = %config.cluster_url,
            namespace = %config.default_namespace,
            context = self.context.as_deref(),
            "kube client configured"
        );
        if let Some(timeout) = self.request_timeout.filter(|t| !t.is_zero()) {
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
            config.connect_timeout = Some(timeout);
        }
        Ok(config)
    }

    /// The kubeconfig's user name for the chosen context (`--user` when given).
    pub fn kubeconfig_user(&self) -> Option<String> {
        if let Some(user) = &self.user {
            return Some(user.clone());
        }
        let kubeconfig = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).ok()?,
            None => Kubeconfig::read().ok()?,
        };
        let context = self
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())?;
        kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)?
            .context
            .as_ref()?
            .user
            .clone()
    }

    /// A client for the configured cluster.
    pub async fn client(&self) -> Result<Client> {
        let config = self.config().await?;
        Client::try_from(config).context("creating the Kubernetes client")
    }
}
