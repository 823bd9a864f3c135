//! Smoke test of the real-cluster harness: our CRD and the real Argo Workflows and Flux CRDs are
//! installed in a real kube-apiserver, `kubectl apply` works, and the upstream schemas are enforced.

use anyhow::{Context as _, Result, bail, ensure};
use kube::api::{Api, DynamicObject, PostParams};
use orkestra_e2e::{
    api_error, applicationgroup_resource, cluster_or_skip, helmrelease_resource,
    helmrepository_resource, workflow_resource,
};
use serde_json::{Value, json};

/// The original Orkestra `examples/simple/bookinfo.yaml` group, used until `examples/bookinfo.yaml`
/// exists in this repository.
const BOOKINFO_FALLBACK: &str = r#"
apiVersion: orkestra.azure.microsoft.com/v1alpha1
kind: ApplicationGroup
metadata:
  name: bookinfo
spec:
  applications:
    - name: ambassador
      dependencies: []
      spec:
        chart:
          url: "https://www.getambassador.io/helm"
          name: ambassador
          version: 6.6.0
        release:
          upgrade:
            force: true
          targetNamespace: ambassador
          values:
            service:
              type: ClusterIP
    - name: bookinfo
      dependencies: [ambassador]
      spec:
        chart:
          url: "https://nitishm.github.io/charts"
          name: bookinfo
          version: v1
        subcharts:
          - name: productpage
            dependencies: [reviews]
          - name: reviews
            dependencies: [details, ratings]
          - name: ratings
            dependencies: []
          - name: details
            dependencies: []
        release:
          upgrade:
            force: true
          targetNamespace: bookinfo
          values:
            productpage:
              replicaCount: 1
            details:
              replicaCount: 1
            reviews:
              replicaCount: 1
            ratings:
              replicaCount: 1
"#;

fn bookinfo() -> Result<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bookinfo.yaml");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BOOKINFO_FALLBACK.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {path}")),
    };
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {path}"))
}

fn application_names(group: &Value) -> Vec<String> {
    group["spec"]["applications"]
        .as_array()
        .map(|apps| {
            apps.iter()
                .filter_map(|a| a["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn bookinfo_applies_with_kubectl_and_reads_back_with_kube() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("smoke-bookinfo");
    let client = cluster.client().await?;

    // The example as written, under a name of this test (ApplicationGroups are cluster-scoped).
    let mut group = bookinfo()?;
    let name = scope.name("bookinfo");
    group["metadata"]["name"] = Value::String(name.clone());
    scope.label(&mut group)?;
    let applied = cluster
        .kubectl_stdin(["apply", "-f", "-"], &serde_json::to_string(&group)?)
        .await?
        .expect_success()?;
    ensure!(
        applied.stdout.contains(&format!(
            "applicationgroup.orkestra.azure.microsoft.com/{name}"
        )),
        "unexpected kubectl apply output: {applied}"
    );

    let api = Api::<DynamicObject>::all_with(client.clone(), &applicationgroup_resource());
    let stored = api
        .get(&name)
        .await
        .with_context(|| format!("reading back ApplicationGroup {name}"))?;
    let stored = serde_json::to_value(&stored)?;
    let want = application_names(&group);
    ensure!(
        want.len() >= 2,
        "the bookinfo example should have several applications: {want:?}"
    );
    assert_eq!(application_names(&stored), want, "applications as stored");
    assert_eq!(
        stored["spec"]["applications"][1]["dependencies"],
        group["spec"]["applications"][1]["dependencies"],
        "dependencies as stored"
    );

    // The short name from the original CRD works with the real kubectl.
    let listed = cluster
        .kubectl(["get", "ag", "-l", &scope.label_selector(), "-o", "name"])
        .await?
        .expect_success()?;
    assert_eq!(
        listed.stdout.trim(),
        format!("applicationgroup.orkestra.azure.microsoft.com/{name}")
    );

    // The non-admin identity is really subject to RBAC.
    let denied = cluster
        .kubectl_as_user(["get", "applicationgroups"], None)
        .await?
        .expect_failure()?;
    ensure!(
        denied.stderr.contains("forbidden"),
        "expected an RBAC denial: {denied}"
    );

    api.delete(&name, &Default::default())
        .await
        .context("deleting the group")?;
    Ok(())
}

/// Creates `valid` (must succeed), then `invalid` (must be rejected by the CRD's schema with a
/// message naming `field`).
async fn schema_is_enforced(
    api: &Api<DynamicObject>,
    valid: Value,
    invalid: Value,
    field: &str,
) -> Result<()> {
    let valid: DynamicObject = serde_json::from_value(valid)?;
    api.create(&PostParams::default(), &valid)
        .await
        .with_context(|| format!("the real schema rejected a valid {:?}", valid.types))?;

    let invalid: DynamicObject = serde_json::from_value(invalid)?;
    let result = api.create(&PostParams::default(), &invalid).await;
    let Some(status) = api_error(&result) else {
        bail!("an object with a wrongly typed {field} was not rejected by the schema: {result:?}");
    };
    assert_eq!(status.code, 422, "rejection status: {status:?}");
    ensure!(
        status.message.contains(field),
        "the rejection does not name {field}: {}",
        status.message
    );
    Ok(())
}

#[tokio::test]
async fn argo_workflow_schema_is_enforced() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("smoke-argo");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "ns").await?;
    let api = Api::<DynamicObject>::namespaced_with(client, &ns, &workflow_resource());
    let workflow = |name: &str, parallelism: Value| {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": { "name": name, "labels": scope.labels() },
            "spec": {
                "entrypoint": "main",
                "parallelism": parallelism,
                "templates": [{
                    "name": "main",
                    "container": { "image": "busybox:1.36", "command": ["true"] }
                }]
            }
        })
    };
    schema_is_enforced(
        &api,
        workflow(&scope.name("ok"), json!(2)),
        workflow(&scope.name("bad"), json!("two")),
        "spec.parallelism",
    )
    .await
}

#[tokio::test]
async fn flux_helmrelease_schema_is_enforced() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("smoke-flux");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "ns").await?;

    let repos =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &helmrepository_resource());
    let repo: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": { "name": "podinfo", "labels": scope.labels() },
        "spec": { "url": "https://stefanprodan.github.io/podinfo", "interval": "10m" }
    }))?;
    repos
        .create(&PostParams::default(), &repo)
        .await
        .context("creating a HelmRepository")?;

    let api = Api::<DynamicObject>::namespaced_with(client, &ns, &helmrelease_resource());
    let release = |name: &str, max_history: Value| {
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": { "name": name, "labels": scope.labels() },
            "spec": {
                "interval": "5m",
                "maxHistory": max_history,
                "chart": { "spec": {
                    "chart": "podinfo",
                    "version": "6.x",
                    "sourceRef": { "kind": "HelmRepository", "name": "podinfo" }
                } }
            }
        })
    };
    schema_is_enforced(
        &api,
        release(&scope.name("ok"), json!(5)),
        release(&scope.name("bad"), json!("five")),
        "spec.maxHistory",
    )
    .await
}
