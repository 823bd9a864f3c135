//! The HTTPS server of the webhook pair and the plain-HTTP health/metrics server.
//!
//! hyper 1 with tokio-rustls; HTTP/1.1 keep-alive and HTTP/2 (ALPN, auto builder). Everything a
//! request must pass before [`crate::admission`] sees it lives here: method and path, content
//! type (415), a body cap answered 413 before anything is parsed, a cap on large bodies read at
//! once (503), header and body read timeouts (slow clients), and a connection cap. Graceful
//! shutdown: [`serve_tls`] stops accepting when told, lets in-flight requests finish (hyper sends
//! `Connection: close` / GOAWAY) and returns once the connections are drained.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Admission, Endpoint, Verdict};
use crate::metrics::{Listener, Metrics};

/// Limits and timeouts of the HTTPS server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (413 beyond). An UPDATE review carries object and oldObject,
    /// each up to the apiserver's 3 MiB, so 8 MiB.
    pub max_body_bytes: usize,
    /// Bodies above this size need a permit of the large-body semaphore. 128 KiB is a group of
    /// roughly 500 applications: reviewing it takes milliseconds and megabytes.
    pub large_body_bytes: usize,
    /// How many large bodies may be reviewed at once. Their review is CPU-bound and briefly
    /// takes tens of megabytes (a 1,000-application mutation: ~40 MiB), so one at a time by
    /// default; the others wait (up to the API server's timeout less [`ANSWER_MARGIN`], then
    /// 503). The permit is taken once the body is complete and kept until the review ends,
    /// even when the client has gone away.
    pub max_large_in_flight: usize,
    /// Time allowed for a request head to arrive. hyper also applies it to idle keep-alive
    /// connections, so it exceeds the apiserver's 90 s idle-connection timeout: the apiserver
    /// closes idle connections first, and never sends a review on one we are closing.
    pub header_read_timeout: Duration,
    /// Time allowed for the whole body to arrive (408 beyond).
    pub body_read_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Open connections at most; further connections are closed at accept.
    pub max_connections: usize,
    /// Open connections from one client address at most, so one client cannot lock the others
    /// out.
    pub max_connections_per_client: usize,
    /// Open connections to the health and metrics listener at most (and per client, a quarter).
    pub max_metrics_connections: usize,
    /// Request body bytes held in memory at once, over all requests. A body takes its share
    /// as its bytes arrive, so a slow body holds only what it has sent.
    pub max_buffered_bytes: usize,
    /// Reviews worked on at once, on the blocking pool (never on the async threads).
    pub max_reviews_in_flight: usize,
    /// How long a review may wait for its turn when the request carries no `?timeout=` (the
    /// API server appends its webhook timeout; we wait that minus [`ANSWER_MARGIN`]).
    pub default_wait: Duration,
}

/// Time kept in hand below the API server's webhook timeout to answer 503 before it gives up.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            large_body_bytes: 128 << 10,
            max_large_in_flight: 1,
            header_read_timeout: Duration::from_secs(100),
            body_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_client: 256,
            max_metrics_connections: 64,
            max_buffered_bytes: 32 << 20,
            max_reviews_in_flight: std::thread::available_parallelism()
                .map_or(2, |n| n.get().max(2)),
            default_wait: Duration::from_millis(1500),
        }
    }
}

type Body = Full<Bytes>;

/// The request handler of the webhook pair: HTTP checks, then admission.
pub struct Webhook {
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// Large reviews worked on at once.
    large_bodies: Arc<Semaphore>,
    /// Reviews worked on at once (each holds one blocking thread).
    reviews: Arc<Semaphore>,
    /// Body bytes in memory, in KiB.
    buffered: Arc<Semaphore>,
    /// Set on SIGTERM: every HTTP/1.1 answer says `Connection: close`.
    draining: AtomicBool,
}

