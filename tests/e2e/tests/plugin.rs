//! `kubectl orkestra` status, graph, promote, rollback and history against the real kube-apiserver
//! with the real Argo Workflow and Flux HelmRelease CRDs. No Argo or Flux controller runs: the tests
//! write Workflow node statuses and HelmRelease conditions through the API as those controllers
//! would, then read them back through the plugin.
//!
//! Groups are created already defaulted (`orkestra::admission::defaults::default_object`, exactly what the
//! mutating webhook stores), with their Workflows in a namespace of the test.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use orkestra_e2e::{
    CommandOutput, TestCluster, TestScope, applicationgroup_resource, cluster_or_skip,
    helmrelease_resource, workflow_resource, workspace_bin,
};
use serde_json::{Value, json};

/// Every test but the one that removes the CRD holds this for reading.
static CRD_LOCK: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

const OWNER: &str = "orkestra.azure.microsoft.com/owner";

fn controller_revisions() -> ApiResource {
    orkestra::api::resources::CONTROLLER_REVISION.api_resource()
}

async fn plugin(cluster: &TestCluster, context: &str, args: &[&str]) -> Result<CommandOutput> {
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.args(args).arg("--context").arg(context);
    orkestra_e2e::run(cmd, None).await
}

fn app(name: &str, deps: &[&str], version: &str, ns: &str) -> Value {
    json!({"name": name, "dependencies": deps, "spec": {
        "chart": {"url": "https://charts.example.com", "name": name, "version": version},
        "release": {"targetNamespace": ns, "values": {"replicas": 1}}}})
}

/// Creates a group (defaulted as the webhook would store it) whose Workflows run in `ns`.
async fn create_group(
    client: &Client,
    scope: &TestScope,
    name: &str,
    ns: &str,
    apps: Vec<Value>,
) -> Result<Value> {
    let mut object = json!({
        "apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
        "metadata": {"name": name},
        "spec": {"applications": apps, "workflowTemplate": {"namespace": ns}},
    });
    scope.label(&mut object)?;
    let object = orkestra::admission::defaults::default_object(&object)?;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    let object: DynamicObject = serde_json::from_value(object)?;
    // Right after another test re-installs the CRD, the resource can take a moment to be served.
    let created =
        orkestra_e2e::eventually(Duration::from_secs(30), "creating the group", || async {
            match api.create(&PostParams::default(), &object).await {
                Ok(created) => Ok(Some(created)),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 503 => Ok(None),
                Err(e) => Err(anyhow::Error::from(e).context("creating the group")),
            }
        })
        .await?;
    Ok(serde_json::to_value(created)?)
}

/// Replaces the group's applications (defaulted again, as the webhook would on UPDATE).
async fn update_group(client: &Client, name: &str, apps: Vec<Value>) -> Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    let mut object = serde_json::to_value(api.get(name).await?)?;
    object["spec"]["applications"] = json!(apps);
    let object = orkestra::admission::defaults::default_object(&object)?;
    api.replace(
        name,
        &PostParams::default(),
        &serde_json::from_value(object)?,
    )
    .await?;
    Ok(())
}

async fn get(client: &Client, ar: &ApiResource, ns: Option<&str>, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    Ok(serde_json::to_value(
        api.get(name)
            .await
            .with_context(|| format!("getting {name}"))?,
    )?)
}

async fn list(client: &Client, ar: &ApiResource, ns: &str, group: &str) -> Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    let items = api
        .list(&ListParams::default().labels(&format!("{OWNER}={group}")))
        .await?
        .items;
    Ok(items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect())
}

/// Writes a Workflow's status as Argo's controller does (the Workflow CRD has no status subresource).
async fn set_workflow_status(client: &Client, ns: &str, name: &str, status: Value) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &workflow_resource());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .context("writing the Workflow status")?;
    Ok(())
}

fn node(wf: &str, path: &str, template: &str, ty: &str, phase: &str) -> (String, Value) {
    let name = if path.is_empty() {
        wf.to_string()
    } else {
        format!("{wf}.{path}")
    };
    let display = name.rsplit('.').next().unwrap_or_default().to_string();
    let id = format!("{wf}-{}", orkestra::naming::short_hash(&name));
    let mut n = json!({"id": id, "name": name, "displayName": display, "templateName": template, "type": ty, "phase": phase,
        "startedAt": "2026-01-01T10:00:00Z"});
    if !matches!(phase, "Running" | "Pending") {
        n["finishedAt"] = json!("2026-01-01T10:02:00Z");
    }
    (id, n)
}

fn nodes(list: Vec<(String, Value)>) -> Value {
    Value::Object(list.into_iter().collect())
}

/// Creates the HelmRelease of an application as the executor would, and writes its Ready
/// condition as Flux's helm-controller does (through the status subresource).
async fn helm_release(
    client: &Client,
    group: &Value,
    app: &str,
    ready: &str,
    reason: &str,
    message: &str,
) -> Result<()> {
    let spec = orkestra::input::parse::parse_spec(group)?;
    let name = group["metadata"]["name"].as_str().unwrap_or_default();
    let application = spec
        .applications
        .iter()
        .find(|a| a.name == app)
        .context("no such application")?;
    let hr = orkestra::emit::flux::helm_release(name, application, None);
    let version = hr["spec"]["chart"]["spec"]["version"].clone();
    let ns = hr["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &helmrelease_resource());
    api.create(&PostParams::default(), &serde_json::from_value(hr)?)
        .await
        .context("creating the HelmRelease")?;
    // As helm-controller writes it: the chart version it attempted, and the Ready condition.
    let status = json!({"status": {"observedGeneration": 1, "lastAttemptedRevision": version,
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message,
        "lastTransitionTime": "2026-01-01T10:01:00Z", "observedGeneration": 1}]}});
    api.patch_status(app, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context("writing the HelmRelease status")?;
    Ok(())
}

