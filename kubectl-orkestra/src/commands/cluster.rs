//! What the cluster commands (status, graph GROUP, promote, rollback, history) share: the fixed
//! resource types (no discovery), reads and writes as JSON, API errors turned into messages a
//! user can act on, the live observation of a group, and output helpers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use orkestra::admission::defaults;
use orkestra::api::ApplicationGroupSpec;
use orkestra::live::report::{Observed, StatusReport};
use serde::Serialize;
use serde_json::Value;

use crate::cli::ClusterOutput;
use crate::client::KubeArgs;
use orkestra::emit::revision;
use orkestra::input::parse;
use orkestra::labels;

/// A resource type this plugin reads or writes.
#[derive(Clone, Copy)]
pub struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
}

impl Kind {
    pub fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// `applicationgroups.orkestra.azure.microsoft.com`, as RBAC and kubectl name it.
    pub fn full_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

pub const APPLICATION_GROUP: Kind = Kind {
    group: orkestra::api::GROUP,
    version: orkestra::api::VERSION,
    kind: orkestra::api::KIND,
    plural: "applicationgroups",
};
pub const WORKFLOW: Kind = Kind {
    group: "argoproj.io",
    version: "v1alpha1",
    kind: "Workflow",
    plural: "workflows",
};
pub const HELM_RELEASE: Kind = Kind {
    group: "helm.toolkit.fluxcd.io",
    version: "v2",
    kind: "HelmRelease",
    plural: "helmreleases",
};
pub const POD: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
};
pub const CONTROLLER_REVISION: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "ControllerRevision",
    plural: "controllerrevisions",
};

/// Turns a kube error into a message naming the verb, the resource and what to do.
pub fn explain(
    err: kube::Error,
    verb: &str,
    kind: Kind,
    name: Option<&str>,
    namespace: Option<&str>,
) -> anyhow::Error {
    let what = match name {
        Some(n) => format!("{} {n:?}", kind.full_name()),
        None => kind.full_name(),
    };
    let place = namespace
        .map(|ns| format!(" in namespace {ns:?}"))
        .unwrap_or_default();
    match err {
        kube::Error::Api(status) => {
            let has_name = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
            let missing_namespace = status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces" && !d.name.is_empty());
            match status.code {
                404 if missing_namespace => anyhow!(
                    "namespace {:?} not found: create it, or point the group's spec.workflowTemplate.namespace (or -n) at an existing one",
                    namespace.unwrap_or_default()
                ),
                404 if name.is_some() && has_name && verb != "create" => {
                    if kind.kind == orkestra::api::KIND {
                        anyhow!("ApplicationGroup {:?} not found", name.unwrap_or_default())
                    } else {
                        anyhow!("{what} not found{place}")
                    }
                }
                404 => anyhow!(
                    "the cluster does not serve {} ({}/{}): is its CustomResourceDefinition installed?{}",
                    kind.full_name(),
                    kind.group,
                    kind.version,
                    match kind.group {
                        "argoproj.io" => " (install Argo Workflows)",
                        "helm.toolkit.fluxcd.io" => " (install Flux's helm-controller)",
                        g if g == orkestra::api::GROUP => " (kubectl apply -f manifests/crd/)",
                        _ => "",
                    }
                ),
                403 => anyhow!(
                    "forbidden: you may not {verb} {what}{place} ({}); a plugin user needs the roles in manifests/rbac/plugin-user.yaml",
                    status.message
                ),
                401 => anyhow!("unauthorized: the cluster did not accept your credentials ({})", status.message),
                _ => anyhow!("{verb} {what}{place}: {} ({})", status.message, status.code),
            }
        }
        other => anyhow!(other).context(format!(
            "cannot reach the cluster to {verb} {what}{place} (is the cluster up? check the kubeconfig and --context)"
        )),
    }
}

/// The cluster, as the commands use it.
pub struct Cluster {
    pub client: Client,
    args: KubeArgs,
}

fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

fn from_value(v: &Value) -> Result<DynamicObject> {
    serde_json::from_value(v.clone()).context("building the object")
}

impl Cluster {
    pub async fn connect(args: &KubeArgs) -> Result<Self> {
        Ok(Self {
            client: args.client().await?,
            args: args.clone(),
        })
    }

