//! The live state of a group: what its latest Argo Workflow ([`crate::live::workflow`]) and its
//! Flux HelmReleases ([`crate::live::helm_release`]) say, mapped back onto the group's
//! applications and subcharts, and the verdict a CI gate acts on.
//!
//! Pure: the caller reads the objects and passes the clock in (`now`, Unix seconds).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::api::ApplicationGroupSpec;
use crate::emit::argo;
use crate::graph;
use crate::labels::{REVISION_LABEL, WORKFLOW_TYPE_LABEL};
use crate::live::helm_release::{ReleaseState, release_state};
use crate::live::workflow::{ArgoNode, Step, classify, nodes, nodes_unavailable, step_message};
use crate::naming;
use crate::time::{format_time, parse_time};

/// Live state of one node (application or subchart).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Error`, `Skipped`, `Omitted`, or a HelmRelease
    /// readiness such as `Ready`/`NotReady`.
    pub phase: String,
    /// A short explanation (the HelmRelease's Ready message, the node's message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How long the node took (or has been running), in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

/// The expected time left of a release in flight (computed by [`crate::live::eta`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eta {
    /// Seconds left (at least, when some applications have no earlier duration).
    pub seconds: f64,
    /// The chain of applications still to finish that takes longest, first to last.
    pub path: Vec<String>,
    /// Applications not finished that never succeeded before (counted as 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
    /// True when the release waits at a gate (the time until someone promotes is not counted).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_gate: bool,
}

impl Eta {
    /// `2m10s left (api -> web)`, with what is not counted.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}{} left",
            if self.unknown.is_empty() {
                ""
            } else {
                "at least "
            },
            crate::duration::human(std::time::Duration::from_secs_f64(self.seconds.max(0.0)))
        );
        if !self.path.is_empty() {
            s.push_str(&format!(" ({})", self.path.join(" -> ")));
        }
        if self.at_gate {
            s.push_str(", after the gate is passed");
        }
        if !self.unknown.is_empty() {
            s.push_str(&format!(
                "; never released before: {}",
                self.unknown.join(", ")
            ));
        }
        s
    }
}

/// How the latest release of a group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// No Workflow has been created for the group.
    NotReleased,
    /// The Workflow exists but Argo has not started it.
    Pending,
    /// Releasing.
    Running,
    /// Paused at a manual gate: `kubectl orkestra promote` continues.
    Suspended,
    /// Every application was released.
    Succeeded,
    /// The release failed (or errored, or was stopped).
    Failed,
}

impl Verdict {
    /// True when nothing more will happen without a user.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::NotReleased)
    }
}

/// A condition of the group, as shown in the header.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSummary {
    /// `Ready`, `ForwardWorkflowSucceeded`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False`, `Unknown`.
    pub status: String,
    /// Machine reason.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The Workflow a status was read from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// `forward` or `rollback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_type: Option<String>,
    /// Revision it releases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Argo's `status.phase` (empty before Argo saw it).
    pub phase: String,
    /// Argo's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Start, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Seconds taken so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Applications whose gate waits for `promote`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_at_gates: Vec<String>,
    /// True when Argo compressed or offloaded the node statuses (very large Workflows): the
    /// per-application steps cannot be read from the Workflow object.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nodes_unavailable: bool,
}

