//! Defaulting: every default made explicit in the object, and the Argo templates that will
//! release the group injected into `spec.workflowTemplate.templates`.
//!
//! Pure and idempotent (`default(default(x)) == default(x)`, so `reinvocationPolicy: IfNeeded` is
//! safe). User-set values are never overwritten; the one field we own outright is `templates`,
//! which is regenerated from the rest of the spec every time.
//!
//! The typed spec is the data flow: the object is read once into it ([`Source`]), [`fill`]
//! defaults it and records each default as a patch operation whose value is JSON text, so the
//! patch is written without building the object, or the templates, as `serde_json::Value`s.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};

use crate::api::defaults::{
    CHART_VERSION, EXECUTOR_IMAGE, PARALLELISM, RELEASE_INTERVAL, RELEASE_TIMEOUT,
    workflow_settings,
};
use crate::api::{ApplicationGroupSpec, ApplicationSpec, Executor, Templates, WorkflowTemplate};
use crate::emit::argo::{self, Settings};
use crate::input::object::{NotJson, Source};
use crate::input::parse::{self, SpecError};
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
    /// The object's text is not JSON.
    #[error(transparent)]
    NotJson(#[from] NotJson),
    /// The patch did not apply (a bug: every path it adds to exists).
    #[error("applying the defaults: {0}")]
    Patch(String),
}

/// The RFC 6902 patch the mutating webhook returns: only `add`s (which also replace a `null`),
/// each value kept as JSON text.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Patch(Vec<Add>);

/// One `add` operation.
#[derive(Debug, Clone, Serialize)]
pub struct Add {
    op: &'static str,
    /// JSON pointer of the field added.
    pub path: String,
    /// The value, as JSON text.
    pub value: Box<RawValue>,
}

impl Patch {
    /// True when the object is already defaulted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The operations, in field order.
    pub fn operations(&self) -> &[Add] {
        &self.0
    }

