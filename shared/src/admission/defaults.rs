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
use crate::api::{ApplicationGroupSpec, Executor, WorkflowTemplate};
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
    fill(&mut out, None);
    out
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
/// The patch is recorded while [`fill`] defaults the typed spec, rather than by diffing two
/// copies of the object: no copy of a large group is made, and every operation is an `add`
/// (which also replaces a `null`).
pub fn mutation_patch(object: &Value) -> Result<json_patch::Patch, DefaultsError> {
    if !object.is_object() {
        return Err(DefaultsError::NotAnObject);
    }
    let mut spec = parse_spec(object)?;
    let mut patch = Recorder {
        object,
        ops: Vec::new(),
    };
    fill(&mut spec, Some(&mut patch));
    Ok(json_patch::Patch(patch.ops))
}

/// The patch operations of a defaulting, against the object the spec was read from.
struct Recorder<'a> {
    object: &'a Value,
    ops: Vec<json_patch::PatchOperation>,
}

impl Recorder<'_> {
    fn add(&mut self, path: &[&str], value: Value) {
        self.ops
            .push(json_patch::PatchOperation::Add(json_patch::AddOperation {
                path: PointerBuf::from_tokens(path.iter().copied()),
                value,
            }));
    }
}

/// Fills every missing default into `spec` and generates its templates: the one place that
/// decides what is defaulted. With a recorder, each fill is also recorded as an `add` of the
/// field, in field order.
fn fill(spec: &mut ApplicationGroupSpec, mut patch: Option<&mut Recorder<'_>>) {
    // Templates come from the spec as written (they do not depend on the defaults filled below,
    // so defaulting a defaulted object changes nothing).
    let mut wt = workflow_settings(spec);
    let templates = argo::templates(spec, &template_settings(&wt));
    for (i, app) in spec.applications.iter_mut().enumerate() {
        let i = i.to_string();
        let base = ["spec", "applications", i.as_str(), "spec"];
        let mut record = |field: &[&str], value: &str| {
            if let Some(p) = patch.as_deref_mut() {
                p.add(&[&base[..], field].concat(), json!(value));
            }
        };
        if let Some(chart) = app.spec.chart.as_mut() {
            fill_one(
                &mut chart.version,
                || CHART_VERSION.into(),
                |v| {
                    record(&["chart", "version"], v);
                },
            );
        }
        if let Some(release) = app.spec.release.as_mut() {
            fill_one(
                &mut release.interval,
                || RELEASE_INTERVAL.into(),
                |v| {
                    record(&["release", "interval"], v);
                },
            );
            fill_one(
                &mut release.timeout,
                || RELEASE_TIMEOUT.into(),
                |v| {
                    record(&["release", "timeout"], v);
                },
            );
            let name = app.name.as_str();
            fill_one(
                &mut release.target_namespace,
                || naming::default_namespace(name),
                |v| record(&["release", "targetNamespace"], v),
            );
        }
        if app.spec.workflow.is_empty() {
            app.spec.workflow = vec![Executor::default_helmrelease()];
            // `spec` may be missing (the schema requires it, but mutation runs before the
            // schema check): then there is no object to add to, and validation reports it.
            if let Some(p) = patch.as_deref_mut()
                && p.object
                    .pointer(&format!("/spec/applications/{i}/spec"))
                    .is_some_and(Value::is_object)
            {
                let executor = serde_json::to_value(&app.spec.workflow).unwrap_or_default();
                p.add(&[&base[..], &["workflow"]].concat(), executor);
            }
        }
    }
    if let Some(p) = patch {
        record_settings(p, spec.workflow_template.as_ref(), &wt, &templates);
    }
    wt.templates = Some(templates);
    spec.workflow_template = Some(wt);
}

/// Records the group-level settings `current` lacks (all of `filled` when there is none) and
/// the templates when they differ from the current ones.
fn record_settings(
    patch: &mut Recorder<'_>,
    current: Option<&WorkflowTemplate>,
    filled: &WorkflowTemplate,
    templates: &[Value],
) {
    let Some(current) = current else {
        let mut value = serde_json::to_value(filled).unwrap_or_default();
        value["templates"] = Value::Array(templates.to_vec());
        patch.add(&["spec", "workflowTemplate"], value);
        return;
    };
    let missing = [
        (
            "namespace",
            current.namespace.is_none(),
            json!(filled.namespace),
        ),
        (
            "serviceAccountName",
            current.service_account_name.is_none(),
            json!(filled.service_account_name),
        ),
        (
            "parallelism",
            current.parallelism.is_none(),
            json!(filled.parallelism),
        ),
        ("podGC", current.pod_gc.is_none(), json!(filled.pod_gc)),
        (
            "executorImage",
            current.executor_image.is_none(),
            json!(filled.executor_image),
        ),
    ];
    for (field, absent, value) in missing {
        if absent {
            patch.add(&["spec", "workflowTemplate", field], value);
        }
    }
    if current.templates.as_deref() != Some(templates) {
        patch.add(
            &["spec", "workflowTemplate", "templates"],
            Value::Array(templates.to_vec()),
        );
    }
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

/// Sets `slot` to `value()` when it is unset, and reports the value set.
fn fill_one(slot: &mut Option<String>, value: impl FnOnce() -> String, report: impl FnOnce(&str)) {
    if slot.is_none() {
        let value = value();
        report(&value);
        *slot = Some(value);
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
    fn the_typed_defaults_and_the_patch_agree() {
        for object in [
            group(),
            json!({"spec": {"applications": [{"name": "a", "spec": {"chart": {"url": "u", "name": "c"}, "release": {}}}],
                "workflowTemplate": {"namespace": "ops"}}}),
        ] {
            let typed = default_spec(&parse_spec(&object).expect("spec"));
            let patched = parse_spec(&default_object(&object).expect("defaulted")).expect("spec");
            assert_eq!(typed, patched);
        }
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
        let mut once = default_object(&group()).expect("defaulted");
        once["spec"]["applications"][1]["dependencies"] = json!([]);
        let again = default_object(&once).expect("defaulted again");
        let api_task = &again["spec"]["workflowTemplate"]["templates"][0]["dag"]["tasks"][1];
        // The task is there, and it no longer depends on db.
        assert_eq!(api_task["name"], "api");
        assert_eq!(api_task.get("dependencies"), None);
    }
}
