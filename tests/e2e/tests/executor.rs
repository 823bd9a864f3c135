//! `kubectl-orkestra executor helmrelease` on the real kube-apiserver with the real Flux CRDs. No
//! helm-controller runs: each test plays it, writing HelmRelease `status` through the status
//! subresource the way helm-controller does, and checks what the executor (the real binary, as
//! Argo runs it) makes of it: its exit code and its JSON log lines.
//!
//! Also: the Workflows built for the bookinfo and 5G core examples are accepted by the real Argo
//! Workflow CRD, and each executor step gets the HelmRelease of its own chart; one step's exact
//! container arguments release its chart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt as _};
use orkestra_e2e::{
    ASYNC_TIMEOUT, TestCluster, TestScope, cluster_or_skip, helmrelease_resource,
    helmrepository_resource, workflow_resource, workspace_bin,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;

/// How often the executor reads the HelmRelease in these tests.
const INTERVAL: &str = "100ms";

// ---------------------------------------------------------------------------------------------
// The executor as a child process

/// A running executor: its child process and the JSON lines it logged so far.
struct Executor {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    raw: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

/// How an executor run ended.
struct Finished {
    code: Option<i32>,
    lines: Vec<Value>,
    raw: String,
    /// When the process was seen to exit.
    at: Instant,
}

impl Finished {
    /// The last log line with `event`.
    fn event(&self, event: &str) -> Result<&Value> {
        self.lines
            .iter()
            .rev()
            .find(|l| l["event"] == event)
            .ok_or_else(|| anyhow!("no {event:?} event; the executor logged:\n{}", self.raw))
    }

    fn expect_code(&self, code: i32) -> Result<()> {
        ensure!(
            self.code == Some(code),
            "expected exit code {code}, got {:?}; the executor logged:\n{}",
            self.code,
            self.raw
        );
        Ok(())
    }
}

/// Starts `kubectl-orkestra executor helmrelease ARGS` against the test cluster (admin context).
fn start(cluster: &TestCluster, args: &[&str]) -> Result<Executor> {
    start_as(cluster, cluster.kubeconfig(), &["--context", "admin"], args)
}

/// Starts the executor with another kubeconfig (and extra connection flags).
fn start_as(
    cluster: &TestCluster,
    kubeconfig: &Path,
    connection: &[&str],
    args: &[&str],
) -> Result<Executor> {
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.args(["executor", "helmrelease"])
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(connection)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("starting kubectl-orkestra executor")?;
    let stderr = child.stderr.take().context("executor stderr")?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let raw = Arc::new(Mutex::new(String::new()));
    let (lines2, raw2) = (lines.clone(), raw.clone());
    let reader = tokio::spawn(async move {
        let mut stream = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = stream.next_line().await {
            if let Ok(mut r) = raw2.lock() {
                r.push_str(&line);
                r.push('\n');
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Ok(mut l) = lines2.lock()
            {
                l.push(v);
            }
        }
    });
    Ok(Executor {
        child,
        lines,
        raw,
        reader,
    })
}

/// `install` of `manifest` (JSON text, as Argo passes it).
fn install(cluster: &TestCluster, manifest: &Value, extra: &[&str]) -> Result<Executor> {
    let text = manifest.to_string();
    let mut args = vec![
        "--action",
        "install",
        "--manifest",
        &text,
        "--interval",
        INTERVAL,
    ];
    args.extend_from_slice(extra);
    start(cluster, &args)
}

impl Executor {
    fn raw(&self) -> String {
        self.raw.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits for a log line with `event` for which `matches` holds; fails if the executor exits
    /// first.
    async fn wait_for(&mut self, event: &str, matches: impl Fn(&Value) -> bool) -> Result<Value> {
        let start = Instant::now();
        loop {
            let found = self.lines.lock().ok().and_then(|lines| {
                lines
                    .iter()
                    .find(|l| l["event"] == event && matches(l))
                    .cloned()
            });
            if let Some(line) = found {
                return Ok(line);
            }
            if let Some(status) = self.child.try_wait()? {
                // Let the reader drain what was printed last.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!(
                    "the executor exited ({status}) before logging {event:?}; it logged:\n{}",
                    self.raw()
                );
            }
            if start.elapsed() > ASYNC_TIMEOUT {
                bail!(
                    "no {event:?} event within {ASYNC_TIMEOUT:?}; the executor logged:\n{}",
                    self.raw()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a `state` line with this state.
    async fn wait_state(&mut self, state: &str) -> Result<Value> {
        self.wait_for("state", |l| l["state"] == state).await
    }

    /// Fails if the executor has exited.
    fn still_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the executor exited early ({status}); it logged:\n{}",
                self.raw()
            );
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Finished> {
        let status = tokio::time::timeout(ASYNC_TIMEOUT, self.child.wait())
            .await
            .map_err(|_| anyhow!("the executor did not exit; it logged:\n{}", self.raw()))??;
        let at = Instant::now();
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        Ok(Finished {
            code: status.code(),
            lines,
            raw: self.raw(),
            at,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Playing helm-controller

fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z",
    })
}

/// Writes `status` through the status subresource (a merge patch: lists are replaced whole).
async fn write_status(api: &Api<DynamicObject>, name: &str, status: Value) -> Result<()> {
    // As helm-controller does, under its own field manager.
    let params = PatchParams {
        field_manager: Some("helm-controller".into()),
        ..PatchParams::default()
    };
    api.patch_status(name, &params, &Patch::Merge(&json!({ "status": status })))
        .await
        .with_context(|| format!("writing the status of HelmRelease {name}"))?;
    Ok(())
}

/// What helm-controller reports once it is working on `generation`.
fn progressing(generation: i64, observed: i64) -> Value {
    json!({
        "observedGeneration": observed,
        "lastAttemptedGeneration": generation,
        "conditions": [
            condition("Reconciling", "True", "Progressing", "Running 'install' action with timeout of 5m0s", generation),
            condition("Ready", "Unknown", "Progressing", "Running 'install' action with timeout of 5m0s", generation),
        ],
    })
}

/// What helm-controller reports after a successful install/upgrade of `version` at `generation`.
fn released(generation: i64, version: &str, action: &str) -> Value {
    let reason = if action == "install" {
        "InstallSucceeded"
    } else {
        "UpgradeSucceeded"
    };
    let message = format!(
        "Helm {action} succeeded for release x/y.v{generation} with chart podinfo@{version}"
    );
    json!({
        "observedGeneration": generation,
        "lastAttemptedGeneration": generation,
        "lastAttemptedRevision": version,
        "lastAttemptedReleaseAction": action,
        "lastHandledReconcileAt": "2026-01-01T00:00:00Z",
        "history": [{
            "chartName": "podinfo", "chartVersion": version, "name": "y", "namespace": "x",
            "status": "deployed", "version": generation,
            "configDigest": "sha256:0", "digest": "sha256:0",
            "firstDeployed": "2026-01-01T00:00:00Z", "lastDeployed": "2026-01-01T00:00:00Z",
        }],
        "conditions": [
            condition("Ready", "True", reason, &message, generation),
            condition("Released", "True", reason, &message, generation),
        ],
    })
}

/// A `List` with a HelmRepository and a HelmRelease of podinfo `version`, labelled for the test.
fn manifest(scope: &TestScope, namespace: &str, name: &str, version: &str, spec: Value) -> Value {
    let labels = scope.labels();
    let mut release_spec = json!({
        "interval": "5m",
        "chart": { "spec": {
            "chart": "podinfo", "version": version,
            "sourceRef": { "kind": "HelmRepository", "name": "podinfo" },
        } },
    });
    if let (Some(base), Value::Object(extra)) = (release_spec.as_object_mut(), spec) {
        base.extend(extra);
    }
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmRepository",
                "metadata": { "name": "podinfo", "namespace": namespace, "labels": labels },
                "spec": { "url": "https://stefanprodan.github.io/podinfo", "interval": "10m" },
            },
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "metadata": { "name": name, "namespace": namespace, "labels": labels },
                "spec": release_spec,
            },
        ],
    })
}

fn helmreleases(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &helmrelease_resource())
}

/// Namespaces the executor creates: deleted (without waiting) when the test ends.
struct Cleanup {
    cluster: &'static TestCluster,
    namespaces: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = std::process::Command::new(self.cluster.kubectl_path())
                .arg("--kubeconfig")
                .arg(self.cluster.kubeconfig())
                .args(["--context", "admin", "delete", "namespace", ns])
                .args(["--ignore-not-found", "--wait=false"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Runs an install of a fresh release in an existing namespace until it is Ready (generation 1).
async fn released_release(
    cluster: &'static TestCluster,
    client: &Client,
    scope: &TestScope,
    ns: &str,
    name: &str,
    version: &str,
) -> Result<()> {
    let mut run = install(cluster, &manifest(scope, ns, name, version, json!({})), &[])?;
    run.wait_state("Pending").await?;
    write_status(
        &helmreleases(client, ns),
        name,
        released(1, version, "install"),
    )
    .await?;
    run.finish().await?.expect_code(0)
}

// ---------------------------------------------------------------------------------------------
// install

#[tokio::test]
async fn install_creates_the_namespace_and_waits_for_the_applied_generation() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("exec-install");
    let client = cluster.client().await?;
    // A namespace that does not exist yet: the executor creates it.
    let ns = scope.name("apps");
    let _cleanup = Cleanup {
        cluster,
        namespaces: vec![ns.clone()],
    };
    let mut run = install(
        cluster,
        &manifest(&scope, &ns, "podinfo", "6.5.3", json!({})),
        &[],
    )?;
    run.wait_for("namespace-created", |l| l["namespace"] == ns.as_str())
        .await?;
    run.wait_for("applied", |l| l["kind"] == "HelmRelease")
        .await?;
    run.wait_state("Pending").await?;

    // What was applied: both objects, by our field manager, each with a reconcile request.
    let api = helmreleases(&client, &ns);
    let hr = api.get("podinfo").await?;
    assert_eq!(hr.metadata.generation, Some(1));
    let requested = hr
        .annotations()
        .get("reconcile.fluxcd.io/requestedAt")
        .cloned()
        .context("no reconcile.fluxcd.io/requestedAt on the HelmRelease")?;
    let managers: Vec<String> = hr
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["orkestra-executor".to_owned()]);
    let repo =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &helmrepository_resource())
            .get("podinfo")
            .await
            .context("the HelmRepository was not applied")?;
    assert_eq!(
        repo.annotations().get("reconcile.fluxcd.io/requestedAt"),
        Some(&requested)
    );

    // helm-controller starts: progressing.
    write_status(&api, "podinfo", progressing(1, -1)).await?;
    run.wait_state("Progressing").await?;
    // Ready=True is written before observedGeneration catches up: not yet.
    let mut early = released(1, "6.5.3", "install");
    early["observedGeneration"] = json!(-1);
    write_status(&api, "podinfo", early).await?;
    let line = run
        .wait_for("state", |l| {
            l["state"] == "Pending"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Ready=True"))
        })
        .await?;
    ensure!(line["observedGeneration"] == -1, "{line}");
    run.still_running()?;

    // observedGeneration catches up: released.
    write_status(&api, "podinfo", released(1, "6.5.3", "install")).await?;
    let written = Instant::now();
    let done = run.finish().await?;
    done.expect_code(0)?;
    let end = done.event("released")?;
    assert_eq!(end["reason"], "InstallSucceeded");
    assert_eq!(end["revision"], "6.5.3");
    eprintln!(
        "figure: status Ready written -> executor exited: {} ms (interval {INTERVAL})",
        done.at.duration_since(written).as_millis()
    );
    // One line per state change: no state is logged twice in a row.
    let states: Vec<&Value> = done
        .lines
        .iter()
        .filter(|l| l["event"] == "state")
        .collect();
    for pair in states.windows(2) {
        ensure!(
            pair[0]["state"] != pair[1]["state"] || pair[0]["message"] != pair[1]["message"],
            "a state was logged twice in a row:\n{}",
            done.raw
        );
    }
    Ok(())
}

#[tokio::test]
async fn upgrade_waits_past_the_stale_ready_and_the_old_chart_version() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-upgrade");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    released_release(cluster, &client, &scope, &ns, "web", "6.5.3").await?;

    // Upgrade to 6.6.0: generation 2, while the status still says Ready for generation 1.
    let mut run = install(
        cluster,
        &manifest(&scope, &ns, "web", "6.6.0", json!({})),
        &[],
    )?;
    let applied = run
        .wait_for("applied", |l| l["kind"] == "HelmRelease")
        .await?;
    assert_eq!(applied["generation"], 2);
    assert_eq!(applied["chartVersion"], "6.6.0");
    let stale = run.wait_state("Pending").await?;
    ensure!(
        stale["message"]
            .as_str()
            .is_some_and(|m| m.contains("Ready=True is for generation 1")),
        "{stale}"
    );
    run.still_running()?;

    // helm-controller bumps observedGeneration but reports the old chart version: not accepted.
    let api = helmreleases(&client, &ns);
    write_status(&api, "web", released(2, "6.5.3", "upgrade")).await?;
    let other = run.wait_state("OtherRevision").await?;
    ensure!(
        other["message"]
            .as_str()
            .is_some_and(|m| m.contains("6.5.3") && m.contains("6.6.0")),
        "{other}"
    );
    run.still_running()?;

    // The upgrade really happened.
    write_status(&api, "web", released(2, "6.6.0", "upgrade")).await?;
    let done = run.finish().await?;
    done.expect_code(0)?;
    let end = done.event("released")?;
    assert_eq!(end["reason"], "UpgradeSucceeded");
    assert_eq!(end["generation"], 2);
    assert_eq!(end["revision"], "6.6.0");
    let hr = api.get("web").await?;
    assert_eq!(
        hr.data.pointer("/spec/chart/spec/version"),
        Some(&json!("6.6.0"))
    );
    Ok(())
}

