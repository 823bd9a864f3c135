//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! the leader renews the Lease every third of its duration; another replica takes it over once
//! it has seen the same holder and renew time, unchanged, for a whole duration (its own clock,
//! so clock skew between nodes does not matter). A leader that cannot renew in time stops
//! reconciling and exits, so two replicas never act at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::args::Args;
use crate::metrics::Metrics;

/// One replica's view of the Lease.
struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The holder and renew time last seen, and when this replica first saw them.
    seen: Option<(String, Instant)>,
}

fn record_of(lease: &Lease) -> String {
    let spec = lease.spec.clone().unwrap_or_default();
    format!(
        "{}@{:?}",
        spec.holder_identity.unwrap_or_default(),
        spec.renew_time.map(|t| t.0.to_string())
    )
}

impl Elector {
    fn spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let same_holder = previous
            .and_then(|p| p.holder_identity.as_deref())
            .is_some_and(|h| h == self.identity);
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: if same_holder {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if same_holder {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }

    /// Takes or renews the Lease; `false` while another replica holds it.
    async fn try_acquire(&mut self) -> Result<bool> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .with_context(|| format!("reading Lease {}", self.name))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e).context("creating the Lease"),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        if !mine && !holder.is_empty() {
            let record = record_of(&lease);
            let expired = match &self.seen {
                Some((seen, since)) if *seen == record => since.elapsed() >= self.duration,
                _ => {
                    self.seen = Some((record, Instant::now()));
                    false
                }
            };
            if !expired {
                return Ok(false);
            }
        }
        lease.spec = Some(self.spec(Some(&spec)));
        // The resourceVersion read above makes this a compare-and-swap: of two replicas taking
        // an expired Lease, one gets a conflict.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e).context("updating the Lease"),
        }
    }

    /// Gives the Lease up at shutdown, so another replica takes over at once.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "gave up the Lease"),
            Err(e) => tracing::warn!(lease = %self.name, "giving up the Lease: {e}"),
        }
    }
}

/// Waits for leadership (when elected), then reconciles until `stop`, or until the Lease is lost.
pub async fn run(
    args: &Args,
    client: Client,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let identity = args.identity();
    if !args.leader_elect {
        metrics.set_ready(true);
        metrics.set_leader(true);
        return crate::reconcile::run(args, client, metrics, identity, stop).await;
    }
    let mut elector = Elector {
        api: Api::namespaced(client.clone(), &args.lease_namespace),
        name: args.lease_name.clone(),
        identity: identity.clone(),
        duration: args.lease_duration,
        seen: None,
    };
    let retry = args.lease_duration / 3;
    tracing::info!(%identity, lease = %format!("{}/{}", args.lease_namespace, args.lease_name), "waiting for leadership");
    loop {
        match elector.try_acquire().await {
            Ok(true) => break,
            Ok(false) => metrics.set_ready(true),
            Err(e) => {
                metrics.set_ready(false);
                tracing::warn!("leader election: {e:#}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    metrics.set_ready(true);
    metrics.set_leader(true);
    tracing::info!(%identity, "leading");
    let controller = crate::reconcile::run(args, client, metrics.clone(), identity, stop.clone());
    tokio::pin!(controller);
    let mut last_renewal = Instant::now();
    let deadline = args.lease_duration * 2 / 3;
    let result = loop {
        tokio::select! {
            done = &mut controller => break done,
            _ = tokio::time::sleep(retry) => {
                match elector.try_acquire().await {
                    Ok(true) => last_renewal = Instant::now(),
                    Ok(false) => break Err(anyhow::anyhow!("lost the Lease to another replica")),
                    Err(e) => tracing::warn!("renewing the Lease: {e:#}"),
                }
                if last_renewal.elapsed() > deadline {
                    break Err(anyhow::anyhow!("could not renew the Lease for {deadline:?}"));
                }
            }
        }
    };
    metrics.set_leader(false);
    match result {
        Ok(()) => {
            elector.release().await;
            Ok(())
        }
        Err(e) => bail!("stopped leading: {e:#}"),
    }
}
