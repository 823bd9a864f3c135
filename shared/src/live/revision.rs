//! Revisions of a group read back: the ControllerRevisions [`crate::emit::revision`] wrote, and
//! the Workflows releasing them.

use serde::Serialize;
use serde_json::Value;

use crate::api::{ApplicationGroupSpec, KIND};
use crate::labels::{PROMOTED_BY, REVISION_LABEL, ROLLBACK_OF, WORKFLOW, WORKFLOW_TYPE_LABEL};

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
    latest_of(workflows.iter())
}

/// The latest of some Workflows, by the same order as [`latest_workflow`].
pub fn latest_of<'a>(workflows: impl Iterator<Item = &'a Value>) -> Option<&'a Value> {
    workflows.max_by_key(|w| {
        let rev = w
            .pointer("/metadata/labels")
            .and_then(|l| l.get(REVISION_LABEL))
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0);
        let created = w
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(crate::time::parse_time)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::revision::{
        NewRevision, Owner, ReleaseType, controller_revision, forward_workflow,
    };
    use crate::labels::GENERATION_LABEL;
    use serde_json::json;

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
    fn objects_of_an_earlier_group_of_the_same_name_are_not_ours() {
        let owned = |uid: &str| json!({"metadata": {"ownerReferences": [{"kind": "ApplicationGroup", "uid": uid}]}});
        assert!(owned_by(&owned("u-1"), "u-1"));
        assert!(!owned_by(&owned("u-0"), "u-1"));
        assert!(owned_by(&json!({"metadata": {}}), "u-1"));
    }
}