impl WorkflowSummary {
    /// Reads a Workflow's identity and overall state.
    pub fn read(
        workflow: &Value,
        nodes: &[ArgoNode],
        spec: &ApplicationGroupSpec,
        now: i64,
    ) -> Self {
        let s = |p: &str| {
            workflow
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let label = |k: &str| {
            workflow
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let started = s("/status/startedAt").and_then(|t| parse_time(&t));
        let finished = s("/status/finishedAt").and_then(|t| parse_time(&t));
        let name = s("/metadata/name").unwrap_or_default();
        let keys: BTreeMap<String, &str> = spec
            .applications
            .iter()
            .map(|a| (argo::app_key(&a.name), a.name.as_str()))
            .collect();
        let waiting_at_gates = nodes
            .iter()
            .filter(|n| n.is_active_suspend())
            .filter_map(|n| match classify(&name, n) {
                Step::Gate(key) => Some(keys.get(&key).map_or(key, |a| a.to_string())),
                _ => None,
            })
            .collect();
        Self {
            namespace: s("/metadata/namespace").unwrap_or_default(),
            workflow_type: label(WORKFLOW_TYPE_LABEL),
            revision: label(REVISION_LABEL).and_then(|r| r.parse().ok()),
            phase: s("/status/phase").unwrap_or_default(),
            message: s("/status/message").filter(|m| !m.is_empty()),
            started_at: started.map(format_time),
            duration_seconds: started.map(|st| (finished.unwrap_or(now) - st).max(0) as f64),
            waiting_at_gates,
            nodes_unavailable: nodes_unavailable(workflow),
            name,
        }
    }

    /// The verdict of this Workflow.
    pub fn verdict(&self) -> Verdict {
        match self.phase.as_str() {
            "Succeeded" => Verdict::Succeeded,
            "Failed" | "Error" => Verdict::Failed,
            "" | "Pending" => Verdict::Pending,
            _ if !self.waiting_at_gates.is_empty() => Verdict::Suspended,
            _ => Verdict::Running,
        }
    }
}

/// One row of `status`: an application's own chart, or one of its subcharts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Application.
    pub application: String,
    /// Subchart, on subchart rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subchart: Option<String>,
    /// Wave (1-based, as `graph` shows it); within the application for subcharts.
    pub wave: usize,
    /// Applications (or subcharts) released first.
    pub dependencies: Vec<String>,
    /// `chart@version`.
    pub chart: String,
    /// HelmRelease namespace.
    pub namespace: String,
    /// HelmRelease name.
    pub helm_release: String,
    /// True when the application waits for a manual gate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gate: bool,
    /// The HelmRelease's readiness; `None` when it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseState>,
    /// The Workflow node's phase; `None` when the node has not been created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Node message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_message: Option<String>,
    /// Node start, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Node duration (so far), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

impl Row {
    /// The message to show: a failed step's own (the executor's verdict, naming Flux's reason
    /// at the time it failed, while Flux may already be retrying with another message), else
    /// Flux's while the release is not Ready, else the step's.
    pub fn message(&self) -> Option<String> {
        let failed = matches!(self.step.as_deref(), Some("Failed" | "Error"));
        let release_message = || {
            self.release
                .as_ref()
                .filter(|r| r.ready.as_deref() != Some("True"))
                .and_then(|r| r.message.clone())
        };
        if failed && self.step_message.is_some() {
            return self.step_message.clone();
        }
        release_message().or_else(|| self.step_message.clone())
    }

    /// The status to overlay on the graph.
    pub fn node_status(&self) -> Option<NodeStatus> {
        let phase = match (&self.step, &self.release) {
            (Some(step), _) => step.clone(),
            (None, Some(r)) => match r.ready.as_deref() {
                Some("True") => "Ready".into(),
                Some("False") => "NotReady".into(),
                _ => "Progressing".into(),
            },
            (None, None) => return None,
        };
        Some(NodeStatus {
            phase,
            message: self.message(),
            duration_seconds: self.duration_seconds,
        })
    }
}

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The group.
    pub group: String,
    /// The latest recorded revision, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// True when the group's spec differs from the latest recorded revision (not promoted yet).
    pub spec_changed: bool,
    /// The group's conditions.
    pub conditions: Vec<ConditionSummary>,
    /// The latest Workflow, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowSummary>,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Applications (each followed by its subcharts), in declaration order.
    pub rows: Vec<Row>,
    /// Removal steps of a rollback (`<app>` or `<app>--<subchart>` parameters), with their phase.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub removals: BTreeMap<String, String>,
    /// The expected time left of a release in flight (see [`crate::live::eta`]); set by the caller,
    /// which has the earlier Workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<Eta>,
}

/// What `status` reads: the group, its latest Workflow and its HelmReleases.
pub struct Observed<'a> {
    /// The group's name.
    pub group: &'a str,
    /// Its (defaulted) spec.
    pub spec: &'a ApplicationGroupSpec,
    /// `status.conditions` of the group.
    pub conditions: &'a [Value],
    /// Latest recorded revision and whether the spec still equals it.
    pub revision: Option<(i64, bool)>,
    /// The latest Workflow.
    pub workflow: Option<&'a Value>,
    /// Every HelmRelease labelled with the group as owner.
    pub helm_releases: &'a [Value],
    /// Now, Unix seconds.
    pub now: i64,
}

