//! What the cluster commands share: the cluster operations of `orkestra_cluster` (the library
//! the controller uses too), adapted to the plugin's flags and errors, and the output helpers.

use std::time::Duration;

use anyhow::{Context as _, Result};
pub use orkestra::api::resources::{
    APPLICATION_GROUP, CONTROLLER_REVISION, HELM_RELEASE, ResourceType, WORKFLOW,
};
pub use orkestra_cluster::{Cluster, Group, Observation, assemble, now};
use serde::Serialize;

use crate::cli::ClusterOutput;
use crate::client::KubeArgs;

/// Connects with kubectl's flags; the kubeconfig's user names the author of a change when the
/// API server cannot say who we are.
pub async fn connect(args: &KubeArgs) -> Result<Cluster> {
    Ok(Cluster::new(args.client().await?, args.kubeconfig_user()))
}

/// Observes a group; reads that failed without spoiling the rest are warnings on stderr.
pub async fn observe(
    cluster: &Cluster,
    name: &str,
    namespace_flag: Option<&str>,
) -> Result<Observation> {
    let obs = orkestra_cluster::observe(cluster, name, namespace_flag).await?;
    for w in &obs.warnings {
        crate::output::write_stderr(&format!("warning: {w}\n"));
    }
    Ok(obs)
}

/// Turns a kube error into a message naming the verb, the resource and what to do.
pub fn explain(
    err: kube::Error,
    verb: &str,
    kind: ResourceType,
    name: Option<&str>,
    namespace: Option<&str>,
) -> anyhow::Error {
    orkestra_cluster::Error::explain(err, verb, kind, name, namespace).into()
}

/// Writes `value` as JSON or YAML; `false` when the format is a table (the caller prints it).
pub fn write_structured<T: Serialize>(value: &T, output: ClusterOutput) -> Result<bool> {
    match output {
        ClusterOutput::Json => {
            crate::output::write_stdout(&(serde_json::to_string_pretty(value)? + "\n"))?;
            Ok(true)
        }
        ClusterOutput::Yaml => {
            crate::output::write_stdout(&serde_saphyr::to_string(value).context("writing YAML")?)?;
            Ok(true)
        }
        ClusterOutput::Table | ClusterOutput::Wide => Ok(false),
    }
}

/// Shortens `s` to `max` characters with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Ages like kubectl: `45s`, `3m`, `2h`, `4d`.
pub fn age(rfc3339: Option<&str>, now: i64) -> String {
    let Some(t) = rfc3339.and_then(orkestra::time::parse_time) else {
        return "-".into();
    };
    let d = (now - t).max(0);
    match d {
        0..=119 => format!("{d}s"),
        120..=7199 => format!("{}m", d / 60),
        7200..=172_799 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86_400),
    }
}

/// A duration in seconds for a table cell.
pub fn seconds(d: Option<f64>) -> String {
    d.map_or_else(
        || "-".into(),
        |s| orkestra::duration::human(Duration::from_secs_f64(s.max(0.0))),
    )
}

/// True when stdout is a terminal and NO_COLOR is unset: colours and redraws are welcome.
pub fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && colour_allowed()
}

/// False when NO_COLOR is set (https://no-color.org).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
