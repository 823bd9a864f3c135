//! Load benchmark of the webhook: req/s and p50/p99 latency for /validate and /mutate with a
//! 10-application and a 1,000-application review, next to a bare 200-OK hyper + rustls server
//! (the floor) measured in the same run on the same machine, and the ratios.
//!
//! Run: `cargo bench -p orkestra-webhook --bench load` (env `BENCH_SECS`, default 3, per phase;
//! `BENCH_CONNS`, default 8). Both servers run as separate processes with the same certificate
//! and TLS settings; the client (this process) shares the machine with them, equally for both.
//!
//! Phases per target: closed loop (each connection sends its next request when the answer
//! arrives: maximum throughput), then open loop at a fixed 1,000 req/s (latency measured from
//! the scheduled send time when the client is behind schedule, so a stalled server is not hidden
//! by coordinated omission; from the actual send otherwise).

#[path = "../tests/support/client.rs"]
mod client;

use std::convert::Infallible;
use std::io::{BufRead as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::Conn;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use orkestra_webhook::certs;
use orkestra_webhook::metrics::Metrics;
use orkestra_webhook::tls::{self, CertReloader, MinTlsVersion};

// The same allocator as the webhook binary, so in-process figures match it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const FLOOR_ENV: &str = "ORKESTRA_BENCH_FLOOR_SERVER";
const NOOP_ENV: &str = "ORKESTRA_BENCH_NOOP_RULES";
/// jemalloc settings of manifests/webhook/base/deployment.yaml.
const MALLOC_CONF: &str = "background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0";

fn main() -> anyhow::Result<()> {
    tls::install_default_provider();
    if let Ok(dir) = std::env::var(FLOOR_ENV) {
        return floor_server(&dir);
    }
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing: run a short
    // smoke version there so the benchmark stays compiled and working.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 0.3 } else { 3.0 });
    let conns: usize = std::env::var("BENCH_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(Duration::from_secs_f64(secs), conns))
}

struct Target {
    name: &'static str,
    port: u16,
    path: &'static str,
    body: Bytes,
}

/// Issue 12's goals for the 10-application review, as throughput against the floor.
fn goal_ratio(target: &str) -> Option<f64> {
    match target {
        "/validate 10 apps" => Some(0.67),
        "/mutate 10 apps" => Some(0.5),
        _ => None,
    }
}

/// Phases per target in the closed loop, alternating with the floor.
const ROUNDS: u32 = 3;

#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    errors: usize,
    unsent: usize,
    elapsed: Duration,
    /// CPU time the server spent while the answers counted were measured.
    server_cpu: Duration,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.unsent += other.unsent;
        self.elapsed += other.elapsed;
        self.server_cpu += other.server_cpu;
        self.latencies.sort_unstable();
    }

    /// Server CPU time per answer, in microseconds.
    fn cpu_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.latencies.len().max(1) as f64
    }

    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let n = self.latencies.len();
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        self.latencies[i]
    }
}