impl StatusReport {
    /// Builds the report.
    pub fn build(o: &Observed<'_>) -> Self {
        let wf_nodes = o.workflow.map(nodes).unwrap_or_default();
        let workflow = o
            .workflow
            .map(|w| WorkflowSummary::read(w, &wf_nodes, o.spec, o.now));
        let wf_name = workflow
            .as_ref()
            .map(|w| w.name.clone())
            .unwrap_or_default();
        let mut by_step: BTreeMap<Step, &ArgoNode> = BTreeMap::new();
        let mut removals = BTreeMap::new();
        for n in &wf_nodes {
            match classify(&wf_name, n) {
                Step::Removal(p) => {
                    removals.insert(p, n.phase.clone());
                }
                Step::Other | Step::Root | Step::Executor(..) => {}
                step => {
                    by_step.insert(step, n);
                }
            }
        }
        let releases: BTreeMap<(&str, &str), &Value> = o
            .helm_releases
            .iter()
            .filter_map(|hr| {
                Some((
                    (
                        hr.pointer("/metadata/namespace")?.as_str()?,
                        hr.pointer("/metadata/name")?.as_str()?,
                    ),
                    hr,
                ))
            })
            .collect();
        let apps = &o.spec.applications;
        let dag = graph::app_dag(o.spec);
        let levels = dag.levels().unwrap_or_else(|| vec![0; apps.len()]);
        let mut rows = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            let key = argo::app_key(&app.name);
            let chart = app.spec.chart.clone().unwrap_or_default();
            let version = chart.version_or_default().to_string();
            let gate_node = by_step.get(&Step::Gate(key.clone()));
            let app_node = by_step.get(&Step::Application(key.clone()));
            let subs = &app.spec.subcharts;
            let sub_dag = graph::subchart_dag(app);
            let sub_levels = sub_dag.levels().unwrap_or_else(|| vec![0; subs.len()]);
            for rel in naming::releases_of(app) {
                let release = releases
                    .get(&(rel.namespace.as_str(), rel.name.as_str()))
                    .map(|hr| release_state(hr));
                let (node, wave, deps, chart_text) = match &rel.subchart {
                    None => {
                        // The application row: its whole DAG (subcharts included); before the
                        // DAG starts, its gate.
                        let node = app_node.or(gate_node).copied();
                        let deps = dag
                            .dependencies(i)
                            .iter()
                            .map(|&d| dag.name(d).to_string())
                            .collect();
                        (
                            node,
                            levels[i] + 1,
                            deps,
                            format!("{}@{version}", chart.name),
                        )
                    }
                    Some(sub_name) => {
                        let k = subs.iter().position(|s| &s.name == sub_name).unwrap_or(0);
                        let sub = &subs[k];
                        let node = by_step
                            .get(&Step::Chart(key.clone(), argo::app_key(sub_name)))
                            .copied();
                        let deps = sub_dag
                            .dependencies(k)
                            .iter()
                            .map(|&d| sub_dag.name(d).to_string())
                            .collect();
                        let v = sub.version.clone().unwrap_or_else(|| version.clone());
                        (node, sub_levels[k] + 1, deps, format!("{sub_name}@{v}"))
                    }
                };
                let gated = app.spec.gate == Some(true);
                let step = node.map(|n| {
                    if n.is_active_suspend() {
                        "Suspended".to_string()
                    } else if n.node_type == "Suspend" && rel.subchart.is_none() {
                        // A passed gate: the application's DAG has not started yet.
                        "Pending".to_string()
                    } else {
                        n.phase.clone()
                    }
                });
                rows.push(Row {
                    application: app.name.clone(),
                    subchart: rel.subchart.clone(),
                    wave,
                    dependencies: deps,
                    chart: chart_text,
                    namespace: rel.namespace.clone(),
                    helm_release: rel.name.clone(),
                    gate: gated && rel.subchart.is_none(),
                    release,
                    step,
                    step_message: node.and_then(|n| {
                        if n.is_active_suspend() {
                            Some("waiting at the gate: run `kubectl orkestra promote`".into())
                        } else {
                            step_message(n, &wf_nodes)
                        }
                    }),
                    started_at: node.and_then(|n| n.started_at).map(format_time),
                    duration_seconds: node.and_then(|n| n.duration(o.now)),
                });
            }
        }
        // Keep each application's own row first, then its subcharts.
        let mut ordered = Vec::with_capacity(rows.len());
        let mut pending_subs: Vec<Row> = Vec::new();
        for row in rows {
            if row.subchart.is_some() {
                pending_subs.push(row);
            } else {
                ordered.push(row);
                ordered.append(&mut pending_subs);
            }
        }
        let verdict = workflow
            .as_ref()
            .map_or(Verdict::NotReleased, WorkflowSummary::verdict);
        Self {
            group: o.group.to_string(),
            revision: o.revision.map(|(r, _)| r),
            spec_changed: o.revision.is_some_and(|(_, same)| !same),
            conditions: o.conditions.iter().map(condition).collect(),
            workflow,
            verdict,
            rows: ordered,
            removals,
            eta: None,
        }
    }

    /// The live status of an application (`subchart: None`) or subchart, for the graph.
    pub fn node_status(&self, app: &str, subchart: Option<&str>) -> Option<NodeStatus> {
        self.rows
            .iter()
            .find(|r| r.application == app && r.subchart.as_deref() == subchart)
            .and_then(Row::node_status)
    }

    /// One line for people: `Succeeded`, `Running (3/10 applications done)`, ...
    pub fn summary(&self) -> String {
        let apps: Vec<&Row> = self.rows.iter().filter(|r| r.subchart.is_none()).collect();
        let done = apps
            .iter()
            .filter(|r| r.step.as_deref() == Some("Succeeded"))
            .count();
        let failed: Vec<&str> = apps
            .iter()
            .filter(|r| matches!(r.step.as_deref(), Some("Failed" | "Error")))
            .map(|r| r.application.as_str())
            .collect();
        let mut s = format!(
            "{:?} ({done}/{} applications released",
            self.verdict,
            apps.len()
        );
        if !failed.is_empty() {
            s.push_str(&format!("; failed: {}", failed.join(", ")));
        }
        if let Some(w) = &self.workflow
            && !w.waiting_at_gates.is_empty()
        {
            s.push_str(&format!(
                "; waiting at the gate of {}",
                w.waiting_at_gates.join(", ")
            ));
        }
        if self.workflow.as_ref().is_some_and(|w| w.nodes_unavailable) {
            s.push_str(
                "; Argo compressed or offloaded the node statuses: steps not shown, see `argo get`",
            );
        }
        s.push(')');
        s
    }
}