async fn delete_group(client: &Client, name: &str) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    let _ = api.delete(name, &Default::default()).await;
}

#[tokio::test]
async fn promote_records_a_revision_and_a_workflow_from_the_injected_templates_once() -> Result<()>
{
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-promote");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    let group = create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![
            app("db", &[], "1.0.0", &ns),
            app("api", &["db"], "1.0.0", &ns),
        ],
    )
    .await?;

    let dry = plugin(cluster, "admin", &["promote", &name, "--dry-run"])
        .await?
        .expect_success()?;
    ensure!(
        dry.stdout.contains("wave 1: db")
            && dry.stdout.contains("wave 2: api")
            && dry.stdout.contains("Would record revision 1"),
        "{dry}"
    );
    ensure!(
        list(&client, &workflow_resource(), &ns, &name)
            .await?
            .is_empty(),
        "--dry-run created a Workflow"
    );
    ensure!(
        list(&client, &controller_revisions(), &ns, &name)
            .await?
            .is_empty(),
        "--dry-run recorded a revision"
    );

    let out = plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    ensure!(out.stderr.contains("revision 1 recorded"), "{out}");
    let wf_name = format!("{name}-r1");
    let wf = get(&client, &workflow_resource(), Some(&ns), &wf_name).await?;
    ensure!(
        wf["spec"]["templates"] == group["spec"]["workflowTemplate"]["templates"],
        "the Workflow's templates are not the injected ones"
    );
    ensure!(wf["spec"]["entrypoint"] == "entry");
    let labels = &wf["metadata"]["labels"];
    ensure!(
        labels[OWNER] == name.as_str()
            && labels["orkestra.azure.microsoft.com/revision"] == "1"
            && labels["orkestra.azure.microsoft.com/workflow-type"] == "forward",
        "{labels}"
    );
    ensure!(
        wf["metadata"]["ownerReferences"][0]["uid"] == group["metadata"]["uid"],
        "the Workflow is not owned by the group"
    );
    let cr = get(&client, &controller_revisions(), Some(&ns), &wf_name).await?;
    ensure!(
        cr["revision"] == 1 && cr["metadata"]["ownerReferences"][0]["kind"] == "ApplicationGroup",
        "{cr}"
    );
    ensure!(
        cr["data"]["spec"] == group["spec"],
        "the revision does not hold the group's spec"
    );
    ensure!(
        cr["metadata"]["annotations"]["orkestra.azure.microsoft.com/promoted-by"].is_string(),
        "who promoted is not recorded"
    );

    let again = plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    ensure!(
        again.stderr.contains("unchanged since revision 1"),
        "{again}"
    );
    ensure!(
        list(&client, &workflow_resource(), &ns, &name).await?.len() == 1,
        "a second promote of an unchanged spec created a Workflow"
    );
    ensure!(
        list(&client, &controller_revisions(), &ns, &name)
            .await?
            .len()
            == 1,
        "a second promote of an unchanged spec recorded a revision"
    );

    // A changed spec is a new revision with its own Workflow; the first one stays.
    update_group(
        &client,
        &name,
        vec![
            app("db", &[], "1.1.0", &ns),
            app("api", &["db"], "1.0.0", &ns),
        ],
    )
    .await?;
    let dry = plugin(
        cluster,
        "admin",
        &["promote", &name, "--dry-run", "-o", "json"],
    )
    .await?
    .expect_success()?;
    let plan: Value = serde_json::from_str(&dry.stdout)?;
    ensure!(
        plan["changes"][0]["kind"] == "added",
        "no successful release yet, so everything is new: {plan}"
    );
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    get(
        &client,
        &workflow_resource(),
        Some(&ns),
        &format!("{name}-r2"),
    )
    .await?;
    get(&client, &workflow_resource(), Some(&ns), &wf_name).await?;
    // `promote --wait` waits for the release it started (or found): no Argo runs here, so it times out.
    let waited = plugin(
        cluster,
        "admin",
        &[
            "promote",
            &name,
            "--wait",
            "--timeout",
            "1s",
            "--interval",
            "200ms",
        ],
    )
    .await?;
    ensure!(
        waited.code() == Some(3) && waited.stderr.contains("timed out after 1s"),
        "{waited}"
    );

    // The group deleted with its revisions orphaned (no garbage collector runs here) and created
    // again with the same spec: the old revisions are not its own, so promote releases it, with
    // a number that does not collide.
    delete_group(&client, &name).await;
    let groups: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    orkestra_e2e::eventually(Duration::from_secs(30), "the group to be gone", || async {
        Ok(groups.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![
            app("db", &[], "1.1.0", &ns),
            app("api", &["db"], "1.0.0", &ns),
        ],
    )
    .await?;
    let out = plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    ensure!(out.stderr.contains("revision 3 recorded"), "{out}");
    let history = plugin(cluster, "admin", &["history", &name, "-o", "json"])
        .await?
        .expect_success()?;
    let rows: Value = serde_json::from_str(&history.stdout)?;
    ensure!(
        rows.as_array().map(Vec::len) == Some(1) && rows[0]["revision"] == 3,
        "{rows}"
    );
    delete_group(&client, &name).await;
    Ok(())
}

#[tokio::test]
async fn status_and_graph_show_argo_nodes_and_flux_conditions_and_wait_exits_by_result()
-> Result<()> {
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-status");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    let mut api = app("api", &["db"], "2.0.0", &ns);
    api["spec"]["subcharts"] = json!([{"name": "worker"}]);
    let group = create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![app("db", &[], "1.0.0", &ns), api],
    )
    .await?;
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    let wf = format!("{name}-r1");
    set_workflow_status(
        &client,
        &ns,
        &wf,
        json!({"phase": "Running", "startedAt": "2026-01-01T10:00:00Z", "nodes": nodes(vec![
            node(&wf, "", "entry", "DAG", "Running"),
            node(&wf, "db", "app-db", "DAG", "Succeeded"),
            node(&wf, "db.db", "executor-helmrelease", "Pod", "Succeeded"),
            node(&wf, "api", "app-api", "DAG", "Running"),
            node(&wf, "api.worker", "executor-helmrelease", "Pod", "Running"),
        ])}),
    )
    .await?;
    helm_release(
        &client,
        &group,
        "db",
        "True",
        "InstallSucceeded",
        "Helm install succeeded for release db",
    )
    .await?;
    helm_release(
        &client,
        &group,
        "api",
        "False",
        "InstallFailed",
        "install retries exhausted",
    )
    .await?;

    let out = plugin(cluster, "admin", &["status", &name, "-o", "json"])
        .await?
        .expect_success()?;
    let report: Value = serde_json::from_str(&out.stdout).with_context(|| out.to_string())?;
    ensure!(
        report["verdict"] == "Running" && report["revision"] == 1,
        "{report}"
    );
    let rows = report["rows"].as_array().cloned().unwrap_or_default();
    let row = |app: &str, sub: Option<&str>| {
        rows.iter()
            .find(|r| r["application"] == app && r["subchart"].as_str() == sub)
            .cloned()
            .unwrap_or_default()
    };
    ensure!(
        row("db", None)["step"] == "Succeeded" && row("db", None)["durationSeconds"] == 120.0,
        "{report}"
    );
    ensure!(
        row("db", None)["release"]["reason"] == "InstallSucceeded",
        "{report}"
    );
    ensure!(
        row("api", None)["release"]["ready"] == "False" && row("api", None)["wave"] == 2,
        "{report}"
    );
    ensure!(row("api", Some("worker"))["step"] == "Running", "{report}");

    // The group's conditions, as the original Orkestra controller wrote them.
    let groups: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    let conditions = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "Progressing",
        "message": "releasing", "lastTransitionTime": "2026-01-01T10:00:00Z"}]}});
    groups
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&conditions))
        .await?;
    let table = plugin(cluster, "admin", &["status", &name])
        .await?
        .expect_success()?;
    ensure!(
        table.stdout.contains("APPLICATION")
            && table.stdout.contains("install retries exhausted")
            && table
                .stdout
                .contains(&format!("Workflow:         {ns}/{wf} (forward) Running"))
            && table
                .stdout
                .contains("Conditions:       Ready=Unknown (Progressing)"),
        "{table}"
    );
    let yaml = plugin(cluster, "admin", &["status", &name, "-o", "yaml"])
        .await?
        .expect_success()?;
    ensure!(yaml.stdout.contains("verdict: Running"), "{yaml}");

    let graph = plugin(cluster, "admin", &["graph", &name, "-o", "json"])
        .await?
        .expect_success()?;
    let view: Value = serde_json::from_str(&graph.stdout)?;
    ensure!(
        view["applications"][0]["status"]["phase"] == "Succeeded"
            && view["applications"][1]["status"]["phase"] == "Running",
        "{view}"
    );
    ensure!(view["criticalPathBy"] == "duration", "{view}");
    let levels = plugin(cluster, "admin", &["graph", &name])
        .await?
        .expect_success()?;
    ensure!(
        levels.stdout.contains("[Succeeded 2m]") && !levels.stdout.contains('\x1b'),
        "not a TTY: no colours\n{levels}"
    );
    let dot = plugin(cluster, "admin", &["graph", &name, "-o", "dot"])
        .await?
        .expect_success()?;
    ensure!(dot.stdout.contains("[Running]"), "{dot}");

    // --wait: times out while running (3), fails with the release (1), succeeds with it (0).
    let timeout = plugin(
        cluster,
        "admin",
        &[
            "status",
            &name,
            "--wait",
            "--timeout",
            "1s",
            "--interval",
            "200ms",
        ],
    )
    .await?;
    ensure!(timeout.code() == Some(3), "{timeout}");
    set_workflow_status(
        &client,
        &ns,
        &wf,
        json!({"phase": "Failed", "message": "child 'api' failed"}),
    )
    .await?;
    let failed = plugin(cluster, "admin", &["status", &name, "--wait"]).await?;
    ensure!(
        failed.code() == Some(1) && failed.stdout.contains("child 'api' failed"),
        "{failed}"
    );
    set_workflow_status(
        &client,
        &ns,
        &wf,
        json!({"phase": "Succeeded", "message": null}),
    )
    .await?;
    plugin(cluster, "admin", &["status", &name, "--wait"])
        .await?
        .expect_success()?;
    let watch = plugin(cluster, "admin", &["status", &name, "--watch"])
        .await?
        .expect_success()?;
    ensure!(watch.stdout.contains("Succeeded"), "{watch}");
    delete_group(&client, &name).await;
    Ok(())
}

