//! The adversarial suite: the real binary on 127.0.0.1, and every input class that once broke it
//! (issue 11) thrown at it, one class after another, with bounded load. Throughout:
//!
//! - the process never dies;
//! - its peak RSS (VmHWM, reset before each class) stays under the manifests' 256 MiB limit;
//! - `/healthz`, probed on a new connection every 100 ms from another client address, answers
//!   within 1 s;
//! - a small valid review, sent every 200 ms on its own connection, is allowed each time;
//! - every bad input gets a clear status.
//!
//! Each class prints its peak RSS and worst `/healthz` latency. The binary is
//! `$ORKESTRA_WEBHOOK_BIN` when set (`tests/run` builds the release profile and sets it, since
//! that is what ships); otherwise the debug build of this package, which is several times slower
//! per review, so waits are then given a longer `?timeout=`.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use support::TempDir;
use support::client::{self, Conn};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// The Deployment's memory limit (manifests/webhook/base/deployment.yaml).
const MEMORY_LIMIT_KIB: u64 = 256 * 1024;
const HEALTHZ_WITHIN: Duration = Duration::from_secs(1);

fn binary() -> (PathBuf, bool) {
    match std::env::var_os("ORKESTRA_WEBHOOK_BIN").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from(env!("CARGO_BIN_EXE_orkestra-webhook")), false),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The webhook process, killed on drop.
struct Webhook {
    child: Child,
    addr: SocketAddr,
    metrics_port: u16,
    log: PathBuf,
    ca: String,
    _dir: TempDir,
}

