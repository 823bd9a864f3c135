//! Why an application has not been released yet: the chain of its unmet dependencies down to
//! the first blockers, each with its live state and what Argo or Flux said, and the cause of
//! each blocker (a failed step, a gate, a release in progress, a stopped Workflow, ...).
//!
//! Built from a [`StatusReport`]: one reading of the cluster, no further requests.

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::ApplicationGroupSpec;
use crate::live::report::{Row, StatusReport, Verdict};
use crate::plan::impact::{self, ImpactError};

/// Why a blocker blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    /// No release of the group exists yet.
    NeverPromoted,
    /// Its release step failed.
    FailedStep,
    /// It waits at its manual gate.
    Gate,
    /// It is being released now.
    InProgress,
    /// Flux gave up on its HelmRelease.
    Stalled,
    /// The Workflow ended (failed, stopped or terminated) before reaching it.
    WorkflowEnded,
    /// The Workflow exists but Argo has not started it.
    WorkflowPending,
    /// Argo skipped or omitted its step.
    Skipped,
    /// Its step has not started although nothing it needs is missing (Argo is about to).
    Starting,
}

/// One application on the chain of unmet dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Application.
    pub name: String,
    /// Distance from the application asked about (0 for itself).
    pub depth: usize,
    /// Its step's phase (`Pending` when Argo has not created it).
    pub state: String,
    /// Its dependencies that are not released yet.
    pub waits_for: Vec<String>,
    /// Argo's or Flux's message about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// True when shown earlier in the chain (reached by another path).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
}

/// An application whose own state holds the release up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// Application.
    pub name: String,
    /// Why.
    pub cause: Cause,
    /// The cause in words, with Argo's and Flux's messages.
    pub explanation: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The answer to `why APP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Why {
    /// Group.
    pub group: String,
    /// The application asked about.
    pub application: String,
    /// True when its latest release succeeded.
    pub released: bool,
    /// The application and its unmet dependencies, depth first.
    pub chain: Vec<Link>,
    /// The first blockers, in the order the chain reaches them.
    pub blockers: Vec<Blocker>,
    /// The Workflow the state was read from, `namespace/name (phase)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

fn app_row<'a>(report: &'a StatusReport, app: &str) -> Option<&'a Row> {
    report
        .rows
        .iter()
        .find(|r| r.application == app && r.subchart.is_none())
}

fn released(row: Option<&Row>) -> bool {
    row.and_then(|r| r.step.as_deref()) == Some("Succeeded")
}

