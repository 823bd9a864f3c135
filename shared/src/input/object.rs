//! An ApplicationGroup object read once: what admission needs of it (kind, name, the typed spec,
//! its size, the fields the schema does not know), from the JSON text the API server sent or
//! from a value a file was parsed into.
//!
//! The webhook's path is the text: one typed pass reads the kind, the name and the spec, skipping
//! everything else (metadata's managed fields, the status) without building it, and the
//! generated templates are kept as text ([`crate::api::Templates`]). The pass notes whether the
//! spec has fields its types do not define; only a spec that has is read a second time, to name
//! them with their paths (see [`typed_read`]). No `serde_json::Value` of
//! the object is built, unless the spec does not fit the types: then the text is read again as
//! a value to name the field at fault (errors are rare, and that path is the value path).

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::api::ApplicationGroupSpec;
use crate::input::parse::{self, SpecError};
use crate::input::schema;
use crate::input::skipped::Flagged;

/// Where an object is read from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Its JSON text, as the API server sends it in an AdmissionReview (compact).
    Json(&'a [u8]),
    /// A value, as read from a YAML or JSON file.
    Value(&'a Value),
}

/// What admission reads of an ApplicationGroup object.
#[derive(Debug, Clone)]
pub struct GroupObject {
    /// `kind`, when it is a string.
    pub kind: Option<String>,
    /// `metadata.name`; empty when missing.
    pub name: String,
    /// `metadata.generateName`, when it is a string.
    pub generate_name: Option<String>,
    /// The typed spec, limits unchecked (see [`crate::api::limits`]).
    pub spec: Result<ApplicationGroupSpec, SpecError>,
    /// Length of the object as compact JSON.
    pub bytes: usize,
    /// What the CRD's schema refuses (see [`schema`]): the fields of `spec` and `status` it does
    /// not define and the spec's numbers below its minimums, as (path, message).
    pub schema_findings: Vec<(String, String)>,
}

/// The object is not JSON at all.
#[derive(Debug, thiserror::Error)]
#[error("the object is not JSON: {0}")]
pub struct NotJson(#[from] serde_json::Error);

impl Source<'_> {
    /// Reads the object.
    pub fn read(self) -> Result<GroupObject, NotJson> {
        match self {
            Source::Json(text) => read_text(text),
            Source::Value(value) => Ok(read_value(value, json_size(value))),
        }
    }
}

impl Source<'_> {
    /// Reads only the typed spec (limits unchecked), as defaulting needs it: the spec of
    /// [`Source::read`], without looking for what the schema refuses.
    pub fn read_spec(self) -> Result<Result<ApplicationGroupSpec, SpecError>, NotJson> {
        /// The one field read; every other one is skipped unbuilt.
        #[derive(Deserialize)]
        struct SpecOnly {
            spec: Option<ApplicationGroupSpec>,
        }
        Ok(match self {
            Source::Json(text) => match parse::from_json_bytes::<SpecOnly>(text) {
                Ok(object) => object.spec.ok_or_else(parse::no_spec),
                // Something does not fit the types: the value path says what and where.
                Err(_) => parse::read_spec(&serde_json::from_slice::<Value>(text)?),
            },
            Source::Value(value) => parse::read_spec(value),
        })
    }
}

/// The fields of an object the typed pass reads; every other one is skipped unbuilt.
#[derive(Deserialize)]
struct Typed<'a> {
    kind: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    spec: Option<Flagged<ApplicationGroupSpec>>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Option<String>,
    generate_name: Option<String>,
}

fn read_text(text: &[u8]) -> Result<GroupObject, NotJson> {
    // UTF-8 checked once here rather than string by string (see `parse::from_json_bytes`).
    let typed = std::str::from_utf8(text)
        .ok()
        .and_then(|text| typed_read(text).ok());
    let Some((typed, mut findings)) = typed else {
        // Something does not fit the types: the value path says what and where.
        let value: Value = serde_json::from_slice(text)?;
        return Ok(read_value(&value, text.len()));
    };
    let spec = typed.spec.map(|spec| spec.value);
    let mut report = |path, message| findings.push((path, message));
    if let Some(spec) = &spec {
        schema::below_minimum(spec, &mut report);
    }
    if let Some(status) = typed.status {
        // The text was just read as JSON, so the walk cannot fail.
        let _ = schema::walk(
            "status",
            &mut serde_json::Deserializer::from_str(status.get()),
            &mut report,
        );
    }
    Ok(GroupObject {
        kind: typed.kind,
        name: typed.metadata.name.unwrap_or_default(),
        generate_name: typed.metadata.generate_name,
        spec: spec.ok_or_else(parse::no_spec),
        bytes: text.len(),
        schema_findings: findings,
    })
}

/// The typed pass, and the spec's fields its types do not know. The usual spec has none: it is
/// read once, only noting whether anything was skipped ([`Flagged`]). When something was, the
/// text is read again with the path of every skipped field (`serde_ignored`, which allocates
/// each key it passes) to name them.
fn typed_read(text: &str) -> serde_json::Result<(Typed<'_>, Vec<(String, String)>)> {
    let typed: Typed<'_> = serde_json::from_str(text)?;
    if !typed.spec.as_ref().is_some_and(|spec| spec.skipped) {
        return Ok((typed, Vec::new()));
    }
    let mut findings = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let typed = serde_ignored::deserialize(&mut de, |path| {
        findings.extend(schema::unknown_in_spec(&path));
    })?;
    de.end()?;
    Ok((typed, findings))
}