    fn api(&self, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource()),
            None => Api::all_with(self.client.clone(), &kind.resource()),
        }
    }

    pub async fn get(&self, kind: Kind, namespace: Option<&str>, name: &str) -> Result<Value> {
        self.api(kind, namespace)
            .get(name)
            .await
            .map(to_value)
            .map_err(|e| explain(e, "get", kind, Some(name), namespace))
    }

    /// Lists objects of `kind` with a label selector (all namespaces when `namespace` is `None`).
    pub async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>> {
        let list = self
            .api(kind, namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| explain(e, "list", kind, None, namespace))?;
        Ok(list.items.into_iter().map(to_value).collect())
    }

    pub async fn create(&self, kind: Kind, namespace: Option<&str>, obj: &Value) -> Result<Value> {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.api(kind, namespace)
            .create(&PostParams::default(), &from_value(obj)?)
            .await
            .map(to_value)
            .map_err(|e| explain(e, "create", kind, Some(&name), namespace))
    }

    pub async fn delete(&self, kind: Kind, namespace: Option<&str>, name: &str) -> Result<()> {
        self.api(kind, namespace)
            .delete(name, &Default::default())
            .await
            .map(|_| ())
            .map_err(|e| explain(e, "delete", kind, Some(name), namespace))
    }

    /// Deletes an object; one that does not exist (any more) is fine.
    pub async fn delete_if_exists(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<()> {
        match self
            .api(kind, namespace)
            .delete(name, &Default::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(explain(e, "delete", kind, Some(name), namespace)),
        }
    }

    pub async fn merge_patch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value> {
        self.api(kind, namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(to_value)
            .map_err(|e| explain(e, "patch", kind, Some(name), namespace))
    }

    pub async fn replace(&self, kind: Kind, namespace: Option<&str>, obj: &Value) -> Result<Value> {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.api(kind, namespace)
            .replace(&name, &PostParams::default(), &from_value(obj)?)
            .await
            .map(to_value)
            .map_err(|e| explain(e, "update", kind, Some(&name), namespace))
    }

    /// The API server's name for the user (SelfSubjectReview); else the kubeconfig's user name.
    pub async fn whoami(&self) -> Option<String> {
        use k8s_openapi::api::authentication::v1::SelfSubjectReview;
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let review = api
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .ok();
        review
            .and_then(|r| r.status?.user_info?.username)
            .or_else(|| self.kubeconfig_user())
    }

    fn kubeconfig_user(&self) -> Option<String> {
        if let Some(user) = &self.args.user {
            return Some(user.clone());
        }
        let kubeconfig = match &self.args.kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path).ok()?,
            None => kube::config::Kubeconfig::read().ok()?,
        };
        let context = self
            .args
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())?;
        kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)?
            .context
            .as_ref()?
            .user
            .clone()
    }

    /// Reads a group: its object and its spec (as stored).
    pub async fn group(&self, name: &str) -> Result<Group> {
        Group::from_object(self.get(APPLICATION_GROUP, None, name).await?)
    }
}

/// A group as read from the cluster.
pub struct Group {
    pub name: String,
    pub object: Value,
    /// The spec as stored (defaults and templates as the webhook injected them).
    pub spec: ApplicationGroupSpec,
}

