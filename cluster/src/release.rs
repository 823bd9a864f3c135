//! Releases: promote (decide, then act) and rollback. The plugin's `promote` and `rollback` and
//! the controller's automatic release and automatic rollback are these functions.

use orkestra::emit::argo;
use orkestra::emit::revision::{self, NewRevision, ReleaseType};
use orkestra::emit::rollback::rollback_workflow;
use orkestra::live::revision::{Revision, last_succeeded};
use orkestra::live::workflow::{self as live, Step};
use orkestra::naming::revision_name;
use orkestra::plan::rollback::{self as plan, RollbackPlan};
use serde_json::{Value, json};

use crate::observe::{is_final, phase_of};
use crate::{Cluster, Error, Observation, Result, name_of};
use orkestra::api::resources::{APPLICATION_GROUP, CONTROLLER_REVISION, WORKFLOW};

/// What a promote of the group's current spec does.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The spec is unchanged since the latest revision, whose Workflow exists: pass its gates.
    Continue { revision: i64, workflow: String },
    /// The spec is unchanged since the latest revision, whose Workflow was deleted: run it again.
    Recreate { revision: i64, workflow: String },
    /// The spec changed: record revision `revision` and create its Workflow.
    Release {
        revision: i64,
        workflow: String,
        /// Releases of older specs still in flight.
        superseded: Vec<Superseded>,
    },
}

/// A release of an older spec still in flight when a new one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Superseded {
    pub workflow: String,
    pub phase: String,
    /// Paused at a gate: nobody will pass it now, so it is terminated (`argo terminate`).
    /// Otherwise it is left to finish, and both release the group.
    pub paused: bool,
}

/// Decides what a promote of the observed group does. Refuses a group without the injected Argo
/// templates (the mutating webhook did not see it).
pub fn decide(obs: &Observation) -> Result<Decision> {
    if let Some(rev) = obs.unchanged() {
        return Ok(match obs.workflow(&rev.workflow) {
            Some(_) => Decision::Continue {
                revision: rev.number,
                workflow: rev.workflow.clone(),
            },
            None => Decision::Recreate {
                revision: rev.number,
                workflow: rev.workflow.clone(),
            },
        });
    }
    let group = &obs.group;
    if group
        .spec
        .workflow_template
        .as_ref()
        .and_then(|w| w.templates.as_ref())
        .is_none()
    {
        return Err(Error::Refused(format!(
            "ApplicationGroup {} has no injected Argo templates (spec.workflowTemplate.templates): \
             is the Orkestra mutating webhook installed? Re-apply the group once it is.",
            group.name
        )));
    }
    let superseded = obs
        .workflows
        .iter()
        .filter(|w| !is_final(phase_of(w)))
        .map(|w| Superseded {
            workflow: name_of(w),
            phase: phase_of(w).to_string(),
            paused: live::nodes(w).iter().any(|n| n.is_active_suspend()),
        })
        .collect();
    Ok(Decision::Release {
        revision: obs.next_revision,
        workflow: revision_name(&group.name, obs.next_revision),
        superseded,
    })
}

/// What a promote did.
#[derive(Debug, Clone, PartialEq)]
pub enum Promoted {
    /// The gates of these applications were passed.
    Resumed {
        revision: i64,
        workflow: String,
        gates: Vec<String>,
    },
    /// Nothing to do: the spec is unchanged and no gate waits.
    Unchanged {
        revision: i64,
        workflow: String,
        phase: String,
    },
    /// The deleted Workflow of the latest revision was created again.
    Recreated { revision: i64, workflow: String },
    /// A new revision was recorded and its Workflow created.
    Released {
        revision: i64,
        workflow: String,
        /// Paused releases of older specs, terminated.
        terminated: Vec<String>,
        /// Releases of older specs still running: (workflow, phase).
        running: Vec<(String, String)>,
    },
}

/// Who is making a change, and how.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// Recorded as the revision's `promoted-by`.
    pub who: Option<String>,
    /// Named in a resumed gate's message, e.g. `kubectl orkestra promote`.
    pub tool: &'static str,
}