/// Whether the first, unnamed read of `text` finds that the spec has fields its types do not
/// define (`None`: the text does not fit the types).
#[cfg(test)]
pub(crate) fn spec_skips_fields(text: &str) -> Option<bool> {
    let typed: Typed<'_> = serde_json::from_str(text).ok()?;
    Some(typed.spec.is_some_and(|spec| spec.skipped))
}

fn read_value(value: &Value, bytes: usize) -> GroupObject {
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let spec = parse::read_spec(value);
    let mut findings = Vec::new();
    let mut report = |path, message| findings.push((path, message));
    if let Some(v) = value.get("spec") {
        let _ = schema::walk("spec", v, &mut report);
    }
    if let Ok(spec) = &spec {
        schema::below_minimum(spec, &mut report);
    }
    if let Some(v) = value.get("status") {
        let _ = schema::walk("status", v, &mut report);
    }
    GroupObject {
        kind: text("/kind").map(str::to_string),
        name: text("/metadata/name").unwrap_or_default().to_string(),
        generate_name: text("/metadata/generateName").map(str::to_string),
        spec,
        bytes,
        schema_findings: findings,
    }
}

/// Length of `value` as compact JSON, counted without building the text.
pub fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group() -> Value {
        json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
               "metadata": {"name": "shop", "managedFields": [{"manager": "kubectl"}]},
               "spec": {"applications": [{"name": "db", "spec": {"chart": {"url": "u", "name": "c"}}}]},
               "status": {"phase": "Running"}})
    }

    fn read_both(object: &Value) -> (GroupObject, String) {
        let text = serde_json::to_string(object).unwrap_or_default();
        let by_value = Source::Value(object).read().expect("a value is JSON");
        (by_value, text)
    }

    #[test]
    fn text_and_value_read_the_same() {
        for object in [
            group(),
            json!({"kind": 5, "metadata": {"generateName": "g-"}, "spec": {"applications": [{"name": 1}]}}),
            json!({"kind": "ApplicationGroup"}),
            // What the schema refuses, in the spec and in the status.
            json!({"kind": "ApplicationGroup", "metadata": {"name": "g", "labels": {"x": "y"}},
                   "spec": {"applications": [{"name": "a", "dependecies": ["b"],
                       "spec": {"chart": {"url": "u", "name": "c", "verison": "1"}, "release": {"values": {"free": 1}}}}],
                       "workflowTemplate": {"parallelism": 0, "templates": [{"anything": true}]}},
                   "status": {"phase": "Running", "phaze": "x"}}),
        ] {
            let (by_value, text) = read_both(&object);
            let by_text = Source::Json(text.as_bytes()).read().expect("JSON");
            assert_eq!(by_text.kind, by_value.kind);
            assert_eq!(by_text.name, by_value.name);
            assert_eq!(by_text.generate_name, by_value.generate_name);
            assert_eq!(by_text.spec, by_value.spec);
            assert_eq!(by_text.bytes, text.len());
            assert_eq!(by_value.bytes, text.len());
            assert_eq!(by_text.schema_findings, by_value.schema_findings, "{text}");
        }
    }

    #[test]
    fn the_text_path_finds_what_the_schema_refuses() {
        let object = json!({"kind": "ApplicationGroup", "metadata": {"name": "g"},
            "spec": {"applications": [{"name": "a", "dependecies": [],
                "spec": {"chart": {"url": "u", "name": "c"}}}],
                "workflowTemplate": {"parallelism": 0}},
            "status": {"phaze": "x"}});
        let text = serde_json::to_vec(&object).unwrap_or_default();
        let read = Source::Json(&text).read().expect("JSON");
        let found: Vec<String> = (read.schema_findings.iter())
            .map(|(p, m)| format!("{p}: {m}"))
            .collect();
        assert_eq!(
            found,
            vec![
                "spec.applications[0].dependecies: unknown field \"dependecies\" (did you mean \"dependencies\"?)",
                "spec.workflowTemplate.parallelism: must be at least 1 (got 0)",
                "status.phaze: unknown field \"phaze\"",
            ]
        );
    }

    #[test]
    fn a_spec_that_does_not_fit_names_the_field_from_text_too() {
        let text = br#"{"kind":"ApplicationGroup","spec":{"applications":[{"name":"a","spec":{"chart":{"url":5}}}]}}"#;
        let read = Source::Json(text).read().expect("JSON");
        let e = read.spec.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.starts_with("spec.applications[0].spec.chart.url: invalid type: integer `5`"),
            "{e}"
        );
        let missing = Source::Json(br#"{"kind":"ApplicationGroup"}"#)
            .read()
            .expect("JSON");
        assert_eq!(
            missing
                .spec
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            "spec: the group has no spec"
        );
        assert!(Source::Json(b"{not json").read().is_err());
    }
}
