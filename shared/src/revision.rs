//! Revisions of a group: each promoted (or rolled back to) spec recorded as an `apps/v1`
//! ControllerRevision owned by the group, the way `kubectl rollout history` works for
//! Deployments, and the Workflow named after it (`<group>-r<N>`, never reused).
//!
//! ControllerRevisions are namespaced and groups are cluster-scoped, so a group's revisions live
//! in its workflow namespace, next to its Workflows; a namespaced object may be owned by a
//! cluster-scoped one, so deleting the group garbage-collects both.

use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{API_VERSION, ApplicationGroupSpec, KIND};
use crate::argo::{self, WorkflowMeta};
use crate::flux::labels::{HERITAGE, OWNER};
use crate::live::{self, GENERATION_LABEL, REVISION_LABEL, WORKFLOW_TYPE_LABEL};

/// Annotation on revisions and Workflows: who promoted (the API server's name for the user).
pub const PROMOTED_BY: &str = "orkestra.azure.microsoft.com/promoted-by";
/// Annotation on rollback revisions: the revision whose spec they restore.
pub const ROLLBACK_OF: &str = "orkestra.azure.microsoft.com/rollback-to-revision";
/// Annotation on revisions: the Workflow that releases them.
pub const WORKFLOW: &str = "orkestra.azure.microsoft.com/workflow";

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

/// Name of revision `n` of a group, and of the Workflow releasing it: `<group>-r<n>`, with the
/// group's part shortened (and a hash of it added) when that would pass 63 characters, Argo's
/// limit for Workflow names.
pub fn name(group: &str, n: i64) -> String {
    let suffix = format!("-r{n}");
    if group.len() + suffix.len() <= crate::names::DNS1123_LABEL_MAX {
        return format!("{group}{suffix}");
    }
    let hash = crate::names::short_hash(group);
    let keep = crate::names::DNS1123_LABEL_MAX.saturating_sub(suffix.len() + hash.len() + 1);
    let mut cut = keep.min(group.len());
    while !group.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}-{hash}{suffix}",
        group[..cut].trim_end_matches(['-', '.'])
    )
}

/// The owner label's value for a group: its name, shortened with a hash past 63 characters
/// (group names go up to 253). Ownership itself is decided by uid ([`owned_by`]).
pub fn owner_label(group: &str) -> String {
    crate::names::label_value(group)
}

/// Label selector for everything a group owns.
pub fn owner_selector(group: &str) -> String {
    format!("{OWNER}={}", owner_label(group))
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
            "name": name(&owner.name, r.number),
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
        HERITAGE: "orkestra",
        REVISION_LABEL: r.number.to_string(),
        WORKFLOW_TYPE_LABEL: r.release_type.as_str(),
    });
    if let Some(g) = owner.generation {
        l[GENERATION_LABEL] = json!(g.to_string());
    }
    l
}

