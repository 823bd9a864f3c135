//! Observations for the unit tests: a group `g` with one application `db` (chart version
//! `version`), its revisions and their Workflows, as the cluster would hold them.

use orkestra::emit::revision::{self, NewRevision, Owner, ReleaseType};
use orkestra::labels::{REVISION_LABEL, WORKFLOW_TYPE_LABEL};
use orkestra::naming::revision_name;
use serde_json::{Value, json};

use crate::{Group, Observation, assemble};

pub fn spec(version: &str, policy: Value) -> Value {
    json!({
        "applications": [{"name": "db", "spec": {
            "chart": {"url": "https://charts.example", "name": "db", "version": version},
            "release": {"targetNamespace": "db"}}}],
        "workflowTemplate": {"templates": []},
        "releasePolicy": policy,
    })
}

fn owner() -> Owner {
    Owner {
        name: "g".into(),
        uid: "u".into(),
        generation: Some(1),
    }
}

/// One recorded revision: its number, the spec it records, its type and its Workflow's phase
/// (`None`: the Workflow was deleted).
pub struct Rev<'a> {
    pub number: i64,
    pub spec: Value,
    pub rollback_of: Option<i64>,
    pub phase: Option<&'a str>,
    pub annotations: Value,
}

pub fn rev(number: i64, spec: Value, phase: Option<&str>) -> Rev<'_> {
    Rev {
        number,
        spec,
        rollback_of: None,
        phase,
        annotations: json!({}),
    }
}

pub fn observation(spec: Value, revisions: &[Rev<'_>]) -> Observation {
    let object = json!({
        "apiVersion": orkestra::api::API_VERSION, "kind": orkestra::api::KIND,
        "metadata": {"name": "g", "uid": "u", "generation": 3, "resourceVersion": "7"},
        "spec": spec,
    });
    let group = Group::from_object(object).expect("the fixture group parses");
    let mut crs = Vec::new();
    let mut workflows = Vec::new();
    for r in revisions {
        let release_type = if r.rollback_of.is_some() {
            ReleaseType::Rollback
        } else {
            ReleaseType::Forward
        };
        let new = NewRevision {
            number: r.number,
            namespace: "orkestra",
            release_type,
            promoted_by: None,
            rollback_of: r.rollback_of,
        };
        crs.push(revision::controller_revision(&owner(), &r.spec, &new));
        if let Some(phase) = r.phase {
            workflows.push(json!({
                "metadata": {
                    "name": revision_name("g", r.number),
                    "namespace": "orkestra",
                    "creationTimestamp": format!("2026-01-01T00:00:{:02}Z", r.number),
                    "labels": {REVISION_LABEL: r.number.to_string(), WORKFLOW_TYPE_LABEL: release_type.as_str()},
                    "annotations": r.annotations,
                    "ownerReferences": [{"kind": orkestra::api::KIND, "uid": "u"}],
                },
                "status": {"phase": phase},
            }));
        }
    }
    assemble(group, "orkestra".into(), workflows, crs, &[])
}
