//! The history of a group: one row per revision, with its chart changes, its result and what
//! `abort` and `retry` recorded on its Workflow.

use serde::Serialize;
use serde_json::Value;

use crate::api::ApplicationGroupSpec;
use crate::labels::RETRIES;
use crate::live::control;
use crate::live::revision::Revision;
use crate::plan::diff::chart_changes;

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
        row.aborted = control::aborted(wf);
        row.retries = wf
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(RETRIES))
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
            let changes = chart_changes(prev, &r.spec);
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
    use crate::api::ApplicationGroupSpec;
    use crate::live::revision::{last_succeeded, next_number};
    use crate::naming::revision_name as name;
    use serde_json::json;

    fn spec(version: &str) -> ApplicationGroupSpec {
        serde_json::from_value(json!({"applications": [
            {"name": "db", "spec": {"chart": {"url": "https://c", "name": "postgresql", "version": version}, "release": {}}}
        ], "workflowTemplate": {"templates": [{"name": "entry", "dag": {"tasks": []}}]}}))
        .expect("spec")
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
