//! Reading a group out of JSON into the typed API, and the typed executor parameters.

use serde::Deserialize;
use serde_json::Value;

use crate::api::limits;
use crate::api::{ApplicationGroupSpec, Executor};

/// A spec that does not fit the API types, with the field it broke at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// Field path in the object, e.g. `spec.applications[0].spec.chart.url`.
    pub path: String,
    /// What serde could not accept there.
    pub message: String,
}

/// Reads JSON bytes into `T`, checking UTF-8 once for the whole text rather than string by
/// string as [`serde_json::from_slice`] does (about a fifth of a typed read of a group). Text that
/// is not UTF-8 is read by `from_slice` after all, for its error and position.
pub fn from_json_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Reads `spec` of an ApplicationGroup object into the typed API; a spec beyond the [`limits`]
/// is refused.
pub fn parse_spec(object: &Value) -> Result<ApplicationGroupSpec, SpecError> {
    within_limits(read_spec(object)?)
}

/// `spec`, or the first of the [`limits`] it exceeds.
pub fn within_limits(spec: ApplicationGroupSpec) -> Result<ApplicationGroupSpec, SpecError> {
    match limits::check(&spec).into_iter().next() {
        Some(e) => Err(SpecError {
            path: e.path,
            message: e.message,
        }),
        None => Ok(spec),
    }
}

/// Reads `spec` of an ApplicationGroup object into the typed API, limits unchecked (the caller
/// checks them and reports every one).
pub fn read_spec(object: &Value) -> Result<ApplicationGroupSpec, SpecError> {
    let Some(spec) = object.get("spec") else {
        return Err(no_spec());
    };
    ApplicationGroupSpec::deserialize(spec).map_err(|_| {
        // serde_json's own error has no path; run again with path tracking (errors are rare).
        match serde_path_to_error::deserialize::<_, ApplicationGroupSpec>(spec) {
            Err(e) => SpecError {
                path: json_path("spec", &e.path().to_string()),
                message: e.inner().to_string(),
            },
            Ok(_) => SpecError {
                path: "spec".into(),
                message: "the spec could not be read".into(),
            },
        }
    })
}

/// The error of an object without `spec`.
pub(crate) fn no_spec() -> SpecError {
    SpecError {
        path: "spec".into(),
        message: "the group has no spec".into(),
    }
}

/// Turns serde_path_to_error's `applications[0].spec` into `spec.applications[0].spec`.
fn json_path(root: &str, inner: &str) -> String {
    match inner {
        "" | "." => root.to_string(),
        p if p.starts_with('[') => format!("{root}{p}"),
        p => format!("{root}.{p}"),
    }
}

/// The ConfigMap a keptn executor reads: `params.configMapRef` (or the `configmapRef` spelling of
/// the original examples) with a name and a namespace.
pub fn keptn_config_map(executor: &Executor) -> Option<(String, String)> {
    let params = executor.params.as_ref()?.as_object()?;
    let r = params
        .get("configMapRef")
        .or_else(|| params.get("configmapRef"))?;
    let get = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some((get("name")?, get("namespace")?))
}

/// The command of a custom executor's container, `image.command`, when it is a non-empty list of
/// strings. The executor's arguments (`--spec ...`) follow it, so the image's entrypoint need not
/// be looked up in its registry.
pub fn custom_command(executor: &Executor) -> Option<Vec<String>> {
    executor
        .image
        .as_ref()?
        .get("command")?
        .as_array()
        .filter(|a| !a.is_empty())?
        .iter()
        .map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// True when a custom executor sets `image.command` to something [`custom_command`] cannot use.
pub fn custom_command_unusable(executor: &Executor) -> bool {
    let set = executor
        .image
        .as_ref()
        .is_some_and(|i| i.get("command").is_some());
    set && custom_command(executor).is_none()
}

/// The container image of a custom executor: `image.image`.
pub fn custom_image(executor: &Executor) -> Option<String> {
    executor
        .image
        .as_ref()?
        .get("image")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_bytes_read_as_text_and_bad_utf8_is_placed() {
        let v: Value = from_json_bytes(b"{\"name\": \"caf\\u00e9\", \"x\": \"\xc3\xa9\"}")
            .expect("UTF-8 JSON");
        assert_eq!(v, json!({"name": "café", "x": "é"}));
        // A stray byte in the second line's string: the error says where, as from_slice does.
        let e = from_json_bytes::<Value>(b"{\n \"a\": \"\xff\"}")
            .expect_err("not UTF-8")
            .to_string();
        assert_eq!(e, "invalid unicode code point at line 2 column 8");
    }

    #[test]
    fn type_errors_name_the_field() {
        let obj = json!({"spec": {"applications": [{"name": "a", "spec": {"chart": {"url": 5}}}]}});
        let e = parse_spec(&obj).err().unwrap_or_else(|| SpecError {
            path: String::new(),
            message: String::new(),
        });
        assert_eq!(e.path, "spec.applications[0].spec.chart.url");
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }
}