fn new_revision<'a>(
    number: i64,
    ns: &'a str,
    release_type: ReleaseType,
    who: Option<&'a str>,
    rollback_of: Option<i64>,
) -> NewRevision<'a> {
    NewRevision {
        number,
        namespace: ns,
        release_type,
        promoted_by: who,
        rollback_of,
    }
}

/// Carries out `decision` (from [`decide`] on the same observation). `full` turns the gates off
/// (a new release runs without pausing; a paused one passes every remaining gate).
pub async fn promote(
    cluster: &Cluster,
    obs: &Observation,
    decision: &Decision,
    full: bool,
    actor: &Actor,
) -> Result<Promoted> {
    let group = &obs.group;
    let ns = obs.namespace.as_str();
    match decision {
        Decision::Continue { revision, workflow } => {
            let wf = obs.workflow(workflow).ok_or_else(|| {
                Error::Refused(format!("workflow {ns}/{workflow} is gone; promote again"))
            })?;
            let gates = resume(cluster, ns, wf, full, actor.tool).await?;
            Ok(if gates.is_empty() {
                Promoted::Unchanged {
                    revision: *revision,
                    workflow: workflow.clone(),
                    phase: phase_of(wf).to_string(),
                }
            } else {
                Promoted::Resumed {
                    revision: *revision,
                    workflow: workflow.clone(),
                    gates,
                }
            })
        }
        Decision::Recreate { revision, workflow } => {
            let rev = obs
                .revisions
                .iter()
                .find(|r| r.number == *revision)
                .ok_or_else(|| Error::Refused(format!("revision {revision} is gone")))?;
            let r = new_revision(rev.number, ns, ReleaseType::Forward, None, None);
            let wf = revision::forward_workflow(&group.owner(), &rev.spec, &r, full);
            cluster.create(WORKFLOW, Some(ns), &wf).await?;
            Ok(Promoted::Recreated {
                revision: *revision,
                workflow: workflow.clone(),
            })
        }
        Decision::Release {
            revision: number,
            workflow,
            superseded,
        } => {
            let mut terminated = Vec::new();
            let mut running = Vec::new();
            for s in superseded {
                if s.paused {
                    terminate(cluster, ns, &s.workflow).await?;
                    terminated.push(s.workflow.clone());
                } else {
                    running.push((s.workflow.clone(), s.phase.clone()));
                }
            }
            let r = new_revision(
                *number,
                ns,
                ReleaseType::Forward,
                actor.who.as_deref(),
                None,
            );
            let owner = group.owner();
            let cr = revision::controller_revision(&owner, &group.object["spec"], &r);
            let wf = revision::forward_workflow(&owner, &group.spec, &r, full);
            record(cluster, ns, workflow, &cr, &wf).await?;
            Ok(Promoted::Released {
                revision: *number,
                workflow: workflow.clone(),
                terminated,
                running,
            })
        }
    }
}

/// Stops a Workflow as `argo terminate` does.
pub(crate) async fn terminate(cluster: &Cluster, ns: &str, workflow: &str) -> Result<()> {
    cluster
        .merge_patch(
            WORKFLOW,
            Some(ns),
            workflow,
            &json!({ "spec": { "shutdown": "Terminate" } }),
        )
        .await
        .map(|_| ())
}

/// Creates a release: its revision, then its Workflow. When the Workflow cannot be created the
/// revision is taken back, so no revision is left without its release.
async fn record(cluster: &Cluster, ns: &str, revision: &str, cr: &Value, wf: &Value) -> Result<()> {
    cluster.create(CONTROLLER_REVISION, Some(ns), cr).await?;
    if let Err(e) = cluster.create(WORKFLOW, Some(ns), wf).await {
        let _ = cluster
            .delete(CONTROLLER_REVISION, Some(ns), revision)
            .await;
        return Err(e);
    }
    Ok(())
}

