//! The release step's decisions (`kubectl-orkestra executor helmrelease`, run by every chart step
//! of a Workflow): which objects it applies and how ([`StepManifest`], [`annotated`]), when it
//! forces Flux's action ([`must_force`]), which HelmRepository it may delete
//! ([`repository_users`]), and what its verdicts say ([`failed_message`], [`timed_out_message`],
//! [`leftover`], ...). Pure: the command does the API calls, the clock and the logging, and
//! [`super::helm_release`] judges each observed HelmRelease.

use std::time::Duration;

use serde_json::{Map, Value, json};
use thiserror::Error;

use super::helm_release::{self, Judgement, Phase};
use crate::api::resources::{HELM_RELEASE, HELM_REPOSITORY};
use crate::duration::human;

/// Owner of every field the executor applies, stable across runs so re-applies replace ours.
pub const FIELD_MANAGER: &str = "orkestra-executor";
/// Flux's "reconcile now" annotation.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// Flux's "run the Helm action even if nothing changed" annotation (with the `requestedAt` value).
pub const FORCE_AT: &str = "reconcile.fluxcd.io/forceAt";

/// Metadata the API server owns: an apply must not carry it.
const SERVER_METADATA: [&str; 7] = [
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

/// Why a manifest cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManifestError {
    #[error("the manifest is not YAML or JSON: {0}")]
    NotYaml(String),
    #[error("manifest document {0} has no kind")]
    NoKind(usize),
    #[error("manifest document {index}: kind {kind} is not a HelmRelease or HelmRepository")]
    OtherKind { index: usize, kind: String },
    #[error("manifest {kind} has apiVersion {found:?}: the executor applies {want}")]
    ApiVersion {
        kind: &'static str,
        found: String,
        want: &'static str,
    },
    #[error("the manifest has more than one {0}")]
    Repeated(&'static str),
    #[error("the manifest has no HelmRelease")]
    NoHelmRelease,
    #[error("the {0} is not an object")]
    NotAnObject(&'static str),
    #[error("the {0}'s metadata is not an object")]
    MetadataNotAnObject(&'static str),
    #[error("the {0} has no metadata.name")]
    NoName(&'static str),
}

/// What one step applies: a HelmRelease and, optionally, its HelmRepository, each with its
/// namespace set and without what the server owns.
#[derive(Debug, Clone, PartialEq)]
pub struct StepManifest {
    pub repository: Option<Value>,
    pub release: Value,
    /// The HelmRelease's name.
    pub name: String,
    /// The HelmRelease's namespace.
    pub namespace: String,
}

impl StepManifest {
    /// Reads a HelmRelease, or a List / multi-document stream of a HelmRepository and a
    /// HelmRelease (YAML or JSON); objects without a namespace get `default_namespace`.
    pub fn parse(text: &str, default_namespace: &str) -> Result<Self, ManifestError> {
        let docs = crate::input::load::documents(text)
            .map_err(|e| ManifestError::NotYaml(e.to_string()))?;
        let mut repository = None;
        let mut release = None;
        for doc in docs {
            let mut value = doc.value;
            let (slot, resource) = match text_at(&value, "/kind").as_str() {
                "HelmRelease" => (&mut release, HELM_RELEASE),
                "HelmRepository" => (&mut repository, HELM_REPOSITORY),
                "" => return Err(ManifestError::NoKind(doc.index)),
                other => {
                    return Err(ManifestError::OtherKind {
                        index: doc.index,
                        kind: other.to_owned(),
                    });
                }
            };
            let found = text_at(&value, "/apiVersion");
            if found != resource.api_version {
                return Err(ManifestError::ApiVersion {
                    kind: resource.kind,
                    found,
                    want: resource.api_version,
                });
            }
            if slot.is_some() {
                return Err(ManifestError::Repeated(resource.kind));
            }
            prepare(&mut value, resource.kind, default_namespace)?;
            *slot = Some(value);
        }
        let release = release.ok_or(ManifestError::NoHelmRelease)?;
        Ok(StepManifest {
            repository,
            name: text_at(&release, "/metadata/name"),
            namespace: text_at(&release, "/metadata/namespace"),
            release,
        })
    }

    /// `NAMESPACE/NAME` of the HelmRelease.
    pub fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Every namespace that must exist: the objects' and the HelmRelease's `spec.targetNamespace`.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out = vec![self.namespace.clone()];
        let mut add = |ns: String| {
            if !ns.is_empty() && !out.contains(&ns) {
                out.push(ns);
            }
        };
        if let Some(repo) = &self.repository {
            add(text_at(repo, "/metadata/namespace"));
        }
        add(text_at(&self.release, "/spec/targetNamespace"));
        out
    }
}

/// Checks the name, sets the namespace, and drops what an apply must not carry (server-owned
/// metadata, status).
fn prepare(
    value: &mut Value,
    kind: &'static str,
    default_namespace: &str,
) -> Result<(), ManifestError> {
    let object = value
        .as_object_mut()
        .ok_or(ManifestError::NotAnObject(kind))?;
    object.remove("status");
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or(ManifestError::MetadataNotAnObject(kind))?;
    for key in SERVER_METADATA {
        metadata.remove(key);
    }
    let empty = |m: &Map<String, Value>, key: &str| {
        m.get(key).and_then(Value::as_str).is_none_or(str::is_empty)
    };
    if empty(metadata, "name") {
        return Err(ManifestError::NoName(kind));
    }
    if empty(metadata, "namespace") {
        metadata.insert("namespace".into(), json!(default_namespace));
    }
    Ok(())
}

/// `object` as the step applies it: with `reconcile.fluxcd.io/requestedAt` (Flux compares it
/// with `status.lastHandledReconcileAt`, so any new value makes it act now), and with
/// `reconcile.fluxcd.io/forceAt` too when `force`.
pub fn annotated(object: &Value, requested_at: &str, force: bool) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(REQUESTED_AT.into(), json!(requested_at));
            if force {
                map.insert(FORCE_AT.into(), json!(requested_at));
            }
        }
    }
    object
}