async fn run(secs: Duration, conns: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("orkestra-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut req = certs::Request::for_service("orkestra-webhook", "orkestra-system");
    req.ip_addresses.push("127.0.0.1".parse()?);
    let minted = certs::mint(&req)?;
    minted.write_to(&dir)?;

    let (webhook_port, metrics_port) = (free_port()?, free_port()?);
    let mut webhook = Guard(
        Command::new(env!("CARGO_BIN_EXE_orkestra-webhook"))
            .args(["--bind-address", &format!("127.0.0.1:{webhook_port}")])
            .args([
                "--metrics-bind-address",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .arg("--tls-cert-file")
            .arg(dir.join("tls.crt"))
            .arg("--tls-private-key-file")
            .arg(dir.join("tls.key"))
            .args(["--shutdown-delay", "0s"])
            .env("RUST_LOG", "warn")
            // As in manifests/webhook/base/deployment.yaml.
            .env(
                "_RJEM_MALLOC_CONF",
                std::env::var("BENCH_MALLOC_CONF").unwrap_or_else(|_| MALLOC_CONF.to_owned()),
            )
            .args(
                std::env::var("BENCH_WEBHOOK_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .stdout(Stdio::null())
            .spawn()?,
    );
    let (mut floor, floor_port) = spawn_helper(&dir, false)?;
    let (mut noop, noop_port) = spawn_helper(&dir, true)?;
    let started = Instant::now();
    while probe(metrics_port, "/readyz").is_none_or(|(s, _)| s != 200) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "webhook not ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let idle_rss = rss_kib(webhook.0.id());

    let small = client::review("bench-10", "CREATE", &client::group("small", 10), None);
    let large = client::review("bench-1000", "CREATE", &client::group("large", 1000), None);
    let cfg = client::client_config(&[&minted.ca_cert_pem], &[b"http/1.1"]);
    // Check the answers are what we think we are measuring.
    for (path, body) in [
        ("/validate", &small),
        ("/validate", &large),
        ("/mutate", &small),
    ] {
        let mut c = Conn::open(addr(webhook_port), cfg.clone())
            .await
            .map_err(anyhow_box)?;
        let r = c.post(path, body.clone()).await.map_err(anyhow_box)?;
        anyhow::ensure!(
            r.status == 200 && r.json()["response"]["allowed"] == true,
            "{path}: unexpected answer {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }

    in_process(&small, &large);

    let targets = [
        Target {
            name: "floor: bare 200 OK (10-app body)",
            port: floor_port,
            path: "/",
            body: small.clone(),
        },
        Target {
            name: "/validate 10, no-op rules",
            port: noop_port,
            path: "/validate",
            body: small.clone(),
        },
        Target {
            name: "/validate 10 apps",
            port: webhook_port,
            path: "/validate",
            body: small.clone(),
        },
        Target {
            name: "/mutate 10 apps",
            port: webhook_port,
            path: "/mutate",
            body: small.clone(),
        },
        Target {
            name: "floor: bare 200 OK (1000-app body)",
            port: floor_port,
            path: "/",
            body: large.clone(),
        },
        Target {
            name: "/validate 1000, no-op rules",
            port: noop_port,
            path: "/validate",
            body: large.clone(),
        },
        Target {
            name: "/validate 1000 apps",
            port: webhook_port,
            path: "/validate",
            body: large.clone(),
        },
        Target {
            name: "/mutate 1000 apps",
            port: webhook_port,
            path: "/mutate",
            body: large.clone(),
        },
    ];
    println!(
        "orkestra-webhook load benchmark: {conns} keep-alive HTTP/1.1 TLS connections, {:.1} s per phase, {} cores",
        secs.as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "review sizes: 10 apps {} B, 1000 apps {} B",
        small.len(),
        large.len()
    );
    println!();
    println!(
        "closed loop (max throughput); each target alternates with the floor in {ROUNDS} rounds so \
         both see the same machine"
    );
    println!("(CPU us: the server's user + system CPU time per answer; floor CPU: the floor's)");
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>7} {:>12} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9}",
        "target",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "floor req/s",
        "floor p99",
        "x floor",
        "goal",
        "RSS MiB",
        "CPU us",
        "floor CPU"
    );
    let mut peak_rss = 0;
    let mut hwm_during = 0;
    // BENCH_ONLY=substring runs only the matching targets.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let targets: Vec<Target> = targets
        .into_iter()
        .filter(|t| t.path == "/" || t.name.contains(only.as_str()))
        .collect();
    for t in targets.iter().filter(|t| t.path != "/") {
        let floor_target = Target {
            name: "floor",
            port: floor_port,
            path: "/",
            body: t.body.clone(),
        };
        let mut ts = Stats::default();
        let mut fs = Stats::default();
        let mut rss = 0;
        let pid = if t.port == noop_port {
            noop.0.id()
        } else {
            webhook.0.id()
        };
        for _ in 0..ROUNDS {
            fs.merge(closed_loop(&floor_target, floor.0.id(), &cfg, conns, secs / ROUNDS).await);
            // RSS of the webhook, sampled every 50 ms while this target's load runs.
            let max = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let sampler = {
                let max = Arc::clone(&max);
                tokio::spawn(async move {
                    loop {
                        max.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                })
            };
            ts.merge(closed_loop(t, pid, &cfg, conns, secs / ROUNDS).await);
            sampler.abort();
            rss = rss.max(max.load(std::sync::atomic::Ordering::Relaxed));
            if t.port == webhook_port {
                peak_rss = peak_rss.max(rss);
            }
        }
        if t.port == webhook_port {
            hwm_during = hwm_during.max(hwm_kib(webhook.0.id()));
        }
        let ratio = ts.rps() / fs.rps();
        let goal = match goal_ratio(t.name) {
            Some(g) if ratio >= g => format!(">={g} ok"),
            Some(g) => format!(">={g} NO"),
            None => "-".to_string(),
        };
        println!(
            "{:<24} {:>9.0} {:>9.3} {:>9.3} {:>7} {:>12.0} {:>9.3} {:>9.2} {:>9} {:>8.1} {:>9.1} {:>9.1}",
            t.name,
            ts.rps(),
            ms(ts.pct(0.50)),
            ms(ts.pct(0.99)),
            ts.errors,
            fs.rps(),
            ms(fs.pct(0.99)),
            ratio,
            goal,
            mib(rss),
            ts.cpu_us(),
            fs.cpu_us()
        );
    }
    println!();
    println!(
        "open loop at 1,000 req/s for {:.1} s (latency from the send, or from the scheduled \
         time when behind schedule; requests not sent by the deadline count as unsent)",
        secs.as_secs_f64()
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "target", "req/s", "p50 ms", "p99 ms", "errors", "unsent"
    );
    for t in &targets {
        let s = fixed_rate(t, &cfg, conns, 1000.0, secs).await;
        println!(
            "{:<36} {:>9.0} {:>9.3} {:>9.3} {:>7} {:>7}",
            t.name,
            s.rps(),
            ms(s.pct(0.50)),
            ms(s.pct(0.99)),
            s.errors,
            s.unsent
        );
    }
    // Idle long enough for the allocator's decay to return what the bursts left.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let steady = rss_kib(webhook.0.id());
    let hwm = hwm_kib(webhook.0.id());
    println!();
    println!(
        "webhook memory (RSS): idle {:.1} MiB; closed loop up to {:.1} MiB (VmHWM {:.1} MiB); \
         after the overload phases: steady {:.1} MiB, VmHWM {:.1} MiB",
        mib(idle_rss),
        mib(peak_rss),
        mib(hwm_during),
        mib(steady),
        mib(hwm)
    );
    if let Some((_, m)) = probe(metrics_port, "/metrics") {
        for line in m
            .lines()
            .filter(|l| l.starts_with("orkestra_webhook_requests_total") && !l.ends_with(" 0"))
        {
            println!("  {line}");
        }
    }
    drop(webhook.kill());
    drop(floor.kill());
    drop(noop.kill());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Where the time goes without any network: the whole review, the same review with no-op rules
/// (the webhook's own cost: reading the review and the object, writing the answer), and the two
/// rule functions alone on the object's text. Interleaved runs, medians.
fn in_process(small: &Bytes, large: &Bytes) {
    use orkestra_webhook::admission::{Admission, Endpoint, Enforcement, Rules};
    fn no_rules(
        _: &orkestra::input::object::GroupObject,
        _: Option<&orkestra::input::object::GroupObject>,
    ) -> orkestra::admission::validate::Report {
        orkestra::admission::validate::Report::default()
    }
    fn no_patch(
        _: &[u8],
    ) -> Result<orkestra::admission::defaults::Patch, orkestra::admission::defaults::DefaultsError>
    {
        Ok(Default::default())
    }
    let adm = Admission::new(Enforcement::Deny);
    let bare = Admission {
        enforcement: Enforcement::Deny,
        rules: Rules {
            validate: no_rules,
            mutate: no_patch,
        },
        policy: Default::default(),
    };
    println!("in-process cost per review in ms (no TLS, no HTTP; interleaved runs, medians)");
    println!(
        "{:<10} {:>10} {:>10} {:>12} {:>14} {:>15} {:>12} {:>12}",
        "group",
        "/validate",
        "/mutate",
        "no-op rules",
        "validate_json",
        "mutation_patch",
        "object read",
        "review pass"
    );
    for (label, body, runs) in [("10 apps", small, 2000), ("1000 apps", large, 30)] {
        // The object's text, as the rules receive it from the review.
        let object: Vec<u8> = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| serde_json::to_vec(&v["request"]["object"]).ok())
            .unwrap_or_default();
        let mut t: [Vec<Duration>; 7] = Default::default();
        let mut answer = 0;
        for _ in 0..runs {
            let start = Instant::now();
            std::hint::black_box(adm.review(Endpoint::Validate, body));
            t[0].push(start.elapsed());
            let start = Instant::now();
            answer = std::hint::black_box(adm.review(Endpoint::Mutate, body))
                .body
                .len();
            t[1].push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(bare.review(Endpoint::Validate, body));
            t[2].push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(orkestra::admission::validate::validate_json(&object, None));
            t[3].push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(
                orkestra::admission::defaults::mutation_patch_json(&object)
                    .map(|p| p.into_json())
                    .ok(),
            );
            t[4].push(start.elapsed());
            // The parts of the no-op review: the object read into the typed spec, and one
            // pass over the review's text (what finding the objects in it costs at least).
            let start = Instant::now();
            std::hint::black_box(orkestra::input::object::Source::Json(&object).read().ok());
            t[5].push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(body).ok());
            t[6].push(start.elapsed());
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort_unstable();
            ms(v[v.len() / 2])
        };
        let [a, b, c, d, e, f, g] = &mut t;
        println!(
            "{label:<10} {:>10.3} {:>10.3} {:>12.3} {:>14.3} {:>15.3} {:>12.3} {:>12.3}   (/mutate answer {answer} B)",
            med(a),
            med(b),
            med(c),
            med(d),
            med(e),
            med(f),
            med(g)
        );
    }
    println!();
}

async fn closed_loop(
    t: &Target,
    server: u32,
    cfg: &Arc<rustls::ClientConfig>,
    conns: usize,
    secs: Duration,
) -> Stats {
    let warmup = Duration::from_millis(300).min(secs / 2);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + secs;
    // The server's CPU time over the measured window only.
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = cpu_time(server);
        tokio::time::sleep_until(end.into()).await;
        cpu_time(server).saturating_sub(before)
    });
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (cfg, body, path, port) = (cfg.clone(), t.body.clone(), t.path, t.port);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0usize;
            let mut conn = Conn::open(addr(port), cfg.clone()).await.ok();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let Some(c) = conn.as_mut() else {
                    errors += 1;
                    conn = Conn::open(addr(port), cfg.clone()).await.ok();
                    continue;
                };
                let t0 = Instant::now();
                let ok = matches!(c.post(path, body.clone()).await, Ok(r) if r.status == 200);
                if t0 >= measure_from {
                    if ok {
                        lat.push(t0.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    conn = None;
                }
            }
            (lat, errors, 0)
        }));
    }
    let mut stats = collect(tasks, secs).await;
    stats.server_cpu = cpu.await.unwrap_or_default();
    stats
}

