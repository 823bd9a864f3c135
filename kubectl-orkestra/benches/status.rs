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
//!
//! Then the live views: `status GROUP --watch` (watch streams) against polling as the views did
//! before (one `status GROUP` read every 2 s, the old default interval), side by side. For each,
//! ten HelmRelease changes (a new Ready message, written as Flux would) are timed from the write
//! to the first output showing it, and the read requests the API server served meanwhile (GET,
//! LIST and WATCH on the group's kinds, from its `/metrics`) are given per minute.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, Config};
use orkestra::api::resources;
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
        &resources::APPLICATION_GROUP.api_resource(),
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
        &resources::CONTROLLER_REVISION.api_resource(),
        Some(wf_ns),
        orkestra::emit::revision::controller_revision(&owner, &created["spec"], &r),
    )
    .await?;
    let wf = orkestra::emit::revision::forward_workflow(&owner, &spec, &r, false);
    let wfr = resources::WORKFLOW.api_resource();
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
    let hrr = resources::HELM_RELEASE.api_resource();
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

/// The API server's count of read requests (GET, LIST, WATCH) on the kinds a live view reads.
async fn reads(client: &Client) -> Result<f64> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let kinds = [
        "resource=\"applicationgroups\"",
        "resource=\"workflows\"",
        "resource=\"helmreleases\"",
        "resource=\"controllerrevisions\"",
    ];
    let verbs = ["verb=\"GET\"", "verb=\"LIST\"", "verb=\"WATCH\""];
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| kinds.iter().any(|k| l.contains(k)) && verbs.iter().any(|v| l.contains(v)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Writes a new Ready message on `app-0`'s HelmRelease, as Flux would.
async fn change(client: &Client, ns: &str, token: &str) -> Result<()> {
    let hrr = resources::HELM_RELEASE.api_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &hrr);
    let status = json!({"status": {"observedGeneration": 1, "conditions": [
        {"type": "Ready", "status": "False", "reason": "UpgradeFailed", "message": token,
         "lastTransitionTime": "2026-01-01T10:02:00Z"}]}});
    api.patch_status(
        &orkestra::naming::release_name("app-0"),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await?;
    Ok(())
}

const CHANGES: usize = 10;
/// How long a change may take to show before the run is called failed.
const SHOW_LIMIT: Duration = Duration::from_secs(15);

/// Lines of a child's stdout, as they arrive.
fn lines_of(child: &mut std::process::Child) -> Result<std::sync::mpsc::Receiver<String>> {
    use std::io::BufRead as _;
    let out = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Waits for a line containing `token`.
fn shown(rx: &std::sync::mpsc::Receiver<String>, token: &str) -> Result<()> {
    let deadline = Instant::now() + SHOW_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .with_context(|| format!("{token} did not show within {SHOW_LIMIT:?}"))?;
        if line.contains(token) {
            return Ok(());
        }
    }
}

struct Measured {
    /// From sending the write to the first output showing it.
    latency: Vec<Duration>,
    /// From the API server's answer to the write (the change is stored) to the output.
    after_write: Vec<Duration>,
    per_minute: f64,
}

/// Times `CHANGES` changes until `rx` shows each; counts the reads meanwhile.
async fn measure(
    client: &Client,
    ns: &str,
    label: &str,
    rx: &std::sync::mpsc::Receiver<String>,
) -> Result<Measured> {
    let before = reads(client).await?;
    let start = Instant::now();
    let mut latency = Vec::new();
    let mut after_write = Vec::new();
    for k in 0..CHANGES {
        // Between changes, as a release's steps are spaced: polls (or nothing) go on meanwhile.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let token = format!("bench-{label}-{}-{k}", std::process::id());
        let t0 = Instant::now();
        change(client, ns, &token).await?;
        let t1 = Instant::now();
        let rx_wait = tokio::task::block_in_place(|| shown(rx, &token));
        rx_wait?;
        latency.push(t0.elapsed());
        after_write.push(t1.elapsed());
    }
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    let per_minute = (reads(client).await? - before) / minutes;
    Ok(Measured {
        latency,
        after_write,
        per_minute,
    })
}

/// `status --watch` against polling every 2 s, side by side.
async fn live_views(client: &Client, plugin: &PathBuf, group: &str, ns: &str) -> Result<()> {
    let mut watch = Command::new(plugin)
        .args(["status", group, "--watch"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let rx = lines_of(&mut watch)?;
    // The first frame: the watches are established.
    tokio::task::block_in_place(|| shown(&rx, "APPLICATION"))?;
    let watched = measure(client, ns, "watch", &rx).await;
    let _ = watch.kill();
    let _ = watch.wait();
    let watched = watched?;

    // Polling, as the views did before: a full read of the group every 2 s.
    let (tx, poll_rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (plugin, group, stop) = (plugin.clone(), group.to_string(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let next = Instant::now() + Duration::from_secs(2);
                if let Ok(out) = Command::new(&plugin).args(["status", &group]).output() {
                    for line in String::from_utf8_lossy(&out.stdout).lines() {
                        let _ = tx.send(line.to_string());
                    }
                }
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    let polled = measure(client, ns, "poll", &poll_rx).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = poller.join();
    let polled = polled?;

    let show = |name: &str, m: &Measured| {
        let worst = m.latency.iter().max().copied().unwrap_or_default();
        println!(
            "  {name:<34} median {:>9}  worst {:>9}  (stored -> shown {:>9})  reads {:>6.1}/min",
            ms(median(m.latency.clone())),
            ms(worst),
            ms(median(m.after_write.clone())),
            m.per_minute
        );
    };
    println!(
        "live views, write sent -> shown ({CHANGES} HelmRelease changes each, {APPS} applications):"
    );
    show("status --watch (watch streams)", &watched);
    show("polling every 2 s (as before)", &polled);
    println!(
        "  ratio watch/poll: latency {:.2}, reads {:.2}",
        median(watched.latency.clone()).as_secs_f64()
            / median(polled.latency.clone()).as_secs_f64(),
        watched.per_minute / polled.per_minute.max(f64::MIN_POSITIVE)
    );
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
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

    live_views(&client, &plugin, &group, &namespaces[0]).await?;

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