/// An answer refused at the HTTP layer: status, reason, message.
type Refusal = (StatusCode, &'static str, String);

impl Webhook {
    pub fn new(admission: Admission, metrics: Arc<Metrics>, limits: Limits) -> Self {
        // Room for at least one body of the largest size.
        let kib = limits
            .max_buffered_bytes
            .max(limits.max_body_bytes)
            .div_ceil(1024)
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            admission: Arc::new(admission),
            metrics,
            large_bodies: Arc::new(Semaphore::new(limits.max_large_in_flight.max(1))),
            reviews: Arc::new(Semaphore::new(limits.max_reviews_in_flight.max(1))),
            buffered: Arc::new(Semaphore::new(kib)),
            limits,
            draining: AtomicBool::new(false),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// From now on every HTTP/1.1 answer carries `Connection: close`, so keep-alive clients
    /// move to another replica one request at a time instead of losing one when the listener
    /// closes.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let version = req.version();
        let mut response = self.route(req).await;
        if self.draining.load(Ordering::SeqCst) && version == Version::HTTP_11 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let endpoint = match (req.method(), req.uri().path()) {
            (&Method::POST, "/validate") => Endpoint::Validate,
            (&Method::POST, "/mutate") => Endpoint::Mutate,
            (_, "/validate" | "/mutate") => {
                let mut r = self.reject(
                    req.version(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "AdmissionReviews are POSTed",
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return r;
            }
            _ => {
                return self.reject(
                    req.version(),
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "no such endpoint: the webhook serves POST /validate and POST /mutate",
                );
            }
        };
        let start = Instant::now();
        let _in_flight = self.metrics.in_flight();
        let (response, verdict) = self.admit(endpoint, req).await;
        self.metrics.observe(endpoint, verdict, start.elapsed());
        response
    }

    async fn admit(&self, endpoint: Endpoint, req: Request<Incoming>) -> (Response<Body>, Verdict) {
        let version = req.version();
        let refused = |(status, reason, message): Refusal| {
            let mut r = self.reject(version, status, reason, &message);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            (r, Verdict::Rejected)
        };
        // Answer before the API server gives up: its timeout (appended as `?timeout=`) less a
        // margin, so a busy webhook says 503 instead of timing out.
        let wait = wait_budget(req.uri().query(), self.limits.default_wait);
        let deadline = tokio::time::Instant::now() + wait;
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return refused((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "Content-Type must be application/json".into(),
            ));
        }
        let max = self.limits.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return refused(too_large(max));
        }
        let (bytes, body_permit) = match self.read_body(req.into_body(), deadline).await {
            Ok(b) => b,
            Err(refusal) => return refused(refusal),
        };
        // Large reviews one at a time (memory), every review on the blocking pool (CPU). Both
        // permits go into the blocking task and are released when the work ends, not when the
        // client stops waiting.
        let large = if bytes.len() > self.limits.large_body_bytes {
            match tokio::time::timeout_at(deadline, Arc::clone(&self.large_bodies).acquire_owned())
                .await
            {
                Ok(Ok(p)) => Some(p),
                _ => return refused(busy("too many large AdmissionReviews in flight")),
            }
        } else {
            None
        };
        let slot = match tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.reviews).acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => return refused(busy("too many AdmissionReviews in flight")),
        };
        let mut watch = Abandoned::new(endpoint, Arc::clone(&self.metrics));
        if bytes.len() <= INLINE_BODY_BYTES {
            // A small review takes tens of microseconds, about what handing it to the blocking
            // pool and back costs: judge it here.
            let answer = guarded(&self.admission, endpoint, &bytes);
            drop((slot, large, body_permit));
            watch.finished();
            log_answer(endpoint, &answer);
            let status = StatusCode::from_u16(answer.http_status).unwrap_or(StatusCode::OK);
            return (json_response(status, answer.body), answer.verdict);
        }
        let admission = Arc::clone(&self.admission);
        let abandoned = Arc::clone(&watch.flag);
        let task = tokio::task::spawn_blocking(move || {
            let permits = (slot, large, body_permit);
            let started = Instant::now();
            let answer = guarded(&admission, endpoint, &bytes);
            drop(bytes);
            drop(permits);
            if abandoned.load(Ordering::SeqCst) {
                tracing::warn!(
                    endpoint = endpoint.as_str(),
                    uid = answer.uid.as_deref().unwrap_or(""),
                    elapsed = ?started.elapsed(),
                    "abandoned review finished; its answer is dropped: {}",
                    answer.summary
                );
            }
            answer
        });
        let answer = match task.await {
            Ok(a) => a,
            Err(e) => internal_error(&format!("review task failed: {e}")),
        };
        watch.finished();
        log_answer(endpoint, &answer);
        let status = StatusCode::from_u16(answer.http_status).unwrap_or(StatusCode::OK);
        (json_response(status, answer.body), answer.verdict)
    }

    /// Reads the whole body within the body read timeout, taking a share of the buffered-bytes
    /// budget as its bytes arrive (waiting for it at most until `deadline`).
    async fn read_body(
        &self,
        mut body: Incoming,
        deadline: tokio::time::Instant,
    ) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), Refusal> {
        let max = self.limits.max_body_bytes;
        let read_by = tokio::time::Instant::now() + self.limits.body_read_timeout;
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        let mut held: Option<OwnedSemaphorePermit> = None;
        let mut held_kib = 0usize;
        loop {
            let frame = match tokio::time::timeout_at(read_by, body.frame()).await {
                Err(_) => {
                    return Err((
                        StatusCode::REQUEST_TIMEOUT,
                        "Timeout",
                        "request body not received in time".into(),
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("cannot read request body: {e}"),
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            len += data.len();
            if len > max {
                return Err(too_large(max));
            }
            let need = len.div_ceil(1024);
            if need > held_kib {
                let more = u32::try_from(need - held_kib).unwrap_or(u32::MAX);
                let permit = tokio::time::timeout_at(
                    deadline,
                    Arc::clone(&self.buffered).acquire_many_owned(more),
                )
                .await;
                match permit {
                    Ok(Ok(p)) => match held.as_mut() {
                        Some(h) => h.merge(p),
                        None => held = Some(p),
                    },
                    _ => return Err(busy("too much request data in flight")),
                }
                held_kib = need;
            }
            chunks.push(data);
        }
        let mut bytes = Vec::with_capacity(len);
        for c in chunks {
            bytes.extend_from_slice(&c);
        }
        Ok((bytes, held))
    }

    fn reject(
        &self,
        version: Version,
        status: StatusCode,
        reason: &str,
        message: &str,
    ) -> Response<Body> {
        self.metrics.http_rejection(status.as_u16());
        tracing::debug!(status = status.as_u16(), message, "request rejected");
        let mut r = json_response(
            status,
            admission::status_body(status.as_u16(), reason, message),
        );
        // An unread body cannot be skipped on HTTP/1.1: close instead of reusing the connection.
        if version == Version::HTTP_11 && status != StatusCode::NOT_FOUND {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

fn too_large(max: usize) -> Refusal {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("request body is larger than {max} bytes"),
    )
}

fn busy(what: &str) -> Refusal {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        format!("{what}; retry"),
    )
}

/// How long a request may wait for its turn: the `timeout` the API server appends to the URL
/// (its webhook `timeoutSeconds`) less [`ANSWER_MARGIN`], else `default`; at least 100 ms.
pub fn wait_budget(query: Option<&str>, default: Duration) -> Duration {
    let timeout = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("timeout="))
        .and_then(orkestra::duration::parse);
    match timeout {
        Some(t) => t
            .saturating_sub(ANSWER_MARGIN)
            .max(Duration::from_millis(100)),
        None => default,
    }
}

/// Notices a client that stopped waiting for its review (the API server does at its timeout):
/// the work goes on to its end with its permits, and this logs and counts it.
struct Abandoned {
    endpoint: Endpoint,
    metrics: Arc<Metrics>,
    flag: Arc<AtomicBool>,
    done: bool,
}

impl Abandoned {
    fn new(endpoint: Endpoint, metrics: Arc<Metrics>) -> Self {
        Self {
            endpoint,
            metrics,
            flag: Arc::new(AtomicBool::new(false)),
            done: false,
        }
    }

    fn finished(&mut self) {
        self.done = true;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if !self.done {
            self.flag.store(true, Ordering::SeqCst);
            self.metrics.review_abandoned();
            tracing::warn!(
                endpoint = self.endpoint.as_str(),
                "client went away during its review; the review runs to its end and keeps its permits"
            );
        }
    }
}

/// Runs admission, turning a panic in the rules into a denial instead of a dropped connection.
/// Reviews up to this size are judged on the runtime's own thread: a 10-application group is
/// 3 KiB, and the worst review of this size (a ring of dependencies, typo hints for each) takes
/// about a millisecond, so health probes are not held up.
const INLINE_BODY_BYTES: usize = 16 << 10;

fn guarded(admission: &Admission, endpoint: Endpoint, body: &[u8]) -> admission::Answer {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        admission.review(endpoint, body)
    })) {
        Ok(a) => a,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            let mut a = internal_error(&format!("internal error while reviewing: {what}"));
            if let Some(uid) = admission::scan_uid(body) {
                // Deny with the uid so the user reads the reason, not a webhook failure.
                let review = serde_json::json!({
                    "apiVersion": admission::REVIEW_API_VERSION,
                    "kind": "AdmissionReview",
                    "response": {"uid": uid, "allowed": false, "status": {
                        "status": "Failure", "code": 500, "reason": "InternalError",
                        "message": format!("orkestra webhook bug, please report it: {what}")}},
                });
                a.http_status = 200;
                a.body = serde_json::to_vec(&review).unwrap_or_default();
                a.uid = Some(uid);
            }
            a
        }
    }
}