#[tokio::test]
async fn promote_continues_a_release_paused_at_a_gate() -> Result<()> {
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-gate");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    let mut api = app("api", &["db"], "1.0.0", &ns);
    api["spec"]["gate"] = json!(true);
    create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![app("db", &[], "1.0.0", &ns), api],
    )
    .await?;
    let dry = plugin(cluster, "admin", &["promote", &name, "--dry-run"])
        .await?
        .expect_success()?;
    ensure!(
        dry.stdout.contains("wave 2: [gate] api") && dry.stdout.contains("pauses before api"),
        "{dry}"
    );
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    let wf = format!("{name}-r1");
    let created = get(&client, &workflow_resource(), Some(&ns), &wf).await?;
    let entry = created["spec"]["templates"][0]["dag"]["tasks"].to_string();
    ensure!(
        entry.contains("Gate-api")
            && created["spec"]["arguments"]["parameters"][0]
                == json!({"name": "orkestra_gates", "value": "on"}),
        "{created}"
    );
    let (gate_id, gate) = node(&wf, "Gate-api", "gate", "Suspend", "Running");
    set_workflow_status(
        &client,
        &ns,
        &wf,
        json!({"phase": "Running", "startedAt": "2026-01-01T10:00:00Z", "nodes": nodes(vec![
            node(&wf, "", "entry", "DAG", "Running"),
            node(&wf, "db", "app-db", "DAG", "Succeeded"),
            (gate_id.clone(), gate),
        ])}),
    )
    .await?;
    let status = plugin(cluster, "admin", &["status", &name])
        .await?
        .expect_success()?;
    ensure!(
        status.stdout.contains("Suspended") && status.stdout.contains("waiting at the gate of api"),
        "{status}"
    );

    let out = plugin(cluster, "admin", &["promote", &name, "--full"])
        .await?
        .expect_success()?;
    ensure!(
        out.stderr.contains("continues past the gate of api"),
        "{out}"
    );
    let resumed = get(&client, &workflow_resource(), Some(&ns), &wf).await?;
    let passed = &resumed["status"]["nodes"][&gate_id];
    ensure!(
        passed["phase"] == "Succeeded"
            && passed["finishedAt"].is_string()
            && passed["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Resumed by"),
        "{passed}"
    );
    ensure!(
        resumed["spec"]["arguments"]["parameters"][0]["value"] == "off",
        "--full did not turn the remaining gates off"
    );
    ensure!(
        list(&client, &workflow_resource(), &ns, &name).await?.len() == 1,
        "resuming created a Workflow"
    );

    // Paused again at a gate, then superseded by a new spec: the old release is terminated.
    let (gate_id, gate) = node(&wf, "Gate-api", "gate", "Suspend", "Running");
    set_workflow_status(&client, &ns, &wf, json!({"nodes": {gate_id: gate}})).await?;
    let mut api = app("api", &["db"], "1.1.0", &ns);
    api["spec"]["gate"] = json!(true);
    update_group(&client, &name, vec![app("db", &[], "1.0.0", &ns), api]).await?;
    let out = plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    ensure!(
        out.stderr
            .contains("paused at a gate of an older spec: terminated"),
        "{out}"
    );
    let old = get(&client, &workflow_resource(), Some(&ns), &wf).await?;
    ensure!(old["spec"]["shutdown"] == "Terminate", "{old}");
    get(
        &client,
        &workflow_resource(),
        Some(&ns),
        &format!("{name}-r2"),
    )
    .await?;
    delete_group(&client, &name).await;
    Ok(())
}

