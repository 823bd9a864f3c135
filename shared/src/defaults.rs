//! Defaulting: every default made explicit in the object, and the Argo templates that will
//! release the group injected into `spec.workflowTemplate.templates`.
//!
//! Pure and idempotent (`default(default(x)) == default(x)`, so `reinvocationPolicy: IfNeeded` is
//! safe). User-set values are never overwritten; the one field we own outright is `templates`,
//! which is regenerated from the rest of the spec every time.

use serde_json::{Value, json};

use crate::api::{ApplicationGroupSpec, ChartRef, Executor, Release, WorkflowTemplate};
use crate::argo::{self, Settings};
use crate::model::{self, SpecError};

/// Release interval when unset (the original CRD's default).
pub const RELEASE_INTERVAL: &str = "5m";
/// Release timeout when unset (the original's executor default).
pub const RELEASE_TIMEOUT: &str = "5m";
/// Chart version when unset (the original CRD's default).
pub const CHART_VERSION: &str = "*";
/// Namespace the group's Workflows run in.
pub const WORKFLOW_NAMESPACE: &str = "orkestra";
/// Service account of the Workflow pods.
pub const SERVICE_ACCOUNT: &str = "orkestra";
/// Parallelism of the Workflow and each DAG.
pub const PARALLELISM: i64 = 10;
/// Argo pod GC strategy.
pub const POD_GC_STRATEGY: &str = "OnWorkflowCompletion";
/// The executor image: this project's `kubectl-orkestra`, tagged with the crate version.
pub const EXECUTOR_IMAGE: &str = concat!(
    "ghcr.io/orkestra-rs/kubectl-orkestra:v",
    env!("CARGO_PKG_VERSION")
);

/// Why an object could not be defaulted.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    /// The spec does not fit the API types.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The object is not a JSON object.
    #[error("the object is not a JSON object")]
    NotAnObject,
}

/// The spec with every default filled in and the templates generated.
pub fn default_spec(group: &str, spec: &ApplicationGroupSpec) -> ApplicationGroupSpec {
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
                .get_or_insert_with(|| model::default_namespace(&app.name));
        }
        if app.spec.workflow.is_empty() {
            app.spec.workflow = vec![Executor::default_helmrelease()];
        }
    }
    let wt = out
        .workflow_template
        .get_or_insert_with(WorkflowTemplate::default);
    wt.namespace
        .get_or_insert_with(|| WORKFLOW_NAMESPACE.into());
    wt.service_account_name
        .get_or_insert_with(|| SERVICE_ACCOUNT.into());
    wt.parallelism.get_or_insert(PARALLELISM);
    wt.pod_gc
        .get_or_insert_with(|| json!({ "strategy": POD_GC_STRATEGY }));
    wt.executor_image
        .get_or_insert_with(|| EXECUTOR_IMAGE.into());
    let settings = Settings {
        executor_image: wt.executor_image.clone().unwrap_or_default(),
        parallelism: wt.parallelism.unwrap_or(PARALLELISM),
    };
    let templates = argo::templates(group, &out, &settings);
    if let Some(wt) = out.workflow_template.as_mut() {
        wt.templates = Some(templates);
    }
    out
}

fn fill_chart(chart: &mut ChartRef) {
    chart.version.get_or_insert_with(|| CHART_VERSION.into());
}

/// The object as the mutating webhook would store it. Everything the user wrote stays as
/// written, unknown fields included; only missing values are added (and `templates` replaced).
pub fn default_object(object: &Value) -> Result<Value, DefaultsError> {
    if !object.is_object() {
        return Err(DefaultsError::NotAnObject);
    }
    let spec = model::parse_spec(object)?;
    let group = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let defaulted = serde_json::to_value(default_spec(group, &spec)).unwrap_or(Value::Null);
    let mut out = object.clone();
    let templates = defaulted.pointer("/workflowTemplate/templates").cloned();
    if let Some(target) = out.get_mut("spec") {
        fill(target, &defaulted);
        if let (Some(t), Some(wt)) = (templates, target.get_mut("workflowTemplate")) {
            wt["templates"] = t;
        }
    }
    Ok(out)
}

/// The RFC 6902 patch from `object` to [`default_object`]: what the mutating webhook returns.
/// Empty when the object is already defaulted.
pub fn mutation_patch(object: &Value) -> Result<json_patch::Patch, DefaultsError> {
    Ok(json_patch::diff(object, &default_object(object)?))
}

/// Adds what `source` has and `target` lacks (missing, `null` or empty-list values), recursing
/// into objects and, index by index, into lists.
fn fill(target: &mut Value, source: &Value) {
    match (target, source) {
        (Value::Object(t), Value::Object(s)) => {
            for (key, sv) in s {
                match t.get_mut(key) {
                    Some(tv) if !is_unset(tv) => fill(tv, sv),
                    _ => {
                        t.insert(key.clone(), sv.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(s)) => {
            for (tv, sv) in t.iter_mut().zip(s) {
                fill(tv, sv);
            }
        }
        _ => {}
    }
}

fn is_unset(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(Vec::is_empty)
}

/// Effective workflow settings of a (defaulted or not) spec.
pub fn workflow_settings(spec: &ApplicationGroupSpec) -> WorkflowTemplate {
    let mut wt = spec.workflow_template.clone().unwrap_or_default();
    wt.namespace
        .get_or_insert_with(|| WORKFLOW_NAMESPACE.into());
    wt.service_account_name
        .get_or_insert_with(|| SERVICE_ACCOUNT.into());
    wt.parallelism.get_or_insert(PARALLELISM);
    wt
}

/// Default release settings (for display of applications that set none).
pub fn release_defaults() -> Release {
    Release {
        interval: Some(RELEASE_INTERVAL.into()),
        timeout: Some(RELEASE_TIMEOUT.into()),
        ..Release::default()
    }
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