#[tokio::test]
async fn install_failure_fails_once_retries_are_exhausted() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-install-failed");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let spec = json!({ "install": { "remediation": { "retries": 1 } } });
    let mut run = install(cluster, &manifest(&scope, &ns, "db", "13.9.4", spec), &[])?;
    run.wait_state("Pending").await?;
    let api = helmreleases(&client, &ns);
    let failed = |failures: i64| {
        let message = "Helm install failed for release db/db with chart mongodb@13.9.4: \
                       context deadline exceeded";
        json!({
            "observedGeneration": 1,
            "lastAttemptedGeneration": 1,
            "lastAttemptedRevision": "13.9.4",
            "lastAttemptedReleaseAction": "install",
            "failures": failures,
            "installFailures": failures,
            "conditions": [
                condition("Ready", "False", "InstallFailed", message, 1),
                condition("Released", "False", "InstallFailed", message, 1),
            ],
        })
    };
    // First failure: one retry left, Flux will try again.
    write_status(&api, "db", failed(1)).await?;
    run.wait_state("Retrying").await?;
    run.still_running()?;
    // Second failure: retries exhausted (and helm-controller has not written Stalled yet).
    write_status(&api, "db", failed(2)).await?;
    let done = run.finish().await?;
    done.expect_code(1)?;
    let end = done.event("failed")?;
    assert_eq!(end["reason"], "InstallFailed");
    let message = end["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("context deadline exceeded")
            && message.contains("install failed 2 time(s), 1 retries allowed"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn stalled_fails_with_fluxs_reason() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-stalled");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let mut run = install(
        cluster,
        &manifest(&scope, &ns, "api", "1.0.0", json!({})),
        &[],
    )?;
    run.wait_state("Pending").await?;
    let api = helmreleases(&client, &ns);
    write_status(&api, "api", progressing(1, -1)).await?;
    run.wait_state("Progressing").await?;
    let message = "Failed to perform remediation: missing target release for rollback";
    write_status(
        &api,
        "api",
        json!({
            "observedGeneration": 1,
            "conditions": [
                condition("Stalled", "True", "MissingRollbackTarget", message, 1),
                condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed", 1),
            ],
        }),
    )
    .await?;
    let done = run.finish().await?;
    done.expect_code(1)?;
    let end = done.event("failed")?;
    assert_eq!(end["reason"], "MissingRollbackTarget");
    ensure!(
        end["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(message)),
        "{end}"
    );
    Ok(())
}

#[tokio::test]
async fn timeout_reports_the_last_conditions() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-timeout");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let mut run = install(
        cluster,
        &manifest(&scope, &ns, "slow", "1.0.0", json!({})),
        &["--timeout", "3s"],
    )?;
    run.wait_state("Pending").await?;
    write_status(&helmreleases(&client, &ns), "slow", progressing(1, -1)).await?;
    run.wait_state("Progressing").await?;
    let done = run.finish().await?;
    done.expect_code(3)?;
    let end = done.event("timeout")?;
    let message = end["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("not released after 3s")
            && message.contains("Reconciling=True (Progressing): Running 'install' action")
            && message.contains("Ready=Unknown (Progressing)"),
        "{message}"
    );
    let elapsed = end["elapsed"].as_f64().unwrap_or_default();
    ensure!((3.0..6.0).contains(&elapsed), "timed out after {elapsed} s");
    Ok(())
}