async fn fixed_rate(
    t: &Target,
    cfg: &Arc<rustls::ClientConfig>,
    conns: usize,
    rate: f64,
    secs: Duration,
) -> Stats {
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + secs;
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (cfg, body, path, port) = (cfg.clone(), t.body.clone(), t.path, t.port);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0usize;
            let mut conn = Conn::open(addr(port), cfg.clone()).await.ok();
            let mut next = start + interval.mul_f64(i as f64 / conns as f64);
            let mut unsent = 0usize;
            while next < end {
                if Instant::now() > end {
                    // Overloaded: what is still scheduled is not sent.
                    unsent += 1;
                    next += interval;
                    continue;
                }
                // Behind schedule (the previous answer came late): count from the scheduled time,
                // so a slow server is not hidden. On time: count from the actual send, so the
                // timer's 1 ms granularity is not charged to the server.
                let behind = Instant::now() > next;
                tokio::time::sleep_until(next.into()).await;
                let sent = if behind { next } else { Instant::now() };
                let Some(c) = conn.as_mut() else {
                    errors += 1;
                    conn = Conn::open(addr(port), cfg.clone()).await.ok();
                    next += interval;
                    continue;
                };
                let ok = matches!(c.post(path, body.clone()).await, Ok(r) if r.status == 200);
                if ok {
                    lat.push(sent.elapsed());
                } else {
                    errors += 1;
                    conn = None;
                }
                next += interval;
            }
            (lat, errors, unsent)
        }));
    }
    // An overloaded server finishes late: the achieved rate is over the real wall time.
    let mut s = collect(tasks, secs).await;
    s.elapsed = s
        .elapsed
        .max(start.elapsed().saturating_sub(Duration::from_millis(100)));
    s
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize, usize)>>,
    secs: Duration,
) -> Stats {
    let mut s = Stats {
        elapsed: secs,
        ..Stats::default()
    };
    for t in tasks {
        if let Ok((lat, errors, unsent)) = t.await {
            s.latencies.extend(lat);
            s.errors += errors;
            s.unsent += unsent;
        }
    }
    s.latencies.sort_unstable();
    s
}

