//! Flags.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// The Orkestra operator: writes every ApplicationGroup's status; releases a changed spec
/// (`spec.releasePolicy.automatic`) and rolls a failed release back
/// (`spec.releasePolicy.rollbackOnFailure`) when the group opts in; removes a deleted group's
/// releases, dependents first. The cluster comes from KUBECONFIG, else the in-cluster config.
#[derive(Debug, Clone, Parser)]
#[command(name = "orkestra-controller", version)]
pub struct Args {
    /// Address of the plain-HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: SocketAddr,

    /// Elect a leader among the replicas with a Lease; only the leader reconciles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Name of the Lease.
    #[arg(long, default_value = "orkestra-controller")]
    pub lease_name: String,

    /// Namespace of the Lease (default: the pod's namespace, else orkestra-system).
    #[arg(long, env = "POD_NAMESPACE", default_value = "orkestra-system")]
    pub lease_namespace: String,

    /// How long a leader holds the Lease without renewing it; a replica takes over after that.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,

    /// This replica's name in the Lease (default: the pod's name, else host and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// How often a group in flight is looked at again, besides the watches' wake-ups.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub requeue_in_flight: Duration,

    /// How often a settled group is looked at again (drift), besides the watches' wake-ups.
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub requeue_settled: Duration,

    /// Manage only the groups with these labels (a label selector, as Flux's controllers take
    /// it): to run a canary controller beside the main one, or one per team.
    #[arg(long, value_name = "SELECTOR")]
    pub watch_label_selector: Option<String>,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn duration(s: &str) -> Result<Duration, String> {
    orkestra::duration::parse(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a duration like 500ms, 15s or 5m"))
}

impl Args {
    /// The identity written into the Lease.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "orkestra-controller".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_defaults() {
        let a = Args::try_parse_from(["orkestra-controller", "--lease-duration", "6s"])
            .expect("parses");
        assert_eq!(a.lease_duration, Duration::from_secs(6));
        assert!(a.leader_elect);
        let a = Args::try_parse_from(["orkestra-controller", "--leader-elect", "false"])
            .expect("parses");
        assert!(!a.leader_elect);
        let e = Args::try_parse_from(["orkestra-controller", "--lease-duration", "0s"])
            .expect_err("zero is refused");
        assert!(e.to_string().contains("is not a duration"), "{e}");
    }
}
