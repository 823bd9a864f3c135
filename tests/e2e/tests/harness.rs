//! Self-test of the webhook half of the harness, independent of our webhook binary: a stub admission
//! webhook served in-process over TLS (the test serving cert) is registered by `url` + `caBundle`,
//! found with the `dryRun` marker, scoped by the test label, and unregistered on drop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use kube::api::{Api, DynamicObject};
use orkestra_e2e::{
    ASYNC_TIMEOUT, TestCluster, TestScope, applicationgroup_resource, cluster_or_skip, denied_with,
    wait_for_marker,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const MUTATED: &str = "e2e.orkestra.azure.microsoft.com/mutated";
const DENY: &str = "e2e.orkestra.azure.microsoft.com/deny";

/// The stub's HTTPS server task, aborted on drop.
struct Stub {
    port: u16,
    task: JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `/mutate` adds the `MUTATED` annotation; `/validate` denies objects annotated with `DENY`.
async fn start_stub(cluster: &TestCluster) -> Result<Stub> {
    let (cert, key) = cluster.webhook_tls();
    let certs = CertificateDer::pem_slice_iter(&std::fs::read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .context("webhook cert")?;
    let key = PrivateKeyDer::from_pem_slice(&std::fs::read(key)?).context("webhook key")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(answer))
                    .await;
            });
        }
    });
    Ok(Stub { port, task })
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mutate = req.uri().path() == "/mutate";
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = &review["request"];
    let annotations = &request["object"]["metadata"]["annotations"];
    let mut response = json!({ "uid": request["uid"], "allowed": true });
    if mutate {
        let patch = if annotations.is_object() {
            json!([{ "op": "add", "path": format!("/metadata/annotations/{}", MUTATED.replace('/', "~1")), "value": "true" }])
        } else {
            json!([{ "op": "add", "path": "/metadata/annotations", "value": { MUTATED: "true" } }])
        };
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(BASE64.encode(patch.to_string()));
    } else if annotations.get(DENY).is_some() {
        response["allowed"] = json!(false);
        response["status"] = json!({
            "code": 403,
            "message": format!("e2e stub webhook denied {}", request["name"].as_str().unwrap_or("?")),
        });
    }
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    });
    let mut res = Response::new(Full::new(Bytes::from(review.to_string())));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}

/// A minimal valid ApplicationGroup named `name`, labelled for `scope` if `labelled`.
fn group(scope: &TestScope, name: &str, labelled: bool, deny: bool) -> Result<Value> {
    let mut group = json!({
        "apiVersion": "orkestra.azure.microsoft.com/v1alpha1",
        "kind": "ApplicationGroup",
        "metadata": { "name": name },
        "spec": { "applications": [{
            "name": "podinfo",
            "spec": {
                "chart": { "url": "https://stefanprodan.github.io/podinfo", "name": "podinfo", "version": "6.5.0" },
                "release": { "targetNamespace": "podinfo" }
            }
        }] }
    });
    if labelled {
        scope.label(&mut group)?;
    }
    if deny {
        group["metadata"]["annotations"] = json!({ DENY: "yes" });
    }
    Ok(group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stub_webhooks_register_scope_and_unregister() -> Result<()> {
    let cluster = cluster_or_skip!();
    let scope = cluster.scope("harness-webhook");
    let client = cluster.client().await?;
    let stub = start_stub(cluster).await?;
    let base = format!("https://127.0.0.1:{}", stub.port);

    let registered = Instant::now();
    let mutating = scope
        .register_mutating_webhook(&client, &format!("{base}/mutate"))
        .await?;
    let validating = scope
        .register_validating_webhook(&client, &format!("{base}/validate"))
        .await?;

    // Markers: configurations apply asynchronously.
    let api = Api::<DynamicObject>::all_with(client.clone(), &applicationgroup_resource());
    let probe: DynamicObject =
        serde_json::from_value(group(&scope, &scope.name("probe"), true, false)?)?;
    let mutated = wait_for_marker(&api, &probe, ASYNC_TIMEOUT, |r| {
        r.as_ref().is_ok_and(|o| {
            o.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(MUTATED))
        })
    })
    .await?;
    let deny_probe: DynamicObject =
        serde_json::from_value(group(&scope, &scope.name("probe"), true, true)?)?;
    let denied = wait_for_marker(&api, &deny_probe, ASYNC_TIMEOUT, |r| {
        denied_with(r, "e2e stub webhook denied")
    })
    .await?;
    // A dryRun answer is what a real create would have been, and nothing was stored.
    ensure!(mutated.is_ok() && denied.is_err());
    ensure!(
        api.get_opt(&scope.name("probe")).await?.is_none(),
        "a dryRun probe was stored"
    );
    eprintln!(
        "webhook configurations took effect after {:?}",
        registered.elapsed()
    );

    // Through the real kubectl: a labelled group is mutated; a labelled, deny-annotated one is denied.
    let good = scope.name("good");
    cluster
        .kubectl_stdin(
            ["apply", "-f", "-"],
            &group(&scope, &good, true, false)?.to_string(),
        )
        .await?
        .expect_success()?;
    let stored = api.get(&good).await?;
    ensure!(
        stored
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MUTATED)),
        "the mutating webhook's patch is not in the stored object: {stored:?}"
    );
    let bad = scope.name("bad");
    let denied = cluster
        .kubectl_stdin(
            ["apply", "-f", "-"],
            &group(&scope, &bad, true, true)?.to_string(),
        )
        .await?
        .expect_failure()?;
    ensure!(
        denied.stderr.contains("admission webhook")
            && denied
                .stderr
                .contains(&format!("e2e stub webhook denied {bad}")),
        "unexpected denial: {denied}"
    );

    // The objectSelector scopes the webhooks to this test's label: an unlabelled object is untouched.
    let other = scope.name("unlabelled");
    cluster
        .kubectl_stdin(
            ["apply", "-f", "-"],
            &group(&scope, &other, false, true)?.to_string(),
        )
        .await?
        .expect_success()?;
    let stored = api.get(&other).await?;
    ensure!(
        stored
            .metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key(MUTATED)),
        "an unlabelled object was mutated: {stored:?}"
    );

    // Dropping the registrations deletes the configurations.
    let names = [
        ("mutatingwebhookconfiguration", mutating.name().to_owned()),
        (
            "validatingwebhookconfiguration",
            validating.name().to_owned(),
        ),
    ];
    drop(mutating);
    drop(validating);
    for (kind, name) in names {
        let out = cluster
            .kubectl(["get", kind, &name, "--ignore-not-found", "-o", "name"])
            .await?
            .expect_success()?;
        ensure!(
            out.stdout.trim().is_empty(),
            "{kind}/{name} survived its drop"
        );
    }

    for name in [good, other] {
        api.delete(&name, &Default::default()).await?;
    }
    drop(stub);
    Ok(())
}
