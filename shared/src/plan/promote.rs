//! What `promote` will do, before it does it: the ordered plan (waves), what changes per
//! application against the last successful revision, and the gates.

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::ApplicationGroupSpec;
use crate::graph;
use crate::plan::diff::{AppChange, changes, write_changes};

/// The plan of a promote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotePlan {
    /// The revision compared against (the last successful one), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_revision: Option<i64>,
    /// Applications per wave, in release order.
    pub waves: Vec<Vec<String>>,
    /// Per-application changes (target order, then removed applications).
    pub changes: Vec<AppChange>,
    /// Applications with a manual gate before them.
    pub gates: Vec<String>,
}

pub(crate) fn waves(spec: &ApplicationGroupSpec) -> Vec<Vec<String>> {
    let dag = graph::app_dag(spec);
    dag.waves()
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.into_iter().map(|i| dag.name(i).to_string()).collect())
        .collect()
}

/// The plan of promoting `spec` over the last successful revision `base`.
pub fn plan(
    spec: &ApplicationGroupSpec,
    base: Option<(i64, &ApplicationGroupSpec)>,
) -> PromotePlan {
    PromotePlan {
        base_revision: base.map(|(n, _)| n),
        waves: waves(spec),
        changes: changes(base.map(|(_, s)| s), spec),
        gates: spec
            .applications
            .iter()
            .filter(|a| a.spec.gate == Some(true))
            .map(|a| a.name.clone())
            .collect(),
    }
}

impl PromotePlan {
    /// The plan for people.
    pub fn render(&self, group: &str) -> String {
        let mut s = format!("Plan: promote ApplicationGroup {group}");
        match self.base_revision {
            Some(n) => {
                let _ = writeln!(
                    s,
                    " (compared with revision {n}, the last successful release)"
                );
            }
            None => s.push_str(" (no successful release yet: everything is new)\n"),
        }
        s.push_str("\nRelease order:\n");
        for (i, w) in self.waves.iter().enumerate() {
            let names: Vec<String> = w
                .iter()
                .map(|n| {
                    if self.gates.contains(n) {
                        format!("[gate] {n}")
                    } else {
                        n.clone()
                    }
                })
                .collect();
            let _ = writeln!(s, "  wave {}: {}", i + 1, names.join(", "));
        }
        s.push_str("\nChanges:\n");
        write_changes(&mut s, &self.changes);
        if self.gates.is_empty() {
            s.push_str("\nGates: none\n");
        } else {
            let _ = writeln!(
                s,
                "\nGates: the release pauses before {} until `kubectl orkestra promote` (or --full)",
                self.gates.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::diff::ChangeKind;
    use crate::plan::fixtures::{new, old};

    #[test]
    fn promote_plan_shows_waves_changes_and_gates() {
        let old = old();
        let plan = plan(&new(), Some((2, &old)));
        assert_eq!(
            plan.waves,
            vec![vec!["db"], vec!["api", "cache"], vec!["web"]]
        );
        assert_eq!(plan.gates, vec!["web"]);
        assert_eq!(plan.changes[0].kind, ChangeKind::Changed);
        assert_eq!(plan.changes[0].values, vec!["~a", "+b"]);
        assert_eq!(plan.changes[1].kind, ChangeKind::Unchanged);
        assert_eq!(plan.changes[2].kind, ChangeKind::Added);
        let text = plan.render("shop");
        assert!(text.contains("wave 3: [gate] web"), "{text}");
        assert!(
            text.contains("db     changed    db@1.0.0 -> db@1.1.0; values ~a +b"),
            "{text}"
        );
    }
}