/// Whether Flux's last word on an existing HelmRelease is a failed action (`Stalled=True`, or
/// `Ready=False` with a release failure): then the next apply forces the action, since going
/// back to the deployed version after a failed upgrade can stay `UpgradeFailed` although Flux
/// finds the release in sync (fluxcd/helm-controller#1362).
pub fn must_force(existing: &Value) -> bool {
    let state = helm_release::release_state(existing);
    state.stalled
        || state.phase == Phase::Failed.as_str()
        || (state.ready.as_deref() == Some("False")
            && matches!(
                state.reason.as_deref(),
                Some(
                    "UpgradeFailed"
                        | "InstallFailed"
                        | "RollbackSucceeded"
                        | "RollbackFailed"
                        | "UninstallSucceeded"
                        | "UninstallFailed"
                        | "TestFailed"
                )
            ))
}

/// The names of the HelmReleases (listed in the HelmRepository's namespace) that still use it:
/// those not being deleted whose chart source is this HelmRepository. The step deletes the
/// repository only when there are none.
pub fn repository_users(repository: &Value, releases: &[Value]) -> Vec<String> {
    let (name, namespace) = name_and_namespace(repository);
    releases
        .iter()
        .filter(|hr| hr.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|hr| {
            let source = |k: &str| text_at(hr, &format!("/spec/chart/spec/sourceRef/{k}"));
            let source_ns = source("namespace");
            source("kind") == HELM_REPOSITORY.kind
                && source("name") == name
                && (source_ns.is_empty() || source_ns == namespace)
        })
        .map(|hr| text_at(hr, "/metadata/name"))
        .collect()
}

/// What keeps a deleted Flux object (a HelmRelease or a HelmRepository) around: its finalizers
/// and Flux's last word (its conditions).
pub fn leftover(object: &Value) -> String {
    let mut out = if object.pointer("/metadata/deletionTimestamp").is_some() {
        let finalizers: Vec<&str> = object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        format!("terminating, finalizers: {}", list_or_none(&finalizers))
    } else {
        "not marked for deletion yet".to_owned()
    };
    let conditions = helm_release::read_conditions(object.get("status").unwrap_or(&Value::Null));
    if !conditions.is_empty() {
        out.push_str("; conditions: ");
        out.push_str(&helm_release::conditions_line(&conditions));
    }
    out
}

/// The message of a release Flux failed for good: its message and every condition.
pub fn failed_message(j: &Judgement) -> String {
    format!("{} [conditions: {}]", j.message, j.conditions_line())
}

/// The message of an install that ran out of time, naming the last state and Flux's last reason.
pub fn timed_out_message(timeout: Duration, last: Option<&Judgement>) -> String {
    match last {
        Some(j) => {
            let (reason, message) = j.flux_reason();
            format!(
                "not released after {}: last state {}, Flux's last reason {reason} ({message}); conditions: {}",
                human(timeout),
                j.phase.as_str(),
                j.conditions_line()
            )
        }
        None => format!(
            "not released after {}: the HelmRelease could not be read",
            human(timeout)
        ),
    }
}

/// The message of a delete that ran out of time: what is left of `object`, of `kind`.
pub fn delete_timed_out_message(
    kind: &str,
    object: &str,
    timeout: Duration,
    left: Option<&str>,
) -> String {
    format!(
        "{kind} {object} is still there after {}: {}",
        human(timeout),
        left.unwrap_or("its state could not be read")
    )
}

