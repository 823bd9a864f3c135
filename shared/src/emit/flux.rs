//! The Flux objects a group is released with: one `HelmRelease` (`helm.toolkit.fluxcd.io/v2`) per
//! chart and subchart, and a `HelmRepository` (`source.toolkit.fluxcd.io/v1`) for its chart URL.

use serde_json::{Map, Value, json};

use crate::api::{Application, Subchart};

use crate::api::defaults::{CHART_VERSION, RELEASE_INTERVAL};
use crate::api::resources::{HELM_RELEASE, HELM_REPOSITORY};
use crate::labels;
use crate::naming;
use crate::naming::DNS1123_LABEL_MAX;

/// apiVersion of the HelmRelease we emit.
pub const HELM_RELEASE_API_VERSION: &str = HELM_RELEASE.api_version;
/// apiVersion of the HelmRepository we emit.
pub const HELM_REPOSITORY_API_VERSION: &str = HELM_REPOSITORY.api_version;

/// The HelmRepository an application's chart comes from, in the application's namespace (so the
/// HelmRelease needs no cross-namespace reference).
pub fn helm_repository(group: &str, app: &Application) -> Value {
    let chart = app.spec.chart.clone().unwrap_or_default();
    let mut spec = Map::new();
    spec.insert("url".into(), json!(chart.url));
    spec.insert("interval".into(), json!("10m"));
    if chart.url.starts_with("oci://") {
        spec.insert("type".into(), json!("oci"));
    }
    if let Some(name) = chart.auth_secret_ref.as_ref().and_then(|r| r.name.clone()) {
        spec.insert("secretRef".into(), json!({ "name": name }));
    }
    json!({
        "apiVersion": HELM_REPOSITORY_API_VERSION,
        "kind": "HelmRepository",
        "metadata": {
            "name": naming::repository_name(&chart.url),
            "namespace": naming::target_namespace(app),
            "labels": { labels::OWNER: labels::owner_label(group), labels::HERITAGE: labels::HERITAGE_VALUE },
        },
        "spec": spec,
    })
}

/// The HelmRelease of an application's own chart (`subchart: None`) or of one of its subcharts.
///
/// Values follow the original Orkestra: a subchart gets `values[<subchart>]` plus `global`; the
/// parent gets `<subchart>.enabled: false` for each subchart released on its own.
pub fn helm_release(group: &str, app: &Application, subchart: Option<&Subchart>) -> Value {
    let chart = app.spec.chart.clone().unwrap_or_default();
    let release = app.spec.release.clone().unwrap_or_default();
    let namespace = naming::target_namespace(app);
    let values = release.values.clone().unwrap_or_else(|| json!({}));
    let (name, chart_name, version, values) = match subchart {
        None => {
            let mut values = values;
            if let Some(map) = values.as_object_mut() {
                for sub in &app.spec.subcharts {
                    let entry = map.entry(sub.name.clone()).or_insert_with(|| json!({}));
                    if let Some(m) = entry.as_object_mut() {
                        m.insert("enabled".into(), json!(false));
                    } else {
                        *entry = json!({ "enabled": false });
                    }
                }
            }
            (
                naming::release_name(&app.name),
                chart.name.clone(),
                chart.version.clone(),
                values,
            )
        }
        Some(sub) => {
            let mut own = values.get(&sub.name).cloned().unwrap_or_else(|| json!({}));
            if let (Some(global), Some(m)) = (values.get("global"), own.as_object_mut()) {
                m.entry("global").or_insert_with(|| global.clone());
            }
            (
                naming::subchart_release_name(&app.name, &sub.name),
                sub.name.clone(),
                sub.version.clone().or_else(|| chart.version.clone()),
                own,
            )
        }
    };
    let mut metadata_labels = json!({
        labels::OWNER: labels::owner_label(group),
        labels::HERITAGE: labels::HERITAGE_VALUE,
        labels::APPLICATION: naming::to_dns1123(&app.name, DNS1123_LABEL_MAX).unwrap_or_default(),
        labels::CHART: naming::to_dns1123(&chart_name, DNS1123_LABEL_MAX).unwrap_or_default(),
    });
    let mut annotations = Map::new();
    if subchart.is_some() {
        annotations.insert(labels::PARENT_CHART.into(), json!(app.name));
        metadata_labels[labels::PARENT_CHART] =
            json!(naming::to_dns1123(&app.name, DNS1123_LABEL_MAX).unwrap_or_default());
    }
    let mut chart_spec = Map::new();
    chart_spec.insert("chart".into(), json!(chart_name));
    chart_spec.insert(
        "version".into(),
        json!(version.unwrap_or_else(|| CHART_VERSION.into())),
    );
    chart_spec.insert(
        "sourceRef".into(),
        json!({ "kind": "HelmRepository", "name": naming::repository_name(&chart.url), "namespace": namespace }),
    );
    let mut spec = Map::new();
    spec.insert("releaseName".into(), json!(name));
    spec.insert(
        "interval".into(),
        json!(release.interval.unwrap_or_else(|| RELEASE_INTERVAL.into())),
    );
    if let Some(timeout) = release.timeout {
        spec.insert("timeout".into(), json!(timeout));
    }
    spec.insert("chart".into(), json!({ "spec": chart_spec }));
    for (key, block) in [
        ("install", release.install),
        ("upgrade", release.upgrade),
        ("rollback", release.rollback),
        ("uninstall", release.uninstall),
    ] {
        if let Some(block) = block {
            spec.insert(key.into(), block);
        }
    }
    if values.as_object().is_some_and(|m| !m.is_empty()) {
        spec.insert("values".into(), values);
    }
    let mut metadata = json!({ "name": name, "namespace": namespace, "labels": metadata_labels });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({
        "apiVersion": HELM_RELEASE_API_VERSION,
        "kind": "HelmRelease",
        "metadata": metadata,
        "spec": spec,
    })
}

