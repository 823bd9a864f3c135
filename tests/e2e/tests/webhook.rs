//! End to end: the `orkestra-webhook` binary on 127.0.0.1, registered by URL + caBundle on the real
//! kube-apiserver of tests/cluster, driven by the real `kubectl`.
//!
//! - every invalid fixture (`tests/fixtures/invalid/*.yaml`) is denied by `kubectl apply` with its
//!   expected message, and `kubectl apply --dry-run=server` gives the same verdict;
//! - a valid group comes back with its defaults and the injected templates in `kubectl get -o json`,
//!   exactly `orkestra::admission::defaults::default_object` of what was applied; applying it again changes
//!   nothing; an UPDATE that introduces a cycle is denied;
//! - warn enforcement admits broken groups with the violations as warnings;
//! - with the webhook down, a group can still be labelled and finalized (the manifests'
//!   `matchConditions` keep metadata-only updates away from it), while spec changes fail closed;
//! - in deny mode a stored group that breaks a rule can be labelled, changed (its old violation
//!   ratchets to a warning) and deleted;
//! - a group asking for a namespace, service account or image outside the policy is denied with
//!   the rule named;
//! - the install manifests pass the apiserver's validation (`--dry-run=server`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use kube::api::{Api, DynamicObject};
use orkestra_e2e::{
    ASYNC_TIMEOUT, CommandOutput, TestCluster, TestScope, applicationgroup_resource,
    cluster_or_skip, denied_with, eventually, wait_for_marker,
};
use serde_json::{Value, json};

/// Fixtures the apiserver rejects before the validating webhook is called: the CRD's structural
/// schema (required fields, `minItems`, types) and strict field validation (unknown fields) run
/// between the mutating and the validating webhooks. Their denial names the same field, in the
/// apiserver's words.
const SCHEMA_FIRST: &[&str] = &[
    "empty-applications",
    "long-name",
    "missing-chart",
    "missing-chart-name",
    "missing-chart-url",
    "missing-release",
    "negative-parallelism",
    "too-many-applications",
    "too-many-dependencies",
    "unknown-field",
    "wrong-type",
];

