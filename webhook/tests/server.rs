//! The webhook over real TLS on 127.0.0.1: keep-alive HTTP/1.1, HTTP/2 by ALPN, the probes and
//! metrics of the real binary, and graceful shutdown on SIGTERM.

mod support;

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orkestra_webhook::admission::{Admission, Endpoint, Enforcement, Verdict};
use orkestra_webhook::server::Limits;
use support::client::{self, Conn};
use support::{TempDir, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn cycle_group() -> serde_json::Value {
    let mut g = client::group("cyclic", 3);
    g["spec"]["applications"][0]["dependencies"] = serde_json::json!(["app-2"]);
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_keep_alive_serves_many_reviews_on_one_connection() {
    let minted = support::mint();
    let dir = TempDir::new("h1");
    let (cert, key) = support::write_pair(&dir.0, &minted);
    let server = TestServer::start(
        &cert,
        &key,
        Admission::new(Enforcement::Deny),
        Limits::default(),
    )
    .await;
    let cfg = client::client_config(&[&minted.ca_cert_pem], &[b"http/1.1"]);
    let mut conn = Conn::open(server.addr, cfg).await.expect("connect");
    assert_eq!(conn.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let good = client::group("good", 10);
    let bad = cycle_group();
    for i in 0..50 {
        let uid = format!("uid-{i}");
        let (path, obj) = if i % 2 == 0 {
            ("/validate", &good)
        } else {
            ("/validate", &bad)
        };
        let reply = conn
            .post(path, client::review(&uid, "CREATE", obj, None))
            .await
            .expect("review");
        assert_eq!(reply.status, 200);
        let r = reply.json();
        assert_eq!(r["response"]["uid"], uid.as_str());
        assert_eq!(r["response"]["allowed"], i % 2 == 0, "{r}");
        if i % 2 == 1 {
            let msg = r["response"]["status"]["message"].as_str().unwrap_or("");
            assert!(msg.contains("cycle"), "{msg}");
        }
    }
    let reply = conn
        .post("/mutate", client::review("m-1", "CREATE", &good, None))
        .await
        .expect("mutate");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["response"]["uid"], "m-1");
    assert_eq!(reply.json()["response"]["allowed"], true);
    assert!(!conn.is_closed(), "keep-alive connection stays open");
    assert_eq!(
        server
            .metrics
            .requests(Endpoint::Validate, Verdict::Allowed),
        25
    );
    assert_eq!(
        server.metrics.requests(Endpoint::Validate, Verdict::Denied),
        25
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_and_serves_concurrent_streams() {
    let minted = support::mint();
    let dir = TempDir::new("h2");
    let (cert, key) = support::write_pair(&dir.0, &minted);
    let server = TestServer::start(
        &cert,
        &key,
        Admission::new(Enforcement::Deny),
        Limits::default(),
    )
    .await;
    let cfg = client::client_config(&[&minted.ca_cert_pem], &[b"h2", b"http/1.1"]);
    let conn = Conn::open(server.addr, cfg).await.expect("connect");
    assert_eq!(conn.alpn.as_deref(), Some(&b"h2"[..]));
    let h2 = conn.h2_handle().expect("h2");
    let body = client::review("h2", "CREATE", &client::group("g", 5), None);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut s = h2.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let req = hyper::Request::post("/validate")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(body))
                .expect("request");
            s.ready().await.expect("ready");
            let resp = s.send_request(req).await.expect("response");
            resp.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_to_the_tls_port_is_refused_and_serving_continues() {
    let minted = support::mint();
    let dir = TempDir::new("plain");
    let (cert, key) = support::write_pair(&dir.0, &minted);
    let server = TestServer::start(
        &cert,
        &key,
        Admission::new(Enforcement::Deny),
        Limits::default(),
    )
    .await;
    // Plain HTTP to the TLS port: the handshake fails, the connection closes, nothing else breaks.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    tcp.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    let cfg = client::client_config(&[&minted.ca_cert_pem], &[]);
    let mut conn = Conn::open(server.addr, cfg).await.expect("still serving");
    let reply = conn
        .post(
            "/validate",
            client::review("after", "CREATE", &client::group("g", 2), None),
        )
        .await
        .expect("review");
    assert_eq!(reply.status, 200);
    server.shutdown().await;
}

/// The real binary: flags, probes, metrics, and SIGTERM with a request in flight.
#[test]
fn binary_serves_probes_and_drains_on_sigterm() {
    let minted = support::mint();
    let dir = TempDir::new("bin");
    let (cert, key) = support::write_pair(&dir.0, &minted);
    let port = free_port();
    let metrics_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orkestra-webhook"))
        .args(["--bind-address", &format!("127.0.0.1:{port}")])
        .args([
            "--metrics-bind-address",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-private-key-file")
        .arg(&key)
        .args(["--shutdown-delay", "1500ms", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn webhook");
    let started = Instant::now();
    while http_get(metrics_port, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "webhook never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http_get(metrics_port, "/healthz").map(|r| r.0), Some(200));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let ca = minted.ca_cert_pem.clone();
    let pid = child.id();
    rt.block_on(async move {
        let cfg = client::client_config(&[&ca], &[b"http/1.1"]);
        let mut conn = Conn::open(addr, cfg.clone()).await.expect("connect");
        let reply = conn
            .post("/validate", client::review("bin-1", "CREATE", &cycle_group(), None))
            .await
            .expect("review");
        assert_eq!(reply.json()["response"]["allowed"], false);

        // A request whose body is still arriving when SIGTERM comes.
        let body = client::review("in-flight", "CREATE", &client::group("g", 3), None);
        let mut tls = client::tls_connect(addr, cfg).await.expect("tls");
        let head = format!(
            "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.expect("head");
        tls.write_all(&body[..body.len() / 2]).await.expect("half body");
        tls.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(100)).await;

        let term = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(term.success());
        // Readiness fails first, while the process still serves.
        let t = Instant::now();
        loop {
            if http_get(metrics_port, "/readyz").map(|r| r.0) == Some(503) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(1), "readiness did not fail");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let metrics = http_get(metrics_port, "/metrics").expect("metrics").1;
        assert!(metrics.contains("orkestra_webhook_ready 0"));
        assert!(metrics.contains("orkestra_webhook_requests_in_flight 1"), "{metrics}");
        assert!(metrics.contains(
            "orkestra_webhook_requests_total{endpoint=\"validate\",verdict=\"denied\"} 1"
        ));
        assert!(!metrics.contains("orkestra_webhook_certificate_expiry_timestamp_seconds 0\n"));

        // The in-flight request completes, with Connection: close since we are draining.
        tls.write_all(&body[body.len() / 2..]).await.expect("rest of body");
        tls.flush().await.expect("flush");
        let mut resp = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut resp)).await;
        let text = String::from_utf8_lossy(&resp);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\"uid\":\"in-flight\""), "{text}");
    });
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "webhook did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let mut logs = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut logs);
    }
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("json log: {line}"));
        assert!(v.get("level").is_some());
    }
    assert!(
        logs.contains("SIGTERM received") && logs.contains("shut down"),
        "{logs}"
    );
}

#[test]
fn certs_subcommand_mints_a_usable_pair_and_prints_the_ca_bundle() {
    let dir = TempDir::new("certs");
    let out = Command::new(env!("CARGO_BIN_EXE_orkestra-webhook"))
        .args(["certs", "--out-dir"])
        .arg(&dir.0)
        .args(["--ip-address", "127.0.0.1", "--days", "30"])
        .output()
        .expect("run certs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine as _;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&out.stdout).trim())
        .expect("stdout is base64");
    let ca = std::fs::read(dir.0.join("ca.crt")).expect("ca.crt");
    assert_eq!(bundle, ca);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.0.join("tls.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "private key is owner-only");
    let metrics = std::sync::Arc::new(orkestra_webhook::metrics::Metrics::new());
    let r = orkestra_webhook::tls::CertReloader::new(
        dir.0.join("tls.crt"),
        dir.0.join("tls.key"),
        metrics.clone(),
    );
    assert!(r.is_ok(), "{r:?}");
    let days_left = (metrics.cert_not_after() - now_unix()) / 86_400;
    assert!((29..=31).contains(&days_left), "{days_left}");
    // Serving without a certificate is refused with a helpful message.
    let out = Command::new(env!("CARGO_BIN_EXE_orkestra-webhook"))
        .args([
            "--metrics-bind-address",
            "127.0.0.1:0",
            "--bind-address",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert-file"));
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// GET over plain HTTP/1.0: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut r = std::io::BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).ok()?;
    let code = status.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    let body = rest
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}
