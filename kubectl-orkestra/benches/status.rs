//! `kubectl orkestra status` of a 200-application group against `kubectl get` of the same objects,
//! and the plugin's start time. Needs a cluster (`eval "$(tests/cluster/cluster.sh up)"`) and the
//! release binary:
//!
//! ```sh
//! cargo build --release -p kubectl-orkestra && cargo bench -p kubectl-orkestra --bench status
//! ```
//!
//! Sets up one group of 200 applications (4 namespaces), its Workflow with a node per application
//! and per chart step (Argo's `status.nodes`, written as Argo would) and 200 HelmReleases with a
//! Ready condition (written as Flux would). Then, alternating rounds, it times end to end (process
//! start to exit, output to a pipe):
//! - `kubectl orkestra status GROUP` (reads the group, the Workflows, the HelmReleases, the
//!   ControllerRevisions; builds and prints the table);
//! - `kubectl get` of the same ApplicationGroup, Workflows and HelmReleases: three invocations (one
//!   per resource, as a user would run them) and, as kubectl's best case, two (`get ag NAME` and
//!   `get workflows,helmreleases -A -l ...`);
//! - `kubectl-orkestra --version` and `kubectl version --client` (start time).
//!
//! Prints medians and the ratio status / kubectl (target <= 1.0), and the start time (target <= 10 ms).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, Config};
use serde_json::{Value, json};

const APPS: usize = 200;
const NAMESPACES: usize = 4;
const ROUNDS: usize = 15;

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn create(client: &Client, ar: &ApiResource, ns: Option<&str>, obj: Value) -> Result<Value> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let created = api
        .create(&PostParams::default(), &serde_json::from_value(obj)?)
        .await?;
    Ok(serde_json::to_value(created)?)
}

