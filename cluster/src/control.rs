//! Controls of the release in flight: abort (Argo's terminate or stop) and retry (re-run the
//! failed steps of the same Workflow, no new revision).

use orkestra::labels;
use orkestra::live::control::{self, Shutdown};
use orkestra::live::revision;
use serde_json::{Value, json};

use crate::{Cluster, Error, Observation, Result, name_of};
use orkestra::api::resources::{POD, WORKFLOW};

/// The group's latest Workflow.
pub fn latest(obs: &Observation) -> Result<&Value> {
    revision::latest_workflow(&obs.workflows).ok_or_else(|| {
        let group = &obs.group.name;
        Error::Refused(format!(
            "ApplicationGroup {group} has no release in namespace {}: `kubectl orkestra promote {group}` starts one",
            obs.namespace
        ))
    })
}

/// Stops the latest release (`how`), recording who did it. Returns the Workflow's name.
pub async fn abort(
    cluster: &Cluster,
    obs: &Observation,
    how: Shutdown,
    who: Option<&str>,
) -> Result<String> {
    let wf = latest(obs)?;
    let patch = control::abort_patch(wf, how, who, crate::now())?;
    let name = name_of(wf);
    cluster
        .merge_patch(WORKFLOW, Some(&obs.namespace), &name, &patch)
        .await?;
    Ok(name)
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq)]
pub struct Retried {
    pub workflow: String,
    /// The failed steps run again.
    pub steps: Vec<String>,
    /// How many times the Workflow was retried, this one included.
    pub retries: String,
}

/// Re-runs the failed steps of the latest release, as `argo retry` does.
pub async fn retry(cluster: &Cluster, obs: &Observation, who: Option<&str>) -> Result<Retried> {
    let ns = obs.namespace.as_str();
    let wf = latest(obs)?;
    let mut retried = control::retry(wf, crate::now())?;
    if let Some(who) = who {
        retried.workflow["metadata"]["annotations"][labels::RETRIED_BY] = json!(who);
    }
    for pod in &retried.pods_to_delete {
        cluster.delete_if_exists(POD, Some(ns), pod).await?;
    }
    cluster
        .replace(WORKFLOW, Some(ns), &retried.workflow)
        .await?;
    Ok(Retried {
        workflow: name_of(wf),
        steps: retried.failed_steps,
        retries: retried.workflow["metadata"]["annotations"][labels::RETRIES]
            .as_str()
            .unwrap_or("1")
            .to_string(),
    })
}
