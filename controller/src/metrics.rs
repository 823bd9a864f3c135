//! The controller's Prometheus metrics: reconciles and their errors, releases by outcome,
//! leadership and readiness.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the controller did with a group, counted in `orkestra_controller_releases_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A spec change released (`releasePolicy.automatic`).
    Released,
    /// A failed release rolled back (`releasePolicy.rollbackOnFailure`).
    RolledBack,
    /// A policy held back (the message is in the group's status).
    Held,
    /// A deleted group's releases removed.
    Removed,
    /// A deleted group's releases left installed (the orphan annotation).
    Orphaned,
}

const OUTCOMES: [Outcome; 5] = [
    Outcome::Released,
    Outcome::RolledBack,
    Outcome::Held,
    Outcome::Removed,
    Outcome::Orphaned,
];

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::RolledBack => "rolled_back",
            Self::Held => "held",
            Self::Removed => "removed",
            Self::Orphaned => "orphaned",
        }
    }
}

/// The counters; shared by the reconciler and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    errors: AtomicU64,
    reconcile_micros: AtomicU64,
    outcomes: [AtomicU64; OUTCOMES.len()],
    leader: AtomicBool,
    ready: AtomicBool,
}

impl Metrics {
    pub fn reconciled(&self, took: Duration, ok: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        self.reconcile_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn outcome(&self, o: Outcome) {
        if let Some(i) = OUTCOMES.iter().position(|x| *x == o) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "# HELP orkestra_controller_reconciles_total Reconciles of ApplicationGroups.\n# TYPE orkestra_controller_reconciles_total counter\norkestra_controller_reconciles_total {}",
            load(&self.reconciles)
        );
        let _ = writeln!(
            s,
            "# HELP orkestra_controller_reconcile_errors_total Reconciles that failed (retried with backoff).\n# TYPE orkestra_controller_reconcile_errors_total counter\norkestra_controller_reconcile_errors_total {}",
            load(&self.errors)
        );
        let _ = writeln!(
            s,
            "# HELP orkestra_controller_reconcile_seconds_total Time spent reconciling.\n# TYPE orkestra_controller_reconcile_seconds_total counter\norkestra_controller_reconcile_seconds_total {}",
            load(&self.reconcile_micros) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "# HELP orkestra_controller_releases_total What the controller did with groups, by outcome.\n# TYPE orkestra_controller_releases_total counter"
        );
        for (i, o) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                s,
                "orkestra_controller_releases_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                load(&self.outcomes[i])
            );
        }
        let _ = writeln!(
            s,
            "# HELP orkestra_controller_leader 1 while this replica holds the Lease.\n# TYPE orkestra_controller_leader gauge\norkestra_controller_leader {}",
            u8::from(self.leader.load(Ordering::Relaxed))
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(1500), true);
        m.reconciled(Duration::from_millis(500), false);
        m.outcome(Outcome::Released);
        m.outcome(Outcome::Released);
        m.outcome(Outcome::RolledBack);
        m.set_leader(true);
        let text = m.render();
        for line in [
            "orkestra_controller_reconciles_total 2",
            "orkestra_controller_reconcile_errors_total 1",
            "orkestra_controller_reconcile_seconds_total 2",
            "orkestra_controller_releases_total{outcome=\"released\"} 2",
            "orkestra_controller_releases_total{outcome=\"rolled_back\"} 1",
            "orkestra_controller_releases_total{outcome=\"removed\"} 0",
            "orkestra_controller_leader 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