    /// The patch as JSON text, as the webhook sends it.
    pub fn to_json(&self) -> Vec<u8> {
        // Sized up front: the templates are most of it, and are copied once.
        let size = (self.0.iter())
            .map(|op| op.path.len() + op.value.get().len() + 32)
            .sum::<usize>();
        let mut out = Vec::with_capacity(size + 2);
        // Serializing strings and JSON text into a vector cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }

    /// Applies the patch to `object`.
    pub fn apply(&self, object: &mut Value) -> Result<(), DefaultsError> {
        let patch: json_patch::Patch = serde_json::from_slice(&self.to_json())
            .map_err(|e| DefaultsError::Patch(e.to_string()))?;
        json_patch::patch(object, &patch).map_err(|e| DefaultsError::Patch(e.to_string()))
    }

    /// Adds an `add` of `value` at the field `path` (its tokens unescaped).
    pub fn add(&mut self, path: &[&str], value: &(impl Serialize + ?Sized)) {
        let Ok(value) = to_raw_value(value) else {
            return; // only maps with non-string keys fail, and none are written here
        };
        let mut pointer = String::new();
        for token in path {
            pointer.push('/');
            for c in token.chars() {
                match c {
                    '~' => pointer.push_str("~0"),
                    '/' => pointer.push_str("~1"),
                    c => pointer.push(c),
                }
            }
        }
        self.0.push(Add {
            op: "add",
            path: pointer,
            value,
        });
    }
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
    patch.apply(&mut out)?;
    Ok(out)
}

/// The patch the mutating webhook returns for `object`: one `add` per missing default, and the
/// generated templates when they differ from the object's. Empty when the object is already
/// defaulted.
pub fn mutation_patch(object: &Value) -> Result<Patch, DefaultsError> {
    if !object.is_object() {
        return Err(DefaultsError::NotAnObject);
    }
    patch_of(Source::Value(object))
}

/// [`mutation_patch`] of an object's JSON text, as the webhook receives it.
pub fn mutation_patch_json(object: &[u8]) -> Result<Patch, DefaultsError> {
    patch_of(Source::Json(object))
}

fn patch_of(source: Source<'_>) -> Result<Patch, DefaultsError> {
    // A group beyond the limits is refused by validation; nothing is generated for it.
    let mut spec = parse::within_limits(source.read()?.spec?)?;
    let mut patch = Patch::default();
    fill(&mut spec, Some(&mut patch));
    Ok(patch)
}

/// Fills every missing default into `spec` and generates its templates: the one place that
/// decides what is defaulted. With a patch, each fill is also recorded as an `add` of the
/// field, in field order.
fn fill(spec: &mut ApplicationGroupSpec, mut patch: Option<&mut Patch>) {
    // Templates come from the spec as written (they do not depend on the defaults filled below,
    // so defaulting a defaulted object changes nothing).
    let mut wt = workflow_settings(spec);
    let templates = generated_templates(spec, &template_settings(&wt));
    for (i, app) in spec.applications.iter_mut().enumerate() {
        // An application without a spec is left alone: there is no object to add the defaults
        // to, and validation reports what it lacks.
        if app.spec == ApplicationSpec::default() {
            continue;
        }
        let i = i.to_string();
        let base = ["spec", "applications", i.as_str(), "spec"];
        // Each default is recorded as an `add` of its field, once, where it is filled.
        let mut record = |field: &[&str], value: &str| {
            if let Some(p) = patch.as_deref_mut() {
                p.add(&[&base[..], field].concat(), value);
            }
        };
        if let Some(chart) = app.spec.chart.as_mut() {
            fill_one(
                &mut chart.version,
                || CHART_VERSION.into(),
                |v| record(&["chart", "version"], v),
            );
        }
        if let Some(release) = app.spec.release.as_mut() {
            fill_one(
                &mut release.interval,
                || RELEASE_INTERVAL.into(),
                |v| record(&["release", "interval"], v),
            );
            fill_one(
                &mut release.timeout,
                || RELEASE_TIMEOUT.into(),
                |v| record(&["release", "timeout"], v),
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
            if let Some(p) = patch.as_deref_mut() {
                p.add(&[&base[..], &["workflow"]].concat(), &app.spec.workflow);
            }
        }
    }
    if let Some(p) = patch {
        record_settings(p, spec.workflow_template.as_ref(), &wt, &templates);
    }
    wt.templates = Some(templates);
    spec.workflow_template = Some(wt);
}

/// The templates that release `spec`, as JSON text.
fn generated_templates(spec: &ApplicationGroupSpec, settings: &Settings) -> Templates {
    Templates::from_json(argo::templates_json(spec, settings)).unwrap_or_default()
}

/// Records the group-level settings `current` lacks (all of `filled` when there is none) and
/// the templates when they differ from the current ones.
fn record_settings(
    patch: &mut Patch,
    current: Option<&WorkflowTemplate>,
    filled: &WorkflowTemplate,
    templates: &Templates,
) {
    let Some(current) = current else {
        /// The whole settings with the templates, without copying them first.
        #[derive(Serialize)]
        struct Whole<'a> {
            #[serde(flatten)]
            settings: &'a WorkflowTemplate,
            templates: &'a Templates,
        }
        let whole = Whole {
            settings: filled,
            templates,
        };
        patch.add(&["spec", "workflowTemplate"], &whole);
        return;
    };
    fn field(name: &str) -> [&str; 3] {
        ["spec", "workflowTemplate", name]
    }
    if current.namespace.is_none() {
        patch.add(&field("namespace"), &filled.namespace);
    }
    if current.service_account_name.is_none() {
        patch.add(&field("serviceAccountName"), &filled.service_account_name);
    }
    if current.parallelism.is_none() {
        patch.add(&field("parallelism"), &filled.parallelism);
    }
    if current.pod_gc.is_none() {
        patch.add(&field("podGC"), &filled.pod_gc);
    }
    if current.executor_image.is_none() {
        patch.add(&field("executorImage"), &filled.executor_image);
    }
    if current.templates.as_ref() != Some(templates) {
        patch.add(&field("templates"), templates);
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
    use crate::input::parse::parse_spec;
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
        let patch = mutation_patch(&group()).unwrap_or_default();
        assert!(!patch.is_empty());
        let sent: Value = serde_json::from_slice(&patch.to_json()).unwrap_or_default();
        let ops = sent.as_array().cloned().unwrap_or_default();
        assert_eq!(ops.len(), patch.len());
        assert!(ops.iter().all(|op| op["op"] == "add"), "{sent}");
        let once = default_object(&group()).unwrap_or_default();
        assert_eq!(mutation_patch(&once).map(|p| p.len()).unwrap_or(99), 0);
        // The same from the object's text, as the webhook reads it.
        let text = serde_json::to_vec(&once).unwrap_or_default();
        assert_eq!(mutation_patch_json(&text).map(|p| p.len()).unwrap_or(99), 0);
        let first = serde_json::to_vec(&group()).unwrap_or_default();
        assert_eq!(
            mutation_patch_json(&first).map(|p| p.to_json()).ok(),
            Some(patch.to_json())
        );
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
