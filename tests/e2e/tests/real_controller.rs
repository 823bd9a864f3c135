//! `orkestra-controller` against the real node, the real Argo controller and the real Flux
//! controllers of `tests/cluster/cluster.sh up --node`. The controller runs as a process with the
//! test cluster's kubeconfig, limited to each test's groups by `--watch-label-selector`, so the
//! tests run side by side. Nothing here writes a Workflow's, a HelmRelease's or a group's status.
//!
//! Each test prints its figures (`figure: ...`); none is a timed assertion.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use orkestra_e2e::{
    CommandOutput, TestCluster, TestScope, applicationgroup_resource, helmrelease_resource,
    helmrepository_resource, workflow_resource, workspace_bin,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The workflow namespace of the harness (`manifests/executor`).
const WORKFLOW_NAMESPACE: &str = "orkestra";
/// Bound of one release of a small group here.
const RELEASE: Duration = Duration::from_secs(300);
/// The lease duration the tests give the controllers.
const LEASE: Duration = Duration::from_secs(6);

fn app(repo: &str, name: &str, deps: &[&str], chart: &str, ns: &str, values: Value) -> Value {
    json!({"name": name, "dependencies": deps, "spec": {
        "chart": {"url": repo, "name": chart, "version": "1.0.0"},
        "release": {"targetNamespace": ns, "timeout": "2m", "values": values}}})
}

fn group_manifest(
    scope: &TestScope,
    name: &str,
    applications: &[Value],
    policy: Option<Value>,
) -> Result<Value> {
    let mut object = json!({
        "apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
        "metadata": {"name": name}, "spec": {"applications": applications},
    });
    if let Some(p) = policy {
        object["spec"]["releasePolicy"] = p;
    }
    scope.label(&mut object)?;
    Ok(object)
}

/// `kubectl apply`s a group (through the harness's webhook); `server_side` as Flux applies.
async fn apply(cluster: &TestCluster, object: &Value, server_side: bool) -> Result<()> {
    let mut args = vec!["apply", "-f", "-"];
    if server_side {
        args.extend([
            "--server-side",
            "--force-conflicts",
            "--field-manager=gitops",
        ]);
    }
    cluster
        .kubectl_stdin(args, &object.to_string())
        .await?
        .expect_success()
        .context("kubectl apply of the group")?;
    Ok(())
}

async fn plugin(cluster: &TestCluster, args: &[&str]) -> Result<CommandOutput> {
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.args(args);
    orkestra_e2e::run(cmd, None).await
}

/// A free port on 127.0.0.1 (taken back at once; the controller binds it next).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `orkestra-controller` (killed when dropped).
struct Controller {
    child: tokio::process::Child,
    port: u16,
    identity: String,
}

impl Controller {
    async fn start(cluster: &TestCluster, scope: &TestScope, identity: &str) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = cluster.command(workspace_bin("orkestra-controller")?);
        cmd.args([
            "--metrics-bind-address",
            &format!("127.0.0.1:{port}"),
            "--watch-label-selector",
            &scope.label_selector(),
            "--lease-name",
            &scope.name("lease"),
            "--lease-namespace",
            WORKFLOW_NAMESPACE,
            "--lease-duration",
            &format!("{}s", LEASE.as_secs()),
            "--identity",
            identity,
            "--requeue-in-flight",
            "5s",
        ])
        .env("RUST_LOG", "info,kube=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
        let child = cmd.spawn().context("starting orkestra-controller")?;
        let controller = Self {
            child,
            port,
            identity: identity.to_string(),
        };
        orkestra_e2e::eventually(
            Duration::from_secs(20),
            "the controller's /healthz",
            || async { Ok(controller.get("/healthz").await.ok().map(|_| ())) },
        )
        .await?;
        Ok(controller)
    }

    /// GET `path` from the controller's metrics server.
    async fn get(&self, path: &str) -> Result<String> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        ensure!(
            out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
            "{out}"
        );
        Ok(out)
    }

    /// A counter or gauge from /metrics (`name{labels}` as printed).
    async fn metric(&self, series: &str) -> Result<f64> {
        let text = self.get("/metrics").await?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .with_context(|| format!("no {series} in /metrics"))
    }

    async fn leading(&self) -> bool {
        self.metric("orkestra_controller_leader").await.ok() == Some(1.0)
    }

    /// The process's resident memory, from /proc.
    fn rss_kib(&self) -> Result<u64> {
        let pid = self.child.id().context("the controller exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("no VmRSS")
    }
}

