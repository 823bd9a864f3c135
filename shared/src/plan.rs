//! What `promote` and `rollback` will do, before they do it: the ordered plan (waves), what
//! changes per application against a base revision (chart version, values keys, release
//! settings), the gates; and the rollback Workflow itself.
//!
//! A rollback restores a recorded spec across the whole group: applications added since are
//! removed first, in reverse dependency order (dependents before what they depend on), then the
//! restored spec is released in dependency order with its own recorded templates. That is the
//! original Orkestra's rollback (`Combine(last, Diff(curr, last).Reverse())`), as one Workflow
//! with a new revision number instead of a delete-and-recreate under a fixed name.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Application, ApplicationGroupSpec};
use crate::argo::{self, DEFAULT_TIMEOUT};
use crate::defaults;
use crate::flux;
use crate::graph::Dag;
use crate::revision::{self, NewRevision, Owner};

/// How one application changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New in the target spec.
    Added,
    /// Gone from the target spec.
    Removed,
    /// In both, different.
    Changed,
    /// In both, equal.
    Unchanged,
}

/// The change of one application.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppChange {
    /// Application.
    pub name: String,
    /// Kind of change.
    pub kind: ChangeKind,
    /// `chart@version` before, when it existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `chart@version` after, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Values paths added, removed or changed (`+a.b`, `-c`, `~d.e`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Other fields that changed (`dependencies`, `release.timeout`, `subcharts`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

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

fn chart_text(app: &Application) -> String {
    let chart = app.spec.chart.clone().unwrap_or_default();
    format!("{}@{}", chart.name, chart.version.as_deref().unwrap_or("*"))
}

/// The changes from `from` (none: everything is added) to `to`.
pub fn changes(from: Option<&ApplicationGroupSpec>, to: &ApplicationGroupSpec) -> Vec<AppChange> {
    let empty = Vec::new();
    let before = from.map_or(&empty, |s| &s.applications);
    let mut out: Vec<AppChange> = to
        .applications
        .iter()
        .map(|app| match before.iter().find(|b| b.name == app.name) {
            None => AppChange {
                name: app.name.clone(),
                kind: ChangeKind::Added,
                from: None,
                to: Some(chart_text(app)),
                values: Vec::new(),
                fields: Vec::new(),
            },
            Some(old) => compare(old, app),
        })
        .collect();
    out.extend(
        before
            .iter()
            .filter(|b| !to.applications.iter().any(|a| a.name == b.name))
            .map(|b| AppChange {
                name: b.name.clone(),
                kind: ChangeKind::Removed,
                from: Some(chart_text(b)),
                to: None,
                values: Vec::new(),
                fields: Vec::new(),
            }),
    );
    out
}

fn compare(old: &Application, new: &Application) -> AppChange {
    let mut values = Vec::new();
    let ov = old
        .spec
        .release
        .as_ref()
        .and_then(|r| r.values.clone())
        .unwrap_or(Value::Null);
    let nv = new
        .spec
        .release
        .as_ref()
        .and_then(|r| r.values.clone())
        .unwrap_or(Value::Null);
    diff_values("", &ov, &nv, &mut values);
    let mut fields = Vec::new();
    if old.dependencies != new.dependencies {
        fields.push("dependencies".to_string());
    }
    let (oc, nc) = (
        old.spec.chart.clone().unwrap_or_default(),
        new.spec.chart.clone().unwrap_or_default(),
    );
    if oc.url != nc.url {
        fields.push("chart.url".into());
    }
    if oc.auth_secret_ref != nc.auth_secret_ref {
        fields.push("chart.authSecretRef".into());
    }
    let (or, nr) = (
        old.spec.release.clone().unwrap_or_default(),
        new.spec.release.clone().unwrap_or_default(),
    );
    for (field, a, b) in [
        (
            "release.targetNamespace",
            json!(or.target_namespace),
            json!(nr.target_namespace),
        ),
        ("release.interval", json!(or.interval), json!(nr.interval)),
        ("release.timeout", json!(or.timeout), json!(nr.timeout)),
        ("release.install", json!(or.install), json!(nr.install)),
        ("release.upgrade", json!(or.upgrade), json!(nr.upgrade)),
        ("release.rollback", json!(or.rollback), json!(nr.rollback)),
        (
            "release.uninstall",
            json!(or.uninstall),
            json!(nr.uninstall),
        ),
        (
            "subcharts",
            json!(old.spec.subcharts),
            json!(new.spec.subcharts),
        ),
        (
            "workflow",
            json!(old.spec.workflow),
            json!(new.spec.workflow),
        ),
        ("gate", json!(old.spec.gate), json!(new.spec.gate)),
    ] {
        if a != b {
            fields.push(field.into());
        }
    }
    let (from, to) = (chart_text(old), chart_text(new));
    let kind = if from == to && values.is_empty() && fields.is_empty() {
        ChangeKind::Unchanged
    } else {
        ChangeKind::Changed
    };
    AppChange {
        name: new.name.clone(),
        kind,
        from: Some(from),
        to: Some(to),
        values,
        fields,
    }
}

