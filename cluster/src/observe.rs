//! One observation of a group: what the cluster holds for it, and the live report built from it.

use orkestra::labels;
use orkestra::live::eta;
use orkestra::live::report::{Observed, StatusReport};
use orkestra::live::revision::{self, Revision};
use serde_json::Value;

use crate::{Cluster, Group, Result};
use orkestra::api::resources::{CONTROLLER_REVISION, HELM_RELEASE, WORKFLOW};

/// One observation of a group: the report, and what it was built from.
#[derive(Debug, Clone)]
pub struct Observation {
    pub group: Group,
    /// The workflow namespace (of its Workflows and revisions).
    pub namespace: String,
    /// The group's revisions, oldest first.
    pub revisions: Vec<Revision>,
    /// The number the next revision gets.
    pub next_revision: i64,
    pub workflows: Vec<Value>,
    /// The HelmReleases labelled with the group as owner, in every namespace.
    pub helm_releases: Vec<Value>,
    pub report: StatusReport,
    /// Reads that failed without spoiling the rest (no access to HelmReleases, say).
    pub warnings: Vec<String>,
}

impl Observation {
    /// The phase of each of the group's Workflows, by name.
    pub fn phases(&self) -> Vec<(String, String)> {
        revision::workflow_phases(&self.workflows)
    }

    /// The latest revision, if any.
    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// The latest revision when it records the group's current spec.
    pub fn unchanged(&self) -> Option<&Revision> {
        self.latest().filter(|r| r.spec == self.group.spec)
    }

    /// The Workflow named `name`, if it exists.
    pub fn workflow(&self, name: &str) -> Option<&Value> {
        self.workflows.iter().find(|w| crate::name_of(w) == name)
    }

    /// The phase of the Workflow named `name` (`Pending` before Argo wrote one), if it exists.
    pub fn workflow_phase(&self, name: &str) -> Option<&str> {
        self.workflow(name).map(phase_of)
    }
}

/// True for a Workflow phase nothing follows.
pub fn is_final(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed" | "Error")
}

/// The phase of a Workflow; `Pending` before Argo wrote one.
pub fn phase_of(w: &Value) -> &str {
    w.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

/// Reads the group, its Workflows, revisions and HelmReleases, and builds the status report.
/// Independent reads run concurrently: the HelmReleases do not need the group first.
pub async fn observe(
    cluster: &Cluster,
    name: &str,
    namespace_flag: Option<&str>,
) -> Result<Observation> {
    let selector = labels::owner_selector(name);
    let (group, helm_releases) = tokio::join!(
        cluster.group(name),
        cluster.list(HELM_RELEASE, None, &selector)
    );
    let group = group?;
    let namespace = group.workflow_namespace(namespace_flag);
    let (workflows, revisions) = tokio::join!(
        cluster.list(WORKFLOW, Some(&namespace), &selector),
        cluster.list(CONTROLLER_REVISION, Some(&namespace), &selector)
    );
    // Without HelmRelease access the rest of the status is still worth showing.
    let (helm_releases, warnings) = match helm_releases {
        Ok(list) => (list, Vec::new()),
        Err(e) => (Vec::new(), vec![e.to_string()]),
    };
    let mut obs = assemble(group, namespace, workflows?, revisions?, &helm_releases);
    obs.warnings = warnings;
    Ok(obs)
}

/// Builds the observation of a group from the objects read (or watched) in the cluster.
pub fn assemble(
    group: Group,
    namespace: String,
    workflows: Vec<Value>,
    revisions: Vec<Value>,
    helm_releases: &[Value],
) -> Observation {
    // Numbers stay unique across an earlier group of the same name whose objects were orphaned;
    // everything else only counts this group's own objects.
    let next_revision = revision::next_number(&revision::read_all(&revisions));
    let uid = group.owner().uid;
    let workflows: Vec<Value> = workflows
        .into_iter()
        .filter(|w| revision::owned_by(w, &uid))
        .collect();
    let revisions: Vec<Value> = revisions
        .into_iter()
        .filter(|r| revision::owned_by(r, &uid))
        .collect();
    let revisions = revision::read_all(&revisions);
    let spec = group.defaulted_spec();
    let latest = revisions.last().map(|r| (r.number, r.spec == group.spec));
    let conditions = group.conditions();
    let current = revision::latest_workflow(&workflows);
    let mut report = StatusReport::build(&Observed {
        group: &group.name,
        spec: &spec,
        conditions: &conditions,
        revision: latest,
        workflow: current,
        helm_releases,
        now: crate::now(),
    });
    let current = current
        .and_then(|w| w.pointer("/metadata/name"))
        .and_then(Value::as_str);
    report.eta = eta::eta(
        &report,
        &spec,
        &eta::expected_durations(&spec, &workflows, current),
    );
    Observation {
        group,
        namespace,
        next_revision,
        revisions,
        workflows,
        helm_releases: helm_releases.to_vec(),
        report,
        warnings: Vec::new(),
    }
}