async fn groups_api(cluster: &TestCluster) -> Result<Api<DynamicObject>> {
    Ok(Api::all_with(
        cluster.client().await?,
        &applicationgroup_resource(),
    ))
}

async fn group(cluster: &TestCluster, name: &str) -> Result<Value> {
    Ok(serde_json::to_value(
        groups_api(cluster).await?.get(name).await?,
    )?)
}

/// The group's `Ready` condition: (status, reason, message).
fn ready(group: &Value) -> Option<(String, String, String)> {
    let c = group
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

/// Waits until the group's status is about its current generation and `Ready` has `reason`.
async fn until_ready_reason(cluster: &TestCluster, name: &str, reason: &str) -> Result<Value> {
    orkestra_e2e::eventually(
        RELEASE,
        &format!("{name}: Ready reason {reason}"),
        || async {
            let g = group(cluster, name).await?;
            let current =
                g.pointer("/status/observedGeneration") == g.pointer("/metadata/generation");
            Ok((current && ready(&g).is_some_and(|r| r.1 == reason)).then_some(g))
        },
    )
    .await
}

/// The group's revisions: (number, type, rollback-to), oldest first.
async fn revisions(
    cluster: &TestCluster,
    name: &str,
) -> Result<Vec<(i64, String, Option<String>)>> {
    let api: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(cluster.client().await?, WORKFLOW_NAMESPACE);
    let selector = format!(
        "{}={}",
        orkestra::labels::OWNER,
        orkestra::labels::owner_label(name)
    );
    let mut out: Vec<(i64, String, Option<String>)> = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .map(|r| {
            let labels = r.metadata.labels.unwrap_or_default();
            let annotations = r.metadata.annotations.unwrap_or_default();
            (
                r.revision,
                labels
                    .get(orkestra::labels::WORKFLOW_TYPE_LABEL)
                    .cloned()
                    .unwrap_or_default(),
                annotations.get(orkestra::labels::ROLLBACK_OF).cloned(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

async fn workflow_exists(cluster: &TestCluster, name: &str) -> Result<bool> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client().await?,
        WORKFLOW_NAMESPACE,
        &workflow_resource(),
    );
    Ok(api.get_opt(name).await?.is_some())
}

/// The HelmReleases of namespace `ns`, by name.
async fn helm_releases(client: &Client, ns: &str) -> Result<Vec<String>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &helmrelease_resource());
    Ok(api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|h| h.metadata.name)
        .collect())
}

/// The reasons of the events recorded on group `name`, oldest first.
async fn event_reasons(cluster: &TestCluster, name: &str) -> Result<Vec<String>> {
    let out = cluster
        .kubectl([
            "get",
            "events.events.k8s.io",
            "-A",
            "--field-selector",
            &format!("regarding.name={name}"),
            "-o",
            "json",
        ])
        .await?
        .expect_success()?;
    let list: Value = serde_json::from_str(&out.stdout)?;
    let mut events: Vec<(String, String)> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["regarding"]["kind"] == "ApplicationGroup")
        .map(|e| {
            (
                e["eventTime"].as_str().unwrap_or_default().to_string(),
                e["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    events.sort();
    Ok(events.into_iter().map(|(_, r)| r).collect())
}

/// Deletes the group and waits until it is gone (the controller lifts its finalizer).
async fn delete_and_wait(cluster: &TestCluster, name: &str) -> Result<()> {
    cluster
        .kubectl(["delete", "applicationgroup", name, "--wait=false"])
        .await?
        .expect_success()?;
    orkestra_e2e::eventually(
        RELEASE,
        &format!("ApplicationGroup {name} to be gone"),
        || async {
            Ok(groups_api(cluster)
                .await?
                .get_opt(name)
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn automatic_releases_on_apply_and_on_change_never_twice_for_one_spec() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("ctl-auto");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let repo = cluster.chart_repo().to_string();
    let name = scope.name("g");
    let _controller = Controller::start(cluster, &scope, "solo").await?;
    let policy = json!({"automatic": true});
    let v1 = [
        app(&repo, "db", &[], "probe", &ns, json!({"owner": "db"})),
        app(&repo, "api", &["db"], "probe", &ns, json!({"owner": "api"})),
    ];
    let object = group_manifest(&scope, &name, &v1, Some(policy.clone()))?;

    // `kubectl apply` alone releases it: no plugin command.
    let applied = Instant::now();
    apply(cluster, &object, false).await?;
    let r1 = format!("{name}-r1");
    orkestra_e2e::eventually(RELEASE, "the Workflow of revision 1", || async {
        Ok(workflow_exists(cluster, &r1).await?.then_some(()))
    })
    .await?;
    println!(
        "figure: kubectl apply -> Workflow created: {} ms",
        applied.elapsed().as_millis()
    );
    cluster
        .kubectl([
            "wait",
            "--for=condition=Ready",
            &format!("applicationgroup/{name}"),
            "--timeout=300s",
        ])
        .await?
        .expect_success()
        .context("kubectl wait --for=condition=Ready")?;
    println!(
        "figure: kubectl apply -> Ready: {} ms",
        applied.elapsed().as_millis()
    );
    let get = cluster
        .kubectl(["get", "applicationgroup", &name])
        .await?
        .expect_success()?;
    let row = get.stdout.lines().nth(1).unwrap_or_default().to_string();
    let cells: Vec<&str> = row.split_whitespace().collect();
    ensure!(
        cells.get(1) == Some(&"True") && cells.get(2) == Some(&"Succeeded"),
        "kubectl get ag shows {row:?}\n{}",
        get.stdout
    );
    let g = group(cluster, &name).await?;
    ensure!(
        g.pointer("/status/lastSucceededGeneration") == g.pointer("/metadata/generation"),
        "lastSucceededGeneration: {:?}",
        g.pointer("/status")
    );
    let apps = g["status"]["applications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        apps.len() == 2
            && apps.iter().all(|a| a["version"] == "1.0.0"
                && a["conditions"].as_array().is_some_and(|c| c
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True"))),
        "per-application status: {apps:?}"
    );
    ensure!(revisions(cluster, &name).await?.len() == 1);

    // A spec change: revision 2, by the controller.
    let v2 = [
        v1[0].clone(),
        app(
            &repo,
            "api",
            &["db"],
            "probe",
            &ns,
            json!({"owner": "api", "color": "blue"}),
        ),
    ];
    apply(
        cluster,
        &group_manifest(&scope, &name, &v2, Some(policy.clone()))?,
        false,
    )
    .await?;
    until_ready_reason(cluster, &name, "Succeeded").await?;
    let revs = revisions(cluster, &name).await?;
    ensure!(
        revs.iter().map(|r| r.0).collect::<Vec<_>>() == vec![1, 2],
        "revisions after the change: {revs:?}"
    );

    // The same spec again, server-side as Flux applies it: no new revision.
    apply(
        cluster,
        &group_manifest(&scope, &name, &v2, Some(policy))?,
        true,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let revs = revisions(cluster, &name).await?;
    ensure!(
        revs.len() == 2,
        "a same-spec re-apply made a revision: {revs:?}"
    );
    let events = event_reasons(cluster, &name).await?;
    ensure!(
        events.iter().filter(|r| *r == "Released").count() == 2,
        "events: {events:?}"
    );
    delete_and_wait(cluster, &name).await?;
    Ok(())
}

#[tokio::test]
async fn manual_groups_wait_for_promote_and_status_still_follows() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("ctl-manual");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let repo = cluster.chart_repo().to_string();
    let name = scope.name("g");
    let _controller = Controller::start(cluster, &scope, "solo").await?;
    let apps = [app(&repo, "one", &[], "probe", &ns, json!({}))];
    apply(cluster, &group_manifest(&scope, &name, &apps, None)?, false).await?;
    let g = until_ready_reason(cluster, &name, "PromotionPending").await?;
    let (status, _, message) = ready(&g).context("no Ready condition")?;
    ensure!(
        status == "False" && message.contains("kubectl orkestra promote"),
        "{message}"
    );
    ensure!(
        g.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|f| f == orkestra_cluster_finalizer())),
        "no finalizer: {:?}",
        g.pointer("/metadata")
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(
        revisions(cluster, &name).await?.is_empty(),
        "released without promote"
    );

    plugin(cluster, &["promote", &name])
        .await?
        .expect_success()?;
    // While it runs the status says so; then Ready.
    until_ready_reason(cluster, &name, "Succeeded").await?;
    let g = group(cluster, &name).await?;
    let forward = g["status"]["conditions"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["type"] == "ForwardWorkflowSucceeded")
                .cloned()
        })
        .context("no ForwardWorkflowSucceeded condition")?;
    ensure!(forward["status"] == "True", "{forward}");
    ensure!(revisions(cluster, &name).await?.len() == 1);
    delete_and_wait(cluster, &name).await?;
    Ok(())
}

fn orkestra_cluster_finalizer() -> &'static str {
    "orkestra.azure.microsoft.com/finalizer"
}

#[tokio::test]
async fn a_failed_release_is_rolled_back_once_and_history_says_so() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("ctl-rollback");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let repo = cluster.chart_repo().to_string();
    let name = scope.name("g");
    let controller = Controller::start(cluster, &scope, "solo").await?;
    let policy = json!({"automatic": true, "rollbackOnFailure": true});
    let good = [
        app(&repo, "db", &[], "probe", &ns, json!({})),
        app(&repo, "api", &["db"], "probe", &ns, json!({})),
    ];
    apply(
        cluster,
        &group_manifest(&scope, &name, &good, Some(policy.clone()))?,
        false,
    )
    .await?;
    until_ready_reason(cluster, &name, "Succeeded").await?;

    // api moves to a chart that fails to render: revision 2 fails, revision 3 rolls back to 1.
    let bad = [
        good[0].clone(),
        app(&repo, "api", &["db"], "broken", &ns, json!({})),
    ];
    apply(
        cluster,
        &group_manifest(&scope, &name, &bad, Some(policy))?,
        false,
    )
    .await?;
    orkestra_e2e::eventually(RELEASE, "the rollback revision", || async {
        let revs = revisions(cluster, &name).await?;
        Ok((revs.len() >= 3).then_some(()))
    })
    .await?;
    until_ready_reason(cluster, &name, "Succeeded").await?;
    // Settled: no second rollback, no new release of the broken spec.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let revs = revisions(cluster, &name).await?;
    ensure!(
        revs == vec![
            (1, "forward".into(), None),
            (2, "forward".into(), None),
            (3, "rollback".into(), Some("1".into())),
        ],
        "revisions: {revs:?}"
    );
    let g = group(cluster, &name).await?;
    let api_chart = g
        .pointer("/spec/applications/1/spec/chart/name")
        .and_then(Value::as_str);
    ensure!(
        api_chart == Some("probe"),
        "the spec was not set back: {api_chart:?}"
    );
    let rolled = g["status"]["conditions"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["type"] == "RollbackWorkflowSucceeded")
                .cloned()
        })
        .context("no RollbackWorkflowSucceeded condition")?;
    ensure!(rolled["status"] == "True", "{rolled}");
    let history = plugin(cluster, &["history", &name])
        .await?
        .expect_success()?;
    ensure!(
        history
            .stdout
            .lines()
            .any(|l| l.contains("rollback") && l.contains('1')),
        "history:\n{}",
        history.stdout
    );
    let events = event_reasons(cluster, &name).await?;
    ensure!(
        events.iter().filter(|r| *r == "RolledBack").count() == 1
            && events.iter().filter(|r| *r == "Released").count() == 2,
        "events: {events:?}"
    );
    ensure!(
        controller
            .metric("orkestra_controller_releases_total{outcome=\"rolled_back\"}")
            .await?
            == 1.0
    );

    // GitOps re-applies the broken spec: held, not released (and not rolled back) again.
    let bad_again = group_manifest(
        &scope,
        &name,
        &bad,
        Some(json!({"automatic": true, "rollbackOnFailure": true})),
    )?;
    apply(cluster, &bad_again, true).await?;
    let g = until_ready_reason(cluster, &name, "Held").await?;
    let (_, _, message) = ready(&g).context("no Ready")?;
    ensure!(message.contains("failed as revision 2"), "{message}");
    ensure!(revisions(cluster, &name).await?.len() == 3);
    delete_and_wait(cluster, &name).await?;
    Ok(())
}

#[tokio::test]
async fn delete_removes_releases_dependents_first_and_orphan_keeps_them() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("ctl-delete");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "apps").await?;
    let repo = cluster.chart_repo().to_string();
    let name = scope.name("g");
    let _controller = Controller::start(cluster, &scope, "solo").await?;
    // a <- b <- c, and d beside b: c goes first, then b and d, then a.
    let apps = [
        app(&repo, "a", &[], "probe", &ns, json!({})),
        app(&repo, "b", &["a"], "probe", &ns, json!({})),
        app(&repo, "c", &["b"], "probe", &ns, json!({})),
        app(&repo, "d", &["a"], "probe", &ns, json!({})),
    ];
    let policy = json!({"automatic": true});
    apply(
        cluster,
        &group_manifest(&scope, &name, &apps, Some(policy.clone()))?,
        false,
    )
    .await?;
    until_ready_reason(cluster, &name, "Succeeded").await?;
    let mut present = helm_releases(&client, &ns).await?;
    present.sort();
    ensure!(present == ["a", "b", "c", "d"], "HelmReleases: {present:?}");

    let deleted = Instant::now();
    cluster
        .kubectl(["delete", "applicationgroup", &name, "--wait=false"])
        .await?
        .expect_success()?;
    // Seen from outside: when each HelmRelease disappears.
    let mut gone: BTreeMap<String, Duration> = BTreeMap::new();
    let mut terminating_seen = false;
    loop {
        let now = helm_releases(&client, &ns).await?;
        for hr in ["a", "b", "c", "d"] {
            if !now.iter().any(|n| n == hr) {
                gone.entry(hr.to_string()).or_insert(deleted.elapsed());
            }
        }
        let g = groups_api(cluster).await?.get_opt(&name).await?;
        if let Some(g) = &g {
            let g = serde_json::to_value(g)?;
            terminating_seen |= ready(&g).is_some_and(|r| r.1 == "Terminating");
        } else {
            break;
        }
        if deleted.elapsed() > RELEASE {
            bail!("the group was not gone after {RELEASE:?}; HelmReleases gone: {gone:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "figure: delete -> HelmRelease gone: {gone:?}; group gone after {:?}",
        deleted.elapsed()
    );
    ensure!(gone.len() == 4, "not every HelmRelease went: {gone:?}");
    ensure!(
        gone["c"] <= gone["b"] && gone["b"] <= gone["a"] && gone["d"] <= gone["a"],
        "order: {gone:?}"
    );
    ensure!(terminating_seen, "status never said Terminating");
    let repos: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &helmrepository_resource());
    let left = repos.list(&Default::default()).await?.items;
    ensure!(
        left.is_empty(),
        "HelmRepositories left: {:?}",
        left.iter()
            .map(|r| r.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    ensure!(!workflow_exists(cluster, &format!("{name}-reverse")).await?);

    // With the orphan annotation the releases stay.
    let kept = scope.name("kept");
    let one = [app(&repo, "solo", &[], "probe", &ns, json!({}))];
    let mut object = group_manifest(&scope, &kept, &one, Some(policy))?;
    object["metadata"]["annotations"] =
        json!({"orkestra.azure.microsoft.com/orphan-releases": "true"});
    apply(cluster, &object, false).await?;
    until_ready_reason(cluster, &kept, "Succeeded").await?;
    delete_and_wait(cluster, &kept).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        helm_releases(&client, &ns).await? == ["solo"],
        "the orphaned HelmRelease went"
    );
    Ok(())
}

#[tokio::test]
async fn only_the_leader_acts_and_a_standby_takes_over_without_a_duplicate() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("ctl-leader");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let repo = cluster.chart_repo().to_string();
    let name = scope.name("g");
    let mut first = Controller::start(cluster, &scope, "first").await?;
    orkestra_e2e::eventually(Duration::from_secs(20), "a leader", || async {
        Ok(first.leading().await.then_some(()))
    })
    .await?;
    let mut second = Controller::start(cluster, &scope, "second").await?;
    tokio::time::sleep(LEASE).await;
    ensure!(
        first.leading().await && !second.leading().await,
        "two leaders, or none"
    );

    let policy = json!({"automatic": true});
    let v1 = [app(&repo, "one", &[], "probe", &ns, json!({}))];
    apply(
        cluster,
        &group_manifest(&scope, &name, &v1, Some(policy.clone()))?,
        false,
    )
    .await?;
    until_ready_reason(cluster, &name, "Succeeded").await?;
    ensure!(
        second
            .metric("orkestra_controller_reconciles_total")
            .await?
            == 0.0,
        "the standby reconciled"
    );

    // Kill the leader (no chance to give the Lease up); change the spec meanwhile.
    let killed = Instant::now();
    first.child.start_kill()?;
    let _ = first.child.wait().await;
    let v2 = [app(
        &repo,
        "one",
        &[],
        "probe",
        &ns,
        json!({"color": "green"}),
    )];
    apply(
        cluster,
        &group_manifest(&scope, &name, &v2, Some(policy))?,
        false,
    )
    .await?;
    orkestra_e2e::eventually(LEASE * 4, "the standby to lead", || async {
        Ok(second.leading().await.then_some(()))
    })
    .await?;
    println!(
        "figure: leader killed -> standby leads: {} ms (lease {} s); identity {}",
        killed.elapsed().as_millis(),
        LEASE.as_secs(),
        second.identity
    );
    until_ready_reason(cluster, &name, "Succeeded").await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let revs = revisions(cluster, &name).await?;
    ensure!(
        revs.iter().map(|r| r.0).collect::<Vec<_>>() == vec![1, 2],
        "revisions: {revs:?}"
    );
    delete_and_wait(cluster, &name).await?;

    // SIGTERM: the leader stops, gives the Lease up (no one waits out its duration) and exits 0.
    let pid = second.child.id().context("the controller exited")?;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let exit = tokio::time::timeout(Duration::from_secs(20), second.child.wait()).await??;
    ensure!(exit.success(), "exit after SIGTERM: {exit}");
    let lease: k8s_openapi::api::coordination::v1::Lease =
        Api::namespaced(cluster.client().await?, WORKFLOW_NAMESPACE)
            .get(&scope.name("lease"))
            .await?;
    ensure!(
        lease.spec.and_then(|s| s.holder_identity).is_none(),
        "the Lease was not given up"
    );
    Ok(())
}

#[tokio::test]
async fn memory_with_a_hundred_groups() -> Result<()> {
    let cluster = orkestra_e2e::node_cluster_or_skip!();
    let mut scope = cluster.scope("ctl-hundred");
    let ns = scope.namespace(&cluster.client().await?, "apps").await?;
    let repo = cluster.chart_repo().to_string();
    let controller = Controller::start(cluster, &scope, "solo").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = controller.rss_kib()?;
    let api = groups_api(cluster).await?;
    let names: Vec<String> = (0..100).map(|i| scope.name(&format!("m{i}"))).collect();
    for (i, name) in names.iter().enumerate() {
        let apps = [
            app(&repo, "db", &[], "probe", &ns, json!({"i": i})),
            app(&repo, "api", &["db"], "probe", &ns, json!({})),
        ];
        let object: DynamicObject =
            serde_json::from_value(group_manifest(&scope, name, &apps, None)?)?;
        api.create(&PostParams::default(), &object).await?;
    }
    // Every group gets its status.
    orkestra_e2e::eventually(Duration::from_secs(180), "100 statuses", || async {
        let list = api
            .list(&kube::api::ListParams::default().labels(&scope.label_selector()))
            .await?;
        let done = list
            .items
            .iter()
            .filter(|g| {
                serde_json::to_value(g)
                    .ok()
                    .and_then(|g| ready(&g))
                    .is_some_and(|r| r.1 == "PromotionPending")
            })
            .count();
        Ok((done == 100).then_some(()))
    })
    .await?;
    let busy = controller.rss_kib()?;
    println!(
        "figure: controller RSS idle {} KiB, with 100 groups {} KiB",
        idle, busy
    );
    ensure!(
        busy < 256 * 1024,
        "the controller takes {busy} KiB for 100 groups"
    );
    for name in &names {
        let _ = cluster
            .kubectl(["delete", "applicationgroup", name, "--wait=false"])
            .await;
    }
    orkestra_e2e::eventually(Duration::from_secs(180), "100 groups gone", || async {
        let list = api
            .list(&kube::api::ListParams::default().labels(&scope.label_selector()))
            .await?;
        Ok(list.items.is_empty().then_some(()))
    })
    .await?;
    Ok(())
}
