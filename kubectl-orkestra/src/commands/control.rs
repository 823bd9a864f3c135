//! `kubectl orkestra abort GROUP` and `retry GROUP`: Argo's terminate/stop and retry on the
//! group's latest Workflow, computed by `orkestra::live::control` and applied here (a merge patch; pod
//! deletions and a PUT of the Workflow, as Argo's server does for `argo retry`).

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use orkestra::live::control::{self, Shutdown};

use serde_json::{Value, json};

use super::cluster::{self, Cluster, POD, WORKFLOW};
use crate::cli::{AbortArgs, RetryArgs};
use crate::output::write_stdout;
use orkestra::live::revision;

/// The group's latest Workflow and its namespace.
async fn latest(cluster: &Cluster, group: &str, ns: Option<&str>) -> Result<(String, Value)> {
    let obs = cluster::observe(cluster, group, ns).await?;
    let wf = revision::latest_workflow(&obs.workflows)
        .cloned()
        .with_context(|| {
            format!(
                "ApplicationGroup {group} has no release in namespace {}: `kubectl orkestra promote {group}` starts one",
                obs.namespace
            )
        })?;
    Ok((obs.namespace, wf))
}

fn name(wf: &Value) -> String {
    wf.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn abort(args: &AbortArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = Cluster::connect(&args.kube).await?;
        let (ns, wf) = latest(&cluster, &args.group, args.namespace.as_deref()).await?;
        let how = if args.stop {
            Shutdown::Stop
        } else {
            Shutdown::Terminate
        };
        let who = cluster.whoami().await;
        let patch = control::abort_patch(&wf, how, who.as_deref(), cluster::now())?;
        let wf_name = name(&wf);
        cluster
            .merge_patch(WORKFLOW, Some(&ns), &wf_name, &patch)
            .await?;
        write_stdout(&format!(
            "ApplicationGroup {}: Workflow {ns}/{wf_name} {} (spec.shutdown: {}){}; `kubectl orkestra history {}` records it\n",
            args.group,
            if args.stop { "stopped" } else { "terminated" },
            how.as_str(),
            who.map(|w| format!(" by {w}")).unwrap_or_default(),
            args.group,
        ))?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn retry(args: &RetryArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = Cluster::connect(&args.kube).await?;
        let (ns, wf) = latest(&cluster, &args.group, args.namespace.as_deref()).await?;
        let mut retried = control::retry(&wf, cluster::now())?;
        if let Some(who) = cluster.whoami().await {
            retried.workflow["metadata"]["annotations"][orkestra::labels::RETRIED_BY] = json!(who);
        }
        for pod in &retried.pods_to_delete {
            cluster.delete_if_exists(POD, Some(&ns), pod).await?;
        }
        // A PUT with the resourceVersion read: if Argo changed the Workflow meanwhile, this fails
        // instead of overwriting it.
        cluster
            .replace(WORKFLOW, Some(&ns), &retried.workflow)
            .await?;
        let wf_name = name(&wf);
        write_stdout(&format!(
            "ApplicationGroup {}: Workflow {ns}/{wf_name} retried from its failed step{} {} (same revision; retry {})\n",
            args.group,
            if retried.failed_steps.len() == 1 {
                ""
            } else {
                "s"
            },
            retried.failed_steps.join(", "),
            retried.workflow["metadata"]["annotations"][orkestra::labels::RETRIES]
                .as_str()
                .unwrap_or("1"),
        ))?;
        if args.waiting.wait {
            return super::status::wait_and_report(
                &cluster,
                &args.group,
                args.namespace.as_deref(),
                &args.waiting,
                args.output,
            )
            .await;
        }
        Ok(ExitCode::SUCCESS)
    })
}
