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

use std::fmt::Write as _;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;

use crate::api::defaults::{
    CHART_VERSION, EXECUTOR_IMAGE, PARALLELISM, RELEASE_INTERVAL, RELEASE_TIMEOUT,
    workflow_settings,
};
use crate::api::{ApplicationGroupSpec, ApplicationSpec, Executor, Templates, WorkflowTemplate};
use crate::emit::argo::{self, Settings};
use crate::emit::json::{self, Json};
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
/// written as JSON text as they are recorded (each value serialized straight into it).
#[derive(Debug, Clone)]
pub struct Patch {
    /// `[` and the operations so far, comma-separated; [`Patch::into_json`] closes it.
    json: Vec<u8>,
    /// The number of operations.
    len: usize,
    /// The pointer of the operation being written (kept to reuse its buffer).
    pointer: String,
}

impl Default for Patch {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Patch {
    /// An empty patch with room for `bytes` of operations.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut json = Vec::with_capacity(bytes + 2);
        json.push(b'[');
        Self {
            json,
            len: 0,
            pointer: String::new(),
        }
    }

    /// True when the object is already defaulted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The patch as JSON text, as the webhook sends it (no copy: the text is already written).
    pub fn into_json(mut self) -> Vec<u8> {
        self.json.push(b']');
        self.json
    }

    /// Applies the patch to `object`.
    pub fn apply(&self, object: &mut Value) -> Result<(), DefaultsError> {
        let text = std::io::Read::chain(&self.json[..], &b"]"[..]);
        let patch: json_patch::Patch =
            serde_json::from_reader(text).map_err(|e| DefaultsError::Patch(e.to_string()))?;
        json_patch::patch(object, &patch).map_err(|e| DefaultsError::Patch(e.to_string()))
    }

    /// Makes room for `bytes` more of operations, and no more.
    pub fn reserve(&mut self, bytes: usize) {
        self.json.reserve_exact(bytes);
    }

    /// Adds an `add` of `value` at the field `path` (its tokens unescaped).
    pub fn add(&mut self, path: &[&str], value: &(impl Serialize + ?Sized)) {
        // Serializing into a vector fails only for maps with non-string keys, none here.
        self.add_with("", path, |out| serde_json::to_writer(out, value).is_ok());
    }

    /// Adds an `add` of `value`, which writes its own JSON text, at the field `path` under
    /// `prefix`.
    fn add_json_under(&mut self, prefix: &str, path: &[&str], value: &(impl Json + ?Sized)) {
        self.add_with(prefix, path, |out| {
            value.write_json(out);
            true
        });
    }

    /// Adds an `add` at the field `path` under `prefix` (a JSON pointer) whose value `write`
    /// writes into the patch; taken back when `write` fails.
    fn add_with(&mut self, prefix: &str, path: &[&str], write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let start = self.begin(prefix, path);
        if write(&mut self.json) {
            self.end();
        } else {
            self.json.truncate(start);
        }
    }

    /// Adds an `add` of the templates at `path`, unless they are `current`'s. They are written
    /// into the patch and taken back when they are the same text (or else the same values).
    fn add_templates(
        &mut self,
        path: &[&str],
        templates: &argo::Generated<'_>,
        current: Option<&Templates>,
    ) {
        let start = self.begin("", path);
        let value_start = self.json.len();
        templates.write_json(&mut self.json);
        let written = self.json.get(value_start..).unwrap_or_default();
        let unchanged = current.is_some_and(|current| {
            current.as_json().get().as_bytes() == written
                // Another text may still hold the same values.
                || std::str::from_utf8(written).is_ok_and(|text| current.same_as_json(text))
        });
        if unchanged {
            self.json.truncate(start);
        } else {
            self.end();
        }
    }