#[tokio::test]
async fn rollback_after_a_failed_release_restores_the_spec_with_a_workflow_removing_added_applications()
-> Result<()> {
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-rollback");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    let v1 = vec![
        app("db", &[], "1.0.0", &ns),
        app("api", &["db"], "1.0.0", &ns),
    ];
    create_group(&client, &scope, &name, &ns, v1).await?;
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    set_workflow_status(
        &client,
        &ns,
        &format!("{name}-r1"),
        json!({"phase": "Succeeded"}),
    )
    .await?;
    let r1_spec = get(&client, &applicationgroup_resource(), None, &name).await?["spec"].clone();

    // Revision 2 upgrades db and adds cache and web (web depends on cache and api); it fails.
    let v2 = vec![
        app("db", &[], "1.1.0", &ns),
        app("api", &["db"], "1.0.0", &ns),
        app("cache", &["db"], "3.0.0", &ns),
        app("web", &["cache", "api"], "1.0.0", &ns),
    ];
    update_group(&client, &name, v2).await?;
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    set_workflow_status(
        &client,
        &ns,
        &format!("{name}-r2"),
        json!({"phase": "Failed", "message": "child 'cache' failed"}),
    )
    .await?;

    // Mark the group as Flux-managed: rollback must warn.
    let groups: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    groups
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}}),
            ),
        )
        .await?;

    let dry = plugin(cluster, "admin", &["rollback", &name, "--dry-run"])
        .await?
        .expect_success()?;
    ensure!(
        dry.stdout.contains("back to revision 1")
            && dry
                .stdout
                .contains("1. Remove, in this order: web -> cache"),
        "{dry}"
    );
    ensure!(
        dry.stdout.contains("wave 1: db")
            && dry.stdout.contains("wave 2: api")
            && dry.stdout.contains("db@1.1.0 -> db@1.0.0"),
        "{dry}"
    );
    ensure!(dry.stderr.contains("managed by Flux"), "{dry}");
    ensure!(
        list(&client, &workflow_resource(), &ns, &name).await?.len() == 2,
        "--dry-run created a Workflow"
    );

    // cache was released by revision 2 (its HelmRelease exists), so the rollback must remove it.
    let current = get(&client, &applicationgroup_resource(), None, &name).await?;
    helm_release(
        &client,
        &current,
        "cache",
        "True",
        "InstallSucceeded",
        "installed",
    )
    .await?;

    let out = plugin(cluster, "admin", &["rollback", &name])
        .await?
        .expect_success()?;
    ensure!(
        out.stderr.contains("recorded as revision 3")
            && out.stderr.contains("removes web -> cache"),
        "{out}"
    );
    let restored = get(&client, &applicationgroup_resource(), None, &name).await?;
    ensure!(
        restored["spec"] == r1_spec,
        "the group's spec is not revision 1's"
    );
    let wf = get(
        &client,
        &workflow_resource(),
        Some(&ns),
        &format!("{name}-r3"),
    )
    .await?;
    ensure!(
        wf["spec"]["entrypoint"] == "rollback"
            && wf["metadata"]["labels"]["orkestra.azure.microsoft.com/workflow-type"] == "rollback",
        "{wf}"
    );
    let templates = wf["spec"]["templates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let remove = templates
        .iter()
        .find(|t| t["name"] == "remove")
        .context("no remove template")?;
    ensure!(
        remove["dag"]["tasks"]
            == json!([
                {"name": "web", "template": "executor-helmrelease-delete", "arguments": {"parameters": [
                    {"name": "manifest", "value": "{{workflow.parameters.remove--web}}"}, {"name": "timeout", "value": "5m"}]}},
                {"name": "cache", "template": "executor-helmrelease-delete", "dependencies": ["web"], "arguments": {"parameters": [
                    {"name": "manifest", "value": "{{workflow.parameters.remove--cache}}"}, {"name": "timeout", "value": "5m"}]}},
            ]),
        "{remove}"
    );
    // Run the removal step of cache by hand, standing in for Argo: the delete template's command
    // and args, with the Workflow parameter substituted here. The HelmRelease is gone afterwards.
    let delete = templates
        .iter()
        .find(|t| t["name"] == "executor-helmrelease-delete")
        .context("no delete template")?;
    let manifest = wf["spec"]["arguments"]["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "remove--cache"))
        .and_then(|p| p["value"].as_str())
        .context("no remove--cache parameter")?
        .to_string();
    let args: Vec<String> = delete["container"]["args"]
        .as_array()
        .context("no args")?
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap_or_default()
                .replace("{{inputs.parameters.manifest}}", &manifest)
                .replace("{{inputs.parameters.timeout}}", "30s")
        })
        .collect();
    ensure!(
        delete["container"]["command"] == json!(["kubectl-orkestra"]),
        "{delete}"
    );
    let mut step = cluster.command(workspace_bin("kubectl-orkestra")?);
    step.args(&args).arg("--context").arg("admin");
    orkestra_e2e::run(step, None).await?.expect_success()?;
    let hrs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &helmrelease_resource());
    ensure!(
        hrs.get_opt("cache").await?.is_none(),
        "the removal step left the HelmRelease of cache"
    );

    let entry = templates
        .iter()
        .find(|t| t["name"] == "entry")
        .context("no entry")?;
    ensure!(
        entry == &r1_spec["workflowTemplate"]["templates"][0],
        "the re-apply is not revision 1's entry DAG"
    );
    let cr = get(
        &client,
        &controller_revisions(),
        Some(&ns),
        &format!("{name}-r3"),
    )
    .await?;
    ensure!(
        cr["data"]["spec"] == r1_spec
            && cr["metadata"]["annotations"]["orkestra.azure.microsoft.com/rollback-to-revision"]
                == "1",
        "{cr}"
    );

    // Through kubectl's plugin dispatch: `kubectl orkestra` finds kubectl-orkestra on PATH.
    let mut via_kubectl = cluster.command(cluster.kubectl_path());
    via_kubectl.args(["orkestra", "history", &name, "--context", "admin"]);
    let history = orkestra_e2e::run(via_kubectl, None)
        .await?
        .expect_success()?;
    let lines: Vec<&str> = history.stdout.lines().collect();
    ensure!(
        lines.len() == 4 && lines[0].starts_with("REVISION"),
        "{history}"
    );
    ensure!(
        lines[1].contains("forward") && lines[1].contains("Succeeded"),
        "{history}"
    );
    ensure!(
        lines[2].contains("db db 1.0.0 -> 1.1.0") && lines[2].contains("Failed"),
        "{history}"
    );
    ensure!(
        lines[3].contains("rollback to 1")
            && lines[3].contains("-cache")
            && lines[3].contains(&format!("{name}-r3")),
        "{history}"
    );
    let json_history = plugin(cluster, "admin", &["history", &name, "-o", "json"])
        .await?
        .expect_success()?;
    let rows: Value = serde_json::from_str(&json_history.stdout)?;
    ensure!(
        rows[2]["rollbackOf"] == 1 && rows[0]["promotedBy"].is_string(),
        "{rows}"
    );
    // kubectl's flags before the subcommand, as other plugins take them: the same history (as
    // JSON: the table's ages move on), and
    // `-n` reaches the command (no revisions in another namespace).
    let mut before = cluster.command(cluster.kubectl_path());
    before.args([
        "orkestra",
        "--context",
        "admin",
        "-n",
        &ns,
        "history",
        &name,
        "-o",
        "json",
    ]);
    let before = orkestra_e2e::run(before, None).await?.expect_success()?;
    ensure!(
        before.stdout == json_history.stdout,
        "{before}\nvs\n{json_history}"
    );
    let elsewhere = plugin(cluster, "admin", &["-n", "default", "history", &name])
        .await?
        .expect_success()?;
    ensure!(
        elsewhere
            .stdout
            .contains("has no revisions in namespace default"),
        "{elsewhere}"
    );
    delete_group(&client, &name).await;
    Ok(())
}

