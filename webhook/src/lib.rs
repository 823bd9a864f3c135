//! `orkestra-webhook`: the validating and mutating admission webhooks for Orkestra
//! ApplicationGroups.
//!
//! - [`admission`]: AdmissionReview in, AdmissionReview out (pure; the rules come from `orkestra`).
//! - [`server`]: HTTPS (hyper 1 + rustls) with limits and timeouts, plus the health/metrics server.
//! - [`tls`]: the rustls configuration and the certificate that reloads when its files change.
//! - [`certs`]: minting a CA and serving certificate (installs without cert-manager, tests).
//! - [`metrics`]: Prometheus counters, latency histogram, in-flight gauge, certificate expiry.
//! - [`run`]: process lifecycle and graceful shutdown. [`args`]: the command line.

pub mod admission;
pub mod args;
pub mod certs;
pub mod metrics;
pub mod run;
pub mod server;
pub mod tls;