/// Leaf paths that differ between two values trees.
fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_values(&join(k), p, q, out),
                    (None, Some(_)) => out.push(format!("+{}", join(k))),
                    (Some(_), None) => out.push(format!("-{}", join(k))),
                    (None, None) => {}
                }
            }
        }
        (Value::Null, Value::Object(y)) => {
            out.extend(y.keys().map(|k| format!("+{}", join(k))));
        }
        (Value::Object(x), Value::Null) => {
            out.extend(x.keys().map(|k| format!("-{}", join(k))));
        }
        _ if a != b => out.push(format!("~{}", if path.is_empty() { "." } else { path })),
        _ => {}
    }
}

/// Chart changes in one line each, for `history`: `+db postgresql@1.0`, `-x`, `db postgresql 1 -> 2`.
pub fn chart_changes(
    from: Option<&ApplicationGroupSpec>,
    to: &ApplicationGroupSpec,
) -> Vec<String> {
    changes(from, to)
        .into_iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Added => Some(format!("+{} {}", c.name, c.to.unwrap_or_default())),
            ChangeKind::Removed => Some(format!("-{}", c.name)),
            ChangeKind::Changed => {
                let (f, t) = (c.from.unwrap_or_default(), c.to.unwrap_or_default());
                match (f.split_once('@'), t.split_once('@')) {
                    (Some((fc, fv)), Some((tc, tv))) if fc == tc && fv != tv => {
                        Some(format!("{} {fc} {fv} -> {tv}", c.name))
                    }
                    _ if f != t => Some(format!("{} {f} -> {t}", c.name)),
                    _ if !c.values.is_empty() => Some(format!("{} values", c.name)),
                    _ => Some(format!("{} {}", c.name, c.fields.join(","))),
                }
            }
            ChangeKind::Unchanged => None,
        })
        .collect()
}

fn waves(spec: &ApplicationGroupSpec) -> Vec<Vec<String>> {
    let dag = Dag::new(
        spec.applications
            .iter()
            .map(|a| (a.name.as_str(), a.dependencies.iter().map(String::as_str))),
    );
    dag.waves()
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.into_iter().map(|i| dag.name(i).to_string()).collect())
        .collect()
}

