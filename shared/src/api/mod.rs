//! The `ApplicationGroup` API (`orkestra.azure.microsoft.com/v1alpha1`).
//!
//! Field for field compatible with the original Go Orkestra (v0.8.3): every group it accepted
//! deserializes here unchanged. Our additions are optional: `spec.workflowTemplate` (workflow
//! settings a user may override, plus the Argo templates the mutating webhook injects) and
//! `spec.applications[].spec.subcharts[].version`.
//!
//! Free-form parts (`values`, executor `params`, Flux `install`/`upgrade`/... blocks, the executor
//! container) stay `serde_json::Value` with `x-kubernetes-preserve-unknown-fields`, so nothing a
//! user wrote is lost on the way through.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod crd;
pub mod defaults;
pub mod limits;
pub mod resources;

/// API group of the ApplicationGroup kind.
pub const GROUP: &str = "orkestra.azure.microsoft.com";
/// The only API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "orkestra.azure.microsoft.com/v1alpha1";
/// The kind.
pub const KIND: &str = "ApplicationGroup";

/// A group of Helm charts released as one product, in dependency order.
// Each `printcolumn(...)` repeats `type_`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "orkestra.azure.microsoft.com",
    version = "v1alpha1",
    kind = "ApplicationGroup",
    status = "ApplicationGroupStatus",
    shortname = "ag",
    shortname = "appgroup",
    category = "orkestra",
    doc = "A group of Helm charts released as one product, in dependency order, by Argo Workflows and Flux.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "RolledBack",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"RollbackWorkflowSucceeded\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationGroupSpec {
    /// The applications of the group; each is one Helm chart.
    #[serde(default)]
    #[schemars(length(min = 1, max = limits::MAX_APPLICATIONS))]
    pub applications: Vec<Application>,

    /// Kept for compatibility with the original API, which never used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,

    /// Workflow settings and the generated Argo templates (an Orkestra-in-Rust extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_template: Option<WorkflowTemplate>,

    /// What `orkestra-controller` does on its own (an Orkestra-in-Rust extension). Without it,
    /// releases wait for `kubectl orkestra promote` and a failed one stays failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_policy: Option<ReleasePolicy>,
}

/// What `orkestra-controller` does on its own for a group. Both are off unless set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePolicy {
    /// Release every spec change as `kubectl orkestra promote` would (same revision, same
    /// Workflow), once per change.
    #[serde(default)]
    pub automatic: bool,

    /// Roll a failed release back to the last revision whose release succeeded, once, as
    /// `kubectl orkestra rollback` would.
    #[serde(default)]
    pub rollback_on_failure: bool,
}

impl ApplicationGroupSpec {
    /// The release policy, off when unset.
    pub fn policy(&self) -> ReleasePolicy {
        self.release_policy.clone().unwrap_or_default()
    }
}

/// One application: a chart, how to release it, and what it depends on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Name of the application, unique in the group.
    #[serde(default)]
    #[schemars(length(max = limits::MAX_NAME_CHARS))]
    pub name: String,

    /// Names of applications of the same group that must be released first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_DEPENDENCIES), inner(length(max = limits::MAX_NAME_CHARS)))]
    pub dependencies: Vec<String>,

    /// The chart, its release settings, subcharts and executors.
    #[serde(default)]
    pub spec: ApplicationSpec,
}

/// Desired state of one application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Where the Helm chart comes from (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartRef>,

    /// How the chart is released (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,

    /// Release order among the chart's own subcharts; each listed subchart is released on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_SUBCHARTS))]
    pub subcharts: Vec<Subchart>,

    /// The executors that release this application, in dependency order among themselves.
    /// Empty means one `helmrelease` executor (the mutating webhook makes it explicit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_EXECUTORS))]
    pub workflow: Vec<Executor>,

    /// A manual gate (extension): when true, a release pauses before this application until
    /// `kubectl orkestra promote` continues it (`promote --full` passes every gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<bool>,
}

