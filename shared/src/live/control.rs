//! Stopping and retrying a release, as changes to its Argo Workflow object: what `argo
//! terminate`/`argo stop` and `argo retry` do, so the plugin needs no Argo server.
//!
//! * Abort sets `spec.shutdown` (`Terminate`: stop now; `Stop`: stop, running exit handlers), the
//!   merge patch `argo terminate` sends, and records who aborted and when in annotations that
//!   `history` shows.
//! * Retry is Argo v3.7.3's `FormulateRetryWorkflow` (`workflow/util/util.go`) without
//!   `--restart-successful`, `--node-field-selector` or parameters: failed execution nodes
//!   (unless a descendant succeeded) are deleted with everything below them, the group nodes on
//!   the way up to the root are reset to `Running`, the Workflow is marked running again, and
//!   the pods of deleted nodes are named for deletion. The caller deletes those pods and then
//!   updates the Workflow (a PUT with its `resourceVersion`, as Argo's server does); the
//!   workflow-controller re-runs what was deleted. No new revision: the Workflow stays the same.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

use crate::labels::{self, ABORTED_AT, ABORTED_BY, RETRIES};
use crate::live::workflow::nodes_unavailable;
use crate::time::format_time;

/// How to stop a release (Argo's shutdown strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `argo terminate`: stop now, no exit handlers.
    Terminate,
    /// `argo stop`: stop, running exit handlers.
    Stop,
}

impl Shutdown {
    /// The value of `spec.shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminate => "Terminate",
            Self::Stop => "Stop",
        }
    }
}

/// Why a Workflow cannot be aborted or retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The release already ended.
    #[error("Workflow {0} has already ended ({1}): nothing to abort")]
    NotInFlight(String, String),
    /// A shutdown was already asked for.
    #[error("Workflow {0} is already being stopped (spec.shutdown: {1})")]
    AlreadyStopping(String, String),
    /// Argo only retries failed (or errored) Workflows.
    #[error(
        "Workflow {0} is {1}: only a failed release can be retried (Cannot retry a workflow in phase {1})"
    )]
    NotFailed(String, String),
    /// The node statuses are not in the object.
    #[error(
        "Workflow {0} keeps its node statuses compressed or offloaded: retry it with `argo retry`"
    )]
    NodesUnavailable(String),
    /// `status.nodes` does not form Argo's tree.
    #[error("Workflow {0}: {1}")]
    Malformed(String, String),
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The merge patch that aborts Workflow `workflow` (checked to be in flight), recording `who`
/// and `now` (Unix seconds).
pub fn abort_patch(
    workflow: &Value,
    how: Shutdown,
    who: Option<&str>,
    now: i64,
) -> Result<Value, ControlError> {
    let name = text(workflow, "/metadata/name").to_string();
    let phase = text(workflow, "/status/phase");
    if matches!(phase, "Succeeded" | "Failed" | "Error") {
        return Err(ControlError::NotInFlight(name, phase.to_string()));
    }
    let shutdown = text(workflow, "/spec/shutdown");
    if !shutdown.is_empty() {
        return Err(ControlError::AlreadyStopping(name, shutdown.to_string()));
    }
    let mut annotations = json!({ ABORTED_AT: format_time(now) });
    if let Some(who) = who {
        annotations[ABORTED_BY] = json!(who);
    }
    Ok(json!({
        "metadata": { "annotations": annotations },
        "spec": { "shutdown": how.as_str() },
    }))
}

/// `aborted by alice at 2026-12-01T10:00:00Z`, when the Workflow was aborted.
pub fn aborted(workflow: &Value) -> Option<String> {
    let a = workflow.pointer("/metadata/annotations")?;
    let at = a.get(ABORTED_AT)?.as_str()?;
    Some(match a.get(ABORTED_BY).and_then(Value::as_str) {
        Some(who) => format!("aborted by {who} at {at}"),
        None => format!("aborted at {at}"),
    })
}

