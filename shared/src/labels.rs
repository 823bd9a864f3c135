//! Every label and annotation key Orkestra writes or reads, in one place: ours
//! (`orkestra.azure.microsoft.com/...`) and the few of Argo's that `retry` resets.

use crate::naming;

// Ownership and identity of everything a group creates.
/// The group that owns an object.
pub const OWNER: &str = "orkestra.azure.microsoft.com/owner";
/// Always [`HERITAGE_VALUE`].
pub const HERITAGE: &str = "orkestra.azure.microsoft.com/heritage";
/// The value of [`HERITAGE`].
pub const HERITAGE_VALUE: &str = "orkestra";
/// The chart a HelmRelease installs.
pub const CHART: &str = "orkestra.azure.microsoft.com/chart";
/// The application a HelmRelease belongs to.
pub const APPLICATION: &str = "orkestra.azure.microsoft.com/application";
/// On subchart HelmReleases: the application (parent chart).
pub const PARENT_CHART: &str = "orkestra.azure.microsoft.com/parent-chart";

// Revisions and the Workflows releasing them.
/// Label on Workflows and ControllerRevisions: the revision they belong to.
pub const REVISION_LABEL: &str = "orkestra.azure.microsoft.com/revision";
/// Label on Workflows: `forward`, `reverse` or `rollback` (as the original Orkestra).
pub const WORKFLOW_TYPE_LABEL: &str = "orkestra.azure.microsoft.com/workflow-type";
/// Label on Workflows: the group's generation they release (as the original Orkestra).
pub const GENERATION_LABEL: &str = "orkestra.azure.microsoft.com/appgroup-generation";
/// Annotation on revisions and Workflows: who promoted (the API server's name for the user).
pub const PROMOTED_BY: &str = "orkestra.azure.microsoft.com/promoted-by";
/// Annotation on rollback revisions: the revision whose spec they restore.
pub const ROLLBACK_OF: &str = "orkestra.azure.microsoft.com/rollback-to-revision";
/// Annotation on revisions: the Workflow that releases them.
pub const WORKFLOW: &str = "orkestra.azure.microsoft.com/workflow";

// What `abort` and `retry` record on a Workflow.
/// Annotation on a Workflow: who aborted it.
pub const ABORTED_BY: &str = "orkestra.azure.microsoft.com/aborted-by";
/// Annotation on a Workflow: when it was aborted (RFC 3339).
pub const ABORTED_AT: &str = "orkestra.azure.microsoft.com/aborted-at";
/// Annotation on a Workflow: how many times `retry` restarted it.
pub const RETRIES: &str = "orkestra.azure.microsoft.com/retries";
/// Annotation on a Workflow: who retried it last.
pub const RETRIED_BY: &str = "orkestra.azure.microsoft.com/retried-by";

// Argo's own keys, reset by `retry`.
/// Argo's label: the Workflow is completed.
pub const ARGO_COMPLETED: &str = "workflows.argoproj.io/completed";
/// Argo's label: archiving status.
pub const ARGO_ARCHIVING: &str = "workflows.argoproj.io/workflow-archiving-status";
/// Argo's label: the Workflow's phase.
pub const ARGO_PHASE: &str = "workflows.argoproj.io/phase";
/// Argo's annotation: pod naming version (`v1`: node id; `v2`, the default: template and hash).
pub const ARGO_POD_NAME_FORMAT: &str = "workflows.argoproj.io/pod-name-format";

/// The owner label's value for a group: its name, shortened with a hash past 63 characters
/// (group names go up to 253). Ownership itself is decided by uid ([`crate::live::revision::owned_by`]).
pub fn owner_label(group: &str) -> String {
    naming::label_value(group)
}

/// Label selector for everything a group owns.
pub fn owner_selector(group: &str) -> String {
    format!("{OWNER}={}", owner_label(group))
}
