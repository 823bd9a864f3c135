//! `kubectl-orkestra executor helmrelease` against the real helm-controller and source-controller
//! of `tests/cluster/cluster.sh up --node`, with the charts of `tests/charts/` from the harness's
//! Helm repository. Nothing here writes a HelmRelease's status: Flux does.
//!
//! The executor runs as a process on the host with the test kubeconfig, the manifest built by the
//! library exactly as a Workflow step gets it (`orkestra::emit::flux::release_manifest`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use kube::api::{Api, DynamicObject};
use orkestra_e2e::{TestCluster, helmrelease_resource, helmrepository_resource, workspace_bin};
use serde_json::{Value, json};

/// How often the executor reads the HelmRelease here (the Workflows use the default, 1 s).
const INTERVAL: &str = "500ms";

/// One finished executor run: its exit code, its JSON log lines and how long it took.
struct Run {
    code: Option<i32>,
    lines: Vec<Value>,
    raw: String,
    took: Duration,
}

impl Run {
    fn events(&self, event: &str) -> impl Iterator<Item = &Value> {
        self.lines.iter().filter(move |l| l["event"] == event)
    }

    fn last(&self, event: &str) -> Result<&Value> {
        self.events(event)
            .last()
            .with_context(|| format!("no {event:?} event; the executor logged:\n{}", self.raw))
    }

    fn expect_code(&self, code: i32) -> Result<()> {
        ensure!(
            self.code == Some(code),
            "expected exit code {code}, got {:?} after {:?}; the executor logged:\n{}",
            self.code,
            self.took,
            self.raw
        );
        Ok(())
    }
}

/// The manifest a step of application `app` (chart `chart@version`, `values`) gets.
fn manifest(
    repo: &str,
    ns: &str,
    app: &str,
    chart: &str,
    version: &str,
    values: Value,
) -> Result<Value> {
    let group = json!({"spec": {"applications": [{"name": app, "spec": {
        "chart": {"url": repo, "name": chart, "version": version},
        "release": {"targetNamespace": ns, "timeout": "2m", "values": values}}}]}});
    let spec = orkestra::input::parse::parse_spec(&group)?;
    let app = spec.applications.first().context("no application")?;
    Ok(orkestra::emit::flux::release_manifest(
        "real-executor",
        app,
        None,
    ))
}

/// Runs the executor to its end (bounded by `limit`).
async fn run(
    cluster: &TestCluster,
    action: &str,
    manifest: &Value,
    timeout: &str,
    limit: Duration,
) -> Result<Run> {
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.args(["executor", "helmrelease", "--action", action])
        .args(["--manifest", &manifest.to_string()])
        .args(["--timeout", timeout, "--interval", INTERVAL])
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["--context", "admin"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .with_context(|| format!("the executor ran longer than {limit:?}"))??;
    let raw = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = raw
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok(Run {
        code: out.status.code(),
        lines,
        raw,
        took: started.elapsed(),
    })
}

async fn exists(
    cluster: &TestCluster,
    resource: &kube::api::ApiResource,
    ns: &str,
    name: &str,
) -> Result<bool> {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client().await?, ns, resource);
    Ok(api.get_opt(name).await?.is_some())
}

