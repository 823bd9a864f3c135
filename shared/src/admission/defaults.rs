//! Defaulting: every default made explicit in the object, and the Argo templates that will
//! release the group injected into `spec.workflowTemplate.templates`.
//!
//! Pure and idempotent (`default(default(x)) == default(x)`, so `reinvocationPolicy: IfNeeded` is
//! safe). User-set values are never overwritten; the one field we own outright is `templates`,
//! which is regenerated from the rest of the spec every time.

use json_patch::jsonptr::PointerBuf;
use serde_json::{Value, json};

use crate::api::defaults::{
    CHART_VERSION, EXECUTOR_IMAGE, PARALLELISM, RELEASE_INTERVAL, RELEASE_TIMEOUT,
    workflow_settings,
};
use crate::api::{ApplicationGroupSpec, ChartRef, Executor, WorkflowTemplate};
use crate::emit::argo::{self, Settings};
use crate::input::parse::{SpecError, parse_spec};
use crate::naming;

/// Why an object could not be defaulted.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    /// The spec does not fit the API types.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The object is not a JSON object.
    #[error("the object is not a JSON object")]
    NotAnObject,
    /// The patch did not apply (a bug: every path it adds to exists).
    #[error("applying the defaults: {0}")]
    Patch(String),
}

/// The spec with every default filled in and the templates generated.
pub fn default_spec(spec: &ApplicationGroupSpec) -> ApplicationGroupSpec {
    let mut out = spec.clone();
    for app in &mut out.applications {
        if let Some(chart) = app.spec.chart.as_mut() {
            fill_chart(chart);
        }
        if let Some(release) = app.spec.release.as_mut() {
            release
                .interval
                .get_or_insert_with(|| RELEASE_INTERVAL.into());
            release
                .timeout
                .get_or_insert_with(|| RELEASE_TIMEOUT.into());
            release
                .target_namespace
                .get_or_insert_with(|| naming::default_namespace(&app.name));
        }
        if app.spec.workflow.is_empty() {
            app.spec.workflow = vec![Executor::default_helmrelease()];
        }
    }
    let mut wt = workflow_settings(spec);
    wt.templates = Some(argo::templates(spec, &template_settings(&wt)));
    out.workflow_template = Some(wt);
    out
}

fn template_settings(wt: &WorkflowTemplate) -> Settings {
    Settings {
        executor_image: wt
            .executor_image
            .clone()
            .unwrap_or_else(|| EXECUTOR_IMAGE.into()),
        parallelism: wt.parallelism.unwrap_or(PARALLELISM),
    }
}

fn fill_chart(chart: &mut ChartRef) {
    chart.version.get_or_insert_with(|| CHART_VERSION.into());
}

/// The object as the mutating webhook would store it: `object` with [`mutation_patch`] applied.
/// Everything the user wrote stays as written, unknown fields included.
pub fn default_object(object: &Value) -> Result<Value, DefaultsError> {
    let patch = mutation_patch(object)?;
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).map_err(|e| DefaultsError::Patch(e.to_string()))?;
    Ok(out)
}