/// The plan of promoting `spec` over the last successful revision `base`.
pub fn promote(
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

/// Applications of `current` that `target` lacks, dependents before their dependencies.
fn removed_in_reverse(current: &ApplicationGroupSpec, target: &ApplicationGroupSpec) -> Vec<usize> {
    let dag = Dag::new(
        current
            .applications
            .iter()
            .map(|a| (a.name.as_str(), a.dependencies.iter().map(String::as_str))),
    );
    let order = dag
        .reverse_order()
        .unwrap_or_else(|| (0..current.applications.len()).rev().collect());
    order
        .into_iter()
        .filter(|&i| {
            !target
                .applications
                .iter()
                .any(|t| t.name == current.applications[i].name)
        })
        .collect()
}

/// The plan of rolling `current` back to revision `to` (spec `target`).
pub fn rollback(
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

/// Template that deletes one chart's HelmRelease (the executor's `--action delete`).
pub const DELETE_TEMPLATE: &str = "executor-helmrelease-delete";
/// Entry point of a rollback Workflow.
pub const ROLLBACK_ENTRYPOINT: &str = "rollback";
/// The DAG removing applications added since the restored revision.
pub const REMOVE_TEMPLATE: &str = "remove";
/// Prefix of the parameters holding the manifests of removed charts.
const REMOVE_PARAMETER_PREFIX: &str = "remove--";

/// The rollback Workflow: `remove` (added applications, reverse order) then `apply` (the restored
/// spec's own recorded `entry` DAG, gates off), as revision `r` of the group.
pub fn rollback_workflow(
    owner: &Owner,
    current: &ApplicationGroupSpec,
    target: &ApplicationGroupSpec,
    r: &NewRevision<'_>,
) -> Value {
    let mut wf = argo::workflow(&owner.name, target, &revision::workflow_meta(owner, r));
    revision::finish_workflow(&mut wf, owner, r, true);
    let removed = removed_in_reverse(current, target);
    let image = defaults::workflow_settings(target)
        .executor_image
        .unwrap_or_else(|| defaults::EXECUTOR_IMAGE.into());
    let mut tasks: Vec<Value> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    // Task names of each removed application, so its dependencies' removals can wait for them.
    let mut done: Vec<(String, Vec<String>)> = Vec::new();
    for &i in &removed {
        let app = &current.applications[i];
        let timeout = app
            .spec
            .release
            .as_ref()
            .and_then(|r| r.timeout.clone())
            .unwrap_or_else(|| DEFAULT_TIMEOUT.into());
        // What depends on this application was removed earlier in `removed`: wait for it.
        let after: Vec<String> = done
            .iter()
            .filter(|(name, _)| {
                current
                    .applications
                    .iter()
                    .any(|a| &a.name == name && a.dependencies.contains(&app.name))
            })
            .flat_map(|(_, t)| t.clone())
            .collect();
        let own = argo::chart_parameter(app, None);
        let mut names = vec![own.clone()];
        let mut push = |param: String, deps: Vec<String>, manifest: Value| {
            params.push(json!({ "name": format!("{REMOVE_PARAMETER_PREFIX}{param}"), "value": manifest.to_string() }));
            let mut t = json!({
                "name": param,
                "template": DELETE_TEMPLATE,
                "arguments": { "parameters": [
                    { "name": "manifest", "value": format!("{{{{workflow.parameters.{REMOVE_PARAMETER_PREFIX}{param}}}}}") },
                    { "name": "timeout", "value": timeout },
                ]},
            });
            if !deps.is_empty() {
                t["dependencies"] = json!(deps);
            }
            tasks.push(t);
        };
        // The parent chart goes first (it was released last), then its subcharts in reverse.
        push(
            own.clone(),
            after,
            flux::identity_manifest(&owner.name, app, None),
        );
        let subs = &app.spec.subcharts;
        for sub in subs.iter().rev() {
            let param = argo::chart_parameter(app, Some(sub));
            let mut deps = vec![own.clone()];
            deps.extend(
                subs.iter()
                    .filter(|s| s.dependencies.contains(&sub.name))
                    .map(|s| argo::chart_parameter(app, Some(s))),
            );
            push(
                param.clone(),
                deps,
                flux::identity_manifest(&owner.name, app, Some(sub)),
            );
            names.push(param);
        }
        done.push((app.name.clone(), names));
    }
    let spec = &mut wf["spec"];
    let mut root = Vec::new();
    if !tasks.is_empty() {
        root.push(json!({ "name": "remove", "template": REMOVE_TEMPLATE }));
    }
    let mut apply = json!({ "name": "apply", "template": argo::ENTRYPOINT });
    if !tasks.is_empty() {
        apply["dependencies"] = json!(["remove"]);
    }
    root.push(apply);
    if let Some(templates) = spec["templates"].as_array_mut() {
        templates.insert(
            0,
            json!({ "name": ROLLBACK_ENTRYPOINT, "dag": { "tasks": root } }),
        );
        if !tasks.is_empty() {
            templates.push(json!({ "name": REMOVE_TEMPLATE, "dag": { "tasks": tasks } }));
            let mut delete = argo::executor_template(DELETE_TEMPLATE, &image, "delete");
            argo::harden(&mut delete);
            templates.push(delete);
        }
    }
    spec["entrypoint"] = json!(ROLLBACK_ENTRYPOINT);
    if let Some(p) = spec
        .pointer_mut("/arguments/parameters")
        .and_then(Value::as_array_mut)
    {
        p.extend(params);
    }
    wf
}

fn write_changes(s: &mut String, changes: &[AppChange]) {
    let w = changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in changes {
        let what = match c.kind {
            ChangeKind::Added => format!("added      {}", c.to.as_deref().unwrap_or_default()),
            ChangeKind::Removed => format!("removed    {}", c.from.as_deref().unwrap_or_default()),
            ChangeKind::Unchanged => format!("unchanged  {}", c.to.as_deref().unwrap_or_default()),
            ChangeKind::Changed => {
                let (f, t) = (
                    c.from.as_deref().unwrap_or_default(),
                    c.to.as_deref().unwrap_or_default(),
                );
                let mut x = if f == t {
                    format!("changed    {t}")
                } else {
                    format!("changed    {f} -> {t}")
                };
                if !c.values.is_empty() {
                    let _ = write!(x, "; values {}", c.values.join(" "));
                }
                if !c.fields.is_empty() {
                    let _ = write!(x, "; {}", c.fields.join(", "));
                }
                x
            }
        };
        let _ = writeln!(s, "  {:<w$}  {what}", c.name);
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
    use crate::revision::ReleaseType;

    fn spec(v: Value) -> ApplicationGroupSpec {
        serde_json::from_value(v).expect("spec")
    }

    fn app(name: &str, deps: &[&str], version: &str, values: Value) -> Value {
        json!({"name": name, "dependencies": deps, "spec": {"chart": {"url": "https://c", "name": name, "version": version}, "release": {"targetNamespace": name, "values": values}}})
    }

    fn old() -> ApplicationGroupSpec {
        spec(
            json!({"applications": [app("db", &[], "1.0.0", json!({"a": 1})), app("api", &["db"], "1.0.0", json!({}))],
            "workflowTemplate": {"templates": [{"name": "entry", "dag": {"tasks": [{"name": "db", "template": "app-db"}]}}]}}),
        )
    }

    fn new() -> ApplicationGroupSpec {
        spec(json!({"applications": [
            app("db", &[], "1.1.0", json!({"a": 2, "b": {"c": true}})),
            app("api", &["db"], "1.0.0", json!({})),
            app("cache", &["db"], "1.0.0", json!({})),
            {"name": "web", "dependencies": ["cache", "api"], "spec": {"gate": true, "chart": {"url": "https://c", "name": "web", "version": "2.0.0"}, "release": {"targetNamespace": "web"},
                "subcharts": [{"name": "ui"}, {"name": "edge", "dependencies": ["ui"]}]}},
        ]}))
    }

    #[test]
    fn promote_plan_shows_waves_changes_and_gates() {
        let old = old();
        let plan = promote(&new(), Some((2, &old)));
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

    #[test]
    fn rollback_removes_added_applications_in_reverse_then_reapplies() {
        let (cur, target) = (new(), old());
        let plan = rollback(&cur, 1, &target);
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
