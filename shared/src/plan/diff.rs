//! What changes per application between two specs: chart version, values keys, release
//! settings. Shared by the promote and rollback plans and by `history`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Application, ApplicationGroupSpec};

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

fn chart_text(app: &Application) -> String {
    app.spec.chart.clone().unwrap_or_default().describe()
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

pub(crate) fn write_changes(s: &mut String, changes: &[AppChange]) {
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
