//! Removing a deleted group's releases, dependents first, as the original Orkestra's reverse
//! Workflow did: the controller holds the group with a finalizer until this is done.

use orkestra::labels;
use orkestra::live::executor::{name_and_namespace, repository_users};
use orkestra::live::workflow as live;
use orkestra::naming;
use serde_json::Value;

use crate::observe::{is_final, phase_of};
use crate::{Cluster, Observation, Result, name_of};
use orkestra::api::resources::{HELM_RELEASE, HELM_REPOSITORY, WORKFLOW};

/// The finalizer that holds a group until its releases are removed (the original's key).
pub const FINALIZER: &str = "orkestra.azure.microsoft.com/finalizer";
/// Annotation: `"true"` leaves the releases installed when the group is deleted.
pub const ORPHAN: &str = "orkestra.azure.microsoft.com/orphan-releases";

/// How the removal of a deleted group's releases stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// Nothing of the group is left: the finalizer may go.
    Done,
    /// The reverse Workflow runs (`started` when this call created it).
    Removing { workflow: String, started: bool },
    /// Flux is still removing these (`Kind namespace/name`): HelmReleases it uninstalls, and
    /// HelmRepositories source-controller's finalizer still holds.
    Waiting { objects: Vec<String> },
    /// The reverse Workflow failed: the removal is stuck until someone acts.
    Failed { workflow: String, message: String },
}

fn id(obj: &Value) -> String {
    let (name, ns) = name_and_namespace(obj);
    format!("{ns}/{name}")
}

/// One step of removing a deleted group's releases; call it again until it returns
/// [`Removal::Done`]. Releases still in flight are terminated first, so they cannot install again
/// what is being removed.
pub async fn remove(cluster: &Cluster, obs: &Observation) -> Result<Removal> {
    let ns = obs.namespace.as_str();
    let group = &obs.group;
    let reverse_name = naming::reverse_name(&group.name);
    for w in &obs.workflows {
        let name = name_of(w);
        let shutdown = w.pointer("/spec/shutdown").is_some();
        if name != reverse_name && !is_final(phase_of(w)) && !shutdown {
            crate::release::terminate(cluster, ns, &name).await?;
        }
    }
    match obs.workflow(&reverse_name) {
        None if obs.helm_releases.is_empty() => swept(sweep_repositories(cluster, obs).await?),
        None => {
            // Remove what was released last (else what the group describes now).
            let spec = obs.latest().map_or(&group.spec, |r| &r.spec);
            let wf = orkestra::emit::rollback::reverse_workflow(&group.owner(), spec, ns);
            cluster.create(WORKFLOW, Some(ns), &wf).await?;
            Ok(Removal::Removing {
                workflow: reverse_name,
                started: true,
            })
        }
        Some(wf) => match phase_of(wf) {
            "Succeeded" => {
                // What the reverse Workflow did not know of (an application dropped from the
                // spec by a promote): removed now, in no particular order.
                if !obs.helm_releases.is_empty() {
                    for hr in &obs.helm_releases {
                        let (name, hr_ns) = name_and_namespace(hr);
                        cluster
                            .delete_if_exists(HELM_RELEASE, Some(&hr_ns), &name)
                            .await?;
                    }
                    return Ok(Removal::Waiting {
                        objects: obs
                            .helm_releases
                            .iter()
                            .map(|hr| format!("HelmRelease {}", id(hr)))
                            .collect(),
                    });
                }
                let removal = swept(sweep_repositories(cluster, obs).await?)?;
                if removal == Removal::Done {
                    cluster
                        .delete_if_exists(WORKFLOW, Some(ns), &reverse_name)
                        .await?;
                }
                Ok(removal)
            }
            "Failed" | "Error" => {
                let nodes = live::nodes(wf);
                let message = nodes
                    .iter()
                    .filter(|n| matches!(n.phase.as_str(), "Failed" | "Error"))
                    .find_map(|n| live::step_message(n, &nodes))
                    .or_else(|| {
                        wf.pointer("/status/message")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "the reverse Workflow failed".into());
                Ok(Removal::Failed {
                    workflow: reverse_name,
                    message,
                })
            }
            _ => Ok(Removal::Removing {
                workflow: reverse_name,
                started: false,
            }),
        },
    }
}

/// Done once no HelmRepository of the group is left, else waiting for those.
fn swept(left: Vec<String>) -> Result<Removal> {
    Ok(if left.is_empty() {
        Removal::Done
    } else {
        Removal::Waiting { objects: left }
    })
}

/// Deletes the group's HelmRepositories that no HelmRelease in their namespace still uses (the
/// executor's rule), and names those still there afterwards (`HelmRepository namespace/name`):
/// source-controller's finalizer holds one a moment after its delete.
async fn sweep_repositories(cluster: &Cluster, obs: &Observation) -> Result<Vec<String>> {
    let selector = labels::owner_selector(&obs.group.name);
    let mut left = Vec::new();
    for repo in cluster.list(HELM_REPOSITORY, None, &selector).await? {
        let (name, repo_ns) = name_and_namespace(&repo);
        if repo.pointer("/metadata/deletionTimestamp").is_none() {
            let releases = cluster.list(HELM_RELEASE, Some(&repo_ns), "").await?;
            if !repository_users(&repo, &releases).is_empty() {
                continue;
            }
            cluster
                .delete_if_exists(HELM_REPOSITORY, Some(&repo_ns), &name)
                .await?;
            let gone = match cluster.get(HELM_REPOSITORY, Some(&repo_ns), &name).await {
                Ok(_) => false,
                Err(e) if e.is_not_found() => true,
                Err(e) => return Err(e),
            };
            if gone {
                continue;
            }
        }
        left.push(format!("HelmRepository {}", id(&repo)));
    }
    Ok(left)
}
