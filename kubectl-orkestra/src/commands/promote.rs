//! `kubectl orkestra promote GROUP`: release the group's current spec as a new revision (a
//! ControllerRevision and the Workflow `<group>-r<N>` built from the injected templates), or
//! continue a release paused at a manual gate. `--dry-run` prints the plan and changes nothing.

use std::process::ExitCode;

use anyhow::{Result, bail};
use orkestra::emit::argo;
use orkestra::emit::revision::{NewRevision, ReleaseType};
use orkestra::live::workflow::Step;
use serde_json::{Value, json};

use super::cluster::{self, CONTROLLER_REVISION, Cluster, WORKFLOW};
use super::status;
use crate::cli::{ClusterOutput, PromoteArgs};
use crate::output::{write_stderr, write_stdout};
use orkestra::live::revision;
use orkestra::live::workflow;
use orkestra::naming;
use orkestra::plan;
use orkestra::time;

pub fn run(args: &PromoteArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = Cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let group = &obs.group;
        let ns = obs.namespace.as_str();
        let phases = revision::workflow_phases(&obs.workflows);
        let latest = obs.revisions.last();
        let unchanged = latest.filter(|r| r.spec == group.spec);
        let base = revision::last_succeeded(&obs.revisions, &phases, None);

        if args.dry_run {
            let p = plan::promote::plan(&group.defaulted_spec(), base.map(|r| (r.number, &r.spec)));
            if !cluster::write_structured(&p, args.output)? {
                let mut text = p.render(&group.name);
                match (unchanged, obs.report.workflow.as_ref()) {
                    (Some(r), Some(w)) if !w.waiting_at_gates.is_empty() => text.push_str(&format!(
                        "\nWould continue revision {} (workflow {}) past the gate of {}; nothing else changes.\n",
                        r.number, w.name, w.waiting_at_gates.join(", ")
                    )),
                    (Some(r), _) => text.push_str(&format!(
                        "\nNothing to promote: the spec is unchanged since revision {}.\n",
                        r.number
                    )),
                    (None, _) => text.push_str(&format!(
                        "\nWould record revision {} and create Workflow {ns}/{}.\n",
                        obs.next_revision,
                        naming::revision_name(&group.name, obs.next_revision)
                    )),
                }
                text.push_str("(dry run: nothing was changed)\n");
                write_stdout(&text)?;
            }
            return Ok(ExitCode::SUCCESS);
        }

        if let Some(rev) = unchanged {
            match obs.workflows.iter().find(|w| name_of(w) == rev.workflow) {
                Some(wf) => {
                    let resumed = resume(&cluster, ns, wf, args.full).await?;
                    if resumed.is_empty() {
                        write_stderr(&format!(
                            "ApplicationGroup {}: the spec is unchanged since revision {} (workflow {ns}/{}: {}); nothing to promote{}\n",
                            group.name,
                            rev.number,
                            rev.workflow,
                            phase_of(wf),
                            if matches!(phase_of(wf).as_str(), "Failed" | "Error") {
                                format!(
                                    " (fix the spec and promote again, or `kubectl orkestra rollback {}`)",
                                    group.name
                                )
                            } else {
                                String::new()
                            }
                        ));
                    } else {
                        write_stderr(&format!(
                            "ApplicationGroup {}: revision {} continues past the gate of {} (workflow {ns}/{})\n",
                            group.name,
                            rev.number,
                            resumed.join(", "),
                            rev.workflow
                        ));
                    }
                }
                None => {
                    // The Workflow of the latest revision was deleted: run that revision again.
                    let r = new_revision(rev.number, ns, ReleaseType::Forward, None, None);
                    let wf = orkestra::emit::revision::forward_workflow(
                        &group.owner(),
                        &rev.spec,
                        &r,
                        args.full,
                    );
                    cluster.create(WORKFLOW, Some(ns), &wf).await?;
                    write_stderr(&format!(
                        "ApplicationGroup {}: the Workflow of revision {} was gone; created {ns}/{} again\n",
                        group.name, rev.number, rev.workflow
                    ));
                }
            }
        } else {
            if group
                .spec
                .workflow_template
                .as_ref()
                .and_then(|w| w.templates.as_ref())
                .is_none()
            {
                bail!(
                    "ApplicationGroup {} has no injected Argo templates (spec.workflowTemplate.templates): \
                     is the Orkestra mutating webhook installed? Re-apply the group once it is.",
                    group.name
                );
            }
            for w in obs
                .workflows
                .iter()
                .filter(|w| !matches!(phase_of(w).as_str(), "Succeeded" | "Failed" | "Error"))
            {
                if workflow::nodes(w).iter().any(|n| n.is_active_suspend()) {
                    // Paused at a gate of a superseded spec: nobody will pass that gate now (promote
                    // continues the latest revision only), so stop it as `argo terminate` does.
                    cluster
                        .merge_patch(
                            WORKFLOW,
                            Some(ns),
                            &name_of(w),
                            &json!({ "spec": { "shutdown": "Terminate" } }),
                        )
                        .await?;
                    write_stderr(&format!(
                        "workflow {ns}/{} was paused at a gate of an older spec: terminated\n",
                        name_of(w)
                    ));
                } else {
                    write_stderr(&format!(
                        "warning: workflow {ns}/{} is still {}; both will release this group\n",
                        name_of(w),
                        phase_of(w)
                    ));
                }
            }
            let who = cluster.whoami().await;
            let number = obs.next_revision;
            let r = new_revision(number, ns, ReleaseType::Forward, who.as_deref(), None);
            let owner = group.owner();
            let cr =
                orkestra::emit::revision::controller_revision(&owner, &group.object["spec"], &r);
            let wf = orkestra::emit::revision::forward_workflow(&owner, &group.spec, &r, args.full);
            record(
                &cluster,
                ns,
                &naming::revision_name(&group.name, number),
                &cr,
                &wf,
            )
            .await?;
            write_stderr(&format!(
                "ApplicationGroup {}: revision {number} recorded; workflow {ns}/{} created\n",
                group.name,
                naming::revision_name(&group.name, number)
            ));
        }
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
            let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
            write_stdout(&status::render(&obs.report, args.output)?)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn new_revision<'a>(
    number: i64,
    ns: &'a str,
    t: ReleaseType,
    who: Option<&'a str>,
    of: Option<i64>,
) -> NewRevision<'a> {
    NewRevision {
        number,
        namespace: ns,
        release_type: t,
        promoted_by: who,
        rollback_of: of,
    }
}

