//! Certificate rotation under load: reviews keep flowing over keep-alive and fresh connections
//! while the cert files are replaced several times (Secret-volume `..data` swaps, a torn
//! non-atomic write, a garbage file). Zero failed requests; new connections see the new cert.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orkestra_webhook::admission::{Admission, Enforcement};
use orkestra_webhook::server::Limits;
use support::client::{self, Conn};
use support::{SecretDir, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request() {
    const ROTATIONS: usize = 6;
    let pairs: Vec<_> = (0..=ROTATIONS).map(|_| support::mint()).collect();
    let cas: Vec<&str> = pairs.iter().map(|p| p.ca_cert_pem.as_str()).collect();
    let cfg = client::client_config(&cas, &[b"http/1.1"]);
    // Probes must not resume a TLS session: a resumed handshake carries no certificate.
    let probe_cfg = {
        let mut c = (*cfg).clone();
        c.resumption = rustls::client::Resumption::disabled();
        Arc::new(c)
    };
    let secret = SecretDir::new(&pairs[0]);
    let server = TestServer::start(
        &secret.cert(),
        &secret.key(),
        Admission::new(Enforcement::Deny),
        Limits::default(),
    )
    .await;
    let addr = server.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let body = client::review("rot", "CREATE", &client::group("g", 10), None);
    let mut load = Vec::new();
    // Three keep-alive connections and one that reconnects for every request.
    for worker in 0..4 {
        let (stop, ok, failed, cfg, body) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            cfg.clone(),
            body.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if worker == 3 || conn.as_ref().is_none_or(Conn::is_closed) {
                    conn = match Conn::open(addr, cfg.clone()).await {
                        Ok(c) => Some(c),
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors.push(format!("connect: {e}"));
                            continue;
                        }
                    };
                }
                let Some(c) = conn.as_mut() else { continue };
                match c.post("/validate", body.clone()).await {
                    Ok(r) if r.status == 200 && r.json()["response"]["allowed"] == true => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        errors.push(format!("{other:?}"));
                        conn = None;
                    }
                }
            }
            errors
        }));
    }

    let wait_for_leaf = |want: Vec<u8>, what: String| {
        let cfg = probe_cfg.clone();
        async move {
            // The first connection after the swap must already carry the new leaf.
            let conn = Conn::open(addr, cfg).await.expect("probe connect");
            assert!(
                conn.peer_leaf == want,
                "{what}: new connection did not see the new certificate"
            );
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for_leaf(support::leaf_der(&pairs[0]), "initial".into()).await;
    for (i, pair) in pairs.iter().enumerate().skip(1) {
        match i {
            // A torn write: cert first, key a moment later. In between the pair does not match;
            // the old pair keeps serving.
            3 => {
                let dir = secret.dir.0.join("..data");
                std::fs::write(dir.join("tls.crt"), &pair.cert_pem).expect("cert");
                tokio::time::sleep(Duration::from_millis(150)).await;
                let probe = Conn::open(addr, probe_cfg.clone())
                    .await
                    .expect("probe during torn write");
                assert_eq!(
                    probe.peer_leaf,
                    support::leaf_der(&pairs[2]),
                    "old pair kept while torn"
                );
                std::fs::write(dir.join("tls.key"), &pair.key_pem).expect("key");
            }
            // Garbage first (kept out), then the real pair.
            5 => {
                let mut junk = pair.clone();
                junk.cert_pem =
                    "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into();
                secret.swap_in(&junk);
                tokio::time::sleep(Duration::from_millis(150)).await;
                let probe = Conn::open(addr, probe_cfg.clone())
                    .await
                    .expect("probe with garbage on disk");
                assert_eq!(
                    probe.peer_leaf,
                    support::leaf_der(&pairs[4]),
                    "old pair kept over garbage"
                );
                secret.swap_in(pair);
            }
            _ => secret.swap_in(pair),
        }
        wait_for_leaf(support::leaf_der(pair), format!("rotation {i}")).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for t in load {
        errors.extend(t.await.expect("load task"));
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("rotation under load: {ok} reviews ok, {failed} failed, {ROTATIONS} rotations");
    assert_eq!(failed, 0, "failed requests: {errors:?}");
    assert!(ok > 100, "too little load to mean anything: {ok}");
    let m = server.metrics.render();
    // At least one reload per rotation; one more when a swap lands between the two `stat`s of a
    // check (the same pair is then loaded twice, which is harmless).
    let successes: u64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("orkestra_webhook_certificate_reloads_total{result=\"success\"} ")
        })
        .and_then(|n| n.parse().ok())
        .expect("success counter");
    assert!(successes >= ROTATIONS as u64, "{m}");
    let failures: u64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("orkestra_webhook_certificate_reloads_total{result=\"failure\"} ")
        })
        .and_then(|n| n.parse().ok())
        .expect("failure counter");
    assert!(
        failures >= 2,
        "torn write and garbage were both refused: {failures}"
    );
    server.shutdown().await;
}

#[test]
fn poller_picks_up_rotation_without_connections() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let a = support::mint();
        let b = support::mint();
        let secret = SecretDir::new(&a);
        let metrics = Arc::new(orkestra_webhook::metrics::Metrics::new());
        let r = Arc::new(
            orkestra_webhook::tls::CertReloader::new(secret.cert(), secret.key(), metrics.clone())
                .expect("load"),
        );
        let poller = r.spawn_poller(Duration::from_millis(50));
        let before = r.current();
        secret.swap_in(&b);
        let t = Instant::now();
        while Arc::ptr_eq(&before, &r.current()) {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "poller never reloaded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            r.current().cert[0].as_ref(),
            support::leaf_der(&b).as_slice()
        );
        poller.abort();
    });
}
