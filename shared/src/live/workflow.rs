//! Reading an Argo Workflow: its nodes (`status.nodes`), what each node released (from its task
//! path), and the message to show for a step.
//!
//! Argo names every node `<workflow>.<task>.<task>...` after the DAG tasks it ran; [`crate::emit::argo`]
//! names the `entry` tasks after the applications (their keys), the tasks of an application's DAG
//! after its charts (subchart keys and the application's own key), and a gate `Gate-<key>`. So
//! the task path alone says which application or subchart a node released. Rollback Workflows
//! nest the same tree under an `apply` task, next to a `remove` task (see [`crate::emit::rollback`]).

use serde::Serialize;
use serde_json::Value;

use crate::time::parse_time;

/// One Argo node, as read from `status.nodes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgoNode {
    /// Node id (the key in `status.nodes`).
    pub id: String,
    /// `<workflow>.<task>...`.
    pub name: String,
    /// The task's name.
    pub display_name: String,
    /// The template the node ran.
    pub template_name: String,
    /// `DAG`, `Pod`, `Suspend`, `Retry`, `Skipped`, ...
    #[serde(rename = "type")]
    pub node_type: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Error`, `Skipped`, `Omitted`.
    pub phase: String,
    /// Start, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// End, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Argo's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ArgoNode {
    /// True for a gate waiting for `promote` (Argo's `IsActiveSuspendNode`).
    pub fn is_active_suspend(&self) -> bool {
        self.node_type == "Suspend" && self.phase == "Running"
    }

    /// Seconds the node took, or has been running at `now`.
    pub fn duration(&self, now: i64) -> Option<f64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or(now);
        Some((end - start).max(0) as f64)
    }
}

/// Reads `status.nodes` of a Workflow, sorted by node name (so parents come before children).
pub fn nodes(workflow: &Value) -> Vec<ArgoNode> {
    let Some(map) = workflow.pointer("/status/nodes").and_then(Value::as_object) else {
        return Vec::new();
    };
    let s = |n: &Value, k: &str| n.get(k).and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<ArgoNode> = map
        .iter()
        .map(|(id, n)| ArgoNode {
            id: id.clone(),
            name: s(n, "name").unwrap_or_default(),
            display_name: s(n, "displayName").unwrap_or_default(),
            template_name: s(n, "templateName").unwrap_or_default(),
            node_type: s(n, "type").unwrap_or_default(),
            phase: s(n, "phase").unwrap_or_else(|| "Pending".into()),
            started_at: s(n, "startedAt").and_then(|t| parse_time(&t)),
            finished_at: s(n, "finishedAt").and_then(|t| parse_time(&t)),
            message: s(n, "message").filter(|m| !m.is_empty()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// True when Argo keeps the node statuses out of `status.nodes`: gzip-compressed
/// (`status.compressedNodes`) or offloaded to its database (`status.offloadNodeStatusVersion`).
pub fn nodes_unavailable(workflow: &Value) -> bool {
    let set = |p: &str| {
        workflow
            .pointer(p)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let empty = workflow
        .pointer("/status/nodes")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    empty && (set("/status/compressedNodes") || set("/status/offloadNodeStatusVersion"))
}

/// The message to show for a step. Argo writes why a step failed or waits (`main: Error (exit
/// code 1)`, `ImagePullBackOff: ...`, `Unschedulable: ...`) on its pods only, never on the DAG
/// or Retry nodes above them; so a step that is not a pod shows the message of its first pod
/// that failed (else of one still waiting), named after its task when that is another chart or
/// executor than the row's own.
pub fn step_message(node: &ArgoNode, all: &[ArgoNode]) -> Option<String> {
    if node.node_type == "Pod" {
        return node.message.clone();
    }
    let task = |n: &ArgoNode| {
        // Retry attempts are `<task>(N)`.
        let d = n.display_name.as_str();
        d.strip_suffix(')')
            .and_then(|rest| rest.rsplit_once('('))
            .map_or(d, |(t, _)| t)
            .to_string()
    };
    let below = |n: &&ArgoNode| {
        n.node_type == "Pod"
            && n.message.is_some()
            && n.name
                .strip_prefix(node.name.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('('))
    };
    let pods: Vec<&ArgoNode> = all.iter().filter(below).collect();
    let with_phase = |phases: &[&str]| {
        pods.iter()
            .copied()
            .find(|n| phases.contains(&n.phase.as_str()))
    };
    let culprit = with_phase(&["Failed", "Error"]).or_else(|| with_phase(&["Pending", "Running"]));
    match culprit {
        Some(pod) => {
            let message = pod.message.clone().unwrap_or_default();
            if task(pod) == task(node) {
                Some(message)
            } else {
                Some(format!("{}: {message}", task(pod)))
            }
        }
        None => node.message.clone(),
    }
}

/// What a node released, from its task path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The whole workflow (the root node).
    Root,
    /// An application's DAG (entry task named after the application key).
    Application(String),
    /// One chart of an application: (application key, chart key).
    Chart(String, String),
    /// One executor of a chart, when an application has several.
    Executor(String, String, String),
    /// The manual gate before an application.
    Gate(String),
    /// A rollback step removing a chart: the Workflow parameter naming it.
    Removal(String),
    /// Anything else (a rollback's `apply`/`remove` groups, retries' children).
    Other,
}

/// Classifies a node of Workflow `workflow` by its task path.
pub fn classify(workflow: &str, node: &ArgoNode) -> Step {
    let Some(path) = node
        .name
        .strip_prefix(workflow)
        .and_then(|p| p.strip_prefix('.'))
    else {
        return if node.name == workflow {
            Step::Root
        } else {
            Step::Other
        };
    };
    // Retry children are `<task>(0)`: they belong to their Retry parent, which carries the phase.
    if path.ends_with(')') {
        return Step::Other;
    }
    let mut parts: Vec<&str> = path.split('.').collect();
    match parts.first() {
        Some(&"apply") => {
            parts.remove(0);
        }
        Some(&"remove") => {
            return match parts.as_slice() {
                [_, param] => Step::Removal((*param).to_string()),
                _ => Step::Other,
            };
        }
        _ => {}
    }
    match parts.as_slice() {
        [gate] if gate.starts_with("Gate-") => Step::Gate(gate["Gate-".len()..].to_string()),
        [app] => Step::Application((*app).to_string()),
        [app, chart] => Step::Chart((*app).to_string(), (*chart).to_string()),
        [app, chart, exec] => Step::Executor(
            (*app).to_string(),
            (*chart).to_string(),
            (*exec).to_string(),
        ),
        _ => Step::Other,
    }
}
