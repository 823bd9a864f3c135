//! Smoke test of the real node (`tests/cluster/cluster.sh up --node`): the chain every release
//! depends on works end to end, with the real kubelet, Flux and Argo. A pod runs on the node, a
//! HelmRelease of a chart from the local Helm repository becomes Ready through the real
//! helm-controller (its objects exist and its Deployment is ready), and a one-step Argo Workflow
//! succeeds through the real workflow-controller. No status here is written by hand.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DynamicObject, LogParams, PostParams};
use orkestra_e2e::{
    eventually, helmrelease_resource, helmrepository_resource, node_cluster_or_skip,
    workflow_resource,
};
use serde_json::{Value, json};

/// Long enough for a first pull-free pod start, a chart install and Argo's pods on a loaded 2-core
/// machine; each step normally takes a few seconds.
const TIMEOUT: Duration = Duration::from_secs(180);

fn condition<'a>(obj: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test]
async fn a_pod_runs_on_the_node() -> Result<()> {
    let cluster = node_cluster_or_skip!();
    let mut scope = cluster.scope("pod");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "ns").await?;
    let image = cluster.busybox_image()?;
    let mut pod: Value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello"},
        "spec": {
            "hostNetwork": true,
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "hello",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "echo hello from $(uname -s)"],
            }],
        },
    });
    scope.label(&mut pod)?;
    let pods = Api::<Pod>::namespaced(client, &ns);
    pods.create(&PostParams::default(), &serde_json::from_value(pod)?)
        .await
        .context("creating the pod")?;
    let phase = eventually(TIMEOUT, "the pod to finish", || async {
        let pod = pods.get("hello").await?;
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        Ok(matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase))
    })
    .await?;
    let log = pods.logs("hello", &LogParams::default()).await?;
    ensure!(
        phase == "Succeeded",
        "the pod ended {phase}; its log: {log}"
    );
    ensure!(log.trim() == "hello from Linux", "unexpected log: {log:?}");
    Ok(())
}

#[tokio::test]
async fn a_helmrelease_from_the_local_repository_becomes_ready() -> Result<()> {
    let cluster = node_cluster_or_skip!();
    let mut scope = cluster.scope("helm");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "ns").await?;
    let repos =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &helmrepository_resource());
    let mut repo = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts"},
        "spec": {"url": cluster.chart_repo(), "interval": "1m"},
    });
    scope.label(&mut repo)?;
    repos
        .create(&PostParams::default(), &serde_json::from_value(repo)?)
        .await
        .context("creating the HelmRepository")?;
    let releases =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &helmrelease_resource());
    let mut release = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "smoke"},
        "spec": {
            "interval": "1m",
            "chart": {"spec": {
                "chart": "probe",
                "version": "1.0.0",
                "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            }},
            "values": {"greeting": "hello"},
        },
    });
    scope.label(&mut release)?;
    releases
        .create(&PostParams::default(), &serde_json::from_value(release)?)
        .await
        .context("creating the HelmRelease")?;
    eventually(TIMEOUT, "the HelmRelease to be Ready", || async {
        let hr = releases.get("smoke").await?;
        match condition(&hr, "Ready") {
            Some(c) if c["status"] == "True" => Ok(Some(())),
            other => Err(anyhow!(
                "Ready condition: {}",
                other.map_or_else(|| "none yet".to_owned(), Value::to_string)
            )),
        }
    })
    .await?;
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("smoke-probe")
        .await
        .context("the chart's ConfigMap smoke-probe")?;
    let data = cm.data.unwrap_or_default();
    ensure!(
        data.get("chartVersion").map(String::as_str) == Some("1.0.0"),
        "chartVersion in smoke-probe: {data:?}"
    );
    let values: Value = serde_json::from_str(data.get("values").map_or("{}", String::as_str))?;
    ensure!(
        values["greeting"] == "hello",
        "values in smoke-probe: {values}"
    );
    // helm-controller waits for the chart's objects, so Ready means the Deployment is available.
    let deploy = Api::<Deployment>::namespaced(client, &ns)
        .get("smoke-probe")
        .await
        .context("the chart's Deployment smoke-probe")?;
    let ready = deploy.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    ensure!(ready == 1, "smoke-probe has {ready} ready replicas");
    Ok(())
}

#[tokio::test]
async fn a_one_step_argo_workflow_succeeds() -> Result<()> {
    let cluster = node_cluster_or_skip!();
    let scope = cluster.scope("argo");
    let client = cluster.client().await?;
    let image = cluster.busybox_image()?;
    // The namespace and service account manifests/executor installs, where groups' Workflows run.
    let workflows = Api::<DynamicObject>::namespaced_with(client, "orkestra", &workflow_resource());
    let name = scope.name("wf");
    let mut wf = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": "orkestra",
            "entrypoint": "main",
            "templates": [{
                "name": "main",
                "container": {
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "echo step ran"],
                },
            }],
        },
    });
    scope.label(&mut wf)?;
    workflows
        .create(&PostParams::default(), &serde_json::from_value(wf)?)
        .await
        .context("creating the Workflow")?;
    let (phase, message) = eventually(TIMEOUT, "the Workflow to finish", || async {
        let wf = workflows.get(&name).await?;
        let phase = wf.data["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let message = wf.data["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(matches!(phase.as_str(), "Succeeded" | "Failed" | "Error").then_some((phase, message)))
    })
    .await?;
    ensure!(
        phase == "Succeeded",
        "the Workflow ended {phase}: {message}"
    );
    let _ = workflows.delete(&name, &Default::default()).await;
    Ok(())
}