/// A Helm chart in an HTTP(S) or `oci://` Helm repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartRef {
    /// The Helm repository URL.
    #[serde(default)]
    pub url: String,

    /// The chart's name in that repository.
    #[serde(default)]
    pub name: String,

    /// Exact chart version; `*` (the original default) means "latest" and is warned about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = defaults::CHART_VERSION))]
    pub version: Option<String>,

    // Boxed: it is rare, and inline it would be a third of every `Application` read and moved.
    /// Secret holding `username`/`password` (and TLS files) for a private repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<Box<ObjectReference>>,
}

/// Release settings, copied into the Flux HelmRelease.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// How often Flux reconciles the release (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = defaults::RELEASE_INTERVAL))]
    pub interval: Option<String>,

    /// Namespace the chart is installed into (and where its HelmRelease lives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,

    /// Timeout of each Helm action, and of the executor waiting for it (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,

    /// Helm values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub values: Option<Value>,

    /// Flux HelmRelease `install` block, copied verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub install: Option<Value>,

    /// Flux HelmRelease `upgrade` block, copied verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub upgrade: Option<Value>,

    /// Flux HelmRelease `rollback` block, copied verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub rollback: Option<Value>,

    /// Flux HelmRelease `uninstall` block, copied verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub uninstall: Option<Value>,
}

/// A subchart released on its own, before its parent chart.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subchart {
    /// Name of the subchart (as in the parent chart's dependencies).
    #[serde(default)]
    #[schemars(length(max = limits::MAX_NAME_CHARS))]
    pub name: String,

    /// Subcharts of the same application released first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_DEPENDENCIES), inner(length(max = limits::MAX_NAME_CHARS)))]
    pub dependencies: Vec<String>,

    /// Chart version of the subchart in the application's repository (extension; default: the
    /// parent chart's version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One step that releases (or checks) an application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    /// Name of the executor, unique within the application.
    #[serde(default)]
    #[schemars(length(max = limits::MAX_NAME_CHARS))]
    pub name: String,

    /// Executors of the same application that run first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = limits::MAX_DEPENDENCIES), inner(length(max = limits::MAX_NAME_CHARS)))]
    pub dependencies: Vec<String>,

    /// `helmrelease`, `keptn` or `custom`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,

    /// Container of a `custom` executor (only `name` and `image` are used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub image: Option<Value>,

    /// Type-specific parameters: keptn `{configMapRef: {name, namespace}}`, custom `{data: ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_any")]
    pub params: Option<Value>,
}

/// The three executor types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExecutorType {
    /// Apply a Flux HelmRelease and wait until Flux has released it.
    HelmRelease,
    /// Run a Keptn quality gate after a release.
    Keptn,
    /// Run the user's own container.
    Custom,
}

impl ExecutorType {
    /// The spelling used in `spec.applications[].spec.workflow[].type`.
    pub const NAMES: [&'static str; 3] = ["helmrelease", "keptn", "custom"];

    /// Parses the `type` field; `None` when it names no known type.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "helmrelease" => Some(Self::HelmRelease),
            "keptn" => Some(Self::Keptn),
            "custom" => Some(Self::Custom),
            _ => None,
        }
    }

    /// The spelling used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HelmRelease => "helmrelease",
            Self::Keptn => "keptn",
            Self::Custom => "custom",
        }
    }
}

/// Group-level workflow settings and the generated Argo templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplate {
    /// Namespace the group's Argo Workflows run in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Service account the workflow pods (and so the executors) run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// How many applications (and executors) may run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub parallelism: Option<i64>,

    /// Argo pod garbage collection, e.g. `{strategy: OnPodSuccess, deleteDelayDuration: 5m}`.
    #[serde(default, rename = "podGC", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub pod_gc: Option<Value>,

    /// Image of the `helmrelease` executor (`kubectl-orkestra executor helmrelease`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_image: Option<String>,

    /// Deadline of a whole release, in seconds (Argo `activeDeadlineSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,

    /// The Argo templates that release the group: generated by the mutating webhook from the
    /// rest of the spec, and replaced whenever the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_list")]
    pub templates: Option<Templates>,
}