async fn setup(client: &Client, group: &str, wf_ns: &str, namespaces: &[String]) -> Result<()> {
    let nsr = ar("", "v1", "Namespace", "namespaces");
    for ns in namespaces.iter().chain([&wf_ns.to_string()]) {
        create(
            client,
            &nsr,
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    let apps: Vec<Value> = (0..APPS)
        .map(|i| {
            let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("app-{}", (i * 7) % i), format!("app-{}", i - 1)] };
            json!({"name": format!("app-{i}"), "dependencies": deps, "spec": {
                "chart": {"url": "https://charts.example.com", "name": format!("chart-{i}"), "version": "1.0.0"},
                "release": {"targetNamespace": namespaces[i % NAMESPACES], "values": {"replicas": 1}}}})
        })
        .collect();
    let object = json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
        "metadata": {"name": group}, "spec": {"applications": apps, "workflowTemplate": {"namespace": wf_ns}}});
    let object = orkestra::admission::defaults::default_object(&object)?;
    let created = create(
        client,
        &ar(
            "orkestra.azure.microsoft.com",
            "v1alpha1",
            "ApplicationGroup",
            "applicationgroups",
        ),
        None,
        object,
    )
    .await?;
    let spec = orkestra::input::parse::parse_spec(&created)?;
    let owner = orkestra::emit::revision::Owner {
        name: group.into(),
        uid: created["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .into(),
        generation: Some(1),
    };
    let r = orkestra::emit::revision::NewRevision {
        number: 1,
        namespace: wf_ns,
        release_type: orkestra::emit::revision::ReleaseType::Forward,
        promoted_by: Some("bench"),
        rollback_of: None,
    };
    create(
        client,
        &ar("apps", "v1", "ControllerRevision", "controllerrevisions"),
        Some(wf_ns),
        orkestra::emit::revision::controller_revision(&owner, &created["spec"], &r),
    )
    .await?;
    let wf = orkestra::emit::revision::forward_workflow(&owner, &spec, &r, false);
    let wfr = ar("argoproj.io", "v1alpha1", "Workflow", "workflows");
    create(client, &wfr, Some(wf_ns), wf).await?;
    let name = format!("{group}-r1");
    let mut nodes = serde_json::Map::new();
    let mut node = |path: &str, template: &str, ty: &str, phase: &str| {
        let full = if path.is_empty() {
            name.clone()
        } else {
            format!("{name}.{path}")
        };
        let id = format!("{name}-{}", orkestra::naming::short_hash(&full));
        nodes.insert(id.clone(), json!({"id": id, "name": full, "displayName": full.rsplit('.').next().unwrap_or_default(),
            "templateName": template, "type": ty, "phase": phase, "startedAt": "2026-01-01T10:00:00Z", "finishedAt": "2026-01-01T10:01:00Z"}));
    };
    node("", "entry", "DAG", "Running");
    for i in 0..APPS {
        let key = format!("app-{i}");
        node(&key, &format!("app-{key}"), "DAG", "Succeeded");
        node(
            &format!("{key}.{key}"),
            "executor-helmrelease",
            "Pod",
            "Succeeded",
        );
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), wf_ns, &wfr);
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&json!({"status": {"phase": "Running", "startedAt": "2026-01-01T10:00:00Z", "nodes": nodes}}))).await?;
    let hrr = ar(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    );
    for app in &spec.applications {
        let hr = orkestra::emit::flux::helm_release(group, app, None);
        let ns = hr["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let hr_name = hr["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        create(client, &hrr, Some(&ns), hr).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &hrr);
        api.patch_status(&hr_name, &PatchParams::default(), &Patch::Merge(&json!({"status": {"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "Helm install succeeded", "lastTransitionTime": "2026-01-01T10:01:00Z"}]}}))).await?;
    }
    Ok(())
}

fn release_binary() -> Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/kubectl-orkestra");
    if !path.is_file() {
        bail!(
            "{} is missing: cargo build --release -p kubectl-orkestra",
            path.display()
        );
    }
    Ok(path)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: no cluster (eval \"$(tests/cluster/cluster.sh up)\" first)");
        return Ok(());
    }
    let plugin = release_binary()?;
    let kubectl = std::env::var_os("ORKESTRA_TEST_KUBECTL")
        .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from);
    let client = Client::try_from(Config::infer().await.context("kubeconfig")?)?;
    let id = std::process::id();
    let group = format!("bench-{id}");
    let wf_ns = format!("bench-{id}-wf");
    let namespaces: Vec<String> = (0..NAMESPACES)
        .map(|i| format!("bench-{id}-apps{i}"))
        .collect();
    let t = Instant::now();
    setup(&client, &group, &wf_ns, &namespaces)
        .await
        .context("setting up the group")?;
    eprintln!(
        "set up {APPS} applications (group, Workflow with {} nodes, {APPS} HelmReleases) in {:.1} s",
        2 * APPS + 1,
        t.elapsed().as_secs_f64()
    );

    let selector = format!("orkestra.azure.microsoft.com/owner={group}");
    let status = || {
        let mut c = Command::new(&plugin);
        c.args(["status", &group]);
        c
    };
    let get = |args: &[&str]| {
        let mut c = Command::new(&kubectl);
        c.args(args);
        c
    };
    // Warm up (kubectl's discovery cache, the apiserver's watch caches).
    time(&mut status())?;
    time(&mut get(&["get", "applicationgroup", &group, "-o", "json"]))?;
    let (mut s, mut k3, mut k2, mut v, mut kv) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        s.push(time(&mut status())?);
        k3.push(
            time(&mut get(&["get", "applicationgroup", &group, "-o", "json"]))?
                + time(&mut get(&[
                    "get",
                    "workflows",
                    "-n",
                    &wf_ns,
                    "-l",
                    &selector,
                    "-o",
                    "json",
                ]))?
                + time(&mut get(&[
                    "get",
                    "helmreleases",
                    "-A",
                    "-l",
                    &selector,
                    "-o",
                    "json",
                ]))?,
        );
        k2.push(
            time(&mut get(&["get", "applicationgroup", &group, "-o", "json"]))?
                + time(&mut get(&[
                    "get",
                    "workflows,helmreleases",
                    "-A",
                    "-l",
                    &selector,
                    "-o",
                    "json",
                ]))?,
        );
    }
    for _ in 0..50 {
        v.push(time(Command::new(&plugin).arg("--version"))?);
        kv.push(time(&mut get(&["version", "--client"]))?);
    }
    let (s, k3, k2, v, kv) = (median(s), median(k3), median(k2), median(v), median(kv));
    println!("status of a {APPS}-application group ({ROUNDS} rounds, medians, end to end):");
    println!(
        "  kubectl orkestra status GROUP                      {}",
        ms(s)
    );
    println!(
        "  kubectl get ag + workflows + helmreleases (3 runs) {}   ratio status/kubectl {:.2}",
        ms(k3),
        s.as_secs_f64() / k3.as_secs_f64()
    );
    println!(
        "  kubectl get ag + workflows,helmreleases (2 runs)   {}   ratio status/kubectl {:.2}",
        ms(k2),
        s.as_secs_f64() / k2.as_secs_f64()
    );
    println!("start time (50 runs, median):");
    println!(
        "  kubectl-orkestra --version                         {}",
        ms(v)
    );
    println!(
        "  kubectl version --client                           {}",
        ms(kv)
    );

    // Clean up (no garbage collector runs in the test cluster: delete what was made).
    let _ = Command::new(&kubectl)
        .args(["delete", "applicationgroup", &group, "--wait=false"])
        .output();
    let mut ns_args = vec![
        "delete".to_string(),
        "namespace".into(),
        "--wait=false".into(),
        wf_ns,
    ];
    ns_args.extend(namespaces);
    let _ = Command::new(&kubectl).args(&ns_args).output();
    Ok(())
}
