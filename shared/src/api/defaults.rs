//! What each optional field of the API means when it is unset: the one table of default values,
//! read by defaulting, by the Workflows we emit and by everything reading a group back.

use serde_json::json;

use crate::api::{ApplicationGroupSpec, WorkflowTemplate};

/// Release interval when unset (the original CRD's default).
pub const RELEASE_INTERVAL: &str = "5m";
/// Release timeout when unset (the original's executor default).
pub const RELEASE_TIMEOUT: &str = "5m";
/// Chart version when unset (the original CRD's default).
pub const CHART_VERSION: &str = "*";
/// Namespace the group's Workflows run in.
pub const WORKFLOW_NAMESPACE: &str = "orkestra";
/// Service account of the Workflow pods.
pub const SERVICE_ACCOUNT: &str = "orkestra";
/// Parallelism of the Workflow and each DAG.
pub const PARALLELISM: i64 = 10;
/// Argo pod GC strategy: a failed step's pod, and the executor's explanation in its log, stay
/// until the Workflow is deleted; a succeeded step's pod goes after [`POD_GC_DELETE_DELAY`].
/// (Argo's `OnWorkflowCompletion` would delete a failed pod as soon as the release ends.)
pub const POD_GC_STRATEGY: &str = "OnPodSuccess";
/// How long Argo keeps a succeeded step's pod (and its log) before deleting it.
pub const POD_GC_DELETE_DELAY: &str = "5m";
/// The executor image: this project's `kubectl-orkestra`, tagged with the crate version.
pub const EXECUTOR_IMAGE: &str = concat!(
    "ghcr.io/orkestra-rs/kubectl-orkestra:v",
    env!("CARGO_PKG_VERSION")
);

/// The group-level workflow settings with every default filled in, without the templates (no
/// reader of the settings looks at them, and they are most of a large group's text).
pub fn workflow_settings(spec: &ApplicationGroupSpec) -> WorkflowTemplate {
    let mut wt = match &spec.workflow_template {
        Some(wt) => WorkflowTemplate {
            namespace: wt.namespace.clone(),
            service_account_name: wt.service_account_name.clone(),
            parallelism: wt.parallelism,
            pod_gc: wt.pod_gc.clone(),
            executor_image: wt.executor_image.clone(),
            active_deadline_seconds: wt.active_deadline_seconds,
            templates: None,
        },
        None => WorkflowTemplate::default(),
    };
    wt.namespace
        .get_or_insert_with(|| WORKFLOW_NAMESPACE.into());
    wt.service_account_name
        .get_or_insert_with(|| SERVICE_ACCOUNT.into());
    wt.parallelism.get_or_insert(PARALLELISM);
    wt.pod_gc.get_or_insert_with(
        || json!({ "strategy": POD_GC_STRATEGY, "deleteDelayDuration": POD_GC_DELETE_DELAY }),
    );
    wt.executor_image
        .get_or_insert_with(|| EXECUTOR_IMAGE.into());
    wt
}
