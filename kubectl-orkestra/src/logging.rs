//! Logs on stderr through tracing: plain text for people (`-v LEVEL`, as kubectl's, or
//! `RUST_LOG`), one JSON object a line for the executor (Argo keeps the pod's log, and a failed
//! step's last lines become its node message).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The filter: `RUST_LOG` when set, else `default`.
fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// The plugin's logs: warnings only by default; kubectl's `-v` levels (1-3 info, 4-5 debug,
/// 6 and up trace, which shows kube's requests).
pub fn plugin(verbosity: u8) {
    let level = match verbosity {
        0 => "warn",
        1..=3 => "info",
        4..=5 => "debug",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The executor's log: its own events at `info`, as flat JSON objects (`timestamp`, `level`,
/// then the event's fields: see `commands::executor`).
pub fn executor() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter("kubectl_orkestra=info"))
        .with_writer(std::io::stderr)
        .try_init();
}
