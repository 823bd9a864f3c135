//! The resource types Orkestra reads and writes (ours, Argo's, Flux's and Kubernetes' own): the
//! one table of their apiVersion, kind and plural.

use kube::core::{ApiResource, GroupVersionKind};

/// One resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// `group/version`, or the version alone for the core group (`v1`).
    pub api_version: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// The plural, as URLs, RBAC and kubectl name it.
    pub plural: &'static str,
}

impl ResourceType {
    /// The API group (empty for the core group).
    pub fn group(&self) -> &'static str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// The version.
    pub fn version(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version, |(_, v)| v)
    }

    /// The type for kube's dynamic API.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group(), self.version(), self.kind),
            self.plural,
        )
    }

    /// `applicationgroups.orkestra.azure.microsoft.com`, as RBAC and kubectl name it.
    pub fn full_name(&self) -> String {
        match self.group() {
            "" => self.plural.to_string(),
            group => format!("{}.{group}", self.plural),
        }
    }
}

/// `orkestra.azure.microsoft.com/v1alpha1` ApplicationGroup (cluster-scoped).
pub const APPLICATION_GROUP: ResourceType = ResourceType {
    api_version: super::API_VERSION,
    kind: super::KIND,
    plural: "applicationgroups",
};
/// Argo's Workflow.
pub const WORKFLOW: ResourceType = ResourceType {
    api_version: "argoproj.io/v1alpha1",
    kind: "Workflow",
    plural: "workflows",
};
/// Flux's HelmRelease (helm-controller v2).
pub const HELM_RELEASE: ResourceType = ResourceType {
    api_version: "helm.toolkit.fluxcd.io/v2",
    kind: "HelmRelease",
    plural: "helmreleases",
};
/// Flux's HelmRepository (source-controller v1).
pub const HELM_REPOSITORY: ResourceType = ResourceType {
    api_version: "source.toolkit.fluxcd.io/v1",
    kind: "HelmRepository",
    plural: "helmrepositories",
};
/// The ControllerRevision a release is recorded in.
pub const CONTROLLER_REVISION: ResourceType = ResourceType {
    api_version: "apps/v1",
    kind: "ControllerRevision",
    plural: "controllerrevisions",
};
/// The Pods of Workflow steps.
pub const POD: ResourceType = ResourceType {
    api_version: "v1",
    kind: "Pod",
    plural: "pods",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_versions_and_full_names() {
        assert_eq!(
            (APPLICATION_GROUP.group(), APPLICATION_GROUP.version()),
            (super::super::GROUP, super::super::VERSION)
        );
        assert_eq!(
            APPLICATION_GROUP.full_name(),
            "applicationgroups.orkestra.azure.microsoft.com"
        );
        assert_eq!(
            (POD.group(), POD.version(), POD.full_name()),
            ("", "v1", "pods".into())
        );
        let hr = HELM_RELEASE.api_resource();
        assert_eq!(
            (
                hr.group.as_str(),
                hr.version.as_str(),
                hr.api_version.as_str()
            ),
            ("helm.toolkit.fluxcd.io", "v2", "helm.toolkit.fluxcd.io/v2")
        );
    }
}