/// A retried Workflow, and the pods to delete before it is written back.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The Workflow to write back (same name and `resourceVersion`).
    pub workflow: Value,
    /// Pods of the deleted nodes, in the Workflow's namespace.
    pub pods_to_delete: Vec<String>,
    /// Display names of the failed steps that will run again.
    pub failed_steps: Vec<String>,
}

/// One node of `status.nodes`.
struct Node<'a> {
    raw: &'a Value,
    id: &'a str,
    name: &'a str,
    node_type: &'a str,
    phase: &'a str,
    boundary: &'a str,
    children: Vec<&'a str>,
}

impl Node<'_> {
    fn failed(&self) -> bool {
        matches!(self.phase, "Failed" | "Error")
    }
}

fn is_group(t: &str) -> bool {
    matches!(t, "DAG" | "TaskGroup" | "StepGroup" | "Steps")
}

fn is_execution(t: &str) -> bool {
    matches!(t, "Container" | "Pod" | "HTTP" | "Plugin")
}

struct Tree<'a> {
    nodes: BTreeMap<&'a str, Node<'a>>,
    parent: BTreeMap<&'a str, &'a str>,
}

impl<'a> Tree<'a> {
    fn read(wf_name: &str, map: &'a Map<String, Value>) -> Result<Self, String> {
        let mut nodes = BTreeMap::new();
        for (id, raw) in map {
            let s = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or_default();
            let children = raw
                .get("children")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            nodes.insert(
                id.as_str(),
                Node {
                    raw,
                    id: id.as_str(),
                    name: s("name"),
                    node_type: s("type"),
                    phase: s("phase"),
                    boundary: s("boundaryID"),
                    children,
                },
            );
        }
        // A node reached from several dependencies has several parents; Argo keeps whichever
        // its map iteration gives last. We keep the one in the node's own boundary, else the
        // last by id: the boundaries walked up to the root are the same either way.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        for n in nodes.values() {
            for &c in &n.children {
                let child = nodes.get(c).ok_or_else(|| {
                    format!("node {} lists a child {c} that does not exist", n.id)
                })?;
                let keep = parent.get(c).is_some_and(|p| *p == child.boundary);
                if !keep {
                    parent.insert(c, n.id);
                }
            }
        }
        for n in nodes.values() {
            if !parent.contains_key(n.id)
                && n.name != wf_name
                && !n.name.starts_with(&format!("{wf_name}.onExit"))
            {
                return Err(format!("couldn't find parent node for {}", n.id));
            }
        }
        Ok(Self { nodes, parent })
    }

    fn parent(&self, id: &str) -> Option<&Node<'a>> {
        self.parent.get(id).and_then(|p| self.nodes.get(p))
    }

    /// Every node below `id`.
    fn descendants(&self, id: &str) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([id]);
        while let Some(n) = queue.pop_front() {
            for &c in self
                .nodes
                .get(n)
                .map(|n| n.children.as_slice())
                .unwrap_or_default()
            {
                if out.insert(c) {
                    queue.push_back(c);
                }
            }
        }
        out
    }

    /// Argo's `isDescendantNodeSucceeded` (no nodes selected for reset).
    fn descendant_succeeded(&self, id: &str, seen: &mut BTreeSet<String>) -> bool {
        if !seen.insert(id.to_string()) {
            return false;
        }
        let Some(n) = self.nodes.get(id) else {
            return false;
        };
        n.children.iter().any(|c| {
            self.nodes.get(c).is_some_and(|c| c.phase == "Succeeded")
                || self.descendant_succeeded(c, seen)
        })
    }

    /// The nodes in breadth-first order from the root (Argo's `dagSortedNodes`).
    fn sorted(&self, root: &'a str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([root]);
        while let Some(n) = queue.pop_front() {
            if !seen.insert(n) {
                continue;
            }
            out.push(n);
            if let Some(node) = self.nodes.get(n) {
                queue.extend(node.children.iter().copied());
            }
        }
        out
    }

    /// Argo's `resetPath`: the nodes to reset and to delete to re-run `start`.
    fn reset_path(
        &self,
        start: &'a str,
        reset: &mut BTreeSet<&'a str>,
        delete: &mut BTreeSet<&'a str>,
    ) -> Result<(), String> {
        delete.insert(start);
        delete.extend(self.descendants(start));
        if self.parent(start).is_none() {
            return Ok(());
        }
        let mut curr = self.nodes.get(start);
        let mut steps = 0;
        while let Some(n) = curr {
            steps += 1;
            if steps > 4 * self.nodes.len() + 4 {
                return Err("the node tree has a loop".into());
            }
            if is_group(n.node_type) {
                reset.insert(n.id);
                curr = self.reset_boundaries(n, reset)?;
                continue;
            }
            if n.node_type == "Retry" && n.failed() {
                reset.insert(n.id);
            } else if n.node_type == "Container" {
                // Argo's resetPod: up to the pod, which is deleted with everything below it.
                let mut p = Some(n);
                while let Some(x) = p {
                    if x.node_type == "Pod" {
                        break;
                    }
                    p = self.parent(x.id);
                }
                let pod = p.ok_or("was seeking node but ran out of nodes to explore")?;
                reset.insert(pod.id);
                delete.insert(pod.id);
                delete.extend(self.descendants(pod.id));
                curr = Some(pod);
                continue;
            }
            curr = self.parent(n.id);
        }
        Ok(())
    }

    /// Argo's `resetBoundaries`: from a group node up through its boundaries.
    fn reset_boundaries(
        &self,
        start: &Node<'a>,
        reset: &mut BTreeSet<&'a str>,
    ) -> Result<Option<&Node<'a>>, String> {
        let mut curr = start;
        loop {
            if let Some(p) = self.parent(curr.id)
                && p.node_type == "Retry"
            {
                reset.insert(p.id);
                curr = p;
            }
            if let Some(p) = self.parent(curr.id)
                && matches!(p.node_type, "StepGroup" | "TaskGroup")
            {
                reset.insert(p.id);
            }
            if curr.boundary.is_empty() {
                return Ok(self.parent(curr.id));
            }
            // Up to the boundary node (the template that contains this one), which is reset.
            let mut at = Some(curr);
            let mut found = None;
            while let Some(x) = at {
                if x.id == curr.boundary {
                    found = Some(x);
                    break;
                }
                at = self.parent(x.id);
            }
            let b = found.ok_or("was seeking node but ran out of nodes to explore")?;
            reset.insert(b.id);
            curr = b;
        }
    }
}