/// The floor: hyper (auto builder, as the webhook) + rustls with the same certificate and
/// settings, reading the body and answering a fixed 200 OK. Prints its port, serves until killed.
fn floor_server(dir: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let dir = std::path::Path::new(dir);
        let certs = Arc::new(CertReloader::new(
            dir.join("tls.crt"),
            dir.join("tls.key"),
            Arc::new(Metrics::new()),
        )?);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(
            certs.clone(),
            MinTlsVersion::Tls12,
        )?));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        std::io::stdout().flush()?;
        if std::env::var(NOOP_ENV).is_ok() {
            // The webhook's HTTP layer and AdmissionReview handling with rules that do nothing:
            // what the webhook costs before any rule runs.
            use orkestra_webhook::admission::{Admission, Enforcement, Rules};
            use orkestra_webhook::server::{Limits, Webhook};
            fn no_rules(
                _: &orkestra::input::object::GroupObject,
                _: Option<&orkestra::input::object::GroupObject>,
            ) -> orkestra::admission::validate::Report {
                orkestra::admission::validate::Report::default()
            }
            fn no_patch(
                _: &[u8],
            ) -> Result<
                orkestra::admission::defaults::Patch,
                orkestra::admission::defaults::DefaultsError,
            > {
                Ok(Default::default())
            }
            let admission = Admission {
                enforcement: Enforcement::Deny,
                rules: Rules {
                    validate: no_rules,
                    mutate: no_patch,
                },
                policy: Default::default(),
            };
            let webhook = Arc::new(Webhook::new(
                admission,
                Arc::new(Metrics::new()),
                Limits::default(),
            ));
            let (_stop, rx) = tokio::sync::watch::channel(false);
            let cfg = Arc::new(tls::server_config(certs, MinTlsVersion::Tls12)?);
            orkestra_webhook::server::serve_tls(listener, cfg, webhook, rx, Duration::ZERO).await;
            return Ok(());
        }
        let builder = Arc::new(hyper_util::server::conn::auto::Builder::new(
            TokioExecutor::new(),
        ));
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let (acceptor, builder) = (acceptor.clone(), builder.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    let mut r =
                        hyper::Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                    r.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(r)
                });
                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    })
}

/// Starts this benchmark binary again as the floor server (or the no-op-rules webhook) and
/// reads its port.
fn spawn_helper(dir: &std::path::Path, noop: bool) -> anyhow::Result<(Guard, u16)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(FLOOR_ENV, dir).stdout(Stdio::piped());
    if noop {
        cmd.env(NOOP_ENV, "1");
    }
    let mut guard = Guard(cmd.spawn()?);
    let out = guard
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("helper stdout"))?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    Ok((guard, line.trim().parse()?))
}

struct Guard(Child);

impl Guard {
    fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(|_| ())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

fn anyhow_box(e: client::BoxError) -> anyhow::Error {
    anyhow::anyhow!(e)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// User and system CPU time of process `pid` so far (from /proc, in clock ticks of 10 ms:
/// USER_HZ is 100 on Linux).
fn cpu_time(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            // utime and stime are the 12th and 13th of them, in clock ticks.
            let rest = s.rsplit_once(')')?.1;
            Some(
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn hwm_kib(pid: u32) -> u64 {
    status_field(pid, "VmHWM:")
}

fn probe(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    ))
}
