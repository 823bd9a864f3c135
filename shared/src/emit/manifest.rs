//! The manifest of one release step (HelmRepository + HelmRelease, as a `List`), built from the
//! group's recorded revision: what the executor fetches instead of reading it from its command line.

use serde_json::{Value, json};

use crate::api::{ApplicationGroupSpec, KIND};
use crate::emit::{argo, flux};
use crate::input::parse::parse_spec;

/// Why a revision cannot give a step its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepManifestError {
    /// `data.spec` is missing or does not fit the API types.
    #[error("the ControllerRevision holds no readable group spec")]
    NoSpec,
    /// No ownerReference to an ApplicationGroup.
    #[error("the ControllerRevision names no owning ApplicationGroup")]
    NoOwner,
    /// No application or subchart of the spec has that chart key.
    #[error("no chart {0:?} in the revision's spec")]
    NoChart(String),
}

/// The manifest (HelmRepository + HelmRelease, as a `List`) of the release step of `chart` (an
/// [`argo::chart_parameter`] key), built from the group's revision exactly as [`argo`] built the
/// Workflow: what the executor fetches instead of reading it from its command line, so no size
/// limit of arguments and no Argo `{{...}}` substitution ever touches the values.
pub fn step_manifest(cr: &Value, chart: &str) -> Result<Value, StepManifestError> {
    let spec: ApplicationGroupSpec = cr
        .pointer("/data/spec")
        .and_then(|s| parse_spec(&json!({ "spec": s })).ok())
        .ok_or(StepManifestError::NoSpec)?;
    let group = cr
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("kind").and_then(Value::as_str) == Some(KIND))
        .and_then(|r| r.get("name").and_then(Value::as_str))
        .ok_or(StepManifestError::NoOwner)?;
    for app in &spec.applications {
        for sub in app.spec.subcharts.iter().map(Some).chain([None]) {
            if argo::chart_parameter(app, sub) == chart {
                return Ok(flux::release_manifest(group, app, sub));
            }
        }
    }
    Err(StepManifestError::NoChart(chart.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::revision::{NewRevision, Owner, ReleaseType, controller_revision};
    use crate::labels::OWNER;

    fn owner() -> Owner {
        Owner {
            name: "shop".into(),
            uid: "u-1".into(),
            generation: Some(4),
        }
    }

    fn rev(number: i64) -> NewRevision<'static> {
        NewRevision {
            number,
            namespace: "orkestra",
            release_type: ReleaseType::Forward,
            promoted_by: None,
            rollback_of: None,
        }
    }

    #[test]
    fn a_step_reads_its_manifest_from_the_revision() {
        let spec = json!({"applications": [{"name": "3scale", "spec": {
            "chart": {"url": "https://c.example.com", "name": "gw", "version": "1.0.0"},
            "release": {"targetNamespace": "apis", "values": {"note": "{{workflow.name}}"}},
            "subcharts": [{"name": "db"}]}}]});
        let cr = controller_revision(&owner(), &spec, &rev(2));
        let m = step_manifest(&cr, "N3scale--db").unwrap_or_default();
        assert_eq!(m["items"][1]["metadata"]["name"], "3scale-db");
        let m = step_manifest(&cr, "N3scale").unwrap_or_default();
        assert_eq!(m["items"][1]["spec"]["values"]["note"], "{{workflow.name}}");
        assert_eq!(m["items"][1]["metadata"]["labels"][OWNER], "shop");
        assert_eq!(
            step_manifest(&cr, "web"),
            Err(StepManifestError::NoChart("web".into()))
        );
    }
}