impl Webhook {
    async fn start(args: &[&str]) -> Self {
        let minted = support::mint();
        let dir = TempDir::new("adversarial");
        let (cert, key) = support::write_pair(&dir.0, &minted);
        let port = free_port();
        let metrics_port = free_port();
        let log = dir.0.join("webhook.log");
        let child = Command::new(binary().0)
            .args(["--bind-address", &format!("127.0.0.1:{port}")])
            .args([
                "--metrics-bind-address",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-private-key-file")
            .arg(&key)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn webhook");
        let w = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            metrics_port,
            log,
            ca: minted.ca_cert_pem.clone(),
            _dir: dir,
        };
        let started = Instant::now();
        while !matches!(get(metrics_port, "/readyz", 2).await, Some((200, _))) {
            assert!(started.elapsed() < Duration::from_secs(20), "never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn tls(&self) -> Arc<rustls::ClientConfig> {
        client::client_config(&[&self.ca], &[b"http/1.1"])
    }

    fn h2(&self) -> Arc<rustls::ClientConfig> {
        client::client_config(&[&self.ca], &[b"h2"])
    }

    /// Resets the peak RSS the kernel keeps for the process (`/proc/PID/clear_refs`, 5).
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    fn peak_kib(&self) -> u64 {
        status_kib(self.pid(), "VmHWM:")
    }

    async fn metric(&self, name: &str) -> f64 {
        let (_, text) = get(self.metrics_port, "/metrics", 5)
            .await
            .unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP GET on the metrics port from 127.0.0.2 (another client than the load), on a new
/// connection, as the kubelet probes: (status, body).
async fn get(port: u16, path: &str, timeout_secs: u64) -> Option<(u16, String)> {
    let fetch = async {
        let mut tcp = connect_from(
            Ipv4Addr::new(127, 0, 0, 2),
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .await
        .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut text = String::new();
        tcp.read_to_string(&mut text).await.ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(timeout_secs), fetch)
        .await
        .ok()
        .flatten()
}

/// A TCP connection to `addr` from the local address `ip` (any 127.x address is loopback).
async fn connect_from(ip: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
    socket.connect(addr).await
}

/// A TLS connection to the webhook from local address `ip`.
async fn tls_from(
    ip: Ipv4Addr,
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = connect_from(ip, addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

/// What the background probes saw during one class.
#[derive(Default)]
struct Probes {
    stop: AtomicBool,
    worst_healthz_us: AtomicU64,
    healthz_failures: AtomicU64,
    healthz_count: AtomicU64,
    review_failures: AtomicU64,
    review_count: AtomicU64,
}

/// Starts the probes: `/healthz` every 100 ms (new connection from 127.0.0.2, 1 s budget) and a
/// valid review every 200 ms (one keep-alive connection from 127.0.0.3, reopened if closed).
fn start_probes(w: &Webhook) -> (Arc<Probes>, Vec<std::thread::JoinHandle<()>>) {
    let probes = Arc::new(Probes::default());
    let mut threads = Vec::new();
    {
        let p = Arc::clone(&probes);
        let port = w.metrics_port;
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                while !p.stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let ok = matches!(get(port, "/healthz", 2).await, Some((200, _)));
                    let us = t.elapsed().as_micros() as u64;
                    p.healthz_count.fetch_add(1, Ordering::SeqCst);
                    p.worst_healthz_us.fetch_max(us, Ordering::SeqCst);
                    if !ok {
                        p.healthz_failures.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }));
    }
    {
        let p = Arc::clone(&probes);
        let addr = w.addr;
        let cfg = w.tls();
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let body = client::review("probe", "CREATE", &client::group("probe", 5), None);
                let mut conn: Option<Conn> = None;
                while !p.stop.load(Ordering::SeqCst) {
                    if conn.as_ref().is_none_or(Conn::is_closed) {
                        conn = match tls_from(Ipv4Addr::new(127, 0, 0, 3), addr, cfg.clone()).await
                        {
                            Ok(tls) => Conn::from_tls(tls).await.ok(),
                            Err(_) => None,
                        };
                    }
                    let ok = match conn.as_mut() {
                        Some(c) => {
                            let r = tokio::time::timeout(
                                Duration::from_secs(3),
                                c.post("/validate?timeout=3s", body.clone()),
                            )
                            .await;
                            matches!(r, Ok(Ok(ref reply)) if reply.status == 200
                                && reply.json()["response"]["allowed"] == true
                                && reply.json()["response"]["uid"] == "probe")
                        }
                        None => false,
                    };
                    p.review_count.fetch_add(1, Ordering::SeqCst);
                    if !ok {
                        p.review_failures.fetch_add(1, Ordering::SeqCst);
                        conn = None;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }));
    }
    (probes, threads)
}

/// Runs one class with the probes on, then checks and prints what the process went through.
async fn class<F, Fut>(w: &mut Webhook, name: &str, f: F)
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = ()>,
{
    w.reset_peak();
    let (probes, threads) = start_probes(w);
    let started = Instant::now();
    f(Target {
        addr: w.addr,
        tls: w.tls(),
        h2: w.h2(),
        release: binary().1,
    })
    .await;
    // Let the probes see the aftermath too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    probes.stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let peak = w.peak_kib();
    let worst = Duration::from_micros(probes.worst_healthz_us.load(Ordering::SeqCst));
    println!(
        "{name:<58} peak RSS {:>6.1} MiB   worst /healthz {:>7.1} ms   ({:.1} s, {} probes, {} reviews)",
        peak as f64 / 1024.0,
        worst.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64(),
        probes.healthz_count.load(Ordering::SeqCst),
        probes.review_count.load(Ordering::SeqCst),
    );
    assert!(w.alive(), "{name}: the webhook died\n{}", w.log_text());
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "{name}: peak RSS {peak} KiB over the 256 MiB limit"
    );
    assert!(
        worst < HEALTHZ_WITHIN && probes.healthz_failures.load(Ordering::SeqCst) == 0,
        "{name}: /healthz took {worst:?} at worst, {} failures",
        probes.healthz_failures.load(Ordering::SeqCst)
    );
    assert_eq!(
        probes.review_failures.load(Ordering::SeqCst),
        0,
        "{name}: a valid review was not allowed during the class"
    );
}

/// Where a class sends its load.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    h2: Arc<rustls::ClientConfig>,
    release: bool,
}

impl Target {
    /// The `?timeout=` the API server would append: the validating webhook's 3 s, or longer
    /// for the (slower) debug build.
    fn timeout(&self) -> &'static str {
        if self.release { "3s" } else { "15s" }
    }

    async fn conn(&self) -> Conn {
        Conn::open(self.addr, self.tls.clone())
            .await
            .expect("connect")
    }

    /// One review on a new connection: (HTTP status, review JSON).
    async fn review(&self, path: &str, body: Bytes) -> (u16, Value) {
        let mut c = self.conn().await;
        let path = format!("{path}?timeout={}", self.timeout());
        let r = c.post(&path, body).await.expect("reply");
        (r.status.as_u16(), r.json())
    }
}

fn message(review: &Value) -> String {
    review["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A ring: app-0 depends on app-1, …, the last on app-0.
fn ring(n: usize) -> Value {
    let apps: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("app-{i}"), "dependencies": [format!("app-{}", (i + 1) % n)],
                   "spec": {"chart": {"url": "https://c.example.com", "name": "c", "version": "1.0.0"},
                            "release": {}}})
        })
        .collect();
    json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
           "metadata": {"name": "ring"}, "spec": {"applications": apps}})
}

