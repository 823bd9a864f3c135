//! Support for the webhook's integration tests: a test PKI on disk, the server in-process on
//! 127.0.0.1:0, and the client.
#![allow(dead_code)]

pub mod client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use orkestra_webhook::admission::Admission;
use orkestra_webhook::certs::{self, Minted};
use orkestra_webhook::metrics::Metrics;
use orkestra_webhook::server::{self, Limits, Webhook};
use orkestra_webhook::tls::{self, CertReloader, MinTlsVersion};
use tokio::sync::watch;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "orkestra-webhook-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA + serving certificate for 127.0.0.1 / localhost.
pub fn mint() -> Minted {
    let mut req = certs::Request::for_service("orkestra-webhook", "orkestra-system");
    req.dns_names.push("localhost".into());
    req.ip_addresses.push("127.0.0.1".parse().expect("ip"));
    req.days = 2;
    certs::mint(&req).expect("mint")
}

/// The PEM leaf of a minted pair as DER, to compare with what a connection saw.
pub fn leaf_der(m: &Minted) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(m.cert_pem.as_bytes())
        .expect("leaf PEM")
        .as_ref()
        .to_vec()
}

/// Cert files laid out like a Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..<n>`.
pub struct SecretDir {
    pub dir: TempDir,
    generation: AtomicU32,
}

impl SecretDir {
    pub fn new(first: &Minted) -> Self {
        let s = Self {
            dir: TempDir::new("secret"),
            generation: AtomicU32::new(0),
        };
        s.swap_in(first);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), s.dir.0.join(name))
                .expect("symlink");
        }
        s
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.0.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.0.join("tls.key")
    }

    /// What the kubelet does: write a new timestamped dir, then atomically repoint `..data`.
    pub fn swap_in(&self, m: &Minted) {
        let g = self.generation.fetch_add(1, Ordering::SeqCst);
        let gen_dir = self.dir.0.join(format!("..gen_{g}"));
        std::fs::create_dir_all(&gen_dir).expect("gen dir");
        std::fs::write(gen_dir.join("tls.crt"), &m.cert_pem).expect("write cert");
        std::fs::write(gen_dir.join("tls.key"), &m.key_pem).expect("write key");
        let tmp = self.dir.0.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("..gen_{g}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, self.dir.0.join("..data")).expect("swap ..data");
    }
}

/// Writes a pair as two plain files.
pub fn write_pair(dir: &Path, m: &Minted) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&c, &m.cert_pem).expect("write cert");
    std::fs::write(&k, &m.key_pem).expect("write key");
    (c, k)
}

/// The webhook server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub reloader: Arc<CertReloader>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(cert: &Path, key: &Path, admission: Admission, limits: Limits) -> Self {
        let metrics = Arc::new(Metrics::new());
        let reloader =
            Arc::new(CertReloader::new(cert, key, Arc::clone(&metrics)).expect("initial pair"));
        let cfg = Arc::new(
            tls::server_config(reloader.clone(), MinTlsVersion::Tls12).expect("server config"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let webhook = Arc::new(Webhook::new(admission, Arc::clone(&metrics), limits));
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve_tls(
            listener,
            cfg,
            webhook,
            rx,
            Duration::from_secs(5),
        ));
        metrics.set_ready(true);
        Self {
            addr,
            metrics,
            reloader,
            stop,
            task,
        }
    }

    /// Stops accepting and waits for the drain.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}