fn name_of(w: &Value) -> String {
    w.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn phase_of(w: &Value) -> String {
    w.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string()
}

/// Resumes every active gate of a Workflow the way `argo resume` does (the suspend node marked
/// Succeeded, with a message and a finish time); `full` also turns the remaining gates off.
/// Returns the applications whose gates were passed.
/// Creates a release: its revision, then its Workflow. When the Workflow cannot be created the
/// revision is taken back, so no revision is left without its release.
pub async fn record(
    cluster: &Cluster,
    ns: &str,
    revision: &str,
    cr: &Value,
    wf: &Value,
) -> Result<()> {
    cluster.create(CONTROLLER_REVISION, Some(ns), cr).await?;
    if let Err(e) = cluster.create(WORKFLOW, Some(ns), wf).await {
        let _ = cluster
            .delete(CONTROLLER_REVISION, Some(ns), revision)
            .await;
        return Err(e);
    }
    Ok(())
}

pub async fn resume(cluster: &Cluster, ns: &str, wf: &Value, full: bool) -> Result<Vec<String>> {
    let name = name_of(wf);
    if workflow::nodes_unavailable(wf) && phase_of(wf) == "Running" {
        anyhow::bail!(
            "workflow {ns}/{name}: Argo compressed or offloaded its node statuses, so its gates cannot be passed from here; use `argo resume -n {ns} {name}`"
        );
    }
    let mut nodes = serde_json::Map::new();
    let mut passed = Vec::new();
    let now = time::format_time(cluster::now());
    for node in workflow::nodes(wf).iter().filter(|n| n.is_active_suspend()) {
        let mut message = "Resumed by: kubectl orkestra promote".to_string();
        if let Some(m) = &node.message {
            message = format!("{m}; {message}");
        }
        nodes.insert(
            node.id.clone(),
            json!({ "phase": "Succeeded", "message": message, "finishedAt": now }),
        );
        if let Step::Gate(app) = workflow::classify(&name, node) {
            passed.push(app);
        }
    }
    if nodes.is_empty() && !full {
        return Ok(passed);
    }
    let mut patch = json!({});
    if !nodes.is_empty() {
        patch["status"] = json!({ "nodes": nodes });
    }
    if full && matches!(phase_of(wf).as_str(), "Running" | "Pending") {
        // Gates not reached yet: Argo reads the parameter when it evaluates each gate's `when`.
        let mut params = wf
            .pointer("/spec/arguments/parameters")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let mut copy = json!({ "spec": { "arguments": { "parameters": params.take() } } });
        orkestra::emit::revision::set_gates(&mut copy, "off");
        if copy
            .pointer("/spec/arguments/parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|x| x["name"] == argo::GATES_PARAMETER))
        {
            patch["spec"] = copy["spec"].take();
        }
    }
    if patch.as_object().is_some_and(|m| !m.is_empty()) {
        cluster
            .merge_patch(WORKFLOW, Some(ns), &name, &patch)
            .await?;
    }
    Ok(passed)
}