fn annotations(owner: &Owner, r: &NewRevision<'_>) -> Value {
    let mut a = json!({ WORKFLOW: name(&owner.name, r.number) });
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
pub fn first_workflow(object: &Value) -> Result<Value, crate::model::SpecError> {
    let spec = crate::model::parse_spec(object)?;
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
        .unwrap_or_else(|| crate::defaults::WORKFLOW_NAMESPACE.to_string());
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

/// Why a revision cannot give a step its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepManifestError {
    /// `data.spec` is missing or does not fit the API types.
    #[error("the ControllerRevision holds no readable group spec")]
    NoSpec,
    /// No ownerReference to an ApplicationGroup.
    #[error("the ControllerRevision names no owning ApplicationGroup")]
    NoOwner,
    /// No application or subchart of the spec has that chart key.
    #[error("no chart {0:?} in the revision's spec")]
    NoChart(String),
}

/// The manifest (HelmRepository + HelmRelease, as a `List`) of the release step of `chart` (an
/// [`argo::chart_parameter`] key), built from the group's revision exactly as [`argo`] built the
/// Workflow: what the executor fetches instead of reading it from its command line, so no size
/// limit of arguments and no Argo `{{...}}` substitution ever touches the values.
pub fn step_manifest(cr: &Value, chart: &str) -> Result<Value, StepManifestError> {
    let spec: ApplicationGroupSpec = cr
        .pointer("/data/spec")
        .and_then(|s| crate::model::parse_spec(&json!({ "spec": s })).ok())
        .ok_or(StepManifestError::NoSpec)?;
    let group = cr
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("kind").and_then(Value::as_str) == Some(KIND))
        .and_then(|r| r.get("name").and_then(Value::as_str))
        .ok_or(StepManifestError::NoOwner)?;
    for app in &spec.applications {
        for sub in app.spec.subcharts.iter().map(Some).chain([None]) {
            if argo::chart_parameter(app, sub) == chart {
                return Ok(crate::flux::release_manifest(group, app, sub));
            }
        }
    }
    Err(StepManifestError::NoChart(chart.to_string()))
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
        name: name(&owner.name, r.number),
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

/// A recorded revision, read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Revision number.
    pub number: i64,
    /// The ControllerRevision's name.
    pub name: String,
    /// Creation time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who promoted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
    /// `forward` or `rollback`.
    pub release_type: String,
    /// For rollbacks: the revision restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
    /// The Workflow releasing it.
    pub workflow: String,
    /// The recorded spec.
    #[serde(skip)]
    pub spec: ApplicationGroupSpec,
    /// The recorded spec as stored.
    #[serde(skip)]
    pub raw_spec: Value,
}

/// Reads a ControllerRevision written by [`controller_revision`]; `None` for anything else.
pub fn read(cr: &Value) -> Option<Revision> {
    let number = cr.get("revision")?.as_i64()?;
    let raw_spec = cr.pointer("/data/spec")?.clone();
    let spec = serde_json::from_value(raw_spec.clone()).ok()?;
    let meta = cr.get("metadata")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let ann = |k: &str| s(meta.get("annotations").and_then(|a| a.get(k)));
    let name = s(meta.get("name")).unwrap_or_default();
    Some(Revision {
        number,
        created: s(meta.get("creationTimestamp")),
        promoted_by: ann(PROMOTED_BY),
        release_type: s(meta.get("labels").and_then(|l| l.get(WORKFLOW_TYPE_LABEL)))
            .unwrap_or_else(|| "forward".into()),
        rollback_of: ann(ROLLBACK_OF).and_then(|n| n.parse().ok()),
        workflow: ann(WORKFLOW).unwrap_or_else(|| name.clone()),
        name,
        spec,
        raw_spec,
    })
}

/// Revisions sorted by number, oldest first.
pub fn read_all(items: &[Value]) -> Vec<Revision> {
    let mut out: Vec<Revision> = items.iter().filter_map(read).collect();
    out.sort_by_key(|r| r.number);
    out
}

/// The next revision number.
pub fn next_number(revisions: &[Revision]) -> i64 {
    revisions.iter().map(|r| r.number).max().unwrap_or(0) + 1
}

/// False when `object` is owned by another ApplicationGroup than the one with `uid` (an earlier
/// group of the same name whose objects were orphaned); objects without such an owner (the
/// original Orkestra's Workflows) count as the group's.
pub fn owned_by(object: &Value, uid: &str) -> bool {
    let owners: Vec<&Value> = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter(|r| r["kind"] == KIND).collect())
        .unwrap_or_default();
    owners.is_empty() || uid.is_empty() || owners.iter().any(|r| r["uid"] == uid)
}

/// The phase of each Workflow, by name, read from a Workflow list.
pub fn workflow_phases(workflows: &[Value]) -> Vec<(String, String)> {
    workflows
        .iter()
        .filter_map(|w| {
            let name = w.pointer("/metadata/name")?.as_str()?.to_string();
            let phase = w
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending")
                .to_string();
            Some((name, phase))
        })
        .collect()
}

