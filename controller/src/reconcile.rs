//! The reconciler: a kube-rs runtime `Controller` on ApplicationGroups, woken by changes to the
//! group and to its Workflows and HelmReleases. Each reconcile reads the group afresh (so two
//! reconciles never both see "not released yet"), carries out what
//! `orkestra_cluster::automation` decides with the same operations as `kubectl orkestra`, and
//! writes the status `orkestra_cluster::status` derives from the live report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use orkestra::api::resources::{APPLICATION_GROUP, HELM_RELEASE, WORKFLOW};
use orkestra::labels::{self, OWNER};
use orkestra_cluster::automation::{self, Next};
use orkestra_cluster::release::{self, Actor, Promoted};
use orkestra_cluster::remove::{self, FINALIZER, ORPHAN, Removal};
use orkestra_cluster::status::{self, Extra};
use orkestra_cluster::{Cluster, Error, Group, Observation};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::args::Args;
use crate::metrics::{Metrics, Outcome};

/// What every reconcile shares.
struct Context {
    cluster: Cluster,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// Recorded as the author of the controller's revisions.
    actor: Actor,
    requeue_in_flight: Duration,
    requeue_settled: Duration,
}

/// The groups whose owner label is `value` (the label is the name, hashed past 63 characters).
fn owners(store: &Store<DynamicObject>, obj: &DynamicObject) -> Vec<ObjectRef<DynamicObject>> {
    let Some(value) = obj.labels().get(OWNER) else {
        return Vec::new();
    };
    let resource = APPLICATION_GROUP.api_resource();
    store
        .state()
        .iter()
        .filter(|g| labels::owner_label(&g.name_any()) == *value)
        .map(|g| ObjectRef::new_with(&g.name_any(), resource.clone()))
        .collect()
}

/// Runs the controller until `stop`.
pub async fn run(
    args: &Args,
    client: Client,
    metrics: Arc<Metrics>,
    identity: String,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let cluster = Cluster::new(client.clone(), None);
    let who = cluster.whoami().await;
    let ctx = Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "orkestra-controller".into(),
                instance: Some(identity),
            },
        ),
        cluster,
        metrics,
        actor: Actor {
            who,
            tool: "orkestra-controller",
        },
        requeue_in_flight: args.requeue_in_flight,
        requeue_settled: args.requeue_settled,
    });
    let groups = Api::<DynamicObject>::all_with(client.clone(), &APPLICATION_GROUP.api_resource());
    let owned = || watcher::Config::default().labels(OWNER);
    let selected = match &args.watch_label_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let controller = Controller::new_with(groups, selected, APPLICATION_GROUP.api_resource())
        .with_config(
            controller::Config::default()
                .concurrency(4)
                .debounce(Duration::from_millis(200)),
        );
    let store = controller.store();
    let (wf_store, hr_store) = (store.clone(), store);
    controller
        .watches_with(
            Api::<DynamicObject>::all_with(client.clone(), &WORKFLOW.api_resource()),
            WORKFLOW.api_resource(),
            owned(),
            move |wf| owners(&wf_store, &wf),
        )
        .watches_with(
            Api::<DynamicObject>::all_with(client, &HELM_RELEASE.api_resource()),
            HELM_RELEASE.api_resource(),
            owned(),
            move |hr| owners(&hr_store, &hr),
        )
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                Err(controller::Error::ReconcilerFailed(e, obj)) => {
                    tracing::warn!(group = %obj.name, "reconcile failed: {e}");
                }
                // A Workflow or HelmRelease of a group just deleted: nothing to do.
                Err(controller::Error::ObjectNotFound(obj)) => {
                    tracing::debug!(group = %obj.name, "gone");
                }
                Err(e) => tracing::warn!("controller: {e}"),
            }
        })
        .await;
    Ok(())
}

fn error_policy(_group: Arc<DynamicObject>, _error: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile_group(&obj.name_any(), &ctx).await;
    ctx.metrics.reconciled(start.elapsed(), result.is_ok());
    result
}

fn reference(group: &Group) -> ObjectReference {
    let s = |p: &str| {
        group
            .object
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ObjectReference {
        api_version: Some(orkestra::api::API_VERSION.into()),
        kind: Some(orkestra::api::KIND.into()),
        name: Some(group.name.clone()),
        uid: s("/metadata/uid"),
        resource_version: s("/metadata/resourceVersion"),
        ..ObjectReference::default()
    }
}

impl Context {
    /// Records an event on the group (and logs it); a failure to record is only logged.
    async fn event(&self, group: &Group, warning: bool, reason: &str, action: &str, note: String) {
        if warning {
            tracing::warn!(group = %group.name, reason, "{note}");
        } else {
            tracing::info!(group = %group.name, reason, "{note}");
        }
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference(group)).await {
            tracing::warn!(group = %group.name, "recording event {reason}: {e}");
        }
    }

    /// Sets `metadata.finalizers`, guarded by the resourceVersion read (a conflict retries).
    async fn set_finalizers(&self, group: &Group, finalizers: Vec<Value>) -> Result<Value, Error> {
        let patch = json!({ "metadata": {
            "finalizers": finalizers,
            "resourceVersion": group.object.pointer("/metadata/resourceVersion"),
        }});
        self.cluster
            .merge_patch(APPLICATION_GROUP, None, &group.name, &patch)
            .await
    }

    /// Adds the finalizer; returns the group as it now is.
    async fn add_finalizer(&self, group: &Group) -> Result<Value, Error> {
        let mut finalizers = finalizers(group);
        finalizers.push(json!(FINALIZER));
        self.set_finalizers(group, finalizers).await
    }

    async fn lift_finalizer(&self, group: &Group) -> Result<(), Error> {
        let finalizers = finalizers(group)
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        self.set_finalizers(group, finalizers).await.map(|_| ())
    }

    /// Writes the status when it changed; records an event when `Ready` changed its reason.
    async fn write_status(&self, obs: &Observation, extra: &Extra<'_>) -> Result<(), Error> {
        let now = orkestra::time::format_time(orkestra_cluster::now());
        let status = status::status(obs, extra, &now);
        if !status::differs(&obs.group.object, &status) {
            return Ok(());
        }
        let ready = |s: &Value| {
            s.pointer("/conditions/0")
                .map(|c| (c["reason"].clone(), c["message"].clone()))
        };
        let before = obs.group.object.get("status").and_then(ready);
        let after = ready(&status);
        self.cluster
            .patch_status(
                APPLICATION_GROUP,
                None,
                &obs.group.name,
                &json!({ "status": status }),
            )
            .await?;
        if before != after
            && let Some((reason, message)) = after
        {
            let reason = reason.as_str().unwrap_or_default();
            let warning = matches!(reason, "Failed" | "RemovalFailed" | "Held");
            if reason == "Held" {
                self.metrics.outcome(Outcome::Held);
            }
            let message = message.as_str().unwrap_or_default().to_string();
            self.event(&obs.group, warning, reason, "Status", message)
                .await;
        }
        Ok(())
    }
}