/// The generated Argo templates, kept as the JSON text they were read from. Admission and
/// promotion pass them on whole and never look inside, so a 1,000-application group's 0.4 MB of
/// templates is neither parsed into values nor copied value by value; [`Templates::to_values`]
/// parses them for the few readers that do look.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Templates(Box<serde_json::value::RawValue>);

impl Templates {
    /// Templates from the compact JSON text of a list; `None` when `text` is not a JSON list.
    pub fn from_json(text: Box<serde_json::value::RawValue>) -> Option<Self> {
        text.get()
            .trim_start()
            .starts_with('[')
            .then_some(Self(text))
    }

    /// The templates' JSON text, as read or generated.
    pub fn as_json(&self) -> &serde_json::value::RawValue {
        &self.0
    }

    /// True when `text` holds these templates: the same text, or else the same values (the API
    /// server stores keys sorted and our generator writes them sorted, so the cheap comparison
    /// is the usual answer).
    pub fn same_as_json(&self, text: &str) -> bool {
        self.0.get() == text
            || serde_json::from_str::<Vec<Value>>(text).is_ok_and(|v| v == self.to_values())
    }

    /// The templates as JSON values (an empty list when the text is not a list of values,
    /// which [`Templates::from_json`] and deserializing rule out).
    pub fn to_values(&self) -> Vec<Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

/// No templates: `[]`.
impl Default for Templates {
    fn default() -> Self {
        Self(serde_json::value::RawValue::from_string("[]".into()).expect("`[]` is JSON"))
    }
}

/// Equal when they hold the same templates (see [`Templates::same_as_json`]).
impl PartialEq for Templates {
    fn eq(&self, other: &Self) -> bool {
        self.same_as_json(other.0.get())
    }
}

impl<'de> Deserialize<'de> for Templates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Self::from_json(text).ok_or_else(|| {
            serde::de::Error::invalid_type(
                serde::de::Unexpected::Other("a non-list"),
                &"a list of templates",
            )
        })
    }
}

/// Observed state, written by whatever runs the releases.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationGroupStatus {
    /// Per-application status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<ApplicationStatus>,

    /// The generation last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The generation whose release last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_succeeded_generation: Option<i64>,

    /// `Ready`, `ForwardWorkflowSucceeded`, `ReverseWorkflowSucceeded`, `RollbackWorkflowSucceeded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Status of one application's chart and its subcharts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// Name of the application.
    #[serde(default)]
    pub name: String,

    /// The chart's status, inline as in the original API.
    #[serde(flatten)]
    pub chart: ChartStatus,

    /// Status of each decomposed subchart, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subcharts: BTreeMap<String, ChartStatus>,
}

/// Status of one chart's release.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartStatus {
    /// Error met while releasing, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,

    /// Chart version released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// Whether the chart was staged (original Orkestra's chart museum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<bool>,

    /// Conditions copied from the HelmRelease.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn free_form_any(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // Any JSON value: the original examples write `params: nil` (a string) as well as objects.
    schemars::json_schema!({
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn free_form_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
    })
}

impl ApplicationSpec {
    /// The executors that release this application: the declared ones, or the implicit
    /// `helmrelease` executor when none is declared.
    pub fn executors(&self) -> Vec<Executor> {
        if self.workflow.is_empty() {
            vec![Executor::default_helmrelease()]
        } else {
            self.workflow.clone()
        }
    }
}

impl ChartRef {
    /// The version asked for: `version`, else the API's default ([`defaults::CHART_VERSION`]).
    pub fn version_or_default(&self) -> &str {
        self.version.as_deref().unwrap_or(defaults::CHART_VERSION)
    }

    /// `name@version`, as plans and views show a chart.
    pub fn describe(&self) -> String {
        format!("{}@{}", self.name, self.version_or_default())
    }
}

impl Executor {
    /// The executor the original Orkestra assumed when `workflow` was empty.
    pub fn default_helmrelease() -> Self {
        Self {
            name: "helmrelease".into(),
            type_: Some("helmrelease".into()),
            ..Self::default()
        }
    }

    /// The executor's type; `None` when `type` is missing or names no known type.
    pub fn executor_type(&self) -> Option<ExecutorType> {
        self.type_.as_deref().and_then(ExecutorType::parse)
    }
}
