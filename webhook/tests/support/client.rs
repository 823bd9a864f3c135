//! A small HTTPS client for tests and the load benchmark: one TLS connection (HTTP/1.1 keep-alive
//! or HTTP/2 by ALPN), requests sent one after another or concurrently on HTTP/2.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A client TLS configuration trusting the given CA certificates (PEM).
pub fn client_config(ca_pems: &[&str], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA cert");
        }
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// Opens a TLS connection to `addr` (checked against 127.0.0.1) and returns the stream.
pub async fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(cfg).connect(name, tcp).await
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One connection to the webhook.
pub struct Conn {
    sender: Sender,
    /// DER of the leaf certificate the server presented.
    pub peer_leaf: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Conn {
    /// Connects; HTTP/2 when `cfg` offers `h2` and the server picks it.
    pub async fn open(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Result<Self, BoxError> {
        Self::from_tls(tls_connect(addr, cfg).await?).await
    }

    /// HTTP on an established TLS stream (HTTP/2 when ALPN chose `h2`).
    pub async fn from_tls(
        tls: tokio_rustls::client::TlsStream<TcpStream>,
    ) -> Result<Self, BoxError> {
        let (_, session) = tls.get_ref();
        let peer_leaf = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (s, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Sender::H2(s)
        } else {
            let (s, conn) = http1::handshake(io).await?;
            tokio::spawn(conn);
            Sender::H1(s)
        };
        Ok(Self {
            sender,
            peer_leaf,
            alpn,
        })
    }

    pub fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// POSTs `body` as JSON to `path`.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<Reply, BoxError> {
        self.send("POST", path, Some("application/json"), body)
            .await
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Reply, BoxError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(body))?;
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                let mut s = s.clone();
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// A clone-able handle for concurrent requests on an HTTP/2 connection.
    pub fn h2_handle(&self) -> Option<http2::SendRequest<Full<Bytes>>> {
        match &self.sender {
            Sender::H2(s) => Some(s.clone()),
            Sender::H1(_) => None,
        }
    }
}

/// An AdmissionReview for a CREATE of `object`, with `uid`.
pub fn review(
    uid: &str,
    operation: &str,
    object: &serde_json::Value,
    old: Option<&serde_json::Value>,
) -> Bytes {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let gvk = serde_json::json!({"group": "orkestra.azure.microsoft.com", "version": "v1alpha1", "kind": "ApplicationGroup"});
    let gvr = serde_json::json!({"group": "orkestra.azure.microsoft.com", "version": "v1alpha1", "resource": "applicationgroups"});
    let r = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": name, "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": object, "oldObject": old, "dryRun": false,
        }
    });
    Bytes::from(serde_json::to_vec(&r).expect("review serializes"))
}

/// A valid ApplicationGroup with `n` applications, each depending on up to two earlier ones.
pub fn group(name: &str, n: usize) -> serde_json::Value {
    let apps: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let deps: Vec<String> = [i.checked_sub(1), i.checked_sub(7)]
                .into_iter()
                .flatten()
                .map(|d| format!("app-{d}"))
                .collect();
            serde_json::json!({
                "name": format!("app-{i}"),
                "dependencies": deps,
                "spec": {
                    "chart": {"url": "https://charts.example.com/stable", "name": format!("chart-{i}"), "version": "1.2.3"},
                    "release": {"targetNamespace": format!("ns-{}", i % 10), "timeout": "10m", "values": {"replicaCount": 1}}
                }
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "orkestra.azure.microsoft.com/v1alpha1",
        "kind": "ApplicationGroup",
        "metadata": {"name": name},
        "spec": {"applications": apps}
    })
}