fn tiny_apps(n: usize) -> Value {
    let apps: Vec<Value> = (0..n).map(|i| json!({"name": format!("{i}")})).collect();
    json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
           "metadata": {"name": "tiny"}, "spec": {"applications": apps}})
}

/// The head of a JSON POST of `len` bytes to `path`.
fn head(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    )
}

/// Writes a raw HTTP/1.1 request over TLS and returns the stream (to read from or drop).
async fn raw(t: &Target, head: &str, body: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tls = client::tls_connect(t.addr, t.tls.clone())
        .await
        .expect("tls");
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(body).await.expect("body");
    tls.flush().await.expect("flush");
    tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_class_is_survived_within_memory_and_probe_budgets() {
    let (bin, release) = binary();
    println!(
        "binary: {} ({})",
        bin.display(),
        if release { "release" } else { "debug" }
    );
    let mut w = Webhook::start(&["--shutdown-delay", "0s"]).await;
    let idle = status_kib(w.pid(), "VmRSS:");
    println!("idle RSS {:.1} MiB", idle as f64 / 1024.0);

    class(
        &mut w,
        "1. cycle through 999 applications (one ring)",
        |t| async move {
            let (status, r) = t
                .review(
                    "/validate",
                    client::review("ring", "CREATE", &ring(999), None),
                )
                .await;
            assert_eq!(status, 200);
            let msg = message(&r);
            assert_eq!(r["response"]["allowed"], false);
            assert!(
                msg.contains("dependency cycle: app-0 -> app-1 -> "),
                "{msg}"
            );
            assert!(
                !msg.contains("more cycles") && !msg.contains("may be more"),
                "{msg}"
            );
        },
    )
    .await;

    class(
        &mut w,
        "1. cycle through 13,000 applications (1.4 MB)",
        |t| async move {
            let body = client::review("ring13k", "CREATE", &ring(13_000), None);
            for path in ["/validate", "/mutate"] {
                let (status, r) = t.review(path, body.clone()).await;
                assert_eq!(status, 200, "{path}");
                let text = r.to_string();
                assert!(
                    text.contains("13000 applications; at most 1000 per group"),
                    "{path}: {text:.400}"
                );
            }
        },
    )
    .await;

    class(
        &mut w,
        "2. 50,000 tiny applications (0.99 MB)",
        |t| async move {
            let body = client::review("tiny", "CREATE", &tiny_apps(50_000), None);
            let (status, r) = t.review("/mutate", body.clone()).await;
            assert_eq!(status, 200);
            assert!(
                r["response"]["patch"].is_null(),
                "no patch for an object beyond the limits"
            );
            assert!(r.to_string().contains("at most 1000 per group"));
            let (_, r) = t.review("/validate", body).await;
            assert_eq!(r["response"]["allowed"], false);
        },
    )
    .await;

    class(&mut w, "2. 7.9 MiB of tiny JSON values", |t| async move {
        let mut obj = tiny_apps(1);
        obj["spec"]["applications"][0]["spec"] =
            json!({"release": {"values": {"v": vec![0u8; 4_100_000]}}});
        let body = client::review("values", "CREATE", &obj, None);
        assert!(body.len() > 7 << 20, "{}", body.len());
        for path in ["/validate", "/mutate"] {
            let (status, r) = t.review(path, body.clone()).await;
            assert_eq!(status, 200);
            assert_eq!(r["response"]["allowed"], false);
            assert!(message(&r).contains("JSON values"), "{}", message(&r));
        }
    })
    .await;

    class(
        &mut w,
        "2. 990,000 tiny JSON values (just under the cap)",
        |t| async move {
            let mut obj = tiny_apps(1);
            obj["spec"]["applications"][0]["spec"] =
                json!({"release": {"values": {"v": vec![0u8; 990_000]}}});
            let body = client::review("under", "CREATE", &obj, None);
            for path in ["/validate", "/mutate"] {
                let (status, r) = t.review(path, body.clone()).await;
                assert_eq!(status, 200);
                // Parsed and judged: the group is incomplete, so it is denied (or left unpatched).
                assert!(!message(&r).contains("JSON values"), "{}", message(&r));
            }
        },
    )
    .await;

    class(
        &mut w,
        "2. 7.9 MiB of text, and 9 MiB (over the cap)",
        |t| async move {
            let mut obj = tiny_apps(1);
            obj["spec"]["applications"][0]["spec"] =
                json!({"release": {"values": {"blob": "x".repeat(7_900_000)}}});
            let body = client::review("text", "CREATE", &obj, None);
            let (status, r) = t.review("/validate", body.clone()).await;
            assert_eq!(status, 200);
            assert!(
                message(&r).contains("etcd stores at most 1.5 MiB"),
                "{}",
                message(&r)
            );
            let (status, _) = t.review("/mutate", body).await;
            assert_eq!(status, 200);
            // Over the 8 MiB cap: 413 from the declared length, before a byte of the body is read.
            let request = head("/validate", 9 << 20);
            let mut tls = raw(&t, &request, b"").await;
            let mut answer = vec![0u8; 64];
            let n = tls.read(&mut answer).await.expect("answer");
            assert!(
                answer[..n].starts_with(b"HTTP/1.1 413"),
                "{:?}",
                String::from_utf8_lossy(&answer[..n])
            );
        },
    )
    .await;

    class(
        &mut w,
        "3. four 1 MB mutations abandoned by their clients",
        |t| async move {
            let mut obj = client::group("abandon", 1000);
            for app in obj["spec"]["applications"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                app["spec"]["release"]["values"] = json!({"pad": "p".repeat(700)});
            }
            let body = client::review("abandon", "CREATE", &obj, None);
            assert!(body.len() > 900_000, "{}", body.len());
            let request = head("/mutate?timeout=2s", body.len());
            let mut streams = Vec::new();
            for _ in 0..4 {
                streams.push(raw(&t, &request, &body).await);
            }
            // Gone before the answers: the work goes on, holding its permits, and is counted.
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(streams);
        },
    )
    .await;
    let started = Instant::now();
    while w.metric("orkestra_webhook_reviews_abandoned_total").await < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no abandoned review counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(w.log_text().contains("client went away during its review"));

    class(
        &mut w,
        "4. two 121 KB reviews with 60,000-character names",
        |t| async move {
            let mut obj = tiny_apps(2);
            obj["spec"]["applications"][0]["name"] = json!("a".repeat(60_000));
            obj["spec"]["applications"][1]["dependencies"] = json!(["b".repeat(60_000)]);
            let body = client::review("names", "CREATE", &obj, None);
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (t, body) = (t.clone(), body.clone());
                    tokio::spawn(async move {
                        let start = Instant::now();
                        let (status, r) = t.review("/validate", body).await;
                        (status, r, start.elapsed())
                    })
                })
                .collect();
            for task in tasks {
                let (status, r, took) = task.await.expect("task");
                assert_eq!(status, 200);
                assert!(
                    message(&r).contains("name of 60000 characters; at most 253"),
                    "{}",
                    message(&r)
                );
                assert!(took < Duration::from_secs(1), "{took:?}");
            }
        },
    )
    .await;

    class(
        &mut w,
        "4. 5,000 unknown dependencies (near-miss names)",
        |t| async move {
            let mut obj = client::group("unknown", 100);
            for (i, app) in obj["spec"]["applications"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let deps: Vec<String> = (0..50).map(|j| format!("app-{}{j}x", i)).collect();
                app["dependencies"] = json!(deps);
            }
            let start = Instant::now();
            let (status, r) = t
                .review("/validate", client::review("unknown", "CREATE", &obj, None))
                .await;
            let took = start.elapsed();
            assert_eq!(status, 200);
            assert!(message(&r).contains("which is not an application in this group"));
            assert!(
                took < Duration::from_secs(2),
                "{took:?} (the validating timeout is 3 s)"
            );
        },
    )
    .await;

    class(
        &mut w,
        "5. 1,100 idle connections from one client",
        |t| async move {
            let mut open = Vec::new();
            for _ in 0..1100 {
                if let Ok(Ok(s)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    client::tls_connect(t.addr, t.tls.clone()),
                )
                .await
                {
                    open.push(s);
                }
            }
            assert!(
                open.len() <= 256,
                "{} connections accepted from one client",
                open.len()
            );
            // Another client still gets in and is served.
            let tls = tls_from(Ipv4Addr::new(127, 0, 0, 4), t.addr, t.tls.clone())
                .await
                .expect("another client connects");
            let mut c = Conn::from_tls(tls).await.expect("handshake");
            let r = c
                .post(
                    "/validate",
                    client::review("other", "CREATE", &client::group("o", 3), None),
                )
                .await
                .expect("served");
            assert_eq!(r.json()["response"]["allowed"], true);
            drop(open);
        },
    )
    .await;
    assert!(
        w.metric("orkestra_webhook_connections_refused_total{listener=\"webhook\"}")
            .await
            > 0.0
    );

    let metrics_port = w.metrics_port;
    class(
        &mut w,
        "5. 200 idle connections to the metrics port",
        |_| async move {
            let mut open = Vec::new();
            for _ in 0..200 {
                if let Ok(s) = TcpStream::connect(("127.0.0.1", metrics_port)).await {
                    open.push(s);
                }
            }
            // The probes (from 127.0.0.2) keep answering while these sit idle.
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(open);
        },
    )
    .await;
    assert!(
        w.metric("orkestra_webhook_connections_refused_total{listener=\"metrics\"}")
            .await
            > 0.0
    );

    class(&mut w, "6. a body at 1 byte/s while large reviews go on", |t| async move {
        let slow = {
            let t = t.clone();
            tokio::spawn(async move {
                let mut tls = raw(
                    &t,
                    "POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                    b"",
                )
                .await;
                for _ in 0..4 {
                    if tls.write_all(b"1\r\n \r\n").await.is_err() {
                        break;
                    }
                    let _ = tls.flush().await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let body = client::review("large", "CREATE", &client::group("large", 1000), None);
        assert!(body.len() > 128 << 10);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let (status, r) = t.review("/validate", body.clone()).await;
            assert_eq!(status, 200, "a large review during a slow body");
            assert_eq!(r["response"]["allowed"], true);
        }
        let _ = slow.await;
    })
    .await;

    class(
        &mut w,
        "6. 32 concurrent large reviews on one HTTP/2 connection",
        |t| async move {
            let conn = Conn::open(t.addr, t.h2.clone()).await.expect("h2");
            let h2 = conn.h2_handle().expect("h2 negotiated");
            let body = client::review("h2", "CREATE", &client::group("h2", 600), None);
            assert!(body.len() > 128 << 10);
            let uri = format!("/validate?timeout={}", t.timeout());
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let (mut s, body, uri) = (h2.clone(), body.clone(), uri.clone());
                    tokio::spawn(async move {
                        let req = hyper::Request::post(uri)
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(body))
                            .expect("request");
                        s.ready().await.expect("ready");
                        s.send_request(req).await.expect("response").status()
                    })
                })
                .collect();
            for task in tasks {
                assert_eq!(task.await.expect("task"), 200);
            }
        },
    )
    .await;

    class(
        &mut w,
        "after: malformed, wrong type, no uid",
        |t| async move {
            let mut c = t.conn().await;
            let r = c
                .post(
                    "/validate",
                    Bytes::from_static(b"{\"request\": {\"uid\": \"x\"}, \"kind\": 5"),
                )
                .await
                .expect("reply");
            assert_eq!(r.status, 200);
            assert!(message(&r.json()).contains("not a valid AdmissionReview"));
            let r = c
                .send(
                    "POST",
                    "/validate",
                    Some("text/plain"),
                    Bytes::from_static(b"x"),
                )
                .await
                .expect("reply");
            assert_eq!(r.status, 415);
        },
    )
    .await;
    assert!(w.alive());
}