#[tokio::test]
async fn a_render_failure_fails_the_step_soon_with_fluxs_message() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("real-exec-render");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let m = manifest(
        cluster.chart_repo(),
        &ns,
        "web",
        "broken",
        "1.0.0",
        json!({}),
    )?;
    // Flux never counts a render failure toward remediation.retries: without the executor's own
    // rule this would wait out the whole 5 minutes.
    let r = run(cluster, "install", &m, "5m", Duration::from_secs(400)).await?;
    r.expect_code(1)?;
    println!("timing: render failure reported after {:?}", r.took);
    ensure!(
        r.took < Duration::from_secs(120),
        "the render failure took {:?} to be reported",
        r.took
    );
    let failed = r.last("failed")?;
    ensure!(
        failed["reason"] == "InstallFailed"
            && failed["message"]
                .as_str()
                .is_some_and(|m| m.contains("broken 1.0.0 fails to render on purpose")),
        "the failure does not carry Flux's reason and message: {failed}"
    );
    // Each state change is logged with Flux's reason, and Flux's failure reason shows before it.
    let states: Vec<&Value> = r.events("state").collect();
    ensure!(
        states
            .iter()
            .all(|s| s["fluxReason"].as_str().is_some_and(|x| !x.is_empty())),
        "a state line without Flux's reason:\n{}",
        r.raw
    );
    ensure!(
        states.iter().any(|s| s["fluxReason"] == "InstallFailed"),
        "no state line named InstallFailed:\n{}",
        r.raw
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_version_fails_once_the_repository_has_fetched_its_index() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("real-exec-missing");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let m = manifest(
        cluster.chart_repo(),
        &ns,
        "web",
        "probe",
        "9.9.9",
        json!({}),
    )?;
    let r = run(cluster, "install", &m, "5m", Duration::from_secs(400)).await?;
    r.expect_code(1)?;
    println!("timing: missing version reported after {:?}", r.took);
    ensure!(
        r.took < Duration::from_secs(90),
        "the missing version took {:?} to be reported",
        r.took
    );
    let message = r.last("failed")?["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("9.9.9")
            && message.contains("the HelmRepository has fetched its index since the apply"),
        "the failure does not say the version is missing from a fresh index: {message}"
    );
    Ok(())
}

#[tokio::test]
async fn an_upgrade_succeeds_and_delete_removes_the_release_and_its_repository() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("real-exec-upgrade");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let first = manifest(
        cluster.chart_repo(),
        &ns,
        "web",
        "probe",
        "1.0.0",
        json!({}),
    )?;
    let limit = Duration::from_secs(300);
    run(cluster, "install", &first, "3m", limit)
        .await?
        .expect_code(0)?;
    // The upgrade asks the HelmRepository for a fresh index too; while Flux still reads the
    // previous one, nothing may be taken for a missing version.
    let second = manifest(
        cluster.chart_repo(),
        &ns,
        "web",
        "probe",
        "1.1.0",
        json!({"greeting": "again"}),
    )?;
    let up = run(cluster, "install", &second, "3m", limit).await?;
    up.expect_code(0)?;
    let released = up.last("released")?;
    ensure!(
        up.events("failed").next().is_none(),
        "the upgrade logged a failure:\n{}",
        up.raw
    );
    ensure!(
        released.to_string().contains("1.1.0"),
        "released is not 1.1.0: {released}"
    );
    let repo = orkestra::naming::repository_name(cluster.chart_repo());
    ensure!(exists(cluster, &helmrepository_resource(), &ns, &repo).await?);
    // source-controller's finalizer holds the HelmRepository a moment: the step waits it out.
    let deleted = run(cluster, "delete", &second, "3m", limit).await?;
    deleted.expect_code(0)?;
    deleted.last("repository-deleted")?;
    ensure!(
        !exists(cluster, &helmrelease_resource(), &ns, "web").await?,
        "the HelmRelease is still there"
    );
    ensure!(
        !exists(cluster, &helmrepository_resource(), &ns, &repo).await?,
        "delete left the HelmRepository {ns}/{repo} behind"
    );
    Ok(())
}

#[tokio::test]
async fn a_timeout_exits_3_and_names_the_last_reason() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("real-exec-timeout");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    // A Deployment that reports Ready only after two minutes: Helm (and so Flux) waits for it.
    let m = manifest(
        cluster.chart_repo(),
        &ns,
        "web",
        "probe",
        "1.0.0",
        json!({"readyAfterSeconds": 120}),
    )?;
    let r = run(cluster, "install", &m, "15s", Duration::from_secs(120)).await?;
    r.expect_code(3)?;
    let last_state = r.last("state")?;
    let reason = last_state["fluxReason"].as_str().unwrap_or_default();
    let message = r.last("timeout")?["message"].as_str().unwrap_or_default();
    ensure!(
        !reason.is_empty() && message.contains(&format!("Flux's last reason {reason}")),
        "the timeout message does not name the last reason {reason:?}: {message}"
    );
    Ok(())
}
