//! The CustomResourceDefinition of ApplicationGroup, generated from the [`crate::api`] types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray,
};

use serde_json::Value;

use crate::api::ApplicationGroup;

/// The CustomResourceDefinition of ApplicationGroup.
///
/// `#[serde(default)]` lets our own parsing report every missing field in words instead of
/// stopping at the first, but schemars then marks those fields optional and gives them schema
/// defaults (`""`, `[]`, `{}`) that the API server would write into objects. Both are put back
/// here as the original API had them: its required fields, and only its own defaults
/// (`version: '*'`, `interval: 5m`).
pub fn crd() -> CustomResourceDefinition {
    use kube::CustomResourceExt;
    const REQUIRED: &[(&[&str], &[&str])] = &[
        (&["spec"], &["applications"]),
        (&["spec", "applications", "[]"], &["name", "spec"]),
        (
            &["spec", "applications", "[]", "spec"],
            &["chart", "release"],
        ),
        (
            &["spec", "applications", "[]", "spec", "chart"],
            &["url", "name"],
        ),
        (
            &["spec", "applications", "[]", "spec", "subcharts", "[]"],
            &["name"],
        ),
        (
            &["spec", "applications", "[]", "spec", "workflow", "[]"],
            &["name"],
        ),
    ];
    let mut crd = ApplicationGroup::crd();
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        strip_empty_defaults(root);
        for (path, fields) in REQUIRED {
            if let Some(schema) = descend(root, path) {
                schema.required = Some(fields.iter().map(|f| f.to_string()).collect());
            }
        }
    }
    crd
}

fn descend<'a>(
    mut schema: &'a mut JSONSchemaProps,
    path: &[&str],
) -> Option<&'a mut JSONSchemaProps> {
    for step in path {
        schema = if *step == "[]" {
            match schema.items.as_mut()? {
                JSONSchemaPropsOrArray::Schema(items) => items,
                JSONSchemaPropsOrArray::Schemas(_) => return None,
            }
        } else {
            schema.properties.as_mut()?.get_mut(*step)?
        };
    }
    Some(schema)
}

fn strip_empty_defaults(schema: &mut JSONSchemaProps) {
    let empty = |d: &JSON| match &d.0 {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if schema.default.as_ref().is_some_and(empty) {
        schema.default = None;
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_empty_defaults(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        strip_empty_defaults(items);
    }
}

/// The CRD as YAML, exactly as checked in under `manifests/crd/`.
pub fn crd_yaml() -> String {
    let crd = crd();
    let yaml = serde_saphyr::to_string(&crd).unwrap_or_default();
    format!("# Generated from the Rust types by `kubectl-orkestra crd`; do not edit.\n{yaml}")
}

#[cfg(test)]
mod crd_file {
    /// The checked-in CRD must be what the types generate: regenerate with
    /// `cargo run -p kubectl-orkestra -- crd > manifests/crd/applicationgroups.yaml`.
    #[test]
    fn checked_in_crd_matches_the_types() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../manifests/crd/applicationgroups.yaml"
        );
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == super::crd_yaml(),
            "{path} is out of date; run: cargo run -p kubectl-orkestra -- crd > manifests/crd/applicationgroups.yaml"
        );
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_is_cluster_scoped_with_short_names() {
        let crd = crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(
            crd.spec.names.short_names,
            Some(vec!["ag".to_string(), "appgroup".to_string()])
        );
        assert_eq!(crd.spec.names.plural, "applicationgroups");
        assert!(crd.spec.versions[0].subresources.is_some());
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap_or_default();
        let chart = schema.pointer(
            "/openAPIV3Schema/properties/spec/properties/applications/items/properties/spec/properties/chart",
        );
        assert_eq!(
            chart.and_then(|c| c.get("required")),
            Some(&serde_json::json!(["url", "name"]))
        );
        // No empty-string schema defaults (the API server would write them into objects).
        let text = serde_json::to_string(&schema).expect("the schema serializes");
        assert!(text.contains(r#""openAPIV3Schema""#), "{text}");
        assert!(!text.contains(r#""default":"""#));
    }
}