/// A nameless object never reaches admission (`kubectl apply` refuses it client-side, the
/// apiserver requires a name); the rule is exercised by `kubectl orkestra validate`.
const NEVER_ADMITTED: &[&str] = &["missing-name"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The manifest, renamed and labelled for this test.
fn scoped(scope: &TestScope, mut manifest: Value, name: &str) -> Result<Value> {
    scope.label(&mut manifest)?;
    manifest["metadata"]["name"] = json!(name);
    Ok(manifest)
}

async fn apply(cluster: &TestCluster, manifest: &Value, extra: &[&str]) -> Result<CommandOutput> {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    cluster.kubectl_stdin(args, &manifest.to_string()).await
}

async fn get(cluster: &TestCluster, name: &str) -> Result<Value> {
    let out = cluster
        .kubectl(["get", "applicationgroup", name, "-o", "json"])
        .await?
        .expect_success()?;
    serde_json::from_str(&out.stdout).context("kubectl get -o json")
}

/// Starts the webhook with `args`, registers both webhooks for this scope, and waits until the
/// apiserver calls them: a labelled group with a cycle is denied (deny mode) and a valid one
/// comes back defaulted.
async fn webhook_pair(
    cluster: &'static TestCluster,
    scope: &TestScope,
    args: &[&str],
) -> Result<(
    orkestra_e2e::WebhookServer,
    orkestra_e2e::WebhookRegistration,
    orkestra_e2e::WebhookRegistration,
)> {
    let server = cluster.start_webhook(args).await?;
    let client = cluster.client().await?;
    let mutating = scope
        .register_mutating_webhook(&client, &server.url("/mutate"))
        .await?;
    let validating = scope
        .register_validating_webhook(&client, &server.url("/validate"))
        .await?;
    let api = Api::<DynamicObject>::all_with(client, &applicationgroup_resource());
    let valid = scoped(
        scope,
        load_yaml(&repo().join("examples/bookinfo.yaml"))?,
        &scope.name("probe"),
    )?;
    let probe: DynamicObject = serde_json::from_value(valid)?;
    let _mutated = wait_for_marker(&api, &probe, ASYNC_TIMEOUT, |r| {
        r.as_ref()
            .is_ok_and(|o| o.data["spec"].get("workflowTemplate").is_some())
    })
    .await
    .context("waiting for the mutating webhook")?;
    Ok((server, mutating, validating))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fixtures_are_denied_with_their_messages() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("webhook-invalid");
    let (server, _m, _v) = webhook_pair(cluster, &scope, &["--shutdown-delay", "0s"]).await?;
    let client = cluster.client().await?;
    let api = Api::<DynamicObject>::all_with(client, &applicationgroup_resource());
    let cyclic: DynamicObject = serde_json::from_value(scoped(
        &scope,
        load_yaml(&repo().join("tests/fixtures/invalid/cycle.yaml"))?,
        &scope.name("probe-cycle"),
    )?)?;
    let _denied = wait_for_marker(&api, &cyclic, ASYNC_TIMEOUT, |r| {
        denied_with(r, "dependency cycle")
    })
    .await
    .context("waiting for the validating webhook")?;

    let dir = repo().join("tests/fixtures/invalid");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    fixtures.sort();
    ensure!(
        fixtures.len() >= 10,
        "too few fixtures in {}",
        dir.display()
    );
    let mut problems = Vec::new();
    let mut by_webhook = 0;
    for path in &fixtures {
        let fixture = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if NEVER_ADMITTED.contains(&fixture.as_str()) {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected"))?;
        let name = scope.name(&fixture);
        let manifest = scoped(&scope, load_yaml(path)?, &name)?;
        for dry_run in [true, false] {
            let extra: &[&str] = if dry_run { &["--dry-run=server"] } else { &[] };
            let out = apply(cluster, &manifest, extra).await?;
            let what = format!("{fixture}{}", if dry_run { " (dry-run)" } else { "" });
            if out.success() {
                problems.push(format!("{what}: admitted:\n{out}"));
                continue;
            }
            for line in expected.lines().filter(|l| !l.trim().is_empty()) {
                let (path, _) = line.split_once(": ").unwrap_or((line, ""));
                let found = if SCHEMA_FIRST.contains(&fixture.as_str()) {
                    out.stderr.contains(path)
                } else {
                    out.stderr.contains(line)
                };
                if !found {
                    problems.push(format!("{what}: missing {line:?} in:\n{}", out.stderr));
                }
            }
            if !dry_run && !SCHEMA_FIRST.contains(&fixture.as_str()) {
                by_webhook += 1;
            }
        }
        ensure!(
            api.get_opt(&name).await?.is_none(),
            "{fixture}: a denied group was stored"
        );
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n\n"));
    ensure!(
        by_webhook >= 10,
        "only {by_webhook} fixtures reached the webhook"
    );
    let log = server.child.output();
    ensure!(
        log.contains("denied"),
        "the webhook logged no denial:\n{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_group_is_defaulted_idempotent_and_guarded_on_update() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("webhook-valid");
    let (server, _m, _v) = webhook_pair(cluster, &scope, &["--shutdown-delay", "0s"]).await?;
    let name = scope.name("bookinfo");
    let manifest = scoped(
        &scope,
        load_yaml(&repo().join("examples/bookinfo.yaml"))?,
        &name,
    )?;

    // Server-side dry run first: the same answer as a real apply, nothing stored.
    let dry = apply(cluster, &manifest, &["--dry-run=server", "-o", "json"])
        .await?
        .expect_success()?;
    let dry: Value = serde_json::from_str(&dry.stdout)?;
    ensure!(
        dry["spec"]["workflowTemplate"].is_object(),
        "dry run not defaulted: {dry}"
    );
    ensure!(
        cluster
            .kubectl([
                "get",
                "applicationgroup",
                &name,
                "--ignore-not-found",
                "-o",
                "name"
            ])
            .await?
            .stdout
            .trim()
            .is_empty(),
        "a dry run stored the group"
    );

    apply(cluster, &manifest, &[]).await?.expect_success()?;
    let stored = get(cluster, &name).await?;
    let want = orkestra::admission::defaults::default_object(&manifest)
        .map_err(|e| anyhow::anyhow!("defaulting the example: {e}"))?;
    ensure!(
        stored["spec"] == want["spec"],
        "stored spec is not the defaulted spec:\nstored: {:#}\nwant: {:#}",
        stored["spec"],
        want["spec"]
    );
    ensure!(
        stored["spec"] == dry["spec"],
        "dry run and real create differ"
    );
    // The defaults and the injected templates are visible to `kubectl get -o yaml`.
    let yaml = cluster
        .kubectl(["get", "applicationgroup", &name, "-o", "yaml"])
        .await?
        .expect_success()?
        .stdout;
    for needle in [
        "workflowTemplate:",
        "templates:",
        "interval: 5m",
        "timeout: 5m",
    ] {
        ensure!(
            yaml.contains(needle),
            "{needle:?} not in kubectl get -o yaml:\n{yaml}"
        );
    }
    let generation = stored["metadata"]["generation"].clone();

    // Applying it again changes nothing. kubectl's merge patch for a custom resource replaces
    // whole lists, so it sends `applications` without the defaults ("configured"); the mutating
    // webhook puts them back and the stored spec and generation stay the same. A full replace
    // (an UPDATE through both webhooks) does the same.
    for what in ["apply", "replace"] {
        cluster
            .kubectl_stdin([what, "-f", "-"], &manifest.to_string())
            .await?
            .expect_success()?;
        let now = get(cluster, &name).await?;
        ensure!(
            now["spec"] == stored["spec"],
            "{what} again changed the spec"
        );
        ensure!(
            now["metadata"]["generation"] == generation,
            "{what} again bumped the generation: {} -> {}",
            generation,
            now["metadata"]["generation"]
        );
    }

    // An UPDATE that introduces a cycle is denied, also in a dry run, and nothing changes.
    let mut cyclic = manifest.clone();
    cyclic["spec"]["applications"][0]["dependencies"] = json!(["bookinfo"]);
    for extra in [&["--dry-run=server"][..], &[][..]] {
        let out = apply(cluster, &cyclic, extra).await?.expect_failure()?;
        ensure!(
            out.stderr
                .contains("dependency cycle: ambassador -> bookinfo -> ambassador")
                || out
                    .stderr
                    .contains("dependency cycle: bookinfo -> ambassador -> bookinfo"),
            "unexpected denial of the cyclic update: {out}"
        );
    }
    let after = get(cluster, &name).await?;
    ensure!(
        after["spec"] == stored["spec"],
        "a denied update changed the group"
    );

    // Warnings of a valid group reach kubectl.
    let warnings_name = scope.name("warnings");
    let warned = apply(
        cluster,
        &scoped(
            &scope,
            load_yaml(&repo().join("tests/fixtures/warnings/warnings.yaml"))?,
            &warnings_name,
        )?,
        &[],
    )
    .await?
    .expect_success()?;
    let expected =
        std::fs::read_to_string(repo().join("tests/fixtures/warnings/warnings.expected"))?;
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let path = line.split_once(": ").map_or(line, |(p, _)| p);
        ensure!(
            warned.stderr.contains(&format!("Warning: {path}: ")),
            "no warning for {path}:\n{warned}"
        );
    }
    for w in warned.stderr.lines().filter(|l| l.starts_with("Warning: ")) {
        ensure!(
            w.chars().count() - "Warning: ".len() < 120,
            "warning too long: {w}"
        );
    }
    let metrics = metrics(server.metrics_port).await?;
    ensure!(
        metrics
            .contains("orkestra_webhook_requests_total{endpoint=\"mutate\",verdict=\"patched\"}"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_mode_admits_broken_groups_with_warnings() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("webhook-warn");
    let (_server, _m, _v) = webhook_pair(
        cluster,
        &scope,
        &["--enforcement", "warn", "--shutdown-delay", "0s"],
    )
    .await?;
    let name = scope.name("cycle");
    let manifest = scoped(
        &scope,
        load_yaml(&repo().join("tests/fixtures/invalid/cycle.yaml"))?,
        &name,
    )?;
    // The validating configuration may take effect after the mutating one: wait for its warning.
    let dry = eventually(ASYNC_TIMEOUT, "the warn-mode warning", || async {
        let out = apply(cluster, &manifest, &["--dry-run=server"]).await?;
        Ok(out
            .stderr
            .contains("Warning: not enforced: ")
            .then_some(out))
    })
    .await?;
    ensure!(dry.success(), "warn mode denied: {dry}");
    let out = apply(cluster, &manifest, &[]).await?.expect_success()?;
    for needle in [
        "Warning: not enforced: spec.applications[0].dependencies[0]: dependency cycle: db -> api -> cache -> db",
        "Warning: not enforced: spec.applications[0].dependencies[0]: dependency cycle: db -> api -> db",
    ] {
        ensure!(out.stderr.contains(needle), "missing {needle:?}:\n{out}");
    }
    let stored = get(cluster, &name).await?;
    ensure!(
        stored["spec"]["applications"]
            .as_array()
            .is_some_and(|a| a.len() == 4)
    );
    Ok(())
}

/// A finalizer nobody serves: the group stays until a user takes it off.
const HOLD: &str = "example.com/hold";

async fn finalize_and_wait_gone(cluster: &TestCluster, name: &str) -> Result<()> {
    cluster
        .kubectl(["delete", "applicationgroup", name, "--wait=false"])
        .await?
        .expect_success()?;
    cluster
        .kubectl([
            "patch",
            "applicationgroup",
            name,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ])
        .await?
        .expect_success()?;
    eventually(ASYNC_TIMEOUT, "the finalized group to go", || async {
        let out = cluster
            .kubectl([
                "get",
                "applicationgroup",
                name,
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .await?;
        Ok(out.stdout.trim().is_empty().then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_webhook_down_groups_can_still_be_labelled_and_finalized() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("webhook-down");
    let (server, _m, _v) = webhook_pair(cluster, &scope, &["--shutdown-delay", "0s"]).await?;
    let name = scope.name("held");
    let mut manifest = scoped(
        &scope,
        load_yaml(&repo().join("examples/bookinfo.yaml"))?,
        &name,
    )?;
    manifest["metadata"]["finalizers"] = json!([HOLD]);
    apply(cluster, &manifest, &[]).await?.expect_success()?;
    drop(server); // the webhook process is killed; both registrations stay, failurePolicy: Fail

    // A spec change fails closed...
    let mut changed = get(cluster, &name).await?;
    changed["spec"]["applications"][0]["spec"]["chart"]["version"] = json!("6.6.1");
    let out = cluster
        .kubectl_stdin(["replace", "-f", "-"], &changed.to_string())
        .await?
        .expect_failure()?;
    ensure!(out.stderr.contains("failed calling webhook"), "{out}");
    // ...while labels and finalizers never reach the webhook.
    cluster
        .kubectl([
            "label",
            "applicationgroup",
            &name,
            "orkestra-test/labelled=yes",
        ])
        .await?
        .expect_success()?;
    finalize_and_wait_gone(cluster, &name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_deny_mode_a_stored_invalid_group_can_be_labelled_changed_and_deleted() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("webhook-ratchet");
    let (_server, _m, _v) = webhook_pair(cluster, &scope, &["--shutdown-delay", "0s"]).await?;
    // Stored before the webhook judged it: created without this test's label, which the
    // registrations select on (a cluster where the rule is newer than the group).
    let name = scope.name("stored");
    let mut manifest = load_yaml(&repo().join("tests/fixtures/invalid/unknown-dependency.yaml"))?;
    manifest["metadata"] = json!({"name": name, "finalizers": [HOLD]});
    apply(cluster, &manifest, &[]).await?.expect_success()?;

    // Labelling it (now the webhooks select it) is a metadata-only update: admitted.
    let label = format!("{}={}", orkestra_e2e::TEST_LABEL, scope.id());
    cluster
        .kubectl(["label", "applicationgroup", &name, &label])
        .await?
        .expect_success()?;
    // A spec change that keeps the old violation is admitted with it as a warning; one that
    // adds a violation is denied.
    let mut stored = get(cluster, &name).await?;
    stored["spec"]["applications"][0]["spec"]["chart"]["version"] = json!("9.9.9");
    let out = cluster
        .kubectl_stdin(["replace", "-f", "-"], &stored.to_string())
        .await?
        .expect_success()?;
    ensure!(
        out.stderr.contains("already invalid before this update: "),
        "no ratchet warning: {out}"
    );
    let mut worse = get(cluster, &name).await?;
    worse["spec"]["applications"][0]["dependencies"] =
        json!([worse["spec"]["applications"][0]["name"]]);
    let out = cluster
        .kubectl_stdin(["replace", "-f", "-"], &worse.to_string())
        .await?
        .expect_failure()?;
    ensure!(out.stderr.contains("depends on itself"), "{out}");
    finalize_and_wait_gone(cluster, &name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_outside_the_policy_are_denied_with_the_rule_named() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("webhook-policy");
    let (_server, _m, _v) = webhook_pair(
        cluster,
        &scope,
        &[
            "--shutdown-delay",
            "0s",
            "--allowed-workflow-namespaces=orkestra",
            "--allowed-service-accounts=orkestra",
            "--allowed-image-prefixes=ghcr.io/orkestra-rs/",
        ],
    )
    .await?;
    let base = scoped(
        &scope,
        load_yaml(&repo().join("examples/bookinfo.yaml"))?,
        &scope.name("policy"),
    )?;
    let cases = [
        (
            json!({"namespace": "kube-system"}),
            "spec.workflowTemplate.namespace: workflow namespace \"kube-system\" is not allowed by the cluster's Orkestra policy (--allowed-workflow-namespaces=orkestra)",
        ),
        (
            json!({"serviceAccountName": "replicaset-controller"}),
            "spec.workflowTemplate.serviceAccountName: service account \"replicaset-controller\" is not allowed by the cluster's Orkestra policy (--allowed-service-accounts=orkestra)",
        ),
        (
            json!({"executorImage": "evil.example.com/pwn:1"}),
            "spec.workflowTemplate.executorImage: image \"evil.example.com/pwn:1\" is not allowed by the cluster's Orkestra policy (--allowed-image-prefixes=ghcr.io/orkestra-rs/)",
        ),
    ];
    for (workflow_template, expected) in cases {
        let mut group = base.clone();
        group["spec"]["workflowTemplate"] = workflow_template;
        let out = apply(cluster, &group, &[]).await?.expect_failure()?;
        ensure!(
            out.stderr.contains(expected),
            "expected {expected:?}:\n{out}"
        );
    }
    apply(cluster, &base, &["--dry-run=server"])
        .await?
        .expect_success()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_manifests_pass_apiserver_validation() -> Result<()> {
    let cluster = cluster_or_skip!();
    let mut scope = cluster.scope("webhook-manifests");
    let client = cluster.client().await?;
    let ns = scope.namespace(&client, "system").await?;
    for overlay in ["manifests/webhook/no-cert-manager", "manifests"] {
        let rendered = cluster
            .kubectl(["kustomize", &repo().join(overlay).to_string_lossy()])
            .await?
            .expect_success()?
            .stdout;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&rendered)
            .with_context(|| format!("parsing kustomize output of {overlay}"))?;
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        for kind in [
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ] {
            ensure!(
                kinds.contains(&kind),
                "{overlay} renders no {kind}: {kinds:?}"
            );
        }
        let mut items = Vec::new();
        for mut doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            match kind.as_str() {
                // The test cluster has our CRD already and no cert-manager CRDs.
                "CustomResourceDefinition" | "Issuer" | "Certificate" => continue,
                // Stay inside this test's namespace and names.
                "Namespace" => continue,
                "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
                    doc["metadata"]["name"] = json!(scope.name(&kind.to_lowercase()));
                    for w in doc["webhooks"].as_array_mut().into_iter().flatten() {
                        w["clientConfig"]["service"]["namespace"] = json!(ns);
                    }
                    if overlay == "manifests" {
                        let ann = &doc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"];
                        ensure!(ann == "orkestra-system/orkestra-webhook", "{kind}: {ann}");
                    }
                }
                _ => doc["metadata"]["namespace"] = json!(ns),
            }
            items.push(doc);
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        let out = cluster
            .kubectl_stdin(["apply", "--dry-run=server", "-f", "-"], &list.to_string())
            .await?;
        if !out.success() {
            bail!("{overlay}: the apiserver rejected the manifests: {out}");
        }
    }
    Ok(())
}

async fn metrics(port: u16) -> Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text)
}
