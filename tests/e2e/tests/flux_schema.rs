//! Every HelmRepository and HelmRelease the executor steps apply is accepted by the real Flux CRD
//! schemas (helm-controller v1.4.0, source-controller v1.7.0, installed by `cluster.sh up`) with
//! strict field validation: no unknown field, every duration and name matching Flux's own
//! patterns. Server-side dry-run applies, so nothing is stored and no Flux controller is needed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use orkestra::admission::validate;
use orkestra::emit::flux;
use orkestra::input::load;
use orkestra::input::parse;
use orkestra_e2e::{helmrelease_resource, helmrepository_resource};
use serde_json::{Value, json};

fn groups() -> Result<Vec<(String, Value)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in ["examples", "tests/fixtures/argo", "tests/fixtures/warnings"] {
        let mut files: Vec<PathBuf> = fs::read_dir(root.join(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let text = fs::read_to_string(&path)?;
            for doc in load::documents(&text).with_context(|| path.display().to_string())? {
                let checked = validate::check(&doc.value);
                let name = format!("{}#{}", path.display(), doc.index);
                ensure!(
                    checked.report.is_valid(),
                    "{name}: {:?}",
                    checked.report.errors
                );
                out.push((name.clone(), checked.mutated.context(name)?));
            }
        }
    }
    Ok(out)
}

/// Server-side applies `object` in `namespace` as a dry run with strict field validation.
async fn dry_run(client: &Client, resource: &ApiResource, ns: &str, object: &Value) -> Result<()> {
    let name = object["metadata"]["name"]
        .as_str()
        .context("no metadata.name")?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    let params = PatchParams::apply("orkestra-flux-schema-test")
        .dry_run()
        .validation_strict();
    api.patch(name, &params, &Patch::Apply(object))
        .await
        .with_context(|| format!("{} {ns}/{name}", resource.kind))?;
    Ok(())
}

/// One step's manifest, moved into the test's namespace (its HelmRelease's source with it).
fn items_in(manifest: &Value, ns: &str) -> Result<Vec<Value>> {
    let mut items = manifest["items"]
        .as_array()
        .context("the manifest is not a List")?
        .clone();
    for item in &mut items {
        item["metadata"]["namespace"] = json!(ns);
        if let Some(source) = item.pointer_mut("/spec/chart/spec/sourceRef") {
            source["namespace"] = json!(ns);
        }
    }
    Ok(items)
}

async fn apply_items(client: &Client, ns: &str, items: &[Value]) -> Result<()> {
    for item in items {
        let resource = match item["kind"].as_str() {
            Some("HelmRelease") => helmrelease_resource(),
            Some("HelmRepository") => helmrepository_resource(),
            other => bail!("unexpected kind {other:?} in a step's manifest"),
        };
        dry_run(client, &resource, ns, item).await?;
    }
    Ok(())
}

#[tokio::test]
async fn every_emitted_flux_object_passes_the_real_crds_strictly() -> Result<()> {
    let cluster = orkestra_e2e::cluster_or_skip!();
    let mut scope = cluster.scope("flux-schema");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let mut checked = 0;
    for (name, object) in groups()? {
        let spec = parse::parse_spec(&object).with_context(|| name.clone())?;
        for app in &spec.applications {
            let mut steps = vec![flux::release_manifest(&name, app, None)];
            steps.extend(
                app.spec
                    .subcharts
                    .iter()
                    .map(|s| flux::release_manifest(&name, app, Some(s))),
            );
            for manifest in steps {
                apply_items(&client, &ns, &items_in(&manifest, &ns)?)
                    .await
                    .with_context(|| format!("{name}: application {}", app.name))?;
                checked += 1;
            }
        }
    }
    println!("{checked} step manifests accepted by the real Flux CRDs (strict)");
    ensure!(checked > 20, "only {checked} manifests were checked");
    Ok(())
}

#[tokio::test]
async fn strict_validation_refuses_what_flux_would() -> Result<()> {
    let cluster = orkestra_e2e::cluster_or_skip!();
    let mut scope = cluster.scope("flux-schema-bad");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let (name, object) = groups()?.into_iter().next().context("no group")?;
    let spec = parse::parse_spec(&object)?;
    let app = spec.applications.first().context("no application")?;
    let items = items_in(&flux::release_manifest(&name, app, None), &ns)?;
    let release = items
        .iter()
        .find(|i| i["kind"] == "HelmRelease")
        .context("no HelmRelease")?;
    for (what, edit) in [
        ("an unknown field", json!({"spec": {"installs": {}}})),
        (
            "a duration Flux's pattern refuses",
            json!({"spec": {"interval": ".5h"}}),
        ),
    ] {
        let mut bad = release.clone();
        json_patch::merge(&mut bad, &edit);
        let result = dry_run(&client, &helmrelease_resource(), &ns, &bad).await;
        ensure!(result.is_err(), "{what} was accepted: {bad}");
    }
    Ok(())
}
