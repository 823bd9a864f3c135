//! `kubectl orkestra abort` and `retry` against the real Argo controller of `cluster.sh up --node`:
//! the controller itself stops the release, and re-runs the failed step of the same Workflow.
//! Nothing here writes a Workflow's or a HelmRelease's status.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use kube::api::{Api, DynamicObject};
use orkestra_e2e::{
    CommandOutput, TestCluster, applicationgroup_resource, helmrelease_resource, workflow_resource,
    workspace_bin,
};
use serde_json::{Value, json};

/// The workflow namespace of the harness (`manifests/executor`).
const WORKFLOW_NAMESPACE: &str = "orkestra";
const RELEASE_TIMEOUT: Duration = Duration::from_secs(240);

async fn plugin(cluster: &TestCluster, args: &[&str]) -> Result<CommandOutput> {
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.args(args);
    orkestra_e2e::run(cmd, None).await
}

fn app(repo: &str, name: &str, deps: &[&str], ns: &str, values: Value) -> Value {
    json!({"name": name, "dependencies": deps, "spec": {
        "chart": {"url": repo, "name": "probe", "version": "1.0.0"},
        "release": {"targetNamespace": ns, "timeout": "2m", "values": values}}})
}

/// `kubectl apply`s group `name` (through the harness's webhook).
async fn apply(
    cluster: &TestCluster,
    scope: &orkestra_e2e::TestScope,
    name: &str,
    applications: Value,
) -> Result<()> {
    let mut object = json!({
        "apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
        "metadata": {"name": name}, "spec": {"applications": applications},
    });
    scope.label(&mut object)?;
    cluster
        .kubectl_stdin(["apply", "-f", "-"], &object.to_string())
        .await?
        .expect_success()?;
    Ok(())
}

async fn delete_group(cluster: &TestCluster, name: &str) {
    let _ = cluster
        .kubectl(["delete", "applicationgroup", name, "--wait=false"])
        .await;
}

async fn workflow(cluster: &TestCluster, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client().await?,
        WORKFLOW_NAMESPACE,
        &workflow_resource(),
    );
    Ok(serde_json::to_value(api.get(name).await?)?)
}

fn phase(wf: &Value) -> &str {
    wf.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Polls until Workflow `name` is in one of `phases`.
async fn until_phase(cluster: &TestCluster, name: &str, phases: &[&str]) -> Result<Value> {
    orkestra_e2e::eventually(
        RELEASE_TIMEOUT,
        &format!("Workflow {name} to be {phases:?}"),
        || async {
            let wf = workflow(cluster, name).await?;
            Ok(phases.contains(&phase(&wf)).then_some(wf))
        },
    )
    .await
}

async fn helm_release_exists(cluster: &TestCluster, ns: &str, name: &str) -> Result<bool> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().await?, ns, &helmrelease_resource());
    Ok(api.get_opt(name).await?.is_some())
}

async fn revisions(cluster: &TestCluster, group: &str) -> Result<usize> {
    let api: Api<DynamicObject> =
        Api::all_with(cluster.client().await?, &applicationgroup_resource());
    let uid = api
        .get(group)
        .await?
        .metadata
        .uid
        .context("the group has no uid")?;
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(cluster.client().await?, WORKFLOW_NAMESPACE);
    Ok(revisions
        .list(&Default::default())
        .await?
        .items
        .iter()
        .filter(|r| {
            r.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .count())
}

#[tokio::test]
async fn abort_stops_a_real_release_and_history_records_it() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("real-abort");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let name = scope.name("g");
    let repo = cluster.chart_repo();
    // `db` takes half a minute to be Ready, so the release is surely in flight when aborted.
    let apps = json!([
        app(repo, "db", &[], &ns, json!({"readyAfterSeconds": 30})),
        app(repo, "api", &["db"], &ns, json!({})),
    ]);
    apply(cluster, &scope, &name, apps).await?;
    plugin(cluster, &["promote", &name])
        .await?
        .expect_success()?;
    let wf_name = format!("{name}-r1");
    until_phase(cluster, &wf_name, &["Running"]).await?;
    orkestra_e2e::eventually(RELEASE_TIMEOUT, "db's HelmRelease", || async {
        Ok(helm_release_exists(cluster, &ns, "db").await?.then_some(()))
    })
    .await?;
    let aborted = plugin(cluster, &["abort", &name]).await?.expect_success()?;
    // The real controller stops it: the Workflow fails, and `api` never starts.
    let wf = until_phase(cluster, &wf_name, &["Failed", "Error"]).await?;
    let message = wf
        .pointer("/status/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ensure!(
        message.contains("Terminate"),
        "the Workflow failed, but not by the abort: {message:?} ({aborted})"
    );
    ensure!(
        !helm_release_exists(cluster, &ns, "api").await?,
        "api was released after the abort"
    );
    let history = plugin(cluster, &["history", &name])
        .await?
        .expect_success()?;
    ensure!(
        history.stdout.contains("aborted"),
        "history does not record the abort:\n{}",
        history.stdout
    );
    delete_group(cluster, &name).await;
    Ok(())
}

#[tokio::test]
async fn retry_reruns_the_failed_step_of_the_same_release() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("real-retry");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let name = scope.name("g");
    let repo = cluster.chart_repo();
    // A custom check after `web` that passes only once a marker file is served by the harness's
    // Helm repository: the cause of the failure goes away without a change to the group.
    let marker = format!("{}-ready", scope.id());
    let served: PathBuf = std::env::var_os("ORKESTRA_TEST_STATE")
        .map(PathBuf::from)
        .context("ORKESTRA_TEST_STATE is not set")?
        .join("charts");
    let busybox = cluster
        .images()
        .iter()
        .find(|i| i.contains("busybox"))
        .context("no busybox image in the node")?
        .clone();
    let script = format!("wget -q -O /dev/null {repo}/{marker}");
    let mut web = app(repo, "web", &[], &ns, json!({}));
    web["spec"]["workflow"] = json!([
        {"name": "helmrelease", "type": "helmrelease"},
        {"name": "check", "dependencies": ["helmrelease"], "type": "custom",
         "image": {"name": "check", "image": busybox, "command": ["sh", "-c", script]}},
    ]);
    apply(cluster, &scope, &name, json!([web])).await?;
    let failed = plugin(cluster, &["promote", &name, "--wait", "--timeout", "4m"]).await?;
    ensure!(failed.code() == Some(1), "promote --wait: {failed}");
    let wf_name = format!("{name}-r1");
    until_phase(cluster, &wf_name, &["Failed"]).await?;
    let before = revisions(cluster, &name).await?;

    std::fs::write(served.join(&marker), "ok\n")
        .with_context(|| format!("writing the marker into {}", served.display()))?;
    let retried = async {
        plugin(cluster, &["retry", &name]).await?.expect_success()?;
        // The same Workflow runs again from its failed step and succeeds; no new revision.
        until_phase(cluster, &wf_name, &["Succeeded"]).await
    }
    .await;
    let _ = std::fs::remove_file(served.join(&marker));
    let wf = retried?;
    ensure!(
        revisions(cluster, &name).await? == before,
        "retry made a new revision"
    );
    let history = plugin(cluster, &["history", &name])
        .await?
        .expect_success()?;
    ensure!(
        history.stdout.contains("retried"),
        "history does not record the retry:\n{}",
        history.stdout
    );
    ensure!(phase(&wf) == "Succeeded");
    delete_group(cluster, &name).await;
    Ok(())
}