/// Resumes every active gate of a Workflow the way `argo resume` does (the suspend node marked
/// Succeeded, with a message and a finish time); `full` also turns the remaining gates off.
/// Returns the applications whose gates were passed.
async fn resume(
    cluster: &Cluster,
    ns: &str,
    wf: &Value,
    full: bool,
    tool: &str,
) -> Result<Vec<String>> {
    let name = name_of(wf);
    if live::nodes_unavailable(wf) && phase_of(wf) == "Running" {
        return Err(Error::Refused(format!(
            "workflow {ns}/{name}: Argo compressed or offloaded its node statuses, so its gates cannot be passed from here; use `argo resume -n {ns} {name}`"
        )));
    }
    let mut nodes = serde_json::Map::new();
    let mut passed = Vec::new();
    let now = orkestra::time::format_time(crate::now());
    for node in live::nodes(wf).iter().filter(|n| n.is_active_suspend()) {
        let mut message = format!("Resumed by: {tool}");
        if let Some(m) = &node.message {
            message = format!("{m}; {message}");
        }
        nodes.insert(
            node.id.clone(),
            json!({ "phase": "Succeeded", "message": message, "finishedAt": now }),
        );
        if let Step::Gate(app) = live::classify(&name, node) {
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
    if full && matches!(phase_of(wf), "Running" | "Pending") {
        // Gates not reached yet: Argo reads the parameter when it evaluates each gate's `when`.
        let mut params = wf
            .pointer("/spec/arguments/parameters")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let mut copy = json!({ "spec": { "arguments": { "parameters": params.take() } } });
        revision::set_gates(&mut copy, "off");
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

/// The revision a rollback restores: `to` when given, else the last one whose release
/// succeeded, below the latest when the latest records the current spec.
pub fn rollback_target(obs: &Observation, to: Option<i64>) -> Result<&Revision> {
    let name = &obs.group.name;
    match to {
        Some(n) => obs.revisions.iter().find(|r| r.number == n).ok_or_else(|| {
            let known: Vec<String> = obs.revisions.iter().map(|r| r.number.to_string()).collect();
            Error::Refused(format!(
                "ApplicationGroup {name} has no revision {n} (recorded: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ))
        }),
        None => {
            let below = obs.unchanged().map(|r| r.number);
            last_succeeded(&obs.revisions, &obs.phases(), below).ok_or_else(|| {
                Error::Refused(format!(
                    "ApplicationGroup {name} has no earlier revision whose release succeeded; name one with --to-revision (see `kubectl orkestra history {name}`)"
                ))
            })
        }
    }
}

/// The plan of a rollback to `target`.
pub fn rollback_plan(obs: &Observation, target: &Revision) -> RollbackPlan {
    plan::plan(&obs.group.spec, target.number, &target.spec)
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq)]
pub struct RolledBack {
    /// The revision recorded for the rollback.
    pub revision: i64,
    /// The revision restored.
    pub target: i64,
    pub workflow: String,
}

/// Sets the group's spec back to `target`'s, records that as a new revision and creates the
/// rollback Workflow (which also removes, dependents first, what the target does not have).
pub async fn rollback(
    cluster: &Cluster,
    obs: &Observation,
    target: &Revision,
    actor: &Actor,
) -> Result<RolledBack> {
    let group = &obs.group;
    let ns = obs.namespace.as_str();
    let mut object = group.object.clone();
    object["spec"] = target.raw_spec.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    let updated = cluster
        .replace(APPLICATION_GROUP, None, &object)
        .await
        .map_err(|e| {
            Error::Refused(format!(
                "setting the spec of ApplicationGroup {} back to revision {}: {e}",
                group.name, target.number
            ))
        })?;
    let number = obs.next_revision;
    let r = new_revision(
        number,
        ns,
        ReleaseType::Rollback,
        actor.who.as_deref(),
        Some(target.number),
    );
    let mut owner = group.owner();
    owner.generation = updated
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let cr = revision::controller_revision(&owner, &target.raw_spec, &r);
    let wf = rollback_workflow(&owner, &group.spec, &target.spec, &r);
    let workflow = revision_name(&group.name, number);
    record(cluster, ns, &workflow, &cr, &wf).await?;
    Ok(RolledBack {
        revision: number,
        target: target.number,
        workflow,
    })
}