fn internal_error(message: &str) -> admission::Answer {
    admission::Answer {
        http_status: 500,
        body: admission::status_body(500, "InternalError", message),
        verdict: Verdict::Error,
        uid: None,
        summary: message.to_owned(),
    }
}

fn log_answer(endpoint: Endpoint, a: &admission::Answer) {
    let uid = a.uid.as_deref().unwrap_or("");
    match a.verdict {
        Verdict::Error => tracing::error!(endpoint = endpoint.as_str(), uid, "{}", a.summary),
        Verdict::Malformed => {
            tracing::warn!(endpoint = endpoint.as_str(), uid, "{}", a.summary)
        }
        Verdict::Denied | Verdict::Warned => {
            tracing::info!(endpoint = endpoint.as_str(), uid, "{}", a.summary)
        }
        _ => tracing::debug!(endpoint = endpoint.as_str(), uid, "{}", a.summary),
    }
}

fn is_json(v: Option<&HeaderValue>) -> bool {
    let Some(v) = v.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = v.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The connection builder: HTTP/1.1 with keep-alive and a header read timeout, HTTP/2 when the
/// client negotiated it.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

/// Serves the webhook over TLS on `listener` until `stop` turns true, then drains: in-flight
/// requests finish (up to `drain_timeout`) and the function returns.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    webhook: Arc<Webhook>,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder(webhook.limits()));
    let limits = webhook.limits();
    let connections = Arc::new(ConnectionCap::new(
        Listener::Webhook,
        limits.max_connections,
        limits.max_connections_per_client,
        Arc::clone(webhook.metrics()),
    ));
    let handshake_timeout = webhook.limits().handshake_timeout;
    loop {
        if *stop.borrow() {
            break;
        }
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(permit) = connections.open(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let webhook = Arc::clone(&webhook);
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |req| {
                let webhook = Arc::clone(&webhook);
                async move { Ok::<_, Infallible>(webhook.handle(req).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; draining connections");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(drain_timeout) => {
            tracing::warn!(?drain_timeout, "drain timed out; closing remaining connections");
        }
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` over plain HTTP/1.1 until `stop` turns true, with
/// at most `max_connections` open connections (a quarter of them per client address).
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let http = Arc::new(http);
    let max = max_connections.max(1);
    let connections = Arc::new(ConnectionCap::new(
        Listener::Metrics,
        max,
        (max / 4).max(1),
        Arc::clone(&metrics),
    ));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Some(permit) = connections.open(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let http = Arc::clone(&http);
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req: Request<Incoming>| {
                let metrics = Arc::clone(&metrics);
                async move { Ok::<_, Infallible>(probe(&metrics, &req)) }
            });
            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

fn probe(metrics: &Metrics, req: &Request<Incoming>) -> Response<Body> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    match req.uri().path() {
        "/healthz" | "/livez" => text_response(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" if metrics.is_ready() => text_response(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "not ready (starting or shutting down)\n".into(),
        ),
        "/metrics" => text_response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        _ => text_response(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

/// Counts the open connections of one listener, in all and per client address.
pub struct ConnectionCap {
    listener: Listener,
    total: usize,
    per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    metrics: Arc<Metrics>,
}

/// One open connection; dropping it frees its place.
pub struct ConnectionPermit {
    cap: Arc<ConnectionCap>,
    ip: IpAddr,
}

impl ConnectionCap {
    pub fn new(listener: Listener, total: usize, per_client: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            listener,
            total: total.max(1),
            per_client: per_client.max(1),
            open: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// A place for a new connection from `ip`, or `None` (counted) when the listener or this
    /// client is at its cap.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&ip).copied().unwrap_or(0);
        if total >= self.total || mine >= self.per_client {
            drop(open);
            self.metrics.connection_refused(self.listener);
            return None;
        }
        *open.entry(ip).or_default() += 1;
        self.metrics.connection_opened(self.listener, 1);
        Some(ConnectionPermit {
            cap: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
        self.cap.metrics.connection_opened(self.cap.listener, -1);
    }
}

/// Binds a listener (helper for callers that want the bound address before serving).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_ends_before_the_api_server_gives_up() {
        let default = Duration::from_millis(1500);
        assert_eq!(
            wait_budget(Some("timeout=2s"), default),
            Duration::from_millis(1500)
        );
        assert_eq!(
            wait_budget(Some("x=1&timeout=3s"), default),
            Duration::from_millis(2500)
        );
        assert_eq!(
            wait_budget(Some("timeout=1m0s"), default),
            Duration::from_millis(59_500)
        );
        assert_eq!(
            wait_budget(Some("timeout=100ms"), default),
            Duration::from_millis(100)
        );
        assert_eq!(wait_budget(None, default), default);
        assert_eq!(wait_budget(Some("timeout=soon"), default), default);
    }

    #[test]
    fn one_client_cannot_take_every_connection() {
        let metrics = Arc::new(Metrics::new());
        let cap = Arc::new(ConnectionCap::new(
            Listener::Webhook,
            4,
            2,
            Arc::clone(&metrics),
        ));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = [cap.open(a), cap.open(a)];
        assert!(first.iter().all(Option::is_some));
        assert!(cap.open(a).is_none(), "over the per-client cap");
        let others = [cap.open(b), cap.open(b)];
        assert!(others.iter().all(Option::is_some));
        assert!(cap.open(b).is_none(), "over the listener's cap");
        drop(first);
        assert!(cap.open(a).is_some(), "a closed connection frees its place");
        assert_eq!(metrics.connections_refused(Listener::Webhook), 2);
    }
}