fn finalizers(group: &Group) -> Vec<Value> {
    group
        .object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn reconcile_group(name: &str, ctx: &Context) -> Result<Action, Error> {
    let mut obs = match orkestra_cluster::observe(&ctx.cluster, name, None).await {
        Ok(obs) => obs,
        Err(e) if e.is_not_found() => return Ok(Action::await_change()),
        Err(e) => return Err(e),
    };
    if obs.group.deleting() {
        return finish_deletion(&obs, ctx).await;
    }
    if !obs.group.has_finalizer(FINALIZER) {
        // Carry on with the group as patched (its resourceVersion guards a rollback's update).
        obs.group.object = ctx.add_finalizer(&obs.group).await?;
    }
    let group = &obs.group;
    let mut held = None;
    let acted = match automation::next(&obs) {
        Next::Nothing => false,
        Next::Held(message) => {
            held = Some(message);
            false
        }
        Next::Release(decision) => {
            let done = release::promote(&ctx.cluster, &obs, &decision, false, &ctx.actor).await?;
            if let Promoted::Released {
                revision,
                workflow,
                terminated,
                ..
            } = &done
            {
                ctx.metrics.outcome(Outcome::Released);
                let mut note = format!(
                    "generation {}: revision {revision} recorded; workflow {}/{workflow} created",
                    group.generation().unwrap_or_default(),
                    obs.namespace
                );
                if !terminated.is_empty() {
                    note.push_str(&format!(
                        " (terminated {}, paused at a gate of an older spec)",
                        terminated.join(", ")
                    ));
                }
                ctx.event(group, false, "Released", "Promote", note).await;
            }
            true
        }
        Next::Rollback { failed, target } => {
            let target = obs
                .revisions
                .iter()
                .find(|r| r.number == target)
                .ok_or_else(|| Error::Refused(format!("revision {target} is gone")))?;
            let done = release::rollback(&ctx.cluster, &obs, target, &ctx.actor).await?;
            ctx.metrics.outcome(Outcome::RolledBack);
            let note = format!(
                "revision {failed} failed: rolled back to revision {}, recorded as revision {}; workflow {}/{} created",
                done.target, done.revision, obs.namespace, done.workflow
            );
            ctx.event(group, true, "RolledBack", "Rollback", note).await;
            true
        }
    };
    let obs = if acted {
        orkestra_cluster::observe(&ctx.cluster, name, None).await?
    } else {
        obs
    };
    ctx.write_status(
        &obs,
        &Extra {
            removal: None,
            held: held.as_deref(),
        },
    )
    .await?;
    Ok(Action::requeue(if obs.report.verdict.is_final() {
        ctx.requeue_settled
    } else {
        ctx.requeue_in_flight
    }))
}

/// A deleted group: remove its releases (dependents first), or leave them with the orphan
/// annotation, then lift the finalizer.
async fn finish_deletion(obs: &Observation, ctx: &Context) -> Result<Action, Error> {
    let group = &obs.group;
    if !group.has_finalizer(FINALIZER) {
        return Ok(Action::await_change());
    }
    if group.annotation(ORPHAN) == Some("true") {
        ctx.lift_finalizer(group).await?;
        ctx.metrics.outcome(Outcome::Orphaned);
        let note = format!(
            "{ORPHAN}: the releases stay installed ({} HelmReleases)",
            obs.helm_releases.len()
        );
        ctx.event(group, false, "Orphaned", "Delete", note).await;
        return Ok(Action::await_change());
    }
    let removal = remove::remove(&ctx.cluster, obs).await?;
    match &removal {
        Removal::Done => {
            ctx.lift_finalizer(group).await?;
            ctx.metrics.outcome(Outcome::Removed);
            let note = "every release removed, dependents first".to_string();
            ctx.event(group, false, "Removed", "Delete", note).await;
            return Ok(Action::await_change());
        }
        Removal::Removing {
            workflow,
            started: true,
        } => {
            let note = format!(
                "removing the releases, dependents first: workflow {}/{workflow} created",
                obs.namespace
            );
            ctx.event(group, false, "Removing", "Delete", note).await;
        }
        _ => {}
    }
    ctx.write_status(
        obs,
        &Extra {
            removal: Some(&removal),
            held: None,
        },
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(5)))
}
