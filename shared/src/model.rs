//! Reading a group out of JSON, and the facts about it that several modules need: the
//! Kubernetes names each application is released under, and typed executor parameters.

use serde::Deserialize;
use serde_json::Value;

use crate::api::{Application, ApplicationGroupSpec, Executor};
use crate::limits;
use crate::names::{self, DNS1123_LABEL_MAX, HELM_RELEASE_NAME_MAX};

/// A spec that does not fit the API types, with the field it broke at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// Field path in the object, e.g. `spec.applications[0].spec.chart.url`.
    pub path: String,
    /// What serde could not accept there.
    pub message: String,
}

/// Reads `spec` of an ApplicationGroup object into the typed API; an object beyond the
/// [`limits`] is refused before it is read.
pub fn parse_spec(object: &Value) -> Result<ApplicationGroupSpec, SpecError> {
    let Some(spec) = object.get("spec") else {
        return Err(SpecError {
            path: "spec".into(),
            message: "the group has no spec".into(),
        });
    };
    if let Some(e) = limits::check(object).into_iter().next() {
        return Err(SpecError {
            path: e.path,
            message: e.message,
        });
    }
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

/// Turns serde_path_to_error's `applications[0].spec` into `spec.applications[0].spec`.
fn json_path(root: &str, inner: &str) -> String {
    match inner {
        "" | "." => root.to_string(),
        p if p.starts_with('[') => format!("{root}{p}"),
        p => format!("{root}.{p}"),
    }
}

/// One Helm release the group makes: an application's chart or one of its subcharts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseName {
    /// The application.
    pub application: String,
    /// The subchart, when this is a subchart's release.
    pub subchart: Option<String>,
    /// HelmRelease `metadata.name` and Helm release name.
    pub name: String,
    /// Namespace of the HelmRelease and of the release.
    pub namespace: String,
}

impl ReleaseName {
    /// `application "x"` or `subchart "y" of application "x"`.
    pub fn describe(&self) -> String {
        match &self.subchart {
            None => format!("application {:?}", self.application),
            Some(s) => format!("subchart {s:?} of application {:?}", self.application),
        }
    }
}

/// Name of the HelmRelease of an application's own chart: the application's name, readable,
/// shortened with a hash suffix only when Helm's 53-character limit requires it.
pub fn release_name(app: &str) -> String {
    names::to_dns1123(app, HELM_RELEASE_NAME_MAX)
        .unwrap_or_else(|| format!("app-{}", names::short_hash(app)))
}

/// Name of the HelmRelease of a subchart: `<application>-<subchart>`.
pub fn subchart_release_name(app: &str, subchart: &str) -> String {
    release_name(&format!("{app}-{subchart}"))
}

/// Namespace an application is released into: `release.targetNamespace`, else its own name.
pub fn target_namespace(app: &Application) -> String {
    app.spec
        .release
        .as_ref()
        .and_then(|r| r.target_namespace.clone())
        .unwrap_or_else(|| default_namespace(&app.name))
}

/// The namespace an application gets when it names none.
pub fn default_namespace(app: &str) -> String {
    names::to_dns1123(app, DNS1123_LABEL_MAX)
        .unwrap_or_else(|| format!("app-{}", names::short_hash(app)))
}

/// Every release an application makes: its subcharts first, then its own chart.
pub fn releases_of(app: &Application) -> Vec<ReleaseName> {
    let namespace = target_namespace(app);
    let mut out: Vec<ReleaseName> = app
        .spec
        .subcharts
        .iter()
        .map(|s| ReleaseName {
            application: app.name.clone(),
            subchart: Some(s.name.clone()),
            name: subchart_release_name(&app.name, &s.name),
            namespace: namespace.clone(),
        })
        .collect();
    out.push(ReleaseName {
        application: app.name.clone(),
        subchart: None,
        name: release_name(&app.name),
        namespace,
    });
    out
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
    fn type_errors_name_the_field() {
        let obj = json!({"spec": {"applications": [{"name": "a", "spec": {"chart": {"url": 5}}}]}});
        let e = parse_spec(&obj).err().unwrap_or_else(|| SpecError {
            path: String::new(),
            message: String::new(),
        });
        assert_eq!(e.path, "spec.applications[0].spec.chart.url");
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }

    #[test]
    fn release_names_are_readable() {
        assert_eq!(release_name("Product_Page"), "product-page");
        assert_eq!(
            subchart_release_name("bookinfo", "reviews"),
            "bookinfo-reviews"
        );
        assert_eq!(release_name(&"x".repeat(60)).len(), HELM_RELEASE_NAME_MAX);
    }
}
