//! Live views that follow watch streams instead of listing every interval: `status --watch`,
//! `graph --watch` and every `--wait`. One kube-rs runtime watcher per kind (the group itself,
//! its Workflows and revisions in the workflow namespace, its HelmReleases anywhere), each
//! feeding a reflector store; a change wakes the view at once, which rebuilds the observation
//! from the stores (`cluster::assemble`, as a one-off read does) without a request.
//!
//! The watcher re-lists and re-watches on its own when a watch drops or its resourceVersion
//! expires (with backoff), so a view survives a restarted API server or a broken connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::cluster::{
    self, APPLICATION_GROUP, CONTROLLER_REVISION, Cluster, Group, HELM_RELEASE, Observation,
    ResourceType, WORKFLOW,
};

/// One kind being watched.
struct Feed {
    kind: ResourceType,
    namespace: Option<String>,
    store: Store<DynamicObject>,
    /// The latest error of the stream (cleared by the next good event).
    error: Arc<Mutex<Option<watcher::Error>>>,
    task: JoinHandle<()>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The watched state of one group.
pub struct Live {
    name: String,
    namespace: String,
    group: Feed,
    workflows: Feed,
    revisions: Feed,
    helm_releases: Feed,
    changed: Arc<Notify>,
}

fn feed(
    cluster: &Cluster,
    kind: ResourceType,
    namespace: Option<&str>,
    config: watcher::Config,
    changed: &Arc<Notify>,
) -> Feed {
    let resource = kind.api_resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &resource),
        None => Api::all_with(cluster.client.clone(), &resource),
    };
    let writer = reflector::store::Writer::new(resource);
    let store = writer.as_reader();
    let error = Arc::new(Mutex::new(None));
    let (err, notify) = (error.clone(), changed.clone());
    let stream = watcher(api, config).default_backoff().reflect(writer);
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let e = event.err();
            let changed = e.is_none();
            if let Ok(mut slot) = err.lock() {
                *slot = e;
            }
            if changed {
                notify.notify_one();
            }
        }
    });
    Feed {
        kind,
        namespace: namespace.map(str::to_string),
        store,
        error,
        task,
    }
}

impl Feed {
    fn objects(&self) -> Vec<Value> {
        self.store
            .state()
            .iter()
            .map(|o| serde_json::to_value(o.as_ref()).unwrap_or(Value::Null))
            .collect()
    }

    /// The stream's error, as the one-off reads would report it.
    fn error(&self) -> Option<anyhow::Error> {
        let slot = self.error.lock().ok()?;
        let e = slot.as_ref()?;
        let api = match e {
            watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.clone()),
            _ => None,
        };
        Some(match api {
            Some(status) => cluster::explain(
                kube::Error::Api(status),
                "watch",
                self.kind,
                None,
                self.namespace.as_deref(),
            ),
            None => anyhow!("watching {}: {e}", self.kind.full_name()),
        })
    }

    /// Waits until the first list arrived, or fails with the stream's error once it has retried
    /// for `patience` without one.
    async fn ready(&self, patience: Duration) -> Result<()> {
        let start = tokio::time::Instant::now();
        loop {
            if tokio::time::timeout(Duration::from_millis(100), self.store.wait_until_ready())
                .await
                .is_ok()
            {
                return Ok(());
            }
            if start.elapsed() >= patience
                && let Some(e) = self.error()
            {
                return Err(e);
            }
        }
    }
}

impl Live {
    /// Reads the group once (for its workflow namespace, and a plain "not found"), then starts
    /// the watches and waits for their first lists.
    pub async fn start(
        cluster: &Cluster,
        name: &str,
        namespace_flag: Option<&str>,
    ) -> Result<Self> {
        let first = cluster.group(name).await?;
        let namespace = first.workflow_namespace(namespace_flag);
        let selector = orkestra::labels::owner_selector(name);
        let changed = Arc::new(Notify::new());
        let by_owner = || watcher::Config::default().labels(&selector);
        let live = Self {
            name: name.to_string(),
            group: feed(
                cluster,
                APPLICATION_GROUP,
                None,
                watcher::Config::default().fields(&format!("metadata.name={name}")),
                &changed,
            ),
            workflows: feed(cluster, WORKFLOW, Some(&namespace), by_owner(), &changed),
            revisions: feed(
                cluster,
                CONTROLLER_REVISION,
                Some(&namespace),
                by_owner(),
                &changed,
            ),
            helm_releases: feed(cluster, HELM_RELEASE, None, by_owner(), &changed),
            namespace,
            changed,
        };
        let patience = Duration::from_secs(2);
        live.group.ready(patience).await?;
        live.workflows.ready(patience).await?;
        live.revisions.ready(patience).await?;
        // Without HelmRelease access the rest of the status is still worth showing.
        if let Err(e) = live.helm_releases.ready(patience).await {
            crate::output::write_stderr(&format!("warning: {e:#}\n"));
        }
        Ok(live)
    }

    /// The group as the watches see it now.
    pub fn observe(&self) -> Result<Observation> {
        let object = self
            .group
            .objects()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("ApplicationGroup {:?} was deleted", self.name))?;
        Ok(cluster::assemble(
            Group::from_object(object)?,
            self.namespace.clone(),
            self.workflows.objects(),
            self.revisions.objects(),
            &self.helm_releases.objects(),
        ))
    }

    /// Waits for the next change, or `tick` (durations on the screen grow without events).
    pub async fn next(&self, tick: Duration) {
        let _ = tokio::time::timeout(tick, self.changed.notified()).await;
    }
}
