//! `kubectl orkestra rollback GROUP [--to-revision N]`: restore a recorded revision across the
//! whole group (by default the last one whose release succeeded). Applications added since are
//! removed in reverse dependency order, the others re-applied at that revision's charts and
//! values in dependency order, by a rollback Workflow recorded as a new revision; the group's
//! spec is set back through the API server, so admission sees it. The choice of target and the
//! rollback are `orkestra_cluster::release`'s, which the controller's automatic rollback uses too.

use std::process::ExitCode;

use anyhow::Result;
use orkestra::naming::revision_name;
use orkestra_cluster::release::{self, Actor};
use serde_json::json;

use super::cluster;
use super::status;
use crate::cli::{ClusterOutput, RollbackArgs};
use crate::output::{write_stderr, write_stdout};

pub fn run(args: &RollbackArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let group = &obs.group;
        let ns = obs.namespace.as_str();
        let target = release::rollback_target(&obs, args.to_revision)?;
        if let Some(manager) = group.gitops_manager() {
            write_stderr(&format!(
                "warning: ApplicationGroup {} is managed by {manager}: revert the change in Git too (or suspend reconciliation), or {manager} will undo this rollback\n",
                group.name
            ));
        }
        let p = release::rollback_plan(&obs, target);
        if args.dry_run {
            if !cluster::write_structured(&p, args.output)? {
                let mut text = p.render(&group.name);
                let n = obs.next_revision;
                text.push_str(&format!(
                    "\nWould set the group's spec to revision {}, record it as revision {n} and create Workflow {ns}/{}.\n(dry run: nothing was changed)\n",
                    target.number,
                    revision_name(&group.name, n)
                ));
                write_stdout(&text)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let actor = Actor {
            who: cluster.whoami().await,
            tool: "kubectl orkestra rollback",
        };
        let done = release::rollback(&cluster, &obs, target, &actor).await?;
        write_stderr(&format!(
            "ApplicationGroup {}: spec set back to revision {}; recorded as revision {}; rollback workflow {ns}/{} created{}\n",
            group.name,
            done.target,
            done.revision,
            done.workflow,
            if p.remove.is_empty() {
                String::new()
            } else {
                format!(" (removes {})", p.remove.join(" -> "))
            }
        ));
        if args.waiting.wait {
            return status::wait_and_report(
                &cluster,
                &args.group,
                args.namespace.as_deref(),
                &args.waiting,
                args.output,
            )
            .await;
        }
        if matches!(args.output, ClusterOutput::Json | ClusterOutput::Yaml) {
            let summary = json!({ "group": group.name, "revision": done.revision, "rollbackOf": done.target, "workflow": done.workflow, "plan": p });
            cluster::write_structured(&summary, args.output)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