#[tokio::test]
async fn not_found_and_forbidden_say_what_is_missing() -> Result<()> {
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-errors");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let missing = scope.name("missing");
    let out = plugin(cluster, "admin", &["status", &missing])
        .await?
        .expect_failure()?;
    ensure!(
        out.stderr
            .contains(&format!("ApplicationGroup \"{missing}\" not found")),
        "{out}"
    );
    let out = plugin(cluster, "admin", &["rollback", &missing, "--dry-run"])
        .await?
        .expect_failure()?;
    ensure!(out.stderr.contains("not found"), "{out}");

    let name = scope.name("shop");
    create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![app("db", &[], "1.0.0", &ns)],
    )
    .await?;
    let out = plugin(cluster, "user", &["status", &name])
        .await?
        .expect_failure()?;
    ensure!(
        out.stderr
            .contains("forbidden: you may not get applicationgroups.orkestra.azure.microsoft.com")
            && out.stderr.contains("manifests/rbac"),
        "{out}"
    );
    let out = plugin(cluster, "admin", &["rollback", &name])
        .await?
        .expect_failure()?;
    ensure!(
        out.stderr
            .contains("no earlier revision whose release succeeded"),
        "{out}"
    );
    let out = plugin(cluster, "admin", &["rollback", &name, "--to-revision", "7"])
        .await?
        .expect_failure()?;
    ensure!(out.stderr.contains("has no revision 7"), "{out}");

    let nowhere = scope.name("nowhere");
    let out = plugin(cluster, "admin", &["promote", &name, "-n", &nowhere])
        .await?
        .expect_failure()?;
    ensure!(
        out.stderr
            .contains(&format!("namespace \"{nowhere}\" not found")),
        "{out}"
    );

    // KUBECONFIG is a list; like kubectl, files that do not exist are skipped. With none, say so.
    let missing_file = std::env::temp_dir().join(format!("{}-no-such-kubeconfig", scope.id()));
    let paths = std::env::join_paths([missing_file.clone(), cluster.kubeconfig().to_path_buf()])?;
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.env("KUBECONFIG", &paths)
        .args(["status", &name, "--context", "admin"]);
    orkestra_e2e::run(cmd, None).await?.expect_success()?;
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.env("KUBECONFIG", &missing_file)
        .env("HOME", std::env::temp_dir())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .args(["status", &name]);
    let out = orkestra_e2e::run(cmd, None).await?.expect_failure()?;
    ensure!(
        out.stderr.contains("no cluster configured") && out.code() == Some(2),
        "{out}"
    );

    // A group stored without the mutating webhook has no templates to release: say so.
    let bare = scope.name("bare");
    let mut object = json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
        "metadata": {"name": bare}, "spec": {"applications": [app("db", &[], "1.0.0", &ns)], "workflowTemplate": {"namespace": ns}}});
    scope.label(&mut object)?;
    let groups: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    groups
        .create(&PostParams::default(), &serde_json::from_value(object)?)
        .await?;
    let out = plugin(cluster, "admin", &["promote", &bare])
        .await?
        .expect_failure()?;
    ensure!(
        out.stderr.contains("no injected Argo templates")
            && out.stderr.contains("mutating webhook"),
        "{out}"
    );
    ensure!(
        list(&client, &controller_revisions(), &ns, &bare)
            .await?
            .is_empty(),
        "a failed promote left a revision"
    );
    delete_group(&client, &bare).await;

    // With the plugin user's roles (manifests/rbac) bound, the same user can read and promote: the
    // ClusterRole cluster-wide, the Role in the workflow namespace only.
    let role_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/rbac/plugin-user.yaml"
    );
    let role_text = std::fs::read_to_string(role_path)?;
    let roles: Vec<Value> = serde_saphyr::from_str_multiple(&role_text)?;
    let role_name = scope.name("plugin-user");
    let subjects = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": cluster.user_name()}]);
    for mut role in roles {
        let kind = role["kind"].as_str().unwrap_or_default().to_owned();
        role["metadata"]["name"] = json!(role_name);
        let mut binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": role_name, "labels": scope.labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": subjects});
        if kind == "Role" {
            role["metadata"]["namespace"] = json!(ns);
            binding["kind"] = json!("RoleBinding");
            binding["metadata"]["namespace"] = json!(ns);
        } else {
            binding["kind"] = json!("ClusterRoleBinding");
        }
        scope.label(&mut role)?;
        for object in [role, binding] {
            cluster
                .kubectl_stdin(["apply", "-f", "-"], &object.to_string())
                .await?
                .expect_success()?;
        }
    }
    let allowed = orkestra_e2e::eventually(Duration::from_secs(20), "RBAC to apply", || async {
        let out = plugin(cluster, "user", &["status", &name]).await?;
        Ok(out.success().then_some(out))
    })
    .await?;
    ensure!(allowed.stdout.contains("NotReleased"), "{allowed}");
    let promoted = plugin(cluster, "user", &["promote", &name])
        .await?
        .expect_success()?;
    ensure!(
        promoted.stderr.contains("revision 1 recorded"),
        "{promoted}"
    );
    let cr = get(
        &client,
        &controller_revisions(),
        Some(&ns),
        &format!("{name}-r1"),
    )
    .await?;
    ensure!(
        cr["metadata"]["annotations"]["orkestra.azure.microsoft.com/promoted-by"]
            == cluster.user_name(),
        "{cr}"
    );
    plugin(cluster, "user", &["history", &name])
        .await?
        .expect_success()?;
    let _ = cluster
        .kubectl([
            "delete",
            "clusterrolebinding,clusterrole",
            "-l",
            &scope.label_selector(),
        ])
        .await;
    let _ = cluster
        .kubectl([
            "-n",
            &ns,
            "delete",
            "rolebinding,role",
            "-l",
            &scope.label_selector(),
        ])
        .await;
    delete_group(&client, &name).await;
    Ok(())
}

