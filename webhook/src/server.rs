//! The HTTPS server of the webhook pair and the plain-HTTP health/metrics server.
//!
//! hyper 1 with tokio-rustls; HTTP/1.1 keep-alive and HTTP/2 (ALPN, auto builder). Everything a
//! request must pass before [`crate::admission`] sees it lives here: method and path, content
//! type (415), a body cap answered 413 before anything is parsed, a cap on large bodies read at
//! once (503), header and body read timeouts (slow clients), and a connection cap. Graceful
//! shutdown: [`serve_tls`] stops accepting when told, lets in-flight requests finish (hyper sends
//! `Connection: close` / GOAWAY) and returns once the connections are drained.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Admission, Endpoint, Verdict};
use crate::metrics::Metrics;

/// Limits and timeouts of the HTTPS server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (413 beyond). An UPDATE review carries object and oldObject,
    /// each up to the apiserver's 3 MiB, so 8 MiB.
    pub max_body_bytes: usize,
    /// Bodies above this size (or of unknown size) need a permit of the large-body semaphore
    /// and are reviewed on the blocking pool. 128 KiB is a group of roughly 500 applications:
    /// reviewing it takes milliseconds and megabytes.
    pub large_body_bytes: usize,
    /// How many large bodies may be read and reviewed at once. Their review is CPU-bound and
    /// briefly takes tens of megabytes (a 1,000-application mutation: ~40 MiB), so one at a time
    /// by default; the others wait (up to 2 s, then 503).
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
}

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
        }
    }
}

type Body = Full<Bytes>;

/// The request handler of the webhook pair: HTTP checks, then admission.
pub struct Webhook {
    admission: Admission,
    metrics: Arc<Metrics>,
    limits: Limits,
    large_bodies: Semaphore,
}

impl Webhook {
    pub fn new(admission: Admission, metrics: Arc<Metrics>, limits: Limits) -> Self {
        let permits = limits.max_large_in_flight.max(1);
        Self {
            admission,
            metrics,
            limits,
            large_bodies: Semaphore::new(permits),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
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
        let rejected = |status, reason, message: &str| {
            (
                self.reject(version, status, reason, message),
                Verdict::Rejected,
            )
        };
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return rejected(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "Content-Type must be application/json",
            );
        }
        let max = self.limits.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return rejected(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("request body is larger than {max} bytes"),
            );
        }
        // Large or unsized bodies take a permit, so a burst of them cannot exhaust memory.
        let _permit = if declared.is_none_or(|n| n > self.limits.large_body_bytes as u64) {
            let wait = Duration::from_secs(2).min(self.limits.body_read_timeout);
            match tokio::time::timeout(wait, self.large_bodies.acquire()).await {
                Ok(Ok(p)) => Some(p),
                _ => {
                    let (mut r, v) = rejected(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        "too many large AdmissionReviews in flight; retry",
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return (r, v);
                }
            }
        } else {
            None
        };
        let body = Limited::new(req.into_body(), max);
        let bytes = match tokio::time::timeout(self.limits.body_read_timeout, body.collect()).await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return rejected(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    &format!("request body is larger than {max} bytes"),
                );
            }
            Ok(Err(e)) => {
                return rejected(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("cannot read request body: {e}"),
                );
            }
            Err(_) => {
                return rejected(
                    StatusCode::REQUEST_TIMEOUT,
                    "Timeout",
                    "request body not received in time",
                );
            }
        };

        let admission = self.admission;
        let answer = if bytes.len() > self.limits.large_body_bytes {
            // Reviewing a large group takes milliseconds: keep it off the reactor.
            match tokio::task::spawn_blocking(move || guarded(&admission, endpoint, &bytes)).await {
                Ok(a) => a,
                Err(e) => internal_error(&format!("review task failed: {e}")),
            }
        } else {
            guarded(&admission, endpoint, &bytes)
        };
        log_answer(endpoint, &answer);
        let status = StatusCode::from_u16(answer.http_status).unwrap_or(StatusCode::OK);
        (json_response(status, answer.body), answer.verdict)
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

/// Runs admission, turning a panic in the rules into a denial instead of a dropped connection.
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
    let connections = Arc::new(Semaphore::new(webhook.limits().max_connections.max(1)));
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
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            webhook.metrics().connection_refused();
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

/// Serves `/healthz`, `/readyz` and `/metrics` over plain HTTP/1.1 until `stop` turns true.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let http = Arc::new(http);
    loop {
        let (tcp, _) = tokio::select! {
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
        let metrics = Arc::clone(&metrics);
        let http = Arc::clone(&http);
        tokio::spawn(async move {
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

/// Binds a listener (helper for callers that want the bound address before serving).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