/// The latest Workflow of a group: highest revision label, then newest; `None` when there is none.
pub fn latest_workflow(workflows: &[Value]) -> Option<&Value> {
    workflows.iter().max_by_key(|w| {
        let rev = w
            .pointer("/metadata/labels")
            .and_then(|l| l.get(REVISION_LABEL))
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0);
        let created = w
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(live::parse_time)
            .unwrap_or(0);
        (rev, created)
    })
}

/// The last revision whose Workflow succeeded, optionally below a revision number.
pub fn last_succeeded<'a>(
    revisions: &'a [Revision],
    phases: &[(String, String)],
    below: Option<i64>,
) -> Option<&'a Revision> {
    revisions
        .iter()
        .rev()
        .filter(|r| below.is_none_or(|b| r.number < b))
        .find(|r| {
            phases
                .iter()
                .any(|(n, p)| n == &r.workflow && p == "Succeeded")
        })
}

/// One row of `history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    /// Revision number.
    pub revision: i64,
    /// When it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who promoted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
    /// `forward` or `rollback`.
    #[serde(rename = "type")]
    pub release_type: String,
    /// For a rollback: the revision restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
    /// Chart changes against the previous revision: `api 1.0.0 -> 1.1.0`, `+cache`, `-legacy`.
    pub changes: Vec<String>,
    /// The Workflow.
    pub workflow: String,
    /// Its phase; `None` when the Workflow is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `aborted by alice at ...`, when `abort` stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// How many times `retry` restarted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// Adds what `abort` and `retry` recorded on each row's Workflow.
pub fn mark_controls(rows: &mut [HistoryRow], workflows: &[Value]) {
    for row in rows {
        let Some(wf) = workflows
            .iter()
            .find(|w| w.pointer("/metadata/name").and_then(Value::as_str) == Some(&row.workflow))
        else {
            continue;
        };
        row.aborted = crate::control::aborted(wf);
        row.retries = wf
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(crate::control::RETRIES))
            .and_then(Value::as_str)
            .and_then(|n| n.parse().ok());
    }
}