#[tokio::test]
async fn without_the_crd_the_message_says_to_install_it() -> Result<()> {
    let cluster = cluster_or_skip!();
    // Removing the CRD deletes every ApplicationGroup: wait for the other tests of this binary.
    let _lock = CRD_LOCK.write().await;
    let crd = "applicationgroups.orkestra.azure.microsoft.com";
    let result = async {
        cluster
            .kubectl(["delete", "crd", crd, "--wait=true", "--timeout=60s"])
            .await?
            .expect_success()?;
        let out =
            orkestra_e2e::eventually(Duration::from_secs(30), "the CRD to be gone", || async {
                let out = plugin(cluster, "admin", &["status", "anything"]).await?;
                Ok(out.stderr.contains("does not serve").then_some(out))
            })
            .await?;
        ensure!(
            out.stderr
                .contains(&format!("the cluster does not serve {crd}"))
                && out.stderr.contains("CustomResourceDefinition installed"),
            "{out}"
        );
        ensure!(out.code() == Some(2), "{out}");
        Ok(())
    }
    .await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/crd/applicationgroups.yaml"
    );
    cluster
        .kubectl(["apply", "-f", path])
        .await?
        .expect_success()?;
    cluster
        .kubectl([
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=60s",
        ])
        .await?
        .expect_success()?;
    orkestra_e2e::eventually(
        Duration::from_secs(30),
        "the CRD to be served again",
        || async {
            let out = plugin(cluster, "admin", &["status", "anything"]).await?;
            Ok(out.stderr.contains("not found").then_some(()))
        },
    )
    .await?;
    result
}

