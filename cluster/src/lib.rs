//! The cluster operations of Orkestra: what `kubectl orkestra` and `orkestra-controller` do to a
//! group in the cluster, written once so that a release the controller makes is the release the
//! plugin would have made (same revision, same Workflow, same name).
//!
//! - the resource types are the domain's one table, `orkestra::api::resources` (no API discovery);
//! - [`Cluster`]: reads and writes as JSON, API errors turned into messages a user can act on;
//! - [`Group`] and [`observe`]: a group, its revisions, Workflows and HelmReleases, and the live
//!   [`orkestra::live::StatusReport`] built from them;
//! - [`release`]: promote (the decision, then the action) and rollback;
//! - [`control`]: abort and retry the release in flight;
//! - [`remove`]: the reverse release that takes a deleted group's releases away, dependents first;
//! - [`automation`] and [`status`]: what the controller does next, and the status it writes.
//!
//! Decisions are pure functions of an [`Observation`]; the async functions only carry them out.

pub mod automation;
pub mod control;
mod error;
mod group;
mod observe;
pub mod release;
pub mod remove;
pub mod status;

#[cfg(test)]
mod fixtures;

use std::time::{SystemTime, UNIX_EPOCH};

pub use error::Error;
pub use group::Group;
pub use observe::{Observation, assemble, observe};

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;

use orkestra::api::resources::{APPLICATION_GROUP, ResourceType};

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Now, Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The cluster: a client, and the name to record when the API server cannot say who we are.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    fallback_user: Option<String>,
}

fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

fn from_value(v: &Value) -> Result<DynamicObject> {
    serde_json::from_value(v.clone()).map_err(Error::Build)
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Cluster {
    /// `fallback_user` is recorded as the author of a change when the API server's
    /// SelfSubjectReview is not available (the kubeconfig's user name, for the plugin).
    pub fn new(client: Client, fallback_user: Option<String>) -> Self {
        Self {
            client,
            fallback_user,
        }
    }

    fn api(&self, kind: ResourceType, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.api_resource()),
            None => Api::all_with(self.client.clone(), &kind.api_resource()),
        }
    }

    pub async fn get(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value> {
        self.api(kind, namespace)
            .get(name)
            .await
            .map(to_value)
            .map_err(|e| Error::explain(e, "get", kind, Some(name), namespace))
    }

    /// Lists objects of `kind` with a label selector (all namespaces when `namespace` is `None`).
    pub async fn list(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>> {
        let list = self
            .api(kind, namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| Error::explain(e, "list", kind, None, namespace))?;
        Ok(list.items.into_iter().map(to_value).collect())
    }

    pub async fn create(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<Value> {
        let name = name_of(obj);
        self.api(kind, namespace)
            .create(&PostParams::default(), &from_value(obj)?)
            .await
            .map(to_value)
            .map_err(|e| Error::explain(e, "create", kind, Some(&name), namespace))
    }

    pub async fn delete(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<()> {
        self.api(kind, namespace)
            .delete(name, &Default::default())
            .await
            .map(|_| ())
            .map_err(|e| Error::explain(e, "delete", kind, Some(name), namespace))
    }

    /// Deletes an object; one that does not exist (any more) is fine.
    pub async fn delete_if_exists(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<()> {
        match self.delete(kind, namespace, name).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    pub async fn merge_patch(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value> {
        self.patch(kind, namespace, name, patch, false).await
    }

    /// Merge-patches the status subresource.
    pub async fn patch_status(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value> {
        self.patch(kind, namespace, name, patch, true).await
    }

    async fn patch(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        status: bool,
    ) -> Result<Value> {
        let (api, params, patch) = (
            self.api(kind, namespace),
            PatchParams::default(),
            Patch::Merge(patch),
        );
        let (result, verb) = if status {
            (
                api.patch_status(name, &params, &patch).await,
                "patch the status of",
            )
        } else {
            (api.patch(name, &params, &patch).await, "patch")
        };
        result
            .map(to_value)
            .map_err(|e| Error::explain(e, verb, kind, Some(name), namespace))
    }

    pub async fn replace(
        &self,
        kind: ResourceType,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<Value> {
        let name = name_of(obj);
        self.api(kind, namespace)
            .replace(&name, &PostParams::default(), &from_value(obj)?)
            .await
            .map(to_value)
            .map_err(|e| Error::explain(e, "update", kind, Some(&name), namespace))
    }

    /// The API server's name for the user (SelfSubjectReview); else the fallback name.
    pub async fn whoami(&self) -> Option<String> {
        use k8s_openapi::api::authentication::v1::SelfSubjectReview;
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let review = api
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .ok();
        review
            .and_then(|r| r.status?.user_info?.username)
            .or_else(|| self.fallback_user.clone())
    }

    /// Reads a group: its object and its spec (as stored).
    pub async fn group(&self, name: &str) -> Result<Group> {
        Group::from_object(self.get(APPLICATION_GROUP, None, name).await?)
    }
}