/// SIGTERM: answers say `Connection: close` during the drain delay, and the process is gone
/// within --shutdown-delay + --shutdown-timeout even with reviews still coming in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_keep_alive_connections_and_is_bounded() {
    let mut w = Webhook::start(&["--shutdown-delay", "1s", "--shutdown-timeout", "2s"]).await;
    let mut conn = Conn::open(w.addr, w.tls()).await.expect("connect");
    let small = client::review("s", "CREATE", &client::group("s", 3), None);
    let r = conn.post("/validate", small.clone()).await.expect("reply");
    assert!(r.headers.get("connection").is_none());
    let term = Command::new("kill")
        .args(["-TERM", &w.pid().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let sent = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = conn
        .post("/validate", small)
        .await
        .expect("reply while draining");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    // Large reviews keep arriving on fresh connections until the listener closes.
    let addr = w.addr;
    let tls = w.tls();
    let load = tokio::spawn(async move {
        let body = client::review("l", "CREATE", &client::group("l", 1000), None);
        while let Ok(mut tcp) = client::tls_connect(addr, tls.clone()).await {
            let request = head("/mutate", body.len());
            let _ = tcp.write_all(request.as_bytes()).await;
            let _ = tcp.write_all(&body).await;
            let mut buf = [0u8; 64];
            let _ = tcp.read(&mut buf).await;
        }
    });
    let exited = loop {
        if let Ok(Some(status)) = w.child.try_wait() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(4),
            "still running {:?} after SIGTERM (delay 1 s + timeout 2 s)",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    load.abort();
    assert!(exited.success(), "{exited:?}\n{}", w.log_text());
    println!("exited {:.2} s after SIGTERM", sent.elapsed().as_secs_f64());
}