/// A node of `node()` with its children and boundary, as Argo links them.
fn linked(mut n: (String, Value), children: &[&str], boundary: &str) -> (String, Value) {
    n.1["children"] = json!(children);
    if !boundary.is_empty() {
        n.1["boundaryID"] = json!(boundary);
    }
    n
}

#[tokio::test]
async fn why_names_the_failed_step_impact_lists_dependents_and_audit_finds_old_groups() -> Result<()>
{
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-why");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    let group = create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![
            app("db", &[], "1.0.0", &ns),
            app("cache", &[], "1.0.0", &ns),
            app("api", &["db", "cache"], "1.0.0", &ns),
            app("web", &["api"], "1.0.0", &ns),
        ],
    )
    .await?;
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    let wf = format!("{name}-r1");
    let mut db_pod = node(&wf, "db.db", "executor-helmrelease", "Pod", "Failed");
    db_pod.1["message"] = json!("HelmRelease db/db: InstallFailed: install retries exhausted");
    set_workflow_status(
        &client,
        &ns,
        &wf,
        json!({"phase": "Failed", "startedAt": "2026-01-01T10:00:00Z", "finishedAt": "2026-01-01T10:02:00Z",
            "nodes": nodes(vec![
                node(&wf, "", "entry", "DAG", "Failed"),
                node(&wf, "db", "app-db", "DAG", "Failed"),
                db_pod,
                node(&wf, "cache", "app-cache", "DAG", "Succeeded"),
            ])}),
    )
    .await?;
    helm_release(
        &client,
        &group,
        "db",
        "False",
        "InstallFailed",
        "install retries exhausted",
    )
    .await?;

    let out = plugin(cluster, "admin", &["why", "web", &name])
        .await?
        .expect_success()?;
    for want in [
        "web has not been released yet",
        "└─ api",
        "└─ db",
        "blocked by db: its release step failed",
        &format!("HelmRelease {ns}/db: Ready=False (InstallFailed): install retries exhausted"),
        &format!("kubectl orkestra retry {name}"),
    ] {
        ensure!(out.stdout.contains(want), "{want:?} in:\n{out}");
    }
    let out = plugin(cluster, "admin", &["why", "web", &name, "-o", "json"])
        .await?
        .expect_success()?;
    let why: Value = serde_json::from_str(&out.stdout)?;
    ensure!(
        why["blockers"][0]["name"] == "db" && why["blockers"][0]["cause"] == "failedStep",
        "{why}"
    );
    let out = plugin(cluster, "admin", &["why", "cach", &name]).await?;
    ensure!(
        out.code() == Some(2) && out.stderr.contains("(did you mean \"cache\"?)"),
        "{out}"
    );

    let out = plugin(cluster, "admin", &["impact", "db", &name, "--to", "1.1.0"])
        .await?
        .expect_success()?;
    ensure!(
        out.stdout.contains("2 applications depend on db")
            && out.stdout.contains("through api")
            && out.stdout.contains("db@1.0.0 -> db@1.1.0")
            && out.stdout.contains("leaves       cache"),
        "{out}"
    );
    let out = plugin(cluster, "admin", &["impact", "db", &name, "-o", "json"])
        .await?
        .expect_success()?;
    let impact: Value = serde_json::from_str(&out.stdout)?;
    let names: Vec<&str> = impact["dependents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["name"].as_str())
        .collect();
    ensure!(names == ["api", "web"], "{impact}");

    // A group stored before the webhook existed (created straight through the API).
    let legacy = scope.name("legacy");
    let mut broken = json!({
        "apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
        "metadata": {"name": legacy},
        "spec": {"applications": [app("db", &["api"], "1.0.0", &ns), app("api", &["db"], "1.0.0", &ns)]},
    });
    scope.label(&mut broken)?;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &applicationgroup_resource());
    api.create(&PostParams::default(), &serde_json::from_value(broken)?)
        .await?;
    let out = plugin(cluster, "admin", &["audit"]).await?;
    ensure!(
        out.code() == Some(1)
            && out.stdout.contains(&format!(
                "{legacy}: spec.applications[0].dependencies[0]: dependency cycle: db -> api -> db"
            ))
            && !out
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name}: ")) && !l.contains("warning:"))
            && out.stderr.contains("would be denied by the webhook"),
        "{out}"
    );
    delete_group(&client, &legacy).await;
    delete_group(&client, &name).await;
    Ok(())
}