/// Argo's deterministic pod name (`GeneratePodName`).
fn pod_name(wf_name: &str, node: &Node<'_>, version: &str) -> String {
    if version == "v1" {
        return node.id.to_string();
    }
    if node.name == wf_name {
        return wf_name.to_string();
    }
    let template = node
        .raw
        .pointer("/templateRef/template")
        .and_then(Value::as_str)
        .unwrap_or_else(|| {
            node.raw
                .get("templateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
        });
    let mut prefix = if template.is_empty() {
        wf_name.to_string()
    } else {
        format!("{wf_name}-{template}")
    };
    // Kubernetes names are at most 253 characters; Argo keeps 10 for the hash.
    if prefix.len() > 242 {
        let mut cut = 242;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}-{}", fnv1a32(node.name.as_bytes()))
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Argo's `resetNode`.
fn reset_node(node: &Value, now: &str) -> Value {
    let mut n = node.clone();
    if n["type"] == "Suspend"
        && let Some(params) = n
            .pointer_mut("/outputs/parameters")
            .and_then(Value::as_array_mut)
    {
        for p in params {
            let name = p.get("name").cloned().unwrap_or(Value::Null);
            *p = json!({ "name": name, "valueFrom": { "supplied": {} } });
        }
    }
    if n["phase"] != "Skipped" {
        n["phase"] = json!("Running");
    }
    if let Some(m) = n.as_object_mut() {
        m.remove("message");
        m.remove("finishedAt");
    }
    n["startedAt"] = json!(now);
    n
}

/// What `argo retry WORKFLOW` makes of a failed Workflow at `now` (Unix seconds).
pub fn retry(workflow: &Value, now: i64) -> Result<Retry, ControlError> {
    let name = text(workflow, "/metadata/name").to_string();
    let phase = text(workflow, "/status/phase");
    if !matches!(phase, "Failed" | "Error") {
        let phase = if phase.is_empty() { "Pending" } else { phase };
        return Err(ControlError::NotFailed(name, phase.to_string()));
    }
    if nodes_unavailable(workflow) {
        return Err(ControlError::NodesUnavailable(name));
    }
    let empty = Map::new();
    let map = workflow
        .pointer("/status/nodes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let malformed = |m: String| ControlError::Malformed(name.clone(), m);
    let tree = Tree::read(&name, map).map_err(malformed)?;
    let now_text = format_time(now);

    let mut new = workflow.clone();
    // createNewRetryWorkflow: the Workflow is running again.
    if let Some(labels) = new
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(labels::ARGO_COMPLETED);
        labels.remove(labels::ARGO_ARCHIVING);
    }
    new["metadata"]["labels"][labels::ARGO_PHASE] = json!("Running");
    let mut conditions: Vec<Value> = new
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let completed = json!({"type": "Completed", "status": "False"});
    match conditions.iter_mut().find(|c| c["type"] == "Completed") {
        Some(c) => *c = completed,
        None => conditions.push(completed),
    }
    new["status"]["conditions"] = Value::Array(conditions);
    new["status"]["phase"] = json!("Running");
    new["status"]["startedAt"] = json!(now_text);
    if let Some(status) = new["status"].as_object_mut() {
        status.remove("message");
        status.remove("finishedAt");
        status.remove("persistentVolumeClaims");
        if let Some(stored) = status
            .get_mut("storedWorkflowTemplateSpec")
            .and_then(Value::as_object_mut)
        {
            stored.remove("shutdown");
        }
    }
    if let Some(spec) = new["spec"].as_object_mut() {
        spec.remove("shutdown");
        if spec.get("activeDeadlineSeconds").and_then(Value::as_i64) == Some(0) {
            spec.remove("activeDeadlineSeconds");
        }
    }

    // The failed execution nodes without a succeeded descendant.
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for n in tree.nodes.values() {
        if n.failed() && is_execution(n.node_type) {
            let retried = n.raw.pointer("/nodeFlag/retried").and_then(Value::as_bool) == Some(true);
            let judged = if retried {
                tree.parent(n.id).unwrap_or(n)
            } else {
                n
            };
            if !tree.descendant_succeeded(judged.id, &mut BTreeSet::new()) {
                failed.insert(n.id);
            }
        }
    }
    let root = tree
        .nodes
        .values()
        .find(|n| n.name == name)
        .map(|n| n.id)
        .ok_or_else(|| malformed("couldn't find root node".into()))?;
    let mut reset: BTreeSet<&str> = BTreeSet::new();
    let mut delete: BTreeSet<&str> = BTreeSet::new();
    // Topmost first: a node already deleted with an ancestor needs no path of its own.
    for id in tree.sorted(root) {
        if failed.contains(id) && !delete.contains(id) {
            tree.reset_path(id, &mut reset, &mut delete)
                .map_err(malformed)?;
        }
    }

    let version = match text(
        workflow,
        &format!(
            "/metadata/annotations/{}",
            labels::ARGO_POD_NAME_FORMAT.replace('/', "~1")
        ),
    ) {
        "v1" => "v1",
        _ => "v2",
    };
    let on_exit = format!("{name}.onExit");
    let mut pods = BTreeSet::new();
    let mut nodes = Map::new();
    for n in tree.nodes.values() {
        if delete.contains(n.id) {
            if n.node_type == "Pod" {
                pods.insert(pod_name(&name, n, version));
            }
            continue;
        }
        if n.name.starts_with(&on_exit) {
            if n.name == on_exit {
                pods.insert(pod_name(&name, n, version));
                for d in tree.descendants(n.id) {
                    if let Some(x) = tree.nodes.get(d) {
                        pods.insert(pod_name(&name, x, version));
                    }
                }
            }
            continue;
        }
        let mut out = if reset.contains(n.id) {
            reset_node(n.raw, &now_text)
        } else {
            n.raw.clone()
        };
        for key in ["children", "outboundNodes"] {
            if let Some(list) = out.get_mut(key).and_then(Value::as_array_mut) {
                list.retain(|c| c.as_str().is_none_or(|c| !delete.contains(c)));
            }
        }
        nodes.insert(n.id.to_string(), out);
    }
    new["status"]["nodes"] = Value::Object(nodes);

    let retries = text(
        workflow,
        &format!("/metadata/annotations/{}", RETRIES.replace('/', "~1")),
    )
    .parse::<u64>()
    .unwrap_or(0);
    new["metadata"]["annotations"][RETRIES] = json!((retries + 1).to_string());
    let mut failed_steps: Vec<String> = failed
        .iter()
        .filter_map(|id| tree.nodes.get(id))
        .map(|n| {
            n.raw
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or(n.name)
                .to_string()
        })
        .collect();
    failed_steps.sort();
    failed_steps.dedup();
    Ok(Retry {
        workflow: new,
        pods_to_delete: pods.into_iter().collect(),
        failed_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release of db -> api as Argo writes it: entry DAG, one DAG per application, one pod per
    /// chart; api's pod failed and the Workflow failed.
    fn failed_workflow() -> Value {
        let node = |id: &str,
                    name: &str,
                    ty: &str,
                    phase: &str,
                    boundary: &str,
                    children: &[&str]| {
            (
                id.to_string(),
                json!({"id": id, "name": name, "displayName": name.rsplit('.').next(), "type": ty,
                       "phase": phase, "boundaryID": boundary, "children": children,
                       "templateName": if ty == "Pod" { "executor-helmrelease" } else { "app" },
                       "startedAt": "2026-12-01T09:00:00Z", "finishedAt": "2026-12-01T09:01:00Z",
                       "message": if phase == "Failed" { "failed" } else { "" }}),
            )
        };
        let nodes: Map<String, Value> = [
            node("r", "shop-r1", "DAG", "Failed", "", &["db"]),
            node("db", "shop-r1.db", "DAG", "Succeeded", "r", &["db-pod"]),
            node(
                "db-pod",
                "shop-r1.db.db",
                "Pod",
                "Succeeded",
                "db",
                &["api"],
            ),
            node("api", "shop-r1.api", "DAG", "Failed", "r", &["api-pod"]),
            node("api-pod", "shop-r1.api.api", "Pod", "Failed", "api", &[]),
        ]
        .into_iter()
        .collect();
        json!({
            "metadata": {"name": "shop-r1", "namespace": "orkestra", "resourceVersion": "42",
                "labels": {labels::ARGO_COMPLETED: "true", labels::ARGO_PHASE: "Failed"}},
            "spec": {"entrypoint": "entry", "shutdown": "Terminate", "activeDeadlineSeconds": 0},
            "status": {"phase": "Failed", "message": "child failed", "startedAt": "2026-12-01T09:00:00Z",
                "finishedAt": "2026-12-01T09:02:00Z", "nodes": nodes,
                "conditions": [{"type": "PodRunning", "status": "False"}, {"type": "Completed", "status": "True"}]},
        })
    }

    #[test]
    fn retry_deletes_the_failed_pod_and_resets_its_parents() {
        let r = retry(&failed_workflow(), 1_764_580_000).expect("retry");
        let wf = &r.workflow;
        let nodes = wf["status"]["nodes"].as_object().expect("nodes");
        let mut ids: Vec<&str> = nodes.keys().map(String::as_str).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec!["api", "db", "db-pod", "r"]);
        assert_eq!(nodes["api"]["phase"], "Running");
        assert_eq!(nodes["api"]["children"], json!([]));
        assert!(nodes["api"].get("finishedAt").is_none() && nodes["api"].get("message").is_none());
        assert_eq!(nodes["r"]["phase"], "Running");
        assert_eq!(nodes["db"]["phase"], "Succeeded");
        assert_eq!(nodes["db-pod"]["finishedAt"], "2026-12-01T09:01:00Z");
        assert_eq!(wf["status"]["phase"], "Running");
        assert!(wf["status"].get("finishedAt").is_none() && wf["status"].get("message").is_none());
        assert_eq!(
            wf["status"]["conditions"][1],
            json!({"type": "Completed", "status": "False"})
        );
        assert_eq!(
            wf["metadata"]["labels"],
            json!({labels::ARGO_PHASE: "Running"})
        );
        assert!(
            wf["spec"].get("shutdown").is_none()
                && wf["spec"].get("activeDeadlineSeconds").is_none()
        );
        assert_eq!(wf["metadata"]["resourceVersion"], "42");
        assert_eq!(wf["metadata"]["annotations"][RETRIES], "1");
        // fnv32a("shop-r1.api.api"), as Argo's GeneratePodName.
        assert_eq!(
            r.pods_to_delete,
            vec![format!(
                "shop-r1-executor-helmrelease-{}",
                fnv1a32(b"shop-r1.api.api")
            )]
        );
        assert_eq!(r.failed_steps, vec!["api"]);
        // Retrying again counts on.
        let mut again = r.workflow.clone();
        again["status"]["phase"] = json!("Failed");
        let r2 = retry(&again, 1_764_580_100).expect("retry");
        assert_eq!(r2.workflow["metadata"]["annotations"][RETRIES], "2");
    }

    #[test]
    fn fnv_matches_go() {
        // hash/fnv New32a of "a" and of "" (Go's test vectors).
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    }

    #[test]
    fn only_failed_workflows_are_retried_and_only_running_ones_aborted() {
        let mut wf = failed_workflow();
        wf["status"]["phase"] = json!("Running");
        assert_eq!(
            retry(&wf, 0).expect_err("running").to_string(),
            "Workflow shop-r1 is Running: only a failed release can be retried (Cannot retry a workflow in phase Running)"
        );
        wf["spec"]["shutdown"] = Value::Null;
        let patch = abort_patch(&wf, Shutdown::Terminate, Some("alice"), 0).expect("abort");
        assert_eq!(
            patch,
            json!({"metadata": {"annotations": {ABORTED_BY: "alice", ABORTED_AT: "1970-01-01T00:00:00Z"}},
                   "spec": {"shutdown": "Terminate"}})
        );
        let mut aborted_wf = wf.clone();
        aborted_wf["metadata"]["annotations"] = patch["metadata"]["annotations"].clone();
        assert_eq!(
            aborted(&aborted_wf).as_deref(),
            Some("aborted by alice at 1970-01-01T00:00:00Z")
        );
        assert!(matches!(
            abort_patch(&failed_workflow(), Shutdown::Stop, None, 0),
            Err(ControlError::NotInFlight(..))
        ));
        wf["spec"]["shutdown"] = json!("Stop");
        assert!(matches!(
            abort_patch(&wf, Shutdown::Stop, None, 0),
            Err(ControlError::AlreadyStopping(..))
        ));
    }

    #[test]
    fn a_node_without_a_parent_is_refused() {
        let mut wf = failed_workflow();
        wf["status"]["nodes"]["db"]["children"] = json!([]);
        assert!(matches!(retry(&wf, 0), Err(ControlError::Malformed(..))));
    }
}
