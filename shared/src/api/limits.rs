//! How large a group may be. Checked on the typed spec as soon as it is read (one linear pass,
//! within the memory the request body's own size bounds), so a hostile object never reaches the
//! quadratic or memory-hungry parts (typo hints, cycle search, template generation). The CRD carries the same numbers as
//! `maxItems` and `maxLength`, so the API server enforces them even while the webhook is down.
//!
//! The numbers leave room for every real group: the largest the original Orkestra's users
//! reported had a few dozen applications, and etcd's 1.5 MiB per object ends a defaulted group
//! (with its injected templates) at roughly 1,500 applications anyway.

use crate::api::ApplicationGroupSpec;

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

/// Every limit `spec` exceeds (at most 20 are listed), in field order.
pub fn check(spec: &ApplicationGroupSpec) -> Vec<Exceeded> {
    let mut out = Vec::new();
    let apps = &spec.applications;
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
        let base = || format!("spec.applications[{i}]");
        check_node(
            &app.name,
            &app.dependencies,
            &base,
            "application",
            &mut exceed,
        );
        let subcharts: Vec<(&str, &[String])> = (app.spec.subcharts.iter())
            .map(|s| (s.name.as_str(), s.dependencies.as_slice()))
            .collect();
        let executors: Vec<(&str, &[String])> = (app.spec.workflow.iter())
            .map(|e| (e.name.as_str(), e.dependencies.as_slice()))
            .collect();
        let nested = [
            ("subcharts", "subchart", MAX_SUBCHARTS, subcharts),
            ("workflow", "executor", MAX_EXECUTORS, executors),
        ];
        for (field, what, max, items) in nested {
            let path = || format!("{}.spec.{field}", base());
            if items.len() > max {
                exceed(
                    path(),
                    format!("{} {what}s; at most {max} per application", items.len()),
                );
                continue;
            }
            steps += items.len();
            for (k, (name, deps)) in items.into_iter().enumerate() {
                let at = || format!("{}[{k}]", path());
                check_node(name, deps, &at, what, &mut exceed);
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

/// The name and the dependencies of one application, subchart or executor; `base` gives its
/// path, built only for a finding.
fn check_node(
    name: &str,
    deps: &[String],
    base: &dyn Fn() -> String,
    what: &str,
    exceed: &mut impl FnMut(String, String),
) {
    let chars = |s: &str| {
        // Each character is at most 4 bytes: a name this short cannot be too long.
        if s.len() <= MAX_NAME_CHARS {
            s.len()
        } else {
            s.chars().count()
        }
    };
    let n = chars(name);
    if n > MAX_NAME_CHARS {
        exceed(
            format!("{}.name", base()),
            format!("{what} name of {n} characters; at most {MAX_NAME_CHARS}"),
        );
    }
    if deps.len() > MAX_DEPENDENCIES {
        exceed(
            format!("{}.dependencies", base()),
            format!(
                "{} dependencies; at most {MAX_DEPENDENCIES} per {what}",
                deps.len()
            ),
        );
        return;
    }
    for (j, dep) in deps.iter().enumerate() {
        let n = chars(dep);
        if n > MAX_NAME_CHARS {
            exceed(
                format!("{}.dependencies[{j}]", base()),
                format!("dependency name of {n} characters; at most {MAX_NAME_CHARS}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec(object: Value) -> ApplicationGroupSpec {
        serde_json::from_value(object["spec"].clone()).unwrap_or_default()
    }

    fn apps(n: usize) -> ApplicationGroupSpec {
        let list: Vec<Value> = (0..n).map(|i| json!({"name": format!("a{i}")})).collect();
        spec(json!({"spec": {"applications": list}}))
    }

    #[test]
    fn groups_within_the_limits_pass() {
        assert!(check(&apps(MAX_APPLICATIONS)).is_empty());
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
        let got: Vec<String> = check(&spec(obj))
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