/// Abort and retry as changes to the Workflow object, with no Argo controller running (the
/// Workflow status is written here); under the real Argo controller: real_plugin.rs.
#[tokio::test]
async fn abort_terminates_and_retry_resets_the_failed_step_in_the_workflow_object() -> Result<()> {
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-abort");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![
            app("db", &[], "1.0.0", &ns),
            app("api", &["db"], "1.0.0", &ns),
        ],
    )
    .await?;
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    let wf = format!("{name}-r1");
    let wf_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &workflow_resource());
    let ids = |path: &str| {
        let full = if path.is_empty() {
            wf.clone()
        } else {
            format!("{wf}.{path}")
        };
        format!("{wf}-{}", orkestra::naming::short_hash(&full))
    };
    let tree = |api_phase: &str, pod_phase: &str, root_phase: &str| {
        let root = ids("");
        nodes(vec![
            linked(node(&wf, "", "entry", "DAG", root_phase), &[&ids("db")], ""),
            linked(
                node(&wf, "db", "app-db", "DAG", "Succeeded"),
                &[&ids("db.db")],
                &root,
            ),
            linked(
                node(&wf, "db.db", "executor-helmrelease", "Pod", "Succeeded"),
                &[&ids("api")],
                &ids("db"),
            ),
            linked(
                node(&wf, "api", "app-api", "DAG", api_phase),
                &[&ids("api.api")],
                &root,
            ),
            linked(
                node(&wf, "api.api", "executor-helmrelease", "Pod", pod_phase),
                &[],
                &ids("api"),
            ),
        ])
    };
    set_workflow_status(
        &client,
        &ns,
        &wf,
        json!({"phase": "Running", "startedAt": "2026-01-01T10:00:00Z", "nodes": tree("Running", "Running", "Running")}),
    )
    .await?;
    let out = plugin(cluster, "admin", &["abort", &name])
        .await?
        .expect_success()?;
    ensure!(
        out.stdout.contains("terminated (spec.shutdown: Terminate)"),
        "{out}"
    );
    let w = serde_json::to_value(wf_api.get(&wf).await?)?;
    ensure!(
        w["spec"]["shutdown"] == "Terminate"
            && w["metadata"]["annotations"]["orkestra.azure.microsoft.com/aborted-at"].is_string(),
        "{w}"
    );
    // Argo ends the Workflow: the running step fails.
    let mut status = json!({"phase": "Failed", "message": "Stopped with strategy 'Terminate'",
        "startedAt": "2026-01-01T10:00:00Z", "finishedAt": "2026-01-01T10:02:00Z",
        "nodes": tree("Failed", "Failed", "Failed")});
    status["nodes"][ids("api.api")]["message"] = json!("terminated");
    set_workflow_status(&client, &ns, &wf, status).await?;
    let out = plugin(cluster, "admin", &["abort", &name]).await?;
    ensure!(
        out.code() == Some(2) && out.stderr.contains("has already ended (Failed)"),
        "{out}"
    );
    let out = plugin(cluster, "admin", &["history", &name])
        .await?
        .expect_success()?;
    ensure!(out.stdout.contains("Failed (aborted"), "{out}");

    let out = plugin(cluster, "admin", &["retry", &name])
        .await?
        .expect_success()?;
    ensure!(
        out.stdout.contains(&format!(
            "Workflow {ns}/{wf} retried from its failed step api (same revision; retry 1)"
        )),
        "{out}"
    );
    let w = serde_json::to_value(wf_api.get(&wf).await?)?;
    let n = &w["status"]["nodes"];
    ensure!(
        w["status"]["phase"] == "Running"
            && w["spec"].get("shutdown").is_none()
            && w["status"].get("finishedAt").is_none()
            && n.get(ids("api.api")).is_none()
            && n[ids("api")]["phase"] == "Running"
            && n[ids("api")]["children"] == json!([])
            && n[ids("")]["phase"] == "Running"
            && n[ids("db.db")]["phase"] == "Succeeded",
        "{w}"
    );
    let revisions = list(&client, &controller_revisions(), &ns, &name).await?;
    ensure!(
        revisions.len() == 1,
        "retry records no revision: {revisions:?}"
    );
    let out = plugin(cluster, "admin", &["retry", &name]).await?;
    ensure!(
        out.code() == Some(2) && out.stderr.contains("only a failed release can be retried"),
        "{out}"
    );
    let out = plugin(cluster, "admin", &["history", &name])
        .await?
        .expect_success()?;
    ensure!(out.stdout.contains("(retried 1x)"), "{out}");
    delete_group(&client, &name).await;
    Ok(())
}

#[tokio::test]
async fn status_watch_follows_changes_without_listing_again() -> Result<()> {
    use tokio::io::AsyncReadExt as _;
    let cluster = cluster_or_skip!();
    let _lock = CRD_LOCK.read().await;
    let mut scope = cluster.scope("plugin-watch");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "wf").await?;
    let name = scope.name("shop");
    create_group(
        &client,
        &scope,
        &name,
        &ns,
        vec![app("db", &[], "1.0.0", &ns)],
    )
    .await?;
    plugin(cluster, "admin", &["promote", &name])
        .await?
        .expect_success()?;
    let wf = format!("{name}-r1");
    set_workflow_status(&client, &ns, &wf, json!({"phase": "Running", "startedAt": "2026-01-01T10:00:00Z",
        "nodes": nodes(vec![node(&wf, "", "entry", "DAG", "Running"), node(&wf, "db", "app-db", "DAG", "Running")])}))
    .await?;
    let mut cmd = cluster.command(workspace_bin("kubectl-orkestra")?);
    cmd.args([
        "status",
        &name,
        "--watch",
        "--context",
        "admin",
        "--interval",
        "1h",
    ])
    .stdout(std::process::Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains("Running (0/1") {
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf)).await??;
        ensure!(n > 0, "status --watch ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // With a redraw interval of an hour, only the watch can bring the change.
    let changed = tokio::time::Instant::now();
    set_workflow_status(&client, &ns, &wf, json!({"phase": "Succeeded", "finishedAt": "2026-01-01T10:01:00Z",
        "nodes": nodes(vec![node(&wf, "", "entry", "DAG", "Succeeded"), node(&wf, "db", "app-db", "DAG", "Succeeded")])}))
    .await?;
    while !seen.contains("Succeeded (1/1") {
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf)).await??;
        ensure!(
            n > 0,
            "status --watch ended before showing the change: {seen}"
        );
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let took = changed.elapsed();
    eprintln!("status --watch showed the change {took:?} after the write was sent");
    ensure!(
        took < Duration::from_secs(2),
        "the change took {took:?} to show"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
    ensure!(
        status.success(),
        "status --watch exits 0 once the release succeeded"
    );
    delete_group(&client, &name).await;
    Ok(())
}