    /// Writes an operation up to its value: `{"op":"add","path":"<prefix><path>","value":`.
    /// Returns where it starts, to take it back.
    fn begin(&mut self, prefix: &str, path: &[&str]) -> usize {
        let start = self.json.len();
        if self.len > 0 {
            self.json.push(b',');
        }
        self.json.extend_from_slice(br#"{"op":"add","path":"#);
        self.pointer.clear();
        self.pointer.push_str(prefix);
        for token in path {
            self.pointer.push('/');
            if !token.contains(['~', '/']) {
                self.pointer.push_str(token);
                continue;
            }
            for c in token.chars() {
                match c {
                    '~' => self.pointer.push_str("~0"),
                    '/' => self.pointer.push_str("~1"),
                    c => self.pointer.push(c),
                }
            }
        }
        json::string(&mut self.json, &self.pointer);
        self.json.extend_from_slice(br#","value":"#);
        start
    }

    /// Ends the operation [`Patch::begin`] started.
    fn end(&mut self) {
        self.json.push(b'}');
        self.len += 1;
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
    let mut spec = parse::within_limits(source.read_spec()??)?;
    let mut patch =
        Patch::with_capacity(spec.applications.len() * OPERATIONS_BYTES_PER_APPLICATION);
    fill(&mut spec, Some(&mut patch));
    Ok(patch)
}

/// About the length of one application's defaults as patch operations (two `add`s: most groups
/// set some of the five fields defaulted).
const OPERATIONS_BYTES_PER_APPLICATION: usize = 200;

/// Fills every missing default into `spec` and generates its templates: the one place that
/// decides what is defaulted. With a patch, each fill is recorded as an `add` of the field, in
/// field order, and the templates are written into the patch instead of the spec.
fn fill(spec: &mut ApplicationGroupSpec, mut patch: Option<&mut Patch>) {
    let mut wt = workflow_settings(spec);
    let settings = template_settings(&wt);
    let mut base = String::new();
    for (i, app) in spec.applications.iter_mut().enumerate() {
        // An application without a spec is left alone: there is no object to add the defaults
        // to, and validation reports what it lacks.
        if app.spec == ApplicationSpec::default() {
            continue;
        }
        if patch.is_some() {
            base.clear();
            // Writing into a string cannot fail.
            let _ = write!(base, "/spec/applications/{i}/spec");
        }
        // Each default is recorded as an `add` of its field, once, where it is filled.
        let mut record = |field: &[&str], value: &str| {
            if let Some(p) = patch.as_deref_mut() {
                p.add_json_under(&base, field, value);
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
                p.add_with(&base, &["workflow"], |out| {
                    out.extend_from_slice(&DEFAULT_WORKFLOW);
                    true
                });
            }
        }
    }
    // The templates do not depend on the defaults just filled (which is why defaulting a
    // defaulted object changes nothing), so they come from the filled spec.
    match patch {
        Some(p) => {
            let templates = argo::generated(spec, &settings);
            record_settings(p, spec.workflow_template.as_ref(), &wt, &templates);
        }
        None => {
            let text = argo::templates_json(spec, &settings);
            wt.templates = Some(Templates::from_json(text).unwrap_or_default());
            spec.workflow_template = Some(wt);
        }
    }
}

/// The JSON text of the workflow an application without one gets (the same for all: written
/// once).
static DEFAULT_WORKFLOW: LazyLock<Vec<u8>> = LazyLock::new(|| {
    // Serializing into a vector fails only for maps with non-string keys, none here.
    serde_json::to_vec(&[Executor::default_helmrelease()]).unwrap_or_default()
});

/// About the length of the group-level settings as patch operations.
const SETTINGS_BYTES: usize = 400;

/// Records the group-level settings `current` lacks (all of `filled` when there is none) and
/// the templates when they differ from the current ones.
fn record_settings(
    patch: &mut Patch,
    current: Option<&WorkflowTemplate>,
    filled: &WorkflowTemplate,
    templates: &argo::Generated<'_>,
) {
    // Room for the templates when they are new (stored ones are compared, and mostly kept).
    if current.is_none_or(|c| c.templates.is_none()) {
        patch.reserve(templates.size_hint() + SETTINGS_BYTES);
    }
    let Some(current) = current else {
        // The whole settings, then the templates (`filled` has none of its own).
        patch.add_with("", &["spec", "workflowTemplate"], |out| {
            let written = serde_json::to_writer(&mut *out, filled).is_ok();
            if !written || out.pop() != Some(b'}') {
                return false;
            }
            if out.last() != Some(&b'{') {
                out.push(b',');
            }
            out.extend_from_slice(br#""templates":"#);
            templates.write_json(out);
            out.push(b'}');
            true
        });
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
    patch.add_templates(&field("templates"), templates, current.templates.as_ref());
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
        let sent: Value = serde_json::from_slice(&patch.clone().into_json()).unwrap_or_default();
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
            mutation_patch_json(&first).map(|p| p.into_json()).ok(),
            Some(patch.into_json())
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
