//! `kubectl orkestra rollback GROUP [--to-revision N]`: restore a recorded revision across the
//! whole group (by default the last one whose release succeeded). Applications added since are
//! removed in reverse dependency order, the others re-applied at that revision's charts and
//! values in dependency order, by a rollback Workflow recorded as a new revision; the group's
//! spec is set back through the API server, so admission sees it.

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};

use orkestra::emit::revision::{NewRevision, ReleaseType};
use serde_json::json;

use super::cluster::{self, APPLICATION_GROUP, Cluster};
use super::status;
use crate::cli::{ClusterOutput, RollbackArgs};
use crate::output::{write_stderr, write_stdout};
use orkestra::emit::rollback;
use orkestra::live::revision;
use orkestra::naming;
use orkestra::plan;

pub fn run(args: &RollbackArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = Cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let group = &obs.group;
        let ns = obs.namespace.as_str();
        let phases = revision::workflow_phases(&obs.workflows);
        let target = match args.to_revision {
            Some(n) => obs
                .revisions
                .iter()
                .find(|r| r.number == n)
                .ok_or_else(|| {
                    let known: Vec<String> =
                        obs.revisions.iter().map(|r| r.number.to_string()).collect();
                    anyhow!(
                        "ApplicationGroup {} has no revision {n} (recorded: {})",
                        group.name,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    )
                })?,
            None => {
                // The current spec's own revision is not a rollback target.
                let below = obs
                    .revisions
                    .last()
                    .filter(|r| r.spec == group.spec)
                    .map(|r| r.number);
                revision::last_succeeded(&obs.revisions, &phases, below).ok_or_else(|| {
                    anyhow!(
                        "ApplicationGroup {} has no earlier revision whose release succeeded; name one with --to-revision (see `kubectl orkestra history {}`)",
                        group.name,
                        group.name
                    )
                })?
            }
        };
        if let Some(manager) = group.gitops_manager() {
            write_stderr(&format!(
                "warning: ApplicationGroup {} is managed by {manager}: revert the change in Git too (or suspend reconciliation), or {manager} will undo this rollback\n",
                group.name
            ));
        }
        let p = plan::rollback::plan(&group.spec, target.number, &target.spec);
        if args.dry_run {
            if !cluster::write_structured(&p, args.output)? {
                let mut text = p.render(&group.name);
                let n = obs.next_revision;
                text.push_str(&format!(
                    "\nWould set the group's spec to revision {}, record it as revision {n} and create Workflow {ns}/{}.\n(dry run: nothing was changed)\n",
                    target.number,
                    naming::revision_name(&group.name, n)
                ));
                write_stdout(&text)?;
            }
            return Ok(ExitCode::SUCCESS);
        }

        // 1. The spec, through the API server (the webhook validates and defaults it).
        let mut object = group.object.clone();
        object["spec"] = target.raw_spec.clone();
        if let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
        let updated = cluster
            .replace(APPLICATION_GROUP, None, &object)
            .await
            .with_context(|| {
                format!(
                    "setting the spec of ApplicationGroup {} back to revision {}",
                    group.name, target.number
                )
            })?;
        // 2. The revision, 3. the Workflow.
        let who = cluster.whoami().await;
        let number = obs.next_revision;
        let r = NewRevision {
            number,
            namespace: ns,
            release_type: ReleaseType::Rollback,
            promoted_by: who.as_deref(),
            rollback_of: Some(target.number),
        };
        let mut owner = group.owner();
        owner.generation = updated
            .pointer("/metadata/generation")
            .and_then(|g| g.as_i64());
        let cr = orkestra::emit::revision::controller_revision(&owner, &target.raw_spec, &r);
        let wf = rollback::rollback_workflow(&owner, &group.spec, &target.spec, &r);
        super::promote::record(
            &cluster,
            ns,
            &naming::revision_name(&group.name, number),
            &cr,
            &wf,
        )
        .await?;
        write_stderr(&format!(
            "ApplicationGroup {}: spec set back to revision {}; recorded as revision {number}; rollback workflow {ns}/{} created{}\n",
            group.name,
            target.number,
            naming::revision_name(&group.name, number),
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
            let summary = json!({ "group": group.name, "revision": number, "rollbackOf": target.number, "workflow": naming::revision_name(&group.name, number), "plan": p });
            cluster::write_structured(&summary, args.output)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