#[tokio::test]
async fn install_waits_while_the_namespace_is_terminating() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("exec-ns-terminating");
    let client = cluster.client().await?;
    let namespaces = Api::<Namespace>::all(client.clone());
    let ns = scope.name("apps");
    let _cleanup = Cleanup {
        cluster,
        namespaces: vec![ns.clone()],
    };
    // A namespace held in Terminating by a finalizer this test controls.
    let hold: Namespace = serde_json::from_value(json!({
        "metadata": { "name": ns, "labels": scope.labels(), "finalizers": ["e2e.orkestra.azure.microsoft.com/hold"] },
    }))?;
    namespaces.create(&PostParams::default(), &hold).await?;
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    let terminating = namespaces.get(&ns).await?;
    ensure!(terminating.metadata.deletion_timestamp.is_some());

    let mut run = install(
        cluster,
        &manifest(&scope, &ns, "web", "1.0.0", json!({})),
        &[],
    )?;
    let line = run.wait_for("namespace-terminating", |_| true).await?;
    ensure!(
        line["finalizers"].as_str().is_some_and(|f| f
            .split(", ")
            .any(|f| f == "e2e.orkestra.azure.microsoft.com/hold")),
        "{line}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.still_running()?;

    // Let it go: drop our finalizer, then finalize as the namespace controller would (none runs
    // here) and delete again, which removes it. Finalizing may already remove it, and the
    // executor may then create it again before the second delete: that delete is for the old
    // namespace only (its uid as a precondition), so the new one is left alone.
    namespaces
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "metadata": { "finalizers": null } })),
        )
        .await?;
    let mut current = namespaces.get(&ns).await?;
    if let Some(spec) = current.spec.as_mut() {
        spec.finalizers = None;
    }
    namespaces
        .replace_subresource("finalize", &ns, &PostParams::default(), &current)
        .await
        .context("finalizing the namespace")?;
    let old_only = DeleteParams {
        preconditions: Some(Preconditions {
            uid: terminating.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match namespaces.delete(&ns, &old_only).await {
        Ok(_) => {}
        // Gone already, or already the executor's new namespace.
        Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => {}
        Err(e) => return Err(e).context("deleting the finalized namespace"),
    }

    // The executor creates it again, applies and waits as usual.
    run.wait_for("namespace-created", |l| l["namespace"] == ns.as_str())
        .await?;
    run.wait_for("applied", |l| l["kind"] == "HelmRelease")
        .await?;
    let fresh = namespaces.get(&ns).await?;
    ensure!(fresh.metadata.deletion_timestamp.is_none());
    ensure!(
        fresh.uid() != terminating.uid(),
        "the namespace was not recreated"
    );
    write_status(
        &helmreleases(&client, &ns),
        "web",
        released(1, "1.0.0", "install"),
    )
    .await?;
    run.finish().await?.expect_code(0)
}

// ---------------------------------------------------------------------------------------------
// delete

/// Creates a HelmRelease that, like one helm-controller manages, carries Flux's finalizer.
async fn finalized_release(
    client: &Client,
    scope: &TestScope,
    ns: &str,
    name: &str,
) -> Result<Value> {
    let m = manifest(scope, ns, name, "1.0.0", json!({}));
    let mut hr = m["items"][1].clone();
    hr["metadata"]["finalizers"] = json!(["finalizers.fluxcd.io"]);
    let obj: DynamicObject = serde_json::from_value(hr)?;
    helmreleases(client, ns)
        .create(&PostParams::default(), &obj)
        .await
        .context("creating the HelmRelease")?;
    Ok(m)
}

/// Starts `--action delete` of the manifest `text`.
fn start_delete(cluster: &TestCluster, text: &str) -> Result<Executor> {
    start(
        cluster,
        &[
            "--action",
            "delete",
            "--manifest",
            text,
            "--interval",
            INTERVAL,
        ],
    )
}

/// What Flux does once it has let go of an object: drop its finalizers.
async fn drop_finalizers(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .with_context(|| format!("dropping the finalizers of {name}"))?;
    Ok(())
}

#[tokio::test]
async fn delete_waits_until_the_helmrelease_is_gone() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-delete");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let m = finalized_release(&client, &scope, &ns, "web").await?;
    let text = m.to_string();
    let mut run = start_delete(cluster, &text)?;
    let line = run.wait_for("deleting", |_| true).await?;
    ensure!(
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("terminating, finalizers: finalizers.fluxcd.io")),
        "{line}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.still_running()?;
    // helm-controller uninstalled the release and drops its finalizer.
    let api = helmreleases(&client, &ns);
    drop_finalizers(&api, "web").await?;
    let done = run.finish().await?;
    done.expect_code(0)?;
    done.event("deleted")?;
    ensure!(api.get_opt("web").await?.is_none());
    // Deleting again is a no-op.
    let again = start_delete(cluster, &text)?.finish().await?;
    again.expect_code(0)?;
    assert_eq!(
        again.event("deleted")?["message"],
        "the HelmRelease does not exist"
    );
    Ok(())
}

#[tokio::test]
async fn delete_waits_until_the_unused_helmrepository_is_gone() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-delete-repo");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let m = manifest(&scope, &ns, "web", "1.0.0", json!({}));
    // Like one source-controller manages, the HelmRepository carries Flux's finalizer.
    let mut repo = m["items"][0].clone();
    repo["metadata"]["finalizers"] = json!(["finalizers.fluxcd.io"]);
    let repos: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &helmrepository_resource());
    repos
        .create(&PostParams::default(), &serde_json::from_value(repo)?)
        .await
        .context("creating the HelmRepository")?;
    let text = m.to_string();
    let mut run = start_delete(cluster, &text)?;
    let line = run.wait_for("repository-deleting", |_| true).await?;
    ensure!(
        line["helmRepository"] == format!("{ns}/podinfo").as_str()
            && line["message"]
                .as_str()
                .is_some_and(|m| m.contains("terminating, finalizers: finalizers.fluxcd.io")),
        "{line}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.still_running()?;
    // source-controller let go of it.
    drop_finalizers(&repos, "podinfo").await?;
    let done = run.finish().await?;
    done.expect_code(0)?;
    done.event("repository-deleted")?;
    ensure!(repos.get_opt("podinfo").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn delete_timeout_reports_what_is_left() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("exec-delete-timeout");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let m = finalized_release(&client, &scope, &ns, "stuck").await?;
    let api = helmreleases(&client, &ns);
    write_status(
        &api,
        "stuck",
        json!({ "conditions": [condition("Ready", "False", "UninstallFailed", "uninstall: timed out waiting for the condition", 1)] }),
    )
    .await?;
    let text = m.to_string();
    let done = start(
        cluster,
        &[
            "--action",
            "delete",
            "--manifest",
            &text,
            "--interval",
            INTERVAL,
            "--timeout",
            "2s",
        ],
    )?
    .finish()
    .await?;
    done.expect_code(3)?;
    let message = done.event("timeout")?["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        message.contains("is still there after 2s")
            && message.contains("finalizers.fluxcd.io")
            && message.contains("Ready=False (UninstallFailed): uninstall: timed out"),
        "{message}"
    );
    // Let it go.
    drop_finalizers(&api, "stuck").await?;
    Ok(())
}

#[tokio::test]
async fn usage_and_api_errors_exit_2() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("exec-usage");
    let bad_manifest = start(
        cluster,
        &[
            "--action",
            "install",
            "--manifest",
            r#"{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}}"#,
        ],
    )?
    .finish()
    .await?;
    bad_manifest.expect_code(2)?;
    bad_manifest.event("usage")?;
    let bad_duration = start(
        cluster,
        &[
            "--action",
            "install",
            "--manifest",
            "{}",
            "--timeout",
            "soon",
        ],
    )?
    .finish()
    .await?;
    bad_duration.expect_code(2)?;
    // The schema refuses the HelmRelease (maxHistory must be an integer): an API error, not a wait.
    let ns = scope.name("apps");
    let _cleanup = Cleanup {
        cluster,
        namespaces: vec![ns.clone()],
    };
    let invalid = manifest(&scope, &ns, "bad", "1.0.0", json!({ "maxHistory": "five" }));
    let done = install(cluster, &invalid, &[])?.finish().await?;
    done.expect_code(2)?;
    ensure!(
        done.event("error")?["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.maxHistory")),
        "{}",
        done.raw
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The generated Workflows

fn example(name: &str) -> Result<Value> {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {path}"))
}

/// The Workflow `orkestra::emit::argo::workflow` builds for a group, as the mutating webhook would
/// have stored the group.
fn generated_workflow(
    group: &Value,
    namespace: &str,
    name: &str,
    scope: &TestScope,
) -> Result<(Value, orkestra::api::ApplicationGroupSpec)> {
    let defaulted = orkestra::admission::defaults::default_object(group)?;
    let spec = orkestra::input::parse::parse_spec(&defaulted)?;
    let group_name = group["metadata"]["name"].as_str().unwrap_or_default();
    let meta = orkestra::emit::argo::WorkflowMeta {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        labels: scope.labels().into_iter().collect(),
    };
    Ok((
        orkestra::emit::argo::workflow(group_name, &spec, &meta),
        spec,
    ))
}

/// Every `executor-helmrelease` step: (application template, task name, chart key, timeout
/// argument).
fn executor_steps(workflow: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let templates = workflow["spec"]["templates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for t in &templates {
        let tasks = t["dag"]["tasks"].as_array().cloned().unwrap_or_default();
        for task in tasks
            .iter()
            .filter(|task| task["template"] == orkestra::emit::argo::HELMRELEASE_TEMPLATE)
        {
            let arg = |name: &str| {
                task["arguments"]["parameters"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                    .and_then(|p| p["value"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let param = arg("chart");
            out.push((
                t["name"].as_str().unwrap_or_default().to_owned(),
                task["name"].as_str().unwrap_or_default().to_owned(),
                param,
                arg("timeout"),
            ));
        }
    }
    out
}

/// The group's revision the Workflow's steps read their manifests from: a ControllerRevision
/// named like the Workflow, holding the stored spec, owned by the group.
fn revision_of(group: &Value, namespace: &str, name: &str) -> Result<Value> {
    let defaulted = orkestra::admission::defaults::default_object(group)?;
    let mut cr = orkestra::emit::revision::controller_revision(
        &orkestra::emit::revision::Owner {
            name: group["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            uid: "00000000-0000-4000-8000-000000000001".into(),
            generation: Some(1),
        },
        &defaulted["spec"],
        &orkestra::emit::revision::NewRevision {
            number: 1,
            namespace,
            release_type: orkestra::emit::revision::ReleaseType::Forward,
            promoted_by: None,
            rollback_of: None,
        },
    );
    cr["metadata"]["name"] = json!(name);
    Ok(cr)
}

/// The Workflow of `example` is accepted by the real Argo CRD (created for real: no Argo
/// controller runs, so it stays inert), and each executor step's chart key gives, from the
/// group's revision, the HelmRepository + HelmRelease of exactly its own chart.
async fn workflow_calls_the_executor_right(example_file: &str) -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope(&format!("exec-wf-{example_file}"));
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let group = example(example_file)?;
    let (workflow, spec) = generated_workflow(&group, &ns, &scope.name("r1"), &scope)?;

    let api = Api::<DynamicObject>::namespaced_with(client, &ns, &workflow_resource());
    let obj: DynamicObject = serde_json::from_value(workflow.clone())?;
    api.create(
        &PostParams {
            dry_run: true,
            ..PostParams::default()
        },
        &obj,
    )
    .await
    .context("the Argo Workflow CRD refused the generated Workflow (dry run)")?;
    let stored = api
        .create(&PostParams::default(), &obj)
        .await
        .context("the Argo Workflow CRD refused the generated Workflow")?;
    let stored = serde_json::to_value(&stored)?;
    // Nothing was pruned or rewritten by the schema.
    assert_eq!(
        stored["spec"], workflow["spec"],
        "the stored Workflow differs from the generated one"
    );

    // The executor template runs our binary on the step's chart of the Workflow's revision.
    let template = stored["spec"]["templates"]
        .as_array()
        .and_then(|ts| {
            ts.iter()
                .find(|t| t["name"] == orkestra::emit::argo::HELMRELEASE_TEMPLATE)
        })
        .context("no executor-helmrelease template")?;
    assert_eq!(
        template["container"]["command"],
        json!(["kubectl-orkestra"])
    );
    assert_eq!(
        template["container"]["args"],
        json!([
            "executor",
            "helmrelease",
            "--action",
            "install",
            "--revision",
            "{{workflow.namespace}}/{{workflow.name}}",
            "--chart",
            "{{inputs.parameters.chart}}",
            "--timeout",
            "{{inputs.parameters.timeout}}"
        ])
    );

    let cr = revision_of(&group, &ns, &scope.name("r1"))?;
    let steps = executor_steps(&stored);
    let mut expected = 0;
    for app in &spec.applications {
        let app_template = orkestra::emit::argo::app_template(&app.name);
        let chart = app.spec.chart.clone().unwrap_or_default();
        let release = app.spec.release.clone().unwrap_or_default();
        for r in orkestra::naming::releases_of(app) {
            expected += 1;
            let task = orkestra::emit::argo::app_key(r.subchart.as_deref().unwrap_or(&app.name));
            let step = steps
                .iter()
                .find(|(t, name, _, _)| *t == app_template && *name == task)
                .with_context(|| format!("no executor step for {} in {app_template}", r.name))?;
            // The step allows every retry Flux makes after a failed action.
            assert_eq!(
                step.3,
                orkestra::emit::argo::step_timeout(app),
                "timeout of {}",
                r.name
            );
            let action = orkestra::duration::parse(release.timeout.as_deref().unwrap_or("5m"))
                .unwrap_or_default();
            ensure!(
                orkestra::duration::parse(&step.3).unwrap_or_default() > action,
                "the step of {} must outlast one Helm action",
                r.name
            );
            let text = orkestra::emit::manifest::step_manifest(&cr, &step.2)
                .with_context(|| format!("no manifest for chart {}", step.2))?
                .to_string();
            let docs = orkestra::input::load::documents(&text).map_err(|e| anyhow!("{e}"))?;
            let hr = docs
                .iter()
                .find(|d| d.kind() == "HelmRelease")
                .with_context(|| format!("no HelmRelease for chart {}", step.2))?;
            let repo = docs
                .iter()
                .find(|d| d.kind() == "HelmRepository")
                .with_context(|| format!("no HelmRepository for chart {}", step.2))?;
            let hr = &hr.value;
            assert_eq!(hr["apiVersion"], "helm.toolkit.fluxcd.io/v2");
            assert_eq!(hr["metadata"]["name"], r.name.as_str(), "step {}", step.2);
            assert_eq!(
                hr["metadata"]["namespace"],
                r.namespace.as_str(),
                "step {}",
                step.2
            );
            let chart_name = r.subchart.clone().unwrap_or_else(|| chart.name.clone());
            assert_eq!(
                hr["spec"]["chart"]["spec"]["chart"],
                chart_name.as_str(),
                "step {}",
                step.2
            );
            assert_eq!(
                hr["spec"]["chart"]["spec"]["sourceRef"]["name"], repo.value["metadata"]["name"],
                "step {}",
                step.2
            );
            assert_eq!(
                repo.value["spec"]["url"],
                chart.url.as_str(),
                "step {}",
                step.2
            );
            if r.subchart.is_none() {
                assert_eq!(
                    hr["spec"]["chart"]["spec"]["version"],
                    chart.version.clone().unwrap_or_default().as_str()
                );
            }
        }
    }
    assert_eq!(
        steps.len(),
        expected,
        "one executor step per chart: {steps:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bookinfo_workflow_fits_the_argo_crd_schema_and_gives_each_step_its_release() -> Result<()>
{
    workflow_calls_the_executor_right("bookinfo.yaml").await
}

#[tokio::test]
async fn five_g_core_workflow_fits_the_argo_crd_schema_and_gives_each_step_its_release()
-> Result<()> {
    workflow_calls_the_executor_right("5g-core.yaml").await
}

/// One step's arguments, substituted here standing in for Argo (the step's parameters and the Workflow's
/// name and namespace), run the executor as a process against the cluster, reading its manifest
/// from the group's revision, until the (played) Flux reports Ready. Real steps under the real
/// Argo and Flux: real_release.rs.
#[tokio::test]
async fn a_generated_steps_arguments_run_the_executor_against_a_played_flux() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("exec-wf-step");
    let client = cluster.client().await?;
    let mut group = example("bookinfo.yaml")?;
    // Releases land in this test's own namespace, so tests never share one.
    let ns = scope.name("ambassador");
    let _cleanup = Cleanup {
        cluster,
        namespaces: vec![ns.clone()],
    };
    let first = group["spec"]["applications"]
        .as_array_mut()
        .and_then(|apps| apps.first_mut())
        .context("bookinfo has no applications")?;
    first["spec"]["release"]["targetNamespace"] = json!(ns);
    let app_name = first["name"].as_str().unwrap_or_default().to_owned();
    let version = first["spec"]["chart"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let wf_ns = scope.name("wf");
    let wf_name = scope.name("r1");
    let (workflow, _) = generated_workflow(&group, &wf_ns, &wf_name, &scope)?;
    let steps = executor_steps(&workflow);
    let (_, _, chart, timeout) = steps
        .iter()
        .find(|(t, _, _, _)| *t == orkestra::emit::argo::app_template(&app_name))
        .context("no step for the first application")?;
    let _wf_cleanup = Cleanup {
        cluster,
        namespaces: vec![wf_ns.clone()],
    };
    cluster
        .kubectl(["create", "namespace", &wf_ns])
        .await?
        .expect_success()?;
    let cr: k8s_openapi::api::apps::v1::ControllerRevision =
        serde_json::from_value(revision_of(&group, &wf_ns, &wf_name)?)?;
    Api::<k8s_openapi::api::apps::v1::ControllerRevision>::namespaced(client.clone(), &wf_ns)
        .create(&PostParams::default(), &cr)
        .await
        .context("creating the group's revision")?;
    let template = workflow["spec"]["templates"]
        .as_array()
        .and_then(|ts| {
            ts.iter()
                .find(|t| t["name"] == orkestra::emit::argo::HELMRELEASE_TEMPLATE)
        })
        .context("no executor template")?;
    let args: Vec<String> = template["container"]["args"]
        .as_array()
        .context("no args")?
        .iter()
        .filter_map(Value::as_str)
        .map(|a| {
            a.replace("{{inputs.parameters.chart}}", chart)
                .replace("{{inputs.parameters.timeout}}", timeout)
                .replace("{{workflow.namespace}}", &wf_ns)
                .replace("{{workflow.name}}", &wf_name)
        })
        .collect();
    ensure!(args[..2] == ["executor", "helmrelease"], "{args:?}");
    let mut all: Vec<&str> = args[2..].iter().map(String::as_str).collect();
    all.extend(["--interval", INTERVAL]);
    let mut run = start(cluster, &all)?;
    run.wait_for("namespace-created", |l| l["namespace"] == ns.as_str())
        .await?;
    run.wait_state("Pending").await?;
    let release = orkestra::naming::release_name(&app_name);
    write_status(
        &helmreleases(&client, &ns),
        &release,
        released(1, &version, "install"),
    )
    .await?;
    let done = run.finish().await?;
    done.expect_code(0)?;
    assert_eq!(
        done.event("released")?["helmRelease"],
        format!("{ns}/{release}")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RBAC

/// A kubeconfig for the workflow service account `orkestra/orkestra`, with a fresh token.
async fn service_account_kubeconfig(cluster: &TestCluster, scope: &TestScope) -> Result<PathBuf> {
    let token = cluster
        .kubectl([
            "create",
            "token",
            "orkestra",
            "-n",
            "orkestra",
            "--duration",
            "10m",
        ])
        .await?
        .expect_success()?
        .stdout
        .trim()
        .to_owned();
    let server = match std::env::var("ORKESTRA_TEST_SERVER") {
        Ok(server) if !server.is_empty() => server,
        _ => {
            let admin: Value =
                serde_saphyr::from_str(&std::fs::read_to_string(cluster.kubeconfig())?)?;
            admin["clusters"][0]["cluster"]["server"]
                .as_str()
                .context("no server in the test kubeconfig")?
                .to_owned()
        }
    };
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "test", "cluster": {
            "server": server, "certificate-authority": cluster.ca_path() } }],
        "users": [{ "name": "orkestra", "user": { "token": token } }],
        "contexts": [{ "name": "orkestra", "context": { "cluster": "test", "user": "orkestra" } }],
        "current-context": "orkestra",
    });
    let path = std::env::temp_dir().join(format!("{}-sa.kubeconfig", scope.id()));
    std::fs::write(&path, kubeconfig.to_string())?;
    Ok(path)
}

/// manifests/executor (applied as a user would) gives the workflow service account exactly what
/// the executor needs: create a namespace, apply, wait, delete. And not more than that.
#[tokio::test]
async fn the_workflow_service_account_can_run_the_executor() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("exec-rbac");
    let client = cluster.client().await?;
    let dir = format!("{}/../../manifests/executor", env!("CARGO_MANIFEST_DIR"));
    cluster
        .kubectl(["apply", "--server-side", "-k", &dir])
        .await?
        .expect_success()?;
    let kubeconfig = service_account_kubeconfig(cluster, &scope).await?;
    let ns = scope.name("apps");
    let _cleanup = Cleanup {
        cluster,
        namespaces: vec![ns.clone()],
    };
    let m = manifest(&scope, &ns, "web", "1.0.0", json!({}));
    let text = m.to_string();
    let mut run = start_as(
        cluster,
        &kubeconfig,
        &[],
        &[
            "--action",
            "install",
            "--manifest",
            &text,
            "--interval",
            INTERVAL,
        ],
    )?;
    run.wait_for("namespace-created", |l| l["namespace"] == ns.as_str())
        .await?;
    run.wait_state("Pending").await?;
    let api = helmreleases(&client, &ns);
    write_status(&api, "web", released(1, "1.0.0", "install")).await?;
    run.finish().await?.expect_code(0)?;
    let hr = api.get("web").await?;
    let appliers: Vec<&str> = hr
        .managed_fields()
        .iter()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert_eq!(appliers, vec!["orkestra-executor"]);
    let done = start_as(
        cluster,
        &kubeconfig,
        &[],
        &[
            "--action",
            "delete",
            "--manifest",
            &text,
            "--interval",
            INTERVAL,
        ],
    )?
    .finish()
    .await?;
    done.expect_code(0)?;
    done.event("deleted")?;

    // It reads its step's manifest from the group's revision in the workflow namespace.
    let sa = "system:serviceaccount:orkestra:orkestra";
    let out = cluster
        .kubectl([
            "auth",
            "can-i",
            "get",
            "controllerrevisions",
            "-n",
            "orkestra",
            "--as",
            sa,
        ])
        .await?;
    ensure!(
        out.stdout.trim() == "yes",
        "{sa} cannot read revisions: {out}"
    );
    // Nothing beyond that: no Secrets, no workloads.
    for (verb, resource) in [
        ("get", "secrets"),
        ("create", "deployments"),
        ("delete", "namespaces"),
    ] {
        let out = cluster
            .kubectl(["auth", "can-i", verb, resource, "-n", &ns, "--as", sa])
            .await?;
        ensure!(
            out.stdout.trim() == "no",
            "{sa} can {verb} {resource}: {out}"
        );
    }
    let _ = std::fs::remove_file(&kubeconfig);
    Ok(())
}