fn condition(c: &Value) -> ConditionSummary {
    let s = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    ConditionSummary {
        type_: s("type"),
        status: s("status"),
        reason: s("reason"),
        message: s("message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ApplicationGroupSpec {
        serde_json::from_value(json!({"applications": [
            {"name": "db", "spec": {"chart": {"url": "https://c", "name": "postgresql", "version": "12.1.0"}, "release": {"targetNamespace": "data"}}},
            {"name": "api", "dependencies": ["db"], "spec": {"gate": true, "chart": {"url": "https://c", "name": "api", "version": "1.0.0"}, "release": {"targetNamespace": "web"},
                "subcharts": [{"name": "worker"}]}}
        ]}))
        .expect("spec")
    }

    fn node(name: &str, display: &str, template: &str, ty: &str, phase: &str) -> Value {
        json!({"id": name, "name": name, "displayName": display, "templateName": template, "type": ty, "phase": phase,
               "startedAt": "2026-11-25T10:00:00Z", "finishedAt": if phase == "Running" { Value::Null } else { json!("2026-11-25T10:01:30Z") }})
    }

    #[test]
    fn nodes_map_to_applications_and_subcharts() {
        let wf = json!({"metadata": {"name": "shop-r1", "namespace": "orkestra", "labels": {REVISION_LABEL: "1", WORKFLOW_TYPE_LABEL: "forward"}},
        "status": {"phase": "Running", "startedAt": "2026-11-25T10:00:00Z", "nodes": {
            "a": node("shop-r1", "shop-r1", "entry", "DAG", "Running"),
            "b": node("shop-r1.db", "db", "app-db", "DAG", "Succeeded"),
            "c": node("shop-r1.db.db", "db", "executor-helmrelease", "Pod", "Succeeded"),
            "d": node("shop-r1.Gate-api", "Gate-api", "gate", "Suspend", "Running"),
        }}});
        let hrs = vec![
            json!({"metadata": {"name": "db", "namespace": "data", "generation": 1},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "Helm install succeeded"}]}}),
        ];
        let spec = spec();
        let report = StatusReport::build(&Observed {
            group: "shop",
            spec: &spec,
            conditions: &[],
            revision: Some((1, true)),
            workflow: Some(&wf),
            helm_releases: &hrs,
            now: parse_time("2026-11-25T10:05:00Z").unwrap_or_default(),
        });
        assert_eq!(report.verdict, Verdict::Suspended);
        let w = report.workflow.as_ref().expect("workflow");
        assert_eq!(w.waiting_at_gates, vec!["api"]);
        assert_eq!(w.revision, Some(1));
        let names: Vec<(String, Option<String>)> = report
            .rows
            .iter()
            .map(|r| (r.application.clone(), r.subchart.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("db".into(), None),
                ("api".into(), None),
                ("api".into(), Some("worker".into()))
            ]
        );
        let db = &report.rows[0];
        assert_eq!(db.step.as_deref(), Some("Succeeded"));
        assert_eq!(db.duration_seconds, Some(90.0));
        assert_eq!(
            db.release.as_ref().and_then(|r| r.reason.as_deref()),
            Some("InstallSucceeded")
        );
        let api = &report.rows[1];
        assert_eq!((api.wave, api.gate), (2, true));
        assert_eq!(api.step.as_deref(), Some("Suspended"));
        assert_eq!(api.duration_seconds, Some(300.0));
        assert_eq!(report.rows[2].step, None);
        assert_eq!(
            report.node_status("db", None).map(|s| s.phase).as_deref(),
            Some("Succeeded")
        );
        assert!(
            report
                .summary()
                .starts_with("Suspended (1/2 applications released; waiting at the gate of api"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn a_failed_step_shows_its_own_message_while_flux_retries() {
        let retrying = ReleaseState {
            ready: Some("Unknown".into()),
            reason: Some("Progressing".into()),
            message: Some("Running 'install' action".into()),
            ..ReleaseState::default()
        };
        let mut row = Row {
            release: Some(retrying),
            step: Some("Running".into()),
            step_message: Some("main: Error (exit code 1): InstallFailed".into()),
            ..Row::default()
        };
        // While the step runs, Flux's word is the news...
        assert_eq!(row.message().as_deref(), Some("Running 'install' action"));
        // ...once it failed, its own verdict is, whatever Flux says since.
        row.step = Some("Failed".into());
        assert_eq!(
            row.message().as_deref(),
            Some("main: Error (exit code 1): InstallFailed")
        );
        assert_eq!(row.node_status().and_then(|s| s.message), row.message());
    }

    #[test]
    fn a_failed_or_waiting_step_shows_its_pods_message() {
        let mut failed = node(
            "shop-r1.api.worker",
            "worker",
            "executor-helmrelease",
            "Pod",
            "Failed",
        );
        failed["message"] = json!("main: Error (exit code 1)");
        let mut pending = node(
            "shop-r1.db.db",
            "db",
            "executor-helmrelease",
            "Pod",
            "Pending",
        );
        pending["message"] = json!("Unschedulable: 0/1 nodes are available");
        let wf = json!({"metadata": {"name": "shop-r1", "namespace": "orkestra"},
        "status": {"phase": "Running", "nodes": {
            "a": node("shop-r1", "shop-r1", "entry", "DAG", "Running"),
            "b": node("shop-r1.db", "db", "app-db", "DAG", "Running"),
            "c": pending,
            "d": node("shop-r1.api", "api", "app-api", "DAG", "Failed"),
            "e": failed,
            "f": node("shop-r1.api.api", "api", "executor-helmrelease", "Pod", "Omitted"),
        }}});
        let spec = spec();
        let report = StatusReport::build(&Observed {
            group: "shop",
            spec: &spec,
            conditions: &[],
            revision: Some((1, true)),
            workflow: Some(&wf),
            helm_releases: &[],
            now: 0,
        });
        let messages: Vec<Option<&str>> = report
            .rows
            .iter()
            .map(|r| r.step_message.as_deref())
            .collect();
        assert_eq!(
            messages,
            vec![
                Some("Unschedulable: 0/1 nodes are available"),
                Some("worker: main: Error (exit code 1)"),
                Some("main: Error (exit code 1)"),
            ]
        );
        // A retried step: the attempt's message, under the task's own name.
        let mut attempt = ArgoNode {
            name: "w.db.db(1)".into(),
            display_name: "db(1)".into(),
            node_type: "Pod".into(),
            phase: "Failed".into(),
            message: Some("main: Error (exit code 2)".into()),
            ..ArgoNode::default()
        };
        let retry = ArgoNode {
            name: "w.db.db".into(),
            display_name: "db".into(),
            node_type: "Retry".into(),
            phase: "Failed".into(),
            message: Some("No more retries left".into()),
            ..ArgoNode::default()
        };
        assert_eq!(
            step_message(&retry, &[retry.clone(), attempt.clone()]).as_deref(),
            Some("main: Error (exit code 2)")
        );
        attempt.message = None;
        assert_eq!(
            step_message(&retry, &[retry.clone(), attempt]).as_deref(),
            Some("No more retries left")
        );
    }

    #[test]
    fn rollback_nodes_nest_under_apply_and_remove() {
        let n = |name: &str| ArgoNode {
            name: name.into(),
            ..ArgoNode::default()
        };
        assert_eq!(
            classify("g-r3", &n("g-r3.apply.db.db")),
            Step::Chart("db".into(), "db".into())
        );
        assert_eq!(
            classify("g-r3", &n("g-r3.remove.cache--worker")),
            Step::Removal("cache--worker".into())
        );
        assert_eq!(classify("g-r3", &n("g-r3.db.db(0)")), Step::Other);
        assert_eq!(classify("g-r3", &n("g-r3")), Step::Root);
    }

    #[test]
    fn verdicts() {
        let v = |phase: &str| {
            WorkflowSummary {
                phase: phase.into(),
                ..WorkflowSummary::default()
            }
            .verdict()
        };
        assert_eq!(v("Succeeded"), Verdict::Succeeded);
        assert_eq!(v("Error"), Verdict::Failed);
        assert_eq!(v(""), Verdict::Pending);
        assert_eq!(v("Running"), Verdict::Running);
        let stalled = release_state(
            &json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "UpgradeFailed", "message": "boom"}, {"type": "Stalled", "status": "True"}]}}),
        );
        assert!(stalled.stale && stalled.stalled);
        assert_eq!(stalled.message.as_deref(), Some("boom"));
    }

    #[test]
    fn gates_become_suspend_steps_before_their_application() {
        let spec = spec();
        let settings = argo::Settings {
            executor_image: "img".into(),
            parallelism: 10,
        };
        let templates = argo::templates(&spec, &settings);
        let entry = &templates[0]["dag"]["tasks"];
        assert_eq!(
            entry[1],
            json!({"name": "Gate-api", "template": "gate", "dependencies": ["db"],
            "when": "{{workflow.parameters.orkestra_gates}} != off"})
        );
        assert_eq!(entry[2]["dependencies"], json!(["Gate-api"]));
        assert!(
            templates
                .iter()
                .any(|t| t == &json!({"name": "gate", "suspend": {}}))
        );
        let params = argo::workflow_parameters("shop", &spec);
        assert_eq!(params[0], json!({"name": "orkestra_gates", "value": "on"}));
    }

    #[test]
    fn a_rollback_workflow_maps_its_apply_and_remove_steps() {
        let wf = json!({"metadata": {"name": "shop-r3", "namespace": "orkestra", "labels": {REVISION_LABEL: "3", WORKFLOW_TYPE_LABEL: "rollback"}},
        "status": {"phase": "Running", "nodes": {
            "a": node("shop-r3", "shop-r3", "rollback", "DAG", "Running"),
            "b": node("shop-r3.remove", "remove", "remove", "DAG", "Succeeded"),
            "c": node("shop-r3.remove.cache", "cache", "executor-helmrelease-delete", "Pod", "Succeeded"),
            "d": node("shop-r3.apply", "apply", "entry", "DAG", "Running"),
            "e": node("shop-r3.apply.db", "db", "app-db", "DAG", "Succeeded"),
            "f": node("shop-r3.apply.api.worker", "worker", "executor-helmrelease", "Pod", "Failed"),
        }}});
        let spec = spec();
        let report = StatusReport::build(&Observed {
            group: "shop",
            spec: &spec,
            conditions: &[],
            revision: Some((3, true)),
            workflow: Some(&wf),
            helm_releases: &[],
            now: 0,
        });
        assert_eq!(
            report
                .workflow
                .as_ref()
                .and_then(|w| w.workflow_type.as_deref()),
            Some("rollback")
        );
        assert_eq!(
            report.removals.get("cache").map(String::as_str),
            Some("Succeeded")
        );
        assert_eq!(report.rows[0].step.as_deref(), Some("Succeeded"));
        assert_eq!(report.rows[2].step.as_deref(), Some("Failed"));
        assert_eq!(report.verdict, Verdict::Running);
    }

    #[test]
    fn compressed_nodes_are_reported_not_misread() {
        let wf = json!({"metadata": {"name": "g-r1"}, "status": {"phase": "Running", "compressedNodes": "H4sIAAAA"}});
        assert!(nodes_unavailable(&wf));
        let spec = spec();
        let report = StatusReport::build(&Observed {
            group: "g",
            spec: &spec,
            conditions: &[],
            revision: None,
            workflow: Some(&wf),
            helm_releases: &[],
            now: 0,
        });
        assert!(
            report.summary().contains("compressed or offloaded"),
            "{}",
            report.summary()
        );
        assert!(!nodes_unavailable(&json!({"status": {"nodes": {}}})));
    }
}