/// The RFC 6902 patch the mutating webhook returns: one `add` per missing default, and the
/// generated templates when they differ from the object's. Empty when the object is already
/// defaulted.
///
/// The patch is built from the typed spec rather than by diffing two copies of the object: no
/// copy of a large group is made, and every operation is an `add` (which also replaces a `null`).
pub fn mutation_patch(object: &Value) -> Result<json_patch::Patch, DefaultsError> {
    if !object.is_object() {
        return Err(DefaultsError::NotAnObject);
    }
    let spec = parse_spec(object)?;
    let mut ops = Vec::new();
    let mut add = |path: &[&str], value: Value| {
        ops.push(json_patch::PatchOperation::Add(json_patch::AddOperation {
            path: PointerBuf::from_tokens(path.iter().copied()),
            value,
        }));
    };
    for (i, app) in spec.applications.iter().enumerate() {
        let i = i.to_string();
        let base = ["spec", "applications", i.as_str(), "spec"];
        if let Some(chart) = &app.spec.chart
            && chart.version.is_none()
        {
            add(
                &[&base[..], &["chart", "version"]].concat(),
                json!(CHART_VERSION),
            );
        }
        if let Some(release) = &app.spec.release {
            let namespace = naming::default_namespace(&app.name);
            for (field, present, value) in [
                ("interval", release.interval.is_some(), RELEASE_INTERVAL),
                ("timeout", release.timeout.is_some(), RELEASE_TIMEOUT),
                (
                    "targetNamespace",
                    release.target_namespace.is_some(),
                    namespace.as_str(),
                ),
            ] {
                if !present {
                    add(&[&base[..], &["release", field]].concat(), json!(value));
                }
            }
        }
        // `spec` may be missing (the schema requires it, but mutation runs before the schema
        // check): then there is no object to add to, and validation reports it.
        let has_spec = object
            .pointer(&format!("/spec/applications/{i}/spec"))
            .is_some_and(Value::is_object);
        if app.spec.workflow.is_empty() && has_spec {
            let executor =
                serde_json::to_value(vec![Executor::default_helmrelease()]).unwrap_or_default();
            add(&[&base[..], &["workflow"]].concat(), executor);
        }
    }
    let wt = workflow_settings(&spec);
    let templates = argo::templates(&spec, &template_settings(&wt));
    match &spec.workflow_template {
        None => {
            let mut value = serde_json::to_value(&wt).unwrap_or_default();
            value["templates"] = Value::Array(templates);
            add(&["spec", "workflowTemplate"], value);
        }
        Some(current) => {
            let missing = [
                (
                    "namespace",
                    current.namespace.is_none(),
                    json!(wt.namespace),
                ),
                (
                    "serviceAccountName",
                    current.service_account_name.is_none(),
                    json!(wt.service_account_name),
                ),
                (
                    "parallelism",
                    current.parallelism.is_none(),
                    json!(wt.parallelism),
                ),
                ("podGC", current.pod_gc.is_none(), json!(wt.pod_gc)),
                (
                    "executorImage",
                    current.executor_image.is_none(),
                    json!(wt.executor_image),
                ),
            ];
            for (field, absent, value) in missing {
                if absent {
                    add(&["spec", "workflowTemplate", field], value);
                }
            }
            if current.templates.as_ref() != Some(&templates) {
                add(
                    &["spec", "workflowTemplate", "templates"],
                    Value::Array(templates),
                );
            }
        }
    }
    Ok(json_patch::Patch(ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group() -> Value {
        json!({
            "apiVersion": "orkestra.azure.microsoft.com/v1alpha1",
            "kind": "ApplicationGroup",
            "metadata": {"name": "shop"},
            "spec": {"applications": [
                {"name": "db", "spec": {"chart": {"url": "https://charts.example.com", "name": "postgresql", "version": "12.1.0"},
                    "release": {"timeout": "10m", "values": {"auth": {"enabled": true}}}}},
                {"name": "api", "dependencies": ["db"], "spec": {"chart": {"url": "oci://registry.example.com/charts", "name": "api"},
                    "release": {"targetNamespace": "shop"}}}
            ]}
        })
    }

    #[test]
    fn fills_defaults_and_keeps_user_values() {
        let out = default_object(&group()).unwrap_or_default();
        let apps = &out["spec"]["applications"];
        assert_eq!(apps[0]["spec"]["release"]["timeout"], "10m");
        assert_eq!(apps[0]["spec"]["release"]["interval"], "5m");
        assert_eq!(apps[0]["spec"]["release"]["targetNamespace"], "db");
        assert_eq!(apps[1]["spec"]["release"]["targetNamespace"], "shop");
        assert_eq!(apps[1]["spec"]["chart"]["version"], "*");
        assert_eq!(
            apps[0]["spec"]["workflow"],
            json!([{"name": "helmrelease", "type": "helmrelease"}])
        );
        let wt = &out["spec"]["workflowTemplate"];
        assert_eq!(wt["namespace"], "orkestra");
        assert_eq!(wt["parallelism"], 10);
        // Failed steps' pods (and the executor's explanation) outlive the release.
        assert_eq!(
            wt["podGC"],
            json!({"strategy": "OnPodSuccess", "deleteDelayDuration": "5m"})
        );
        let names: Vec<&str> = wt["templates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec!["entry", "app-db", "app-api", "executor-helmrelease"]
        );
        assert_eq!(
            wt["templates"][0]["dag"]["tasks"][1]["dependencies"],
            json!(["db"])
        );
    }

    #[test]
    fn patch_only_adds_and_is_empty_the_second_time() {
        let patch = mutation_patch(&group()).unwrap_or_else(|_| json_patch::Patch(vec![]));
        assert!(!patch.0.is_empty());
        assert!(
            patch
                .0
                .iter()
                .all(|op| matches!(op, json_patch::PatchOperation::Add(_))),
            "{patch:?}"
        );
        let once = default_object(&group()).unwrap_or_default();
        assert_eq!(mutation_patch(&once).map(|p| p.0.len()).unwrap_or(99), 0);
    }

    #[test]
    fn an_application_without_spec_still_gets_a_patch_that_applies() {
        let obj = json!({"kind": "ApplicationGroup", "metadata": {"name": "g"},
                         "spec": {"applications": [{"name": "a"}]}});
        assert!(default_object(&obj).is_ok());
    }

    #[test]
    fn templates_follow_spec_changes() {
        let mut once = default_object(&group()).unwrap_or_default();
        once["spec"]["applications"][1]["dependencies"] = json!([]);
        let again = default_object(&once).unwrap_or_default();
        assert_eq!(
            again["spec"]["workflowTemplate"]["templates"][0]["dag"]["tasks"][1]
                .get("dependencies"),
            None
        );
    }
}
