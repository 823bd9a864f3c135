//! What `rollback` will do, before it does it.
//!
//! A rollback restores a recorded spec across the whole group: applications added since are
//! removed first, in reverse dependency order (dependents before what they depend on), then the
//! restored spec is released in dependency order with its own recorded templates. That is the
//! original Orkestra's rollback (`Combine(last, Diff(curr, last).Reverse())`), as one Workflow
//! with a new revision number instead of a delete-and-recreate under a fixed name.

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::ApplicationGroupSpec;
use crate::emit::rollback::removed_in_reverse;
use crate::plan::diff::{AppChange, changes, write_changes};
use crate::plan::promote::waves;

/// The plan of a rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPlan {
    /// The revision restored.
    pub to_revision: i64,
    /// Applications removed, in this order (dependents first).
    pub remove: Vec<String>,
    /// Applications re-applied per wave, in release order.
    pub apply: Vec<Vec<String>>,
    /// What changes per application, from the current spec to the restored one.
    pub changes: Vec<AppChange>,
}

/// The plan of rolling `current` back to revision `to` (spec `target`).
pub fn plan(
    current: &ApplicationGroupSpec,
    to: i64,
    target: &ApplicationGroupSpec,
) -> RollbackPlan {
    RollbackPlan {
        to_revision: to,
        remove: removed_in_reverse(current, target)
            .into_iter()
            .map(|i| current.applications[i].name.clone())
            .collect(),
        apply: waves(target),
        changes: changes(Some(current), target),
    }
}

impl RollbackPlan {
    /// The plan for people.
    pub fn render(&self, group: &str) -> String {
        let mut s = format!(
            "Plan: roll ApplicationGroup {group} back to revision {}\n",
            self.to_revision
        );
        if self.remove.is_empty() {
            s.push_str("\n1. Remove: nothing (no application was added since)\n");
        } else {
            let _ = writeln!(
                s,
                "\n1. Remove, in this order: {}",
                self.remove.join(" -> ")
            );
        }
        s.push_str("\n2. Re-apply, in dependency order:\n");
        for (i, w) in self.apply.iter().enumerate() {
            let _ = writeln!(s, "  wave {}: {}", i + 1, w.join(", "));
        }
        s.push_str("\nChanges:\n");
        write_changes(&mut s, &self.changes);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::revision::{NewRevision, Owner, ReleaseType};
    use crate::emit::rollback::{DELETE_TEMPLATE, ROLLBACK_ENTRYPOINT, rollback_workflow};
    use crate::plan::fixtures::{new, old};
    use serde_json::{Value, json};

    #[test]
    fn rollback_removes_added_applications_in_reverse_then_reapplies() {
        let (cur, target) = (new(), old());
        let plan = plan(&cur, 1, &target);
        assert_eq!(plan.remove, vec!["web", "cache"]);
        assert_eq!(plan.apply, vec![vec!["db"], vec!["api"]]);
        let owner = Owner {
            name: "shop".into(),
            uid: "u".into(),
            generation: None,
        };
        let r = NewRevision {
            number: 4,
            namespace: "orkestra",
            release_type: ReleaseType::Rollback,
            promoted_by: None,
            rollback_of: Some(1),
        };
        let wf = rollback_workflow(&owner, &cur, &target, &r);
        assert_eq!(wf["metadata"]["name"], "shop-r4");
        assert_eq!(wf["spec"]["entrypoint"], ROLLBACK_ENTRYPOINT);
        let templates = wf["spec"]["templates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let find = |n: &str| {
            templates
                .iter()
                .find(|t| t["name"] == n)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            find("rollback")["dag"]["tasks"][1],
            json!({"name": "apply", "template": "entry", "dependencies": ["remove"]})
        );
        let tasks = find("remove")["dag"]["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let order: Vec<(String, Value)> = tasks
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or_default().to_string(),
                    t["dependencies"].clone(),
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                ("web".to_string(), Value::Null),
                ("web--edge".to_string(), json!(["web"])),
                ("web--ui".to_string(), json!(["web", "web--edge"])),
                ("cache".to_string(), json!(["web", "web--edge", "web--ui"])),
            ]
        );
        let params = wf["spec"]["arguments"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(params.iter().any(|p| p["name"] == "remove--web--ui"));
        assert!(
            find(DELETE_TEMPLATE)["container"]["args"]
                .to_string()
                .contains("\"delete\"")
        );
        assert!(
            plan.render("shop")
                .contains("1. Remove, in this order: web -> cache")
        );
    }
}
