//! Prometheus metrics of the webhook, and the readiness flag the probes read.
//!
//! Hand-rolled on atomics: the label sets are small and fixed (endpoint × verdict), so a metrics
//! crate would add weight without adding anything. The text format is Prometheus exposition 0.0.4.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::admission::{Endpoint, Verdict};

/// Upper bounds (seconds) of the latency histogram buckets: fine-grained below 10 ms, where a
/// healthy webhook lives, then coarse up to the apiserver's timeouts.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

const ENDPOINTS: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // Buckets are stored non-cumulatively and summed at render time: one increment per sample.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// All counters and gauges of one webhook process.
pub struct Metrics {
    requests: [[AtomicU64; Verdict::ALL.len()]; ENDPOINTS.len()],
    latency: [Histogram; ENDPOINTS.len()],
    /// Requests answered at the HTTP layer (404, 405, 408, 413, 415, 503) by status code.
    http_rejections: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    in_flight: AtomicI64,
    cert_not_after: AtomicI64,
    cert_reloads_ok: AtomicU64,
    cert_reloads_failed: AtomicU64,
    connections_refused: [AtomicU64; 2],
    connections_open: [AtomicI64; 2],
    reviews_abandoned: AtomicU64,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new()),
            http_rejections: std::sync::Mutex::new(Default::default()),
            in_flight: AtomicI64::new(0),
            cert_not_after: AtomicI64::new(0),
            cert_reloads_ok: AtomicU64::new(0),
            cert_reloads_failed: AtomicU64::new(0),
            connections_refused: std::array::from_fn(|_| AtomicU64::new(0)),
            connections_open: std::array::from_fn(|_| AtomicI64::new(0)),
            reviews_abandoned: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Counts one answered review and its latency.
    pub fn observe(&self, endpoint: Endpoint, verdict: Verdict, elapsed: Duration) {
        let e = endpoint_index(endpoint);
        self.requests[e][verdict as usize].fetch_add(1, Ordering::Relaxed);
        self.latency[e].observe(elapsed);
    }

    /// Counts a request refused before admission ran (bad method, size, type, timeout).
    pub fn http_rejection(&self, code: u16) {
        if let Ok(mut m) = self.http_rejections.lock() {
            *m.entry(code).or_default() += 1;
        }
    }

    /// Marks one review in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub fn in_flight_now(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn set_cert_not_after(&self, unix_seconds: i64) {
        self.cert_not_after.store(unix_seconds, Ordering::Relaxed);
    }

    pub fn cert_not_after(&self) -> i64 {
        self.cert_not_after.load(Ordering::Relaxed)
    }

    pub fn cert_reloaded(&self, ok: bool) {
        let c = if ok {
            &self.cert_reloads_ok
        } else {
            &self.cert_reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed at accept because its listener or its client was at the cap.
    pub fn connection_refused(&self, listener: Listener) {
        self.connections_refused[listener as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections refused so far on `listener`.
    pub fn connections_refused(&self, listener: Listener) -> u64 {
        self.connections_refused[listener as usize].load(Ordering::Relaxed)
    }

    /// One connection more (`1`) or less (`-1`) open on `listener`.
    pub fn connection_opened(&self, listener: Listener, delta: i64) {
        self.connections_open[listener as usize].fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts a review whose client went away before its answer (the work went on).
    pub fn review_abandoned(&self) {
        self.reviews_abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// Reviews abandoned by their clients so far.
    pub fn reviews_abandoned(&self) -> u64 {
        self.reviews_abandoned.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Total reviews answered on `endpoint` with `verdict` (for tests and the benchmark).
    pub fn requests(&self, endpoint: Endpoint, verdict: Verdict) -> u64 {
        self.requests[endpoint_index(endpoint)][verdict as usize].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP orkestra_webhook_requests_total AdmissionReviews answered, by endpoint and verdict."
        )?;
        writeln!(out, "# TYPE orkestra_webhook_requests_total counter")?;
        for endpoint in ENDPOINTS {
            for verdict in Verdict::ALL {
                writeln!(
                    out,
                    "orkestra_webhook_requests_total{{endpoint=\"{}\",verdict=\"{}\"}} {}",
                    endpoint.as_str(),
                    verdict.as_str(),
                    self.requests(endpoint, verdict)
                )?;
            }
        }

        writeln!(
            out,
            "# HELP orkestra_webhook_request_duration_seconds Time from request head to answer, by endpoint."
        )?;
        writeln!(
            out,
            "# TYPE orkestra_webhook_request_duration_seconds histogram"
        )?;
        for endpoint in ENDPOINTS {
            let h = &self.latency[endpoint_index(endpoint)];
            let mut cumulative = 0u64;
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                writeln!(
                    out,
                    "orkestra_webhook_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{bound}\"}} {cumulative}",
                    endpoint.as_str()
                )?;
            }
            let count = h.count.load(Ordering::Relaxed);
            writeln!(
                out,
                "orkestra_webhook_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"+Inf\"}} {count}",
                endpoint.as_str()
            )?;
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            writeln!(
                out,
                "orkestra_webhook_request_duration_seconds_sum{{endpoint=\"{}\"}} {sum}",
                endpoint.as_str()
            )?;
            writeln!(
                out,
                "orkestra_webhook_request_duration_seconds_count{{endpoint=\"{}\"}} {count}",
                endpoint.as_str()
            )?;
        }

        writeln!(
            out,
            "# HELP orkestra_webhook_http_rejections_total Requests refused before admission ran, by HTTP status."
        )?;
        writeln!(out, "# TYPE orkestra_webhook_http_rejections_total counter")?;
        if let Ok(m) = self.http_rejections.lock() {
            for (code, n) in m.iter() {
                writeln!(
                    out,
                    "orkestra_webhook_http_rejections_total{{code=\"{code}\"}} {n}"
                )?;
            }
        }

        writeln!(
            out,
            "# HELP orkestra_webhook_requests_in_flight Reviews being read or answered right now."
        )?;
        writeln!(out, "# TYPE orkestra_webhook_requests_in_flight gauge")?;
        writeln!(
            out,
            "orkestra_webhook_requests_in_flight {}",
            self.in_flight_now()
        )?;

        writeln!(
            out,
            "# HELP orkestra_webhook_certificate_expiry_timestamp_seconds notAfter of the serving certificate in use (unix time)."
        )?;
        writeln!(
            out,
            "# TYPE orkestra_webhook_certificate_expiry_timestamp_seconds gauge"
        )?;
        writeln!(
            out,
            "orkestra_webhook_certificate_expiry_timestamp_seconds {}",
            self.cert_not_after()
        )?;

        writeln!(
            out,
            "# HELP orkestra_webhook_certificate_reloads_total Certificate reloads after the files changed, by result."
        )?;
        writeln!(
            out,
            "# TYPE orkestra_webhook_certificate_reloads_total counter"
        )?;
        writeln!(
            out,
            "orkestra_webhook_certificate_reloads_total{{result=\"success\"}} {}",
            self.cert_reloads_ok.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "orkestra_webhook_certificate_reloads_total{{result=\"failure\"}} {}",
            self.cert_reloads_failed.load(Ordering::Relaxed)
        )?;

        writeln!(
            out,
            "# HELP orkestra_webhook_connections_refused_total Connections closed at accept because the listener or the client was at its cap, by listener."
        )?;
        writeln!(
            out,
            "# TYPE orkestra_webhook_connections_refused_total counter"
        )?;
        for l in Listener::ALL {
            writeln!(
                out,
                "orkestra_webhook_connections_refused_total{{listener=\"{}\"}} {}",
                l.as_str(),
                self.connections_refused(l)
            )?;
        }
        writeln!(
            out,
            "# HELP orkestra_webhook_connections_open Connections open now, by listener."
        )?;
        writeln!(out, "# TYPE orkestra_webhook_connections_open gauge")?;
        for l in Listener::ALL {
            writeln!(
                out,
                "orkestra_webhook_connections_open{{listener=\"{}\"}} {}",
                l.as_str(),
                self.connections_open[l as usize].load(Ordering::Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP orkestra_webhook_reviews_abandoned_total Reviews whose client went away before the answer; each ran to its end."
        )?;
        writeln!(
            out,
            "# TYPE orkestra_webhook_reviews_abandoned_total counter"
        )?;
        writeln!(
            out,
            "orkestra_webhook_reviews_abandoned_total {}",
            self.reviews_abandoned()
        )?;

        writeln!(
            out,
            "# HELP orkestra_webhook_ready 1 while the webhook accepts reviews, 0 while starting or draining."
        )?;
        writeln!(out, "# TYPE orkestra_webhook_ready gauge")?;
        writeln!(out, "orkestra_webhook_ready {}", u8::from(self.is_ready()))?;
        Ok(())
    }
}

/// The two listeners of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// HTTPS: the admission reviews.
    Webhook = 0,
    /// Plain HTTP: probes and metrics.
    Metrics = 1,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Webhook, Listener::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Webhook => "webhook",
            Listener::Metrics => "metrics",
        }
    }
}

fn endpoint_index(e: Endpoint) -> usize {
    match e {
        Endpoint::Validate => 0,
        Endpoint::Mutate => 1,
    }
}

/// Decrements the in-flight gauge when dropped, so early returns and panics are counted too.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::new();
        m.observe(
            Endpoint::Validate,
            Verdict::Denied,
            Duration::from_micros(300),
        );
        m.observe(Endpoint::Mutate, Verdict::Patched, Duration::from_millis(3));
        m.http_rejection(413);
        m.set_cert_not_after(1_900_000_000);
        m.set_ready(true);
        let g = m.in_flight();
        let text = m.render();
        drop(g);
        assert!(text.contains(
            "orkestra_webhook_requests_total{endpoint=\"validate\",verdict=\"denied\"} 1"
        ));
        assert!(text.contains(
            "orkestra_webhook_request_duration_seconds_bucket{endpoint=\"validate\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "orkestra_webhook_request_duration_seconds_bucket{endpoint=\"validate\",le=\"0.00025\"} 0"
        ));
        assert!(text.contains(
            "orkestra_webhook_request_duration_seconds_bucket{endpoint=\"mutate\",le=\"+Inf\"} 1"
        ));
        assert!(text.contains("orkestra_webhook_http_rejections_total{code=\"413\"} 1"));
        assert!(text.contains("orkestra_webhook_requests_in_flight 1"));
        assert!(text.contains("orkestra_webhook_certificate_expiry_timestamp_seconds 1900000000"));
        assert!(text.contains("orkestra_webhook_ready 1"));
        assert_eq!(m.in_flight_now(), 0);
    }
}
