//! How large a group may be. Checked on the raw JSON before anything else reads the spec, so a
//! hostile object costs one linear pass and never reaches the quadratic or memory-hungry parts
//! (typo hints, cycle search, template generation). The CRD carries the same numbers as
//! `maxItems` and `maxLength`, so the API server enforces them even while the webhook is down.
//!
//! The numbers leave room for every real group: the largest the original Orkestra's users
//! reported had a few dozen applications, and etcd's 1.5 MiB per object ends a defaulted group
//! (with its injected templates) at roughly 1,500 applications anyway.

use serde_json::Value;

/// Applications in one group (`spec.applications`).
pub const MAX_APPLICATIONS: usize = 1000;
/// Subcharts of one application (`spec.applications[].spec.subcharts`).
pub const MAX_SUBCHARTS: usize = 64;
/// Executors of one application (`spec.applications[].spec.workflow`).
pub const MAX_EXECUTORS: usize = 16;
/// Dependencies of one application, subchart or executor.
pub const MAX_DEPENDENCIES: usize = 64;
/// Characters in the name of an application, subchart or executor, and in each dependency (the
/// longest Kubernetes object name).
pub const MAX_NAME_CHARS: usize = 253;
/// Applications, subcharts and executors of a group together: each becomes Argo templates.
pub const MAX_STEPS: usize = 2000;
/// At most this many limit violations are listed; one is enough to refuse the object.
const MAX_LISTED: usize = 20;

/// One limit an object exceeds, with the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// Field path, e.g. `spec.applications[3].dependencies`.
    pub path: String,
    /// What is too large, and the limit.
    pub message: String,
}

/// Every limit `object` exceeds (at most 20 are listed), in field order. Fields of the wrong
/// type are left to the spec's own parsing.
pub fn check(object: &Value) -> Vec<Exceeded> {
    let mut out = Vec::new();
    let Some(apps) = object
        .pointer("/spec/applications")
        .and_then(Value::as_array)
    else {
        return out;
    };
    let mut exceed = |path: String, message: String| {
        if out.len() < MAX_LISTED {
            out.push(Exceeded { path, message });
        }
    };
    if apps.len() > MAX_APPLICATIONS {
        exceed(
            "spec.applications".into(),
            format!(
                "{} applications; at most {MAX_APPLICATIONS} per group",
                apps.len()
            ),
        );
        // Everything below scales with the applications; one finding says enough.
        return out;
    }
    let mut steps = apps.len();
    for (i, app) in apps.iter().enumerate() {
        let base = format!("spec.applications[{i}]");
        check_node(app, &base, "application", &mut exceed);
        for (field, what, max) in [
            ("subcharts", "subchart", MAX_SUBCHARTS),
            ("workflow", "executor", MAX_EXECUTORS),
        ] {
            let Some(items) = app
                .get("spec")
                .and_then(|s| s.get(field))
                .and_then(Value::as_array)
            else {
                continue;
            };
            let path = format!("{base}.spec.{field}");
            if items.len() > max {
                exceed(
                    path,
                    format!("{} {what}s; at most {max} per application", items.len()),
                );
                continue;
            }
            steps += items.len();
            for (k, item) in items.iter().enumerate() {
                check_node(item, &format!("{path}[{k}]"), what, &mut exceed);
            }
        }
    }
    if steps > MAX_STEPS {
        exceed(
            "spec.applications".into(),
            format!(
                "{steps} applications, subcharts and executors in all; at most {MAX_STEPS} per group"
            ),
        );
    }
    out
}

/// The name and the dependencies of one application, subchart or executor.
fn check_node(node: &Value, base: &str, what: &str, exceed: &mut impl FnMut(String, String)) {
    if let Some(name) = node.get("name").and_then(Value::as_str)
        && let n = name.chars().count()
        && n > MAX_NAME_CHARS
    {
        exceed(
            format!("{base}.name"),
            format!("{what} name of {n} characters; at most {MAX_NAME_CHARS}"),
        );
    }
    let Some(deps) = node.get("dependencies").and_then(Value::as_array) else {
        return;
    };
    if deps.len() > MAX_DEPENDENCIES {
        exceed(
            format!("{base}.dependencies"),
            format!(
                "{} dependencies; at most {MAX_DEPENDENCIES} per {what}",
                deps.len()
            ),
        );
        return;
    }
    for (j, dep) in deps.iter().enumerate() {
        if let Some(n) = dep.as_str().map(|d| d.chars().count())
            && n > MAX_NAME_CHARS
        {
            exceed(
                format!("{base}.dependencies[{j}]"),
                format!("dependency name of {n} characters; at most {MAX_NAME_CHARS}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apps(n: usize) -> Value {
        let list: Vec<Value> = (0..n).map(|i| json!({"name": format!("a{i}")})).collect();
        json!({"spec": {"applications": list}})
    }

    #[test]
    fn groups_within_the_limits_pass() {
        assert!(check(&apps(MAX_APPLICATIONS)).is_empty());
        assert!(check(&json!({"spec": {"applications": "not a list"}})).is_empty());
    }

    #[test]
    fn each_limit_names_its_field() {
        let e = check(&apps(MAX_APPLICATIONS + 1));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].message, "1001 applications; at most 1000 per group");

        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let deps: Vec<String> = (0..=MAX_DEPENDENCIES).map(|i| format!("d{i}")).collect();
        let subcharts: Vec<Value> = (0..=MAX_SUBCHARTS)
            .map(|i| json!({"name": format!("s{i}")}))
            .collect();
        let obj = json!({"spec": {"applications": [
            {"name": long, "dependencies": [long]},
            {"name": "b", "dependencies": deps, "spec": {"subcharts": subcharts,
                "workflow": [{"name": "e", "dependencies": [long]}]}},
        ]}});
        let got: Vec<String> = check(&obj)
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.applications[0].name: application name of 254 characters; at most 253",
                "spec.applications[0].dependencies[0]: dependency name of 254 characters; at most 253",
                "spec.applications[1].dependencies: 65 dependencies; at most 64 per application",
                "spec.applications[1].spec.subcharts: 65 subcharts; at most 64 per application",
                "spec.applications[1].spec.workflow[0].dependencies[0]: dependency name of 254 characters; at most 253",
            ]
        );
    }
}