impl Group {
    /// Reads a group's object as the API server returned it.
    pub fn from_object(object: Value) -> Result<Self> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let spec = parse::parse_spec(&object)
            .with_context(|| format!("reading ApplicationGroup {name:?}"))?;
        Ok(Self { name, object, spec })
    }

    /// Namespace of the group's Workflows (and revisions): `-n`, else the group's setting.
    pub fn workflow_namespace(&self, flag: Option<&str>) -> String {
        flag.map(str::to_string)
            .or_else(|| {
                self.spec
                    .workflow_template
                    .as_ref()
                    .and_then(|w| w.namespace.clone())
            })
            .unwrap_or_else(|| orkestra::api::defaults::WORKFLOW_NAMESPACE.to_string())
    }

    /// The spec with every default filled in (what the webhook would store), for views.
    pub fn defaulted_spec(&self) -> ApplicationGroupSpec {
        defaults::default_spec(&self.spec)
    }

    pub fn owner(&self) -> revision::Owner {
        let s = |p: &str| {
            self.object
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        revision::Owner {
            name: self.name.clone(),
            uid: s("/metadata/uid"),
            generation: self
                .object
                .pointer("/metadata/generation")
                .and_then(Value::as_i64),
        }
    }

    /// Flux or Argo CD labels/annotations: the group is reconciled from Git.
    pub fn gitops_manager(&self) -> Option<&'static str> {
        let keys = |p: &str| -> Vec<String> {
            self.object
                .pointer(p)
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let all: Vec<String> = [keys("/metadata/labels"), keys("/metadata/annotations")].concat();
        if all.iter().any(|k| {
            k.starts_with("kustomize.toolkit.fluxcd.io/")
                || k.starts_with("helm.toolkit.fluxcd.io/")
        }) {
            Some("Flux")
        } else if all.iter().any(|k| k.starts_with("argocd.argoproj.io/")) {
            Some("Argo CD")
        } else {
            None
        }
    }
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One observation of a group: the report, and what it was built from.
pub struct Observation {
    pub group: Group,
    pub namespace: String,
    pub revisions: Vec<orkestra::live::revision::Revision>,
    /// The number the next revision gets.
    pub next_revision: i64,
    pub workflows: Vec<Value>,
    pub report: StatusReport,
}

/// Reads the group, its Workflows, revisions and HelmReleases, and builds the status report.
/// Independent reads run concurrently: the HelmReleases do not need the group first.
pub async fn observe(
    cluster: &Cluster,
    name: &str,
    namespace_flag: Option<&str>,
) -> Result<Observation> {
    let selector = labels::owner_selector(name);
    let (group, helm_releases) = tokio::join!(
        cluster.group(name),
        cluster.list(HELM_RELEASE, None, &selector)
    );
    let group = group?;
    let namespace = group.workflow_namespace(namespace_flag);
    let (workflows, revisions) = tokio::join!(
        cluster.list(WORKFLOW, Some(&namespace), &selector),
        cluster.list(CONTROLLER_REVISION, Some(&namespace), &selector)
    );
    // Without HelmRelease access the rest of the status is still worth showing.
    let helm_releases = helm_releases.unwrap_or_else(|e| {
        crate::output::write_stderr(&format!("warning: {e:#}\n"));
        Vec::new()
    });
    Ok(assemble(
        group,
        namespace,
        workflows?,
        revisions?,
        &helm_releases,
    ))
}

/// Builds the observation of a group from the objects read (or watched) in the cluster.
pub fn assemble(
    group: Group,
    namespace: String,
    workflows: Vec<Value>,
    revisions: Vec<Value>,
    helm_releases: &[Value],
) -> Observation {
    let name = group.name.clone();
    let name = name.as_str();
    // Numbers stay unique across an earlier group of the same name whose objects were orphaned;
    // everything else only counts this group's own objects.
    let next_revision =
        orkestra::live::revision::next_number(&orkestra::live::revision::read_all(&revisions));
    let uid = group.owner().uid;
    let workflows: Vec<Value> = workflows
        .into_iter()
        .filter(|w| orkestra::live::revision::owned_by(w, &uid))
        .collect();
    let revisions: Vec<Value> = revisions
        .into_iter()
        .filter(|r| orkestra::live::revision::owned_by(r, &uid))
        .collect();
    let revisions = orkestra::live::revision::read_all(&revisions);
    let spec = group.defaulted_spec();
    let latest = revisions.last().map(|r| (r.number, r.spec == group.spec));
    let conditions: Vec<Value> = group
        .object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut report = StatusReport::build(&Observed {
        group: name,
        spec: &spec,
        conditions: &conditions,
        revision: latest,
        workflow: orkestra::live::revision::latest_workflow(&workflows),
        helm_releases,
        now: now(),
    });
    let current = orkestra::live::revision::latest_workflow(&workflows)
        .and_then(|w| w.pointer("/metadata/name"))
        .and_then(Value::as_str);
    report.eta = orkestra::live::eta::eta(
        &report,
        &spec,
        &orkestra::live::eta::expected_durations(&spec, &workflows, current),
    );
    Observation {
        group,
        namespace,
        next_revision,
        revisions,
        workflows,
        report,
    }
}

/// Writes `value` as JSON or YAML; `false` when the format is a table (the caller prints it).
pub fn write_structured<T: Serialize>(value: &T, output: ClusterOutput) -> Result<bool> {
    match output {
        ClusterOutput::Json => {
            crate::output::write_stdout(&(serde_json::to_string_pretty(value)? + "\n"))?;
            Ok(true)
        }
        ClusterOutput::Yaml => {
            crate::output::write_stdout(&serde_saphyr::to_string(value).context("writing YAML")?)?;
            Ok(true)
        }
        ClusterOutput::Table | ClusterOutput::Wide => Ok(false),
    }
}

/// Shortens `s` to `max` characters with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Ages like kubectl: `45s`, `3m`, `2h`, `4d`.
pub fn age(rfc3339: Option<&str>, now: i64) -> String {
    let Some(t) = rfc3339.and_then(orkestra::time::parse_time) else {
        return "-".into();
    };
    let d = (now - t).max(0);
    match d {
        0..=119 => format!("{d}s"),
        120..=7199 => format!("{}m", d / 60),
        7200..=172_799 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86_400),
    }
}

/// A duration in seconds for a table cell.
pub fn seconds(d: Option<f64>) -> String {
    d.map_or_else(
        || "-".into(),
        |s| orkestra::duration::human(Duration::from_secs_f64(s.max(0.0))),
    )
}

/// True when stdout is a terminal and NO_COLOR is unset: colours and redraws are welcome.
pub fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && colour_allowed()
}

/// False when NO_COLOR is set (https://no-color.org).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