/// What one executor step applies: the chart's HelmRepository and its HelmRelease, as a `List`.
pub fn release_manifest(group: &str, app: &Application, subchart: Option<&Subchart>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [helm_repository(group, app), helm_release(group, app, subchart)],
    })
}

/// What a removal step needs of a chart's manifest: the HelmRepository and the HelmRelease by
/// name and namespace (and the HelmRelease's source), nothing of the values, so it is small and
/// holds nothing Argo's `{{...}}` substitution could rewrite.
pub fn identity_manifest(group: &str, app: &Application, subchart: Option<&Subchart>) -> Value {
    let full = release_manifest(group, app, subchart);
    let keep = |item: &Value, spec: Value| {
        json!({
            "apiVersion": item["apiVersion"],
            "kind": item["kind"],
            "metadata": { "name": item["metadata"]["name"], "namespace": item["metadata"]["namespace"] },
            "spec": spec,
        })
    };
    let repo = &full["items"][0];
    let release = &full["items"][1];
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            keep(repo, json!({})),
            keep(release, json!({ "chart": { "spec": { "sourceRef": release.pointer("/spec/chart/spec/sourceRef") } } })),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ChartRef, Release};

    fn bookinfo() -> Application {
        Application {
            name: "bookinfo".into(),
            dependencies: vec![],
            spec: crate::api::ApplicationSpec {
                chart: Some(ChartRef {
                    url: "https://nitishm.github.io/charts".into(),
                    name: "bookinfo".into(),
                    version: Some("v1".into()),
                    auth_secret_ref: None,
                }),
                release: Some(Release {
                    target_namespace: Some("bookinfo".into()),
                    values: Some(json!({"productpage": {"replicaCount": 1}, "global": {"x": 1}})),
                    ..Release::default()
                }),
                subcharts: vec![Subchart {
                    name: "productpage".into(),
                    ..Subchart::default()
                }],
                workflow: vec![],
                gate: None,
            },
        }
    }

    #[test]
    fn parent_disables_decomposed_subcharts() {
        let hr = helm_release("g", &bookinfo(), None);
        assert_eq!(hr["metadata"]["name"], "bookinfo");
        assert_eq!(
            hr["spec"]["values"]["productpage"],
            json!({"replicaCount": 1, "enabled": false})
        );
        assert_eq!(
            hr["spec"]["chart"]["spec"]["sourceRef"]["name"],
            "nitishm-github-io-charts"
        );
    }

    #[test]
    fn subchart_gets_its_values_and_globals() {
        let app = bookinfo();
        let hr = helm_release("g", &app, Some(&app.spec.subcharts[0]));
        assert_eq!(hr["metadata"]["name"], "bookinfo-productpage");
        assert_eq!(hr["spec"]["chart"]["spec"]["chart"], "productpage");
        assert_eq!(
            hr["spec"]["values"],
            json!({"replicaCount": 1, "global": {"x": 1}})
        );
        assert_eq!(
            hr["metadata"]["annotations"][labels::PARENT_CHART],
            "bookinfo"
        );
    }
}
