//! What can go wrong in a cluster operation, each with a message that says what to do.

use orkestra::api::resources::ResourceType;

/// An error of a cluster operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with an error status; `message` names the verb, the object and
    /// what to do.
    #[error("{message}")]
    Api { message: String, code: u16 },
    /// The API server could not be reached.
    #[error(
        "cannot reach the cluster to {action} (is the cluster up? check the kubeconfig and --context): {cause}"
    )]
    Unreachable { action: String, cause: kube::Error },
    /// A group whose stored object cannot be read.
    #[error("reading ApplicationGroup {name:?}: {cause}")]
    Spec {
        name: String,
        cause: orkestra::input::parse::SpecError,
    },
    /// An object we built does not serialize (a bug, reported rather than panicking).
    #[error("building the object: {0}")]
    Build(serde_json::Error),
    /// The release in flight cannot be controlled that way.
    #[error(transparent)]
    Control(#[from] orkestra::live::control::ControlError),
    /// The group's state does not allow the operation; the message says what would.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    /// True for the API server's 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { code: 404, .. })
    }

    /// Turns a kube error into a message naming the verb, the resource and what to do.
    pub fn explain(
        err: kube::Error,
        verb: &str,
        kind: ResourceType,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Self {
        let what = match name {
            Some(n) => format!("{} {n:?}", kind.full_name()),
            None => kind.full_name(),
        };
        let place = namespace
            .map(|ns| format!(" in namespace {ns:?}"))
            .unwrap_or_default();
        let status = match err {
            kube::Error::Api(status) => status,
            cause => {
                return Self::Unreachable {
                    action: format!("{verb} {what}{place}"),
                    cause,
                };
            }
        };
        let has_name = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
        let missing_namespace = status
            .details
            .as_ref()
            .is_some_and(|d| d.kind == "namespaces" && !d.name.is_empty());
        let message = match status.code {
            404 if missing_namespace => format!(
                "namespace {:?} not found: create it, or point the group's spec.workflowTemplate.namespace (or -n) at an existing one",
                namespace.unwrap_or_default()
            ),
            404 if name.is_some() && has_name && verb != "create" => {
                if kind.kind == orkestra::api::KIND {
                    format!("ApplicationGroup {:?} not found", name.unwrap_or_default())
                } else {
                    format!("{what} not found{place}")
                }
            }
            404 => format!(
                "the cluster does not serve {} ({}/{}): is its CustomResourceDefinition installed?{}",
                kind.full_name(),
                kind.group(),
                kind.version(),
                match kind.group() {
                    "argoproj.io" => " (install Argo Workflows)",
                    "helm.toolkit.fluxcd.io" => " (install Flux's helm-controller)",
                    g if g == orkestra::api::GROUP => " (kubectl apply -f manifests/crd/)",
                    _ => "",
                }
            ),
            403 => format!(
                "forbidden: you may not {verb} {what}{place} ({}); a plugin user needs the roles in manifests/rbac/plugin-user.yaml, the controller those in manifests/controller/",
                status.message
            ),
            401 => format!(
                "unauthorized: the cluster did not accept your credentials ({})",
                status.message
            ),
            _ => format!("{verb} {what}{place}: {} ({})", status.message, status.code),
        };
        Self::Api {
            message,
            code: status.code,
        }
    }
}