/// Argo's and Flux's messages about an application, in one line.
fn messages(report: &StatusReport, app: &str) -> Option<String> {
    let mut parts = Vec::new();
    for row in report.rows.iter().filter(|r| r.application == app) {
        let who = match &row.subchart {
            Some(s) => format!("{app}/{s}"),
            None => app.to_string(),
        };
        if let Some(m) = &row.step_message {
            parts.push(format!("step {who}: {m}"));
        }
        if let Some(rel) = row
            .release
            .as_ref()
            .filter(|r| r.ready.as_deref() != Some("True"))
        {
            let mut t = format!(
                "HelmRelease {}/{}: Ready={}",
                row.namespace,
                row.helm_release,
                rel.ready.as_deref().unwrap_or("Unknown")
            );
            if let Some(reason) = &rel.reason {
                let _ = write!(t, " ({reason})");
            }
            if let Some(m) = &rel.message {
                let _ = write!(t, ": {m}");
            }
            parts.push(t);
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn blocker(report: &StatusReport, app: &str) -> Blocker {
    let group = &report.group;
    let row = app_row(report, app);
    let step = row.and_then(|r| r.step.as_deref()).unwrap_or("Pending");
    let said = messages(report, app);
    let with = |text: &str| match &said {
        Some(m) => format!("{text}: {m}"),
        None => text.to_string(),
    };
    let stalled = report
        .rows
        .iter()
        .filter(|r| r.application == app)
        .any(|r| r.release.as_ref().is_some_and(|x| x.stalled));
    let workflow = report.workflow.as_ref();
    let (cause, explanation, hint) = match step {
        _ if report.verdict == Verdict::NotReleased => (
            Cause::NeverPromoted,
            format!("ApplicationGroup {group} has never been released"),
            Some(format!("kubectl orkestra promote {group}")),
        ),
        "Failed" | "Error" => (
            Cause::FailedStep,
            with(&format!("its release step {}", step.to_lowercase())),
            Some(format!(
                "fix the cause, then `kubectl orkestra retry {group}` re-runs the release from the failed step"
            )),
        ),
        "Suspended" => (
            Cause::Gate,
            "it waits at its manual gate".to_string(),
            Some(format!("kubectl orkestra promote {group}")),
        ),
        "Skipped" | "Omitted" => (
            Cause::Skipped,
            with(&format!("Argo {} its step", step.to_lowercase())),
            None,
        ),
        "Running" if stalled => (
            Cause::Stalled,
            with("Flux gave up on its HelmRelease"),
            Some("flux reconcile helmrelease --force (or fix the chart and retry)".to_string()),
        ),
        "Running" => (Cause::InProgress, with("it is being released now"), None),
        _ => match workflow {
            Some(w) if report.verdict == Verdict::Failed => (
                Cause::WorkflowEnded,
                format!(
                    "Workflow {}/{} ended ({}) before it started{}",
                    w.namespace,
                    w.name,
                    w.phase,
                    w.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                Some(format!(
                    "`kubectl orkestra retry {group}` continues the release, `promote` starts a new one"
                )),
            ),
            Some(w) if report.verdict == Verdict::Pending => (
                Cause::WorkflowPending,
                format!(
                    "Argo has not started Workflow {}/{} yet (is the workflow-controller running?)",
                    w.namespace, w.name
                ),
                None,
            ),
            _ => (
                Cause::Starting,
                with("everything it needs is released; Argo has not started its step yet"),
                None,
            ),
        },
    };
    Blocker {
        name: app.to_string(),
        cause,
        explanation,
        hint,
    }
}

/// Why `app` of the group in `report` (built from `spec`, defaulted) is not released yet.
pub fn why(
    report: &StatusReport,
    spec: &ApplicationGroupSpec,
    app: &str,
) -> Result<Why, ImpactError> {
    let i = impact::find_application(&report.group, spec, app)?;
    let dag = crate::graph::app_dag(spec);
    let mut out = Why {
        group: report.group.clone(),
        application: app.to_string(),
        released: released(app_row(report, app)),
        chain: Vec::new(),
        blockers: Vec::new(),
        workflow: report.workflow.as_ref().map(|w| {
            format!(
                "{}/{} ({})",
                w.namespace,
                w.name,
                if w.phase.is_empty() {
                    "Pending"
                } else {
                    &w.phase
                }
            )
        }),
    };
    if out.released {
        return Ok(out);
    }
    let mut seen = vec![false; dag.len()];
    // Depth first, so each dependency's own chain follows it.
    let mut stack = vec![(i, 0usize)];
    while let Some((n, depth)) = stack.pop() {
        let name = dag.name(n);
        let row = app_row(report, name);
        let unmet: Vec<usize> = dag
            .dependencies(n)
            .iter()
            .copied()
            .filter(|&d| !released(app_row(report, dag.name(d))))
            .collect();
        out.chain.push(Link {
            name: name.to_string(),
            depth,
            state: row
                .and_then(|r| r.step.clone())
                .unwrap_or_else(|| "Pending".into()),
            waits_for: unmet.iter().map(|&d| dag.name(d).to_string()).collect(),
            message: messages(report, name),
            repeated: seen[n],
        });
        if seen[n] {
            continue;
        }
        seen[n] = true;
        if unmet.is_empty() || report.verdict == Verdict::NotReleased {
            out.blockers.push(blocker(report, name));
            continue;
        }
        for &d in unmet.iter().rev() {
            stack.push((d, depth + 1));
        }
    }
    Ok(out)
}

impl Why {
    /// The answer for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if self.released {
            let _ = writeln!(
                s,
                "{} has been released by {}",
                self.application,
                self.workflow.as_deref().unwrap_or("its latest Workflow")
            );
            return s;
        }
        let _ = writeln!(
            s,
            "{} has not been released yet{}",
            self.application,
            self.workflow
                .as_deref()
                .map(|w| format!(" (Workflow {w})"))
                .unwrap_or_default()
        );
        let label = |l: &Link| {
            if l.depth == 0 {
                l.name.clone()
            } else {
                format!("{}└─ {}", "   ".repeat(l.depth - 1), l.name)
            }
        };
        let width = self
            .chain
            .iter()
            .map(|l| label(l).chars().count())
            .max()
            .unwrap_or(0);
        for l in &self.chain {
            let what = if l.repeated {
                "(see above)".to_string()
            } else if l.waits_for.is_empty() {
                l.message.clone().unwrap_or_default()
            } else {
                format!("waits for {}", l.waits_for.join(", "))
            };
            let line = format!("  {:<width$}  {:<9}  {what}", label(l), l.state);
            let _ = writeln!(s, "{}", line.trim_end());
        }
        for b in &self.blockers {
            let _ = writeln!(s, "blocked by {}: {}", b.name, b.explanation);
            if let Some(h) = &b.hint {
                let _ = writeln!(s, "  next: {h}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::report::{Observed, StatusReport};
    use serde_json::{Value, json};

    fn spec() -> ApplicationGroupSpec {
        let app = |name: &str, deps: &[&str]| {
            json!({"name": name, "dependencies": deps, "spec": {
                "chart": {"url": "https://c", "name": name, "version": "1.0.0"}, "release": {}}})
        };
        let mut gated = app("search", &[]);
        gated["spec"]["gate"] = json!(true);
        crate::admission::defaults::default_spec(
            &serde_json::from_value(json!({"applications": [
                app("db", &[]), app("cache", &[]), app("api", &["db", "cache"]), gated,
                app("web", &["api", "search"]),
            ]}))
            .expect("spec"),
        )
    }

    fn node(name: &str, ty: &str, phase: &str, message: Option<&str>) -> (String, Value) {
        let mut n = json!({"name": format!("shop-r1.{name}"), "displayName": name, "type": ty, "phase": phase});
        if let Some(m) = message {
            n["message"] = json!(m);
        }
        (format!("id-{name}"), n)
    }

    fn report(phase: &str, nodes: &[(String, Value)], hrs: &[Value]) -> StatusReport {
        let wf = json!({"metadata": {"name": "shop-r1", "namespace": "orkestra"},
            "status": {"phase": phase, "nodes": nodes.iter().cloned().collect::<serde_json::Map<_, _>>()}});
        StatusReport::build(&Observed {
            group: "shop",
            spec: &spec(),
            conditions: &[],
            revision: Some((1, true)),
            workflow: Some(&wf),
            helm_releases: hrs,
            now: 0,
        })
    }

    #[test]
    fn the_chain_goes_down_to_a_failed_step_with_flux_s_message() {
        let hr = json!({"metadata": {"name": "db", "namespace": "db"}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "image pull failed"}]}});
        let r = report(
            "Failed",
            &[
                node("db", "DAG", "Failed", Some("child failed")),
                node("cache", "DAG", "Succeeded", None),
                node("Gate-search", "Suspend", "Running", None),
            ],
            &[hr],
        );
        let w = why(&r, &spec(), "web").expect("why");
        assert!(!w.released);
        let chain: Vec<(&str, usize, &str)> = w
            .chain
            .iter()
            .map(|l| (l.name.as_str(), l.depth, l.state.as_str()))
            .collect();
        assert_eq!(
            chain,
            vec![
                ("web", 0, "Pending"),
                ("api", 1, "Pending"),
                ("db", 2, "Failed"),
                ("search", 1, "Suspended")
            ]
        );
        let causes: Vec<(&str, Cause)> = w
            .blockers
            .iter()
            .map(|b| (b.name.as_str(), b.cause))
            .collect();
        assert_eq!(
            causes,
            vec![("db", Cause::FailedStep), ("search", Cause::Gate)]
        );
        assert_eq!(
            w.blockers[0].explanation,
            "its release step failed: step db: child failed; HelmRelease db/db: Ready=False (InstallFailed): image pull failed"
        );
        let text = w.render();
        assert!(
            text.starts_with(
                "web has not been released yet (Workflow orkestra/shop-r1 (Failed))\n  web"
            ),
            "{text}"
        );
        assert!(text.contains("\n     └─ db"), "{text}");
        assert!(text.contains("blocked by search: it waits at its manual gate\n  next: kubectl orkestra promote shop\n"), "{text}");
    }

    #[test]
    fn released_applications_and_stopped_workflows() {
        let r = report("Succeeded", &[node("db", "DAG", "Succeeded", None)], &[]);
        assert!(why(&r, &spec(), "db").expect("why").released);
        let r = report(
            "Failed",
            &[
                node("db", "DAG", "Succeeded", None),
                node("cache", "DAG", "Succeeded", None),
            ],
            &[],
        );
        let w = why(&r, &spec(), "api").expect("why");
        assert_eq!(w.blockers.len(), 1);
        assert_eq!(w.blockers[0].cause, Cause::WorkflowEnded);
        let never = StatusReport::build(&Observed {
            group: "shop",
            spec: &spec(),
            conditions: &[],
            revision: None,
            workflow: None,
            helm_releases: &[],
            now: 0,
        });
        let w = why(&never, &spec(), "web").expect("why");
        assert_eq!(w.blockers[0].cause, Cause::NeverPromoted);
        assert!(why(&never, &spec(), "nope").is_err());
    }
}
