//! Revisions of a group: each promoted (or rolled back to) spec recorded as an `apps/v1`
//! ControllerRevision owned by the group, the way `kubectl rollout history` works for
//! Deployments, and the Workflow named after it (`<group>-r<N>`, never reused).
//!
//! ControllerRevisions are namespaced and groups are cluster-scoped, so a group's revisions live
//! in its workflow namespace, next to its Workflows; a namespaced object may be owned by a
//! cluster-scoped one, so deleting the group garbage-collects both.

use serde::Serialize;
use serde_json::{Value, json};

use crate::api::defaults::WORKFLOW_NAMESPACE;
use crate::api::{API_VERSION, ApplicationGroupSpec, KIND};
use crate::emit::argo::{self, WorkflowMeta};
use crate::input::parse::{SpecError, parse_spec};
use crate::labels::{
    GENERATION_LABEL, HERITAGE, HERITAGE_VALUE, OWNER, PROMOTED_BY, REVISION_LABEL, ROLLBACK_OF,
    WORKFLOW, WORKFLOW_TYPE_LABEL, owner_label,
};
use crate::naming::revision_name;

/// `forward` (promote) or `rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseType {
    /// A promote.
    Forward,
    /// A rollback to an earlier revision.
    Rollback,
}

impl ReleaseType {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Rollback => "rollback",
        }
    }
}

/// The group a revision or Workflow belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Group name.
    pub name: String,
    /// Group uid (for the ownerReference).
    pub uid: String,
    /// Group generation (for the original Orkestra's generation label).
    pub generation: Option<i64>,
}

fn owner_reference(owner: &Owner) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": true,
    })
}

/// Everything recorded about one revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRevision<'a> {
    /// Revision number.
    pub number: i64,
    /// Namespace (the group's workflow namespace).
    pub namespace: &'a str,
    /// Forward or rollback.
    pub release_type: ReleaseType,
    /// Who, when known.
    pub promoted_by: Option<&'a str>,
    /// For a rollback: the revision restored.
    pub rollback_of: Option<i64>,
}

/// The ControllerRevision recording `spec` (the group's `spec` exactly as stored, unknown fields
/// included, so a rollback restores it byte for byte) as revision `r.number` of the group.
pub fn controller_revision(owner: &Owner, spec: &Value, r: &NewRevision<'_>) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(&owner.name, r.number),
            "namespace": r.namespace,
            "labels": labels(owner, r),
            "annotations": annotations(owner, r),
            "ownerReferences": [owner_reference(owner)],
        },
        "revision": r.number,
        "data": { "spec": spec },
    })
}

fn labels(owner: &Owner, r: &NewRevision<'_>) -> Value {
    let mut l = json!({
        OWNER: owner_label(&owner.name),
        HERITAGE: HERITAGE_VALUE,
        REVISION_LABEL: r.number.to_string(),
        WORKFLOW_TYPE_LABEL: r.release_type.as_str(),
    });
    if let Some(g) = owner.generation {
        l[GENERATION_LABEL] = json!(g.to_string());
    }
    l
}

fn annotations(owner: &Owner, r: &NewRevision<'_>) -> Value {
    let mut a = json!({ WORKFLOW: revision_name(&owner.name, r.number) });
    if let Some(who) = r.promoted_by {
        a[PROMOTED_BY] = json!(who);
    }
    if let Some(n) = r.rollback_of {
        a[ROLLBACK_OF] = json!(n.to_string());
    }
    a
}

/// The forward Workflow of a revision: exactly the group's injected templates, the spec's
/// release manifests as parameters, labelled and owned by the group. `full` turns gates off.
pub fn forward_workflow(
    owner: &Owner,
    spec: &ApplicationGroupSpec,
    r: &NewRevision<'_>,
    full: bool,
) -> Value {
    let mut wf = argo::workflow(&owner.name, spec, &workflow_meta(owner, r));
    finish_workflow(&mut wf, owner, r, full);
    wf
}

/// The Workflow a first `promote` of a group object as stored (defaulted, templates injected)
/// would create: revision 1, in the group's workflow namespace. A group read from a file has no
/// uid yet, so the Workflow then carries no ownerReference. `kubectl orkestra validate
/// --show-workflow` prints it.
pub fn first_workflow(object: &Value) -> Result<Value, SpecError> {
    let spec = parse_spec(object)?;
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let owner = Owner {
        name: text("/metadata/name"),
        uid: text("/metadata/uid"),
        generation: object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64),
    };
    let namespace = spec
        .workflow_template
        .as_ref()
        .and_then(|w| w.namespace.clone())
        .unwrap_or_else(|| WORKFLOW_NAMESPACE.to_string());
    let r = NewRevision {
        number: 1,
        namespace: &namespace,
        release_type: ReleaseType::Forward,
        promoted_by: None,
        rollback_of: None,
    };
    let mut wf = forward_workflow(&owner, &spec, &r, false);
    if owner.uid.is_empty()
        && let Some(meta) = wf.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("ownerReferences");
    }
    Ok(wf)
}

/// The Workflow identity (`<group>-r<N>`, labels) of a revision.
pub fn workflow_meta(owner: &Owner, r: &NewRevision<'_>) -> WorkflowMeta {
    let labels = labels(owner, r)
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    WorkflowMeta {
        name: revision_name(&owner.name, r.number),
        namespace: r.namespace.to_string(),
        labels,
    }
}

/// Adds what [`argo::workflow`] leaves to the caller: ownerReference, annotations, gate switch.
pub fn finish_workflow(wf: &mut Value, owner: &Owner, r: &NewRevision<'_>, full: bool) {
    wf["metadata"]["ownerReferences"] = json!([owner_reference(owner)]);
    wf["metadata"]["annotations"] = annotations(owner, r);
    if full {
        set_gates(wf, "off");
    }
}

/// Sets the Workflow's gate parameter (when it has gates).
pub fn set_gates(wf: &mut Value, value: &str) {
    if let Some(params) = wf
        .pointer_mut("/spec/arguments/parameters")
        .and_then(Value::as_array_mut)
    {
        for p in params {
            if p["name"] == argo::GATES_PARAMETER {
                p["value"] = json!(value);
            }
        }
    }
}
