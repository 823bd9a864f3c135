//! `kubectl orkestra abort GROUP` and `retry GROUP`: stop the release in flight (Argo's
//! terminate, or stop with `--stop`), or re-run its failed steps in the same Workflow (Argo's
//! retry, no new revision). The operations are `orkestra_cluster::control`'s.

use std::process::ExitCode;

use anyhow::Result;
use orkestra::live::control::Shutdown;
use orkestra_cluster::control;

use super::cluster;
use crate::cli::{AbortArgs, RetryArgs};
use crate::output::write_stdout;

pub fn abort(args: &AbortArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let how = if args.stop {
            Shutdown::Stop
        } else {
            Shutdown::Terminate
        };
        let who = cluster.whoami().await;
        let wf_name = control::abort(&cluster, &obs, how, who.as_deref()).await?;
        let ns = &obs.namespace;
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
        let cluster = cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let who = cluster.whoami().await;
        let retried = control::retry(&cluster, &obs, who.as_deref()).await?;
        write_stdout(&format!(
            "ApplicationGroup {}: Workflow {}/{} retried from its failed step{} {} (same revision; retry {})\n",
            args.group,
            obs.namespace,
            retried.workflow,
            if retried.steps.len() == 1 { "" } else { "s" },
            retried.steps.join(", "),
            retried.retries,
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
