//! A group as read from the cluster.

use orkestra::admission::defaults::default_spec;
use orkestra::api::ApplicationGroupSpec;
use orkestra::api::defaults::WORKFLOW_NAMESPACE;
use orkestra::emit::revision::Owner;
use orkestra::input::parse::parse_spec;
use serde_json::Value;

use crate::{Error, Result};

/// A group as read from the cluster.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub object: Value,
    /// The spec as stored (defaults and templates as the webhook injected them).
    pub spec: ApplicationGroupSpec,
}

impl Group {
    /// Reads a group's object as the API server returned it.
    pub fn from_object(object: Value) -> Result<Self> {
        let name = crate::name_of(&object);
        let spec = parse_spec(&object).map_err(|cause| Error::Spec {
            name: name.clone(),
            cause,
        })?;
        Ok(Self { name, object, spec })
    }

    /// Namespace of the group's Workflows (and revisions): `flag` (`-n`), else the group's setting.
    pub fn workflow_namespace(&self, flag: Option<&str>) -> String {
        flag.map(str::to_string)
            .or_else(|| {
                self.spec
                    .workflow_template
                    .as_ref()
                    .and_then(|w| w.namespace.clone())
            })
            .unwrap_or_else(|| WORKFLOW_NAMESPACE.to_string())
    }

    /// The spec with every default filled in (what the webhook would store), for views.
    pub fn defaulted_spec(&self) -> ApplicationGroupSpec {
        default_spec(&self.spec)
    }

    fn meta_str(&self, pointer: &str) -> Option<&str> {
        self.object.pointer(pointer).and_then(Value::as_str)
    }

    /// `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        self.object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
    }

    /// True once the group is being deleted (`metadata.deletionTimestamp` is set).
    pub fn deleting(&self) -> bool {
        self.meta_str("/metadata/deletionTimestamp").is_some()
    }

    /// `status.conditions`, as stored.
    pub fn conditions(&self) -> Vec<Value> {
        self.object
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The value of an annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }

    /// True when `metadata.finalizers` holds `finalizer`.
    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == finalizer))
    }

    pub fn owner(&self) -> Owner {
        Owner {
            name: self.name.clone(),
            uid: self
                .meta_str("/metadata/uid")
                .unwrap_or_default()
                .to_string(),
            generation: self.generation(),
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