/// The history of a group, oldest first.
pub fn history(revisions: &[Revision], phases: &[(String, String)]) -> Vec<HistoryRow> {
    let mut prev: Option<&ApplicationGroupSpec> = None;
    revisions
        .iter()
        .map(|r| {
            let changes = crate::plan::chart_changes(prev, &r.spec);
            prev = Some(&r.spec);
            HistoryRow {
                revision: r.number,
                created: r.created.clone(),
                promoted_by: r.promoted_by.clone(),
                release_type: r.release_type.clone(),
                rollback_of: r.rollback_of,
                changes,
                workflow: r.workflow.clone(),
                phase: phases
                    .iter()
                    .find(|(n, _)| n == &r.workflow)
                    .map(|(_, p)| p.clone()),
                aborted: None,
                retries: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(version: &str) -> ApplicationGroupSpec {
        serde_json::from_value(json!({"applications": [
            {"name": "db", "spec": {"chart": {"url": "https://c", "name": "postgresql", "version": version}, "release": {}}}
        ], "workflowTemplate": {"templates": [{"name": "entry", "dag": {"tasks": []}}]}}))
        .expect("spec")
    }

    fn owner() -> Owner {
        Owner {
            name: "shop".into(),
            uid: "u-1".into(),
            generation: Some(4),
        }
    }

    fn rev(number: i64) -> NewRevision<'static> {
        NewRevision {
            number,
            namespace: "orkestra",
            release_type: ReleaseType::Forward,
            promoted_by: None,
            rollback_of: None,
        }
    }

    #[test]
    fn revision_round_trips_and_names_its_workflow() {
        let r = NewRevision {
            number: 3,
            namespace: "orkestra",
            release_type: ReleaseType::Forward,
            promoted_by: Some("alice"),
            rollback_of: None,
        };
        let raw = serde_json::to_value(spec("1.0.0")).unwrap_or_default();
        let cr = controller_revision(&owner(), &raw, &r);
        assert_eq!(cr["metadata"]["name"], "shop-r3");
        assert_eq!(cr["metadata"]["labels"][REVISION_LABEL], "3");
        assert_eq!(
            cr["metadata"]["ownerReferences"][0]["kind"],
            "ApplicationGroup"
        );
        let back = read(&cr).expect("read");
        assert_eq!((back.number, back.workflow.as_str()), (3, "shop-r3"));
        assert_eq!(back.promoted_by.as_deref(), Some("alice"));
        assert_eq!(back.spec, spec("1.0.0"));
        let wf = forward_workflow(&owner(), &spec("1.0.0"), &r, false);
        assert_eq!(wf["metadata"]["name"], "shop-r3");
        assert_eq!(wf["metadata"]["labels"][WORKFLOW_TYPE_LABEL], "forward");
        assert_eq!(wf["metadata"]["labels"][GENERATION_LABEL], "4");
        assert_eq!(
            wf["spec"]["templates"],
            json!([{"name": "entry", "dag": {"tasks": []}}])
        );
    }

    #[test]
    fn a_step_reads_its_manifest_from_the_revision() {
        let spec = json!({"applications": [{"name": "3scale", "spec": {
            "chart": {"url": "https://c.example.com", "name": "gw", "version": "1.0.0"},
            "release": {"targetNamespace": "apis", "values": {"note": "{{workflow.name}}"}},
            "subcharts": [{"name": "db"}]}}]});
        let cr = controller_revision(&owner(), &spec, &rev(2));
        let m = step_manifest(&cr, "N3scale--db").unwrap_or_default();
        assert_eq!(m["items"][1]["metadata"]["name"], "3scale-db");
        let m = step_manifest(&cr, "N3scale").unwrap_or_default();
        assert_eq!(m["items"][1]["spec"]["values"]["note"], "{{workflow.name}}");
        assert_eq!(m["items"][1]["metadata"]["labels"][OWNER], "shop");
        assert_eq!(
            step_manifest(&cr, "web"),
            Err(StepManifestError::NoChart("web".into()))
        );
    }

    #[test]
    fn long_group_names_still_give_argo_valid_workflow_names() {
        assert_eq!(name("shop", 12), "shop-r12");
        let long = "a".repeat(62);
        let n = name(&long, 123);
        assert!(
            n.len() <= 63 && n.ends_with("-r123") && n.starts_with("aaaa"),
            "{n}"
        );
        assert_ne!(name(&format!("{long}b"), 1), name(&format!("{long}c"), 1));
    }

    #[test]
    fn objects_of_an_earlier_group_of_the_same_name_are_not_ours() {
        let owned = |uid: &str| json!({"metadata": {"ownerReferences": [{"kind": "ApplicationGroup", "uid": uid}]}});
        assert!(owned_by(&owned("u-1"), "u-1"));
        assert!(!owned_by(&owned("u-0"), "u-1"));
        assert!(owned_by(&json!({"metadata": {}}), "u-1"));
    }

    #[test]
    fn history_lists_chart_changes_and_results() {
        let mk = |n: i64, v: &str| Revision {
            number: n,
            name: name("shop", n),
            created: None,
            promoted_by: None,
            release_type: "forward".into(),
            rollback_of: None,
            workflow: name("shop", n),
            spec: spec(v),
            raw_spec: Value::Null,
        };
        let revs = vec![mk(1, "1.0.0"), mk(2, "1.1.0")];
        let phases = vec![
            ("shop-r1".to_string(), "Succeeded".to_string()),
            ("shop-r2".to_string(), "Failed".to_string()),
        ];
        let h = history(&revs, &phases);
        assert_eq!(h[0].changes, vec!["+db postgresql@1.0.0"]);
        assert_eq!(h[1].changes, vec!["db postgresql 1.0.0 -> 1.1.0"]);
        assert_eq!(h[1].phase.as_deref(), Some("Failed"));
        assert_eq!(
            last_succeeded(&revs, &phases, None).map(|r| r.number),
            Some(1)
        );
        assert_eq!(next_number(&revs), 3);
    }
}