/// The message of a namespace that stayed Terminating until the deadline.
pub fn namespace_still_terminating(name: &str, finalizers: &[String]) -> String {
    let finalizers: Vec<&str> = finalizers.iter().map(String::as_str).collect();
    format!(
        "namespace {name} is still terminating (finalizers: {})",
        list_or_none(&finalizers)
    )
}

/// Whether an API error answering an apply means its namespace is being deleted (the step then
/// waits for it and creates it again).
pub fn is_namespace_terminating(code: u16, message: &str) -> bool {
    code == 403 && message.contains("being terminated")
}

/// The `(name, namespace)` of an object of a [`StepManifest`] (empty when missing).
pub fn name_and_namespace(object: &Value) -> (String, String) {
    (
        text_at(object, "/metadata/name"),
        text_at(object, "/metadata/namespace"),
    )
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn text_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::helm_release::Target;

    fn refused(text: &str) -> String {
        match StepManifest::parse(text, "d") {
            Err(e) => e.to_string(),
            Ok(m) => format!("parsed {m:?}"),
        }
    }

    #[test]
    fn reads_a_list_from_the_domain_crate() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"HelmRepository",
             "metadata":{"name":"repo","namespace":"apps"},"spec":{"url":"https://x"}},
            {"apiVersion":"helm.toolkit.fluxcd.io/v2","kind":"HelmRelease",
             "metadata":{"name":"web","namespace":"apps","resourceVersion":"7","uid":"u"},
             "spec":{"targetNamespace":"web-target"},"status":{"observedGeneration":1}}]}"#;
        let m = StepManifest::parse(text, "default").expect("a valid list");
        assert_eq!((m.name.as_str(), m.object().as_str()), ("web", "apps/web"));
        assert!(m.repository.is_some());
        assert_eq!(m.namespaces(), ["apps", "web-target"]);
        assert_eq!(m.release.get("status"), None);
        assert_eq!(m.release.pointer("/metadata/resourceVersion"), None);
        assert_eq!(m.release.pointer("/metadata/uid"), None);
    }

    #[test]
    fn single_yaml_helmrelease_gets_the_default_namespace() {
        let text = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\nspec: {}\n";
        let m = StepManifest::parse(text, "team").expect("a valid HelmRelease");
        assert_eq!(m.namespace, "team");
        assert_eq!(text_at(&m.release, "/metadata/namespace"), "team");
        assert_eq!(m.namespaces(), ["team"]);
    }

    #[test]
    fn refuses_what_it_cannot_apply() {
        assert!(refused("kind: [").starts_with("the manifest is not YAML or JSON: "));
        assert_eq!(
            refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
            "manifest document 1: kind ConfigMap is not a HelmRelease or HelmRepository"
        );
        assert_eq!(
            refused("metadata: {name: x}\n"),
            "manifest document 1 has no kind"
        );
        assert_eq!(
            refused(
                "apiVersion: helm.toolkit.fluxcd.io/v2beta1\nkind: HelmRelease\nmetadata: {name: x}\n"
            ),
            "manifest HelmRelease has apiVersion \"helm.toolkit.fluxcd.io/v2beta1\": the executor applies helm.toolkit.fluxcd.io/v2"
        );
        assert_eq!(
            refused(
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: x}\n"
            ),
            "the manifest has no HelmRelease"
        );
        assert_eq!(
            refused("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {}\n"),
            "the HelmRelease has no metadata.name"
        );
        assert_eq!(
            refused("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: 3\n"),
            "the HelmRelease's metadata is not an object"
        );
        let two = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: a}\n---\n\
                   apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: b}\n";
        assert_eq!(refused(two), "the manifest has more than one HelmRelease");
    }

    #[test]
    fn applied_objects_ask_flux_to_act_now_and_force_only_when_told() {
        let object = json!({"metadata": {"name": "web", "annotations": {"team": "a"}}});
        let plain = annotated(&object, "t1", false);
        assert_eq!(
            plain["metadata"]["annotations"],
            json!({"team": "a", REQUESTED_AT: "t1"})
        );
        let forced = annotated(&json!({"metadata": {"name": "web"}}), "t2", true);
        assert_eq!(
            forced["metadata"]["annotations"],
            json!({REQUESTED_AT: "t2", FORCE_AT: "t2"})
        );
    }

    fn helm_release_with(ready: &str, reason: &str, stalled: bool) -> Value {
        let mut conditions = vec![json!({"type": "Ready", "status": ready, "reason": reason,
            "message": "m", "observedGeneration": 1})];
        if stalled {
            conditions.push(
                json!({"type": "Stalled", "status": "True", "reason": "RetriesExceeded",
                "message": "m", "observedGeneration": 1}),
            );
        }
        json!({"metadata": {"name": "web", "namespace": "apps", "generation": 1},
               "spec": {"chart": {"spec": {"version": "1.0.0"}}},
               "status": {"observedGeneration": 1, "lastAttemptedRevision": "1.0.0",
                          "conditions": conditions}})
    }

    #[test]
    fn a_failed_last_action_forces_the_next_one() {
        assert!(must_force(&helm_release_with(
            "False",
            "UpgradeFailed",
            false
        )));
        assert!(must_force(&helm_release_with(
            "False",
            "RollbackSucceeded",
            false
        )));
        assert!(must_force(&helm_release_with(
            "True",
            "UpgradeSucceeded",
            true
        )));
        assert!(!must_force(&helm_release_with(
            "True",
            "UpgradeSucceeded",
            false
        )));
        assert!(!must_force(&helm_release_with(
            "False",
            "ArtifactFailed",
            false
        )));
        assert!(!must_force(&helm_release_with(
            "Unknown",
            "Progressing",
            false
        )));
    }

    #[test]
    fn a_repository_is_kept_while_a_live_release_uses_it() {
        let repo = json!({"metadata": {"name": "charts", "namespace": "apps"}});
        let uses = |name: &str, source: Value, deleting: bool| {
            let mut hr = json!({"metadata": {"name": name},
                "spec": {"chart": {"spec": {"sourceRef": source}}}});
            if deleting {
                hr["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
            }
            hr
        };
        let releases = [
            uses(
                "same-ns",
                json!({"kind": "HelmRepository", "name": "charts"}),
                false,
            ),
            uses(
                "explicit",
                json!({"kind": "HelmRepository", "name": "charts", "namespace": "apps"}),
                false,
            ),
            uses(
                "going",
                json!({"kind": "HelmRepository", "name": "charts"}),
                true,
            ),
            uses(
                "elsewhere",
                json!({"kind": "HelmRepository", "name": "charts", "namespace": "b"}),
                false,
            ),
            uses(
                "other",
                json!({"kind": "HelmRepository", "name": "other"}),
                false,
            ),
            uses(
                "git",
                json!({"kind": "GitRepository", "name": "charts"}),
                false,
            ),
        ];
        assert_eq!(repository_users(&repo, &releases), ["same-ns", "explicit"]);
        assert!(repository_users(&repo, &releases[2..]).is_empty());
    }

    #[test]
    fn leftovers_name_finalizers_and_conditions() {
        let mut hr = helm_release_with("True", "UpgradeSucceeded", false);
        assert!(
            leftover(&hr).starts_with("not marked for deletion yet; conditions: Ready=True"),
            "{}",
            leftover(&hr)
        );
        hr["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
        hr["metadata"]["finalizers"] = json!(["finalizers.fluxcd.io"]);
        hr["status"] = json!({});
        assert_eq!(
            leftover(&hr),
            "terminating, finalizers: finalizers.fluxcd.io"
        );
        hr["metadata"]["finalizers"] = json!([]);
        assert_eq!(leftover(&hr), "terminating, finalizers: none");
    }

    #[test]
    fn verdicts_say_what_was_seen_last() {
        let timeout = Duration::from_secs(90);
        assert_eq!(
            timed_out_message(timeout, None),
            "not released after 1m30s: the HelmRelease could not be read"
        );
        let hr = helm_release_with("Unknown", "Progressing", false);
        let j = helm_release::judge(&Target::from_applied(&hr), Some(&hr));
        let message = timed_out_message(timeout, Some(&j));
        assert!(
            message.starts_with(&format!(
                "not released after 1m30s: last state {}, Flux's last reason Progressing (m); conditions: Ready=Unknown",
                j.phase.as_str()
            )),
            "{message}"
        );
        assert!(
            failed_message(&j).starts_with(&format!("{} [conditions: Ready=Unknown", j.message))
        );
        assert_eq!(
            delete_timed_out_message("HelmRelease", "apps/web", timeout, None),
            "HelmRelease apps/web is still there after 1m30s: its state could not be read"
        );
        assert_eq!(
            delete_timed_out_message(
                "HelmRepository",
                "apps/127-0-0-1-8080",
                timeout,
                Some("terminating, finalizers: finalizers.fluxcd.io")
            ),
            "HelmRepository apps/127-0-0-1-8080 is still there after 1m30s: terminating, finalizers: finalizers.fluxcd.io"
        );
        assert_eq!(
            namespace_still_terminating("web", &[]),
            "namespace web is still terminating (finalizers: none)"
        );
        assert!(is_namespace_terminating(
            403,
            "unable to create new content in namespace web because it is being terminated"
        ));
        assert!(!is_namespace_terminating(403, "forbidden"));
    }
}
