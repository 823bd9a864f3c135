//! `kubectl orkestra executor helmrelease`: the step an Argo Workflow runs for each chart of a
//! group (same binary as the plugin, so one image serves both). The decisions (what is applied,
//! when Flux is forced, which HelmRepository goes, what the verdicts say) are
//! [`orkestra::live::executor`]'s, the judgement of each HelmRelease read is
//! [`orkestra::live::helm_release`]'s; this file reads the arguments, talks to the API server
//! and logs.
//!
//! - `install`: make sure the namespaces exist (waiting while one is Terminating), server-side
//!   apply the HelmRepository and then the HelmRelease with the field manager `orkestra-executor`,
//!   requesting an immediate reconcile (`reconcile.fluxcd.io/requestedAt`), then read the
//!   HelmRelease every `--interval` until it is judged released for the applied generation and
//!   chart version, failed for good, or the `--timeout` (the whole step's) is up.
//! - `delete`: delete the HelmRelease and wait until it is gone, then its HelmRepository unless
//!   another HelmRelease uses it, waited for the same way; on timeout, say what is left.
//!
//! One JSON line per state change on stderr. Exit codes (`crate::exit`): 0 released (or deleted),
//! 1 release failed, 2 usage or API error, 3 timeout. No API discovery: the resources are fixed.

use std::future::Future;
use std::io::{self, Read};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use orkestra::api::resources::{HELM_RELEASE, HELM_REPOSITORY, ResourceType};
use orkestra::live::executor::{self as rules, FIELD_MANAGER, FORCE_AT, StepManifest};
use orkestra::live::helm_release::{Judgement, Outcome, Snapshot, Step, Target, Wait};
use serde_json::Value;

use crate::cli::{ExecutorAction, ExecutorCommand, HelmReleaseExecutorArgs};
use crate::client::KubeArgs;
// Released or deleted; Flux failed for good; bad input or an API error waiting does not cure;
// time is up.
use crate::exit::{EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT};

/// One JSON line on stderr (tracing, see `crate::logging`): `timestamp`, `level`, then `event`,
/// `action`, `helmRelease` (once known), `elapsed` (seconds since the start) and the event's own
/// fields; a field that is `None` is left out.
macro_rules! step_event {
    ($log:expr, $level:ident, $event:literal $(, $($fields:tt)*)?) => {
        tracing::$level!(
            event = $event,
            action = $log.action,
            helmRelease = $log.object(),
            elapsed = $log.elapsed(),
            $($($fields)*)?
        )
    };
}

pub fn run(command: &ExecutorCommand) -> ExitCode {
    match command {
        ExecutorCommand::Helmrelease(args) => helmrelease(args, &args.kube),
    }
}

fn helmrelease(args: &HelmReleaseExecutorArgs, kube: &KubeArgs) -> ExitCode {
    let start = Instant::now();
    let mut log = Log {
        action: match args.action {
            ExecutorAction::Install => "install",
            ExecutorAction::Delete => "delete",
        },
        object: String::new(),
        start,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return log.end(Stop::Error(anyhow!("starting the async runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        let settings = Settings::from_args(args, start)?;
        let client = kube.client().await.map_err(Stop::Error)?;
        let text = match (&args.manifest, &args.revision, &args.chart) {
            (Some(m), _, _) => read_manifest(m)?,
            (None, Some(revision), Some(chart)) => {
                fetch_manifest(&client, revision, chart, &settings).await?
            }
            _ => {
                return Err(Stop::Usage(
                    "give --manifest, or --revision and --chart".into(),
                ));
            }
        };
        let manifest = StepManifest::parse(&text, client.default_namespace())
            .map_err(|e| Stop::Usage(e.to_string()))?;
        log.object = manifest.object();
        match args.action {
            ExecutorAction::Install => install(&client, &manifest, &settings, &log).await,
            ExecutorAction::Delete => delete(&client, &manifest, &settings, &log).await,
        }
    });
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(stop) => log.end(stop),
    }
}

/// Why the executor stops short of success.
enum Stop {
    /// Flux gave up: its reason and message.
    Failed { reason: String, message: String },
    /// The deadline passed: what was seen last.
    TimedOut(String),
    /// Bad input.
    Usage(String),
    /// An API or I/O error.
    Error(anyhow::Error),
}

struct Settings {
    deadline: Instant,
    timeout: Duration,
    interval: Duration,
}

impl Settings {
    fn from_args(args: &HelmReleaseExecutorArgs, start: Instant) -> Result<Self, Stop> {
        let duration = |flag: &str, value: &str| {
            orkestra::duration::parse(value).ok_or_else(|| {
                Stop::Usage(format!(
                    "--{flag} {value:?} is not a duration (e.g. 5m, 90s)"
                ))
            })
        };
        let timeout = duration("timeout", &args.timeout)?;
        let interval = duration("interval", &args.interval)?.max(Duration::from_millis(50));
        Ok(Settings {
            deadline: start + timeout,
            timeout,
            interval,
        })
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Sleeps one interval, or until the deadline if that comes first.
    async fn pause(&self) {
        tokio::time::sleep(self.interval.min(self.remaining())).await;
    }

    /// Runs one API call, bounded by the deadline (a hung request must not outlive the step).
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = kube::Result<T>>,
    ) -> Result<kube::Result<T>, Stop> {
        // A second of grace so a call started just before the deadline can still answer.
        match tokio::time::timeout(self.remaining() + Duration::from_secs(1), fut).await {
            Ok(result) => Ok(result),
            Err(_) => Err(Stop::TimedOut(format!(
                "{what}: no answer from the API server"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The manifest

fn read_manifest(arg: &str) -> Result<String, Stop> {
    match arg.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Stop::Usage(format!("reading the manifest from stdin: {e}")))?;
            Ok(text)
        }
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Stop::Usage(format!("reading the manifest {path}: {e}"))),
        None => Ok(arg.to_owned()),
    }
}

/// The manifest of one chart step, built from the group's ControllerRevision `NAMESPACE/NAME`.
async fn fetch_manifest(
    client: &Client,
    revision: &str,
    chart: &str,
    settings: &Settings,
) -> Result<String, Stop> {
    let (namespace, name) = revision
        .split_once('/')
        .ok_or_else(|| Stop::Usage(format!("--revision {revision:?} is not NAMESPACE/NAME")))?;
    let api = Api::<ControllerRevision>::namespaced(client.clone(), namespace);
    let what = format!("reading ControllerRevision {revision}");
    let cr = settings
        .call(&what, api.get(name))
        .await?
        .map_err(|e| api_error(what.clone(), e))?;
    let cr = serde_json::to_value(&cr)
        .map_err(|e| Stop::Error(anyhow!(e).context("reading the ControllerRevision")))?;
    let manifest = orkestra::emit::manifest::step_manifest(&cr, chart)
        .map_err(|e| Stop::Usage(format!("ControllerRevision {revision}: {e}")))?;
    Ok(manifest.to_string())
}

// ---------------------------------------------------------------------------------------------
// install

async fn install(
    client: &Client,
    manifest: &StepManifest,
    settings: &Settings,
    log: &Log,
) -> Result<(), Stop> {
    // Flux compares the value with `status.lastHandledReconcileAt`: any new value will do.
    let requested_at = k8s_openapi::jiff::Timestamp::now().to_string();
    let force = after_failure(client, manifest, settings).await?;
    if force {
        // Going back to the deployed version after a failed upgrade can stay UpgradeFailed
        // although Flux finds the release in sync (fluxcd/helm-controller#1362): force the action.
        step_event!(
            log,
            info,
            "force",
            message = %format!("the HelmRelease's last action failed: setting {FORCE_AT}"),
        );
    }
    let annotations = Annotations {
        requested_at: &requested_at,
        force,
    };
    let applied = loop {
        for ns in manifest.namespaces() {
            ensure_namespace(client, &ns, settings, log).await?;
        }
        match apply_all(client, manifest, &annotations, settings, log).await {
            Err(Stop::Error(e))
                if terminating_namespace(&e) && settings.remaining() > Duration::ZERO =>
            {
                // Deleted between our check and the apply: wait for it again.
                step_event!(log, warn, "namespace-terminating", message = %format!("{e:#}"));
                settings.pause().await;
            }
            other => break other?,
        }
    };
    wait_released(
        client,
        manifest,
        Target::from_applied(&applied),
        &requested_at,
        settings,
        log,
    )
    .await
}

/// The annotations every applied object gets.
struct Annotations<'a> {
    /// `reconcile.fluxcd.io/requestedAt` (and `forceAt` when `force`).
    requested_at: &'a str,
    force: bool,
}

/// Whether the HelmRelease exists and Flux's last word on it is a failure (`Ready=False` with a
/// release failure, or `Stalled=True`): then the next action is forced.
async fn after_failure(
    client: &Client,
    manifest: &StepManifest,
    settings: &Settings,
) -> Result<bool, Stop> {
    let api = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &manifest.namespace,
        &HELM_RELEASE.api_resource(),
    );
    let what = format!(
        "reading HelmRelease {}/{}",
        manifest.namespace, manifest.name
    );
    let existing = match settings.call(&what, api.get_opt(&manifest.name)).await? {
        Ok(Some(obj)) => serde_json::to_value(obj).unwrap_or_default(),
        Ok(None) => return Ok(false),
        Err(e) if transient(&e) => return Ok(false),
        Err(e) => return Err(api_error(what, e)),
    };
    Ok(rules::must_force(&existing))
}

/// Whether an apply failed because its namespace is being deleted.
fn terminating_namespace(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>()
        .is_some_and(|f| rules::is_namespace_terminating(f.code, &f.message))
}

/// An error status from the API server, said in one line: `<what>: <message> (<code> <reason>)`.
#[derive(Debug)]
struct ApiFailure {
    what: String,
    code: u16,
    reason: String,
    message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (HTTP {}", self.what, self.message, self.code)?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        write!(f, ")")
    }
}

impl std::error::Error for ApiFailure {}

fn api_error(what: impl Into<String>, e: kube::Error) -> Stop {
    let what = what.into();
    match e {
        kube::Error::Api(s) => Stop::Error(anyhow::Error::new(ApiFailure {
            what,
            code: s.code,
            reason: s.reason,
            message: s.message,
        })),
        other => Stop::Error(anyhow!(other).context(what)),
    }
}

/// Creates the namespace if it is missing; waits while it is Terminating (Orkestra #88).
async fn ensure_namespace(
    client: &Client,
    name: &str,
    settings: &Settings,
    log: &Log,
) -> Result<(), Stop> {
    let api = Api::<Namespace>::all(client.clone());
    let mut reported = false;
    loop {
        let what = format!("reading namespace {name}");
        match settings.call(&what, api.get_opt(name)).await? {
            Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_none() => return Ok(()),
            Ok(Some(ns)) => {
                let finalizers = namespace_finalizers(&ns);
                if !reported {
                    step_event!(
                        log,
                        info,
                        "namespace-terminating",
                        namespace = name,
                        finalizers = %finalizers.join(", "),
                        message = "waiting until it is gone to create it again",
                    );
                    reported = true;
                }
                if settings.remaining().is_zero() {
                    return Err(Stop::TimedOut(rules::namespace_still_terminating(
                        name,
                        &finalizers,
                    )));
                }
            }
            Ok(None) => {
                let ns = Namespace {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                };
                let post = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                let what = format!("creating namespace {name}");
                match settings.call(&what, api.create(&post, &ns)).await? {
                    Ok(_) => {
                        step_event!(log, info, "namespace-created", namespace = name);
                        return Ok(());
                    }
                    // Someone else made it (or it is terminating): look again.
                    Err(kube::Error::Api(s)) if s.is_already_exists() => continue,
                    Err(e) => return Err(api_error(what, e)),
                }
            }
            Err(e) if transient(&e) && !settings.remaining().is_zero() => {
                step_event!(log, warn, "api-retry", message = %format!("{what}: {e}"));
            }
            Err(e) => return Err(api_error(what, e)),
        }
        settings.pause().await;
    }
}

fn namespace_finalizers(ns: &Namespace) -> Vec<String> {
    let mut out: Vec<String> = ns.metadata.finalizers.clone().unwrap_or_default();
    if let Some(spec) = &ns.spec {
        out.extend(spec.finalizers.clone().unwrap_or_default());
    }
    out
}

/// Applies the HelmRepository, then the HelmRelease; returns the HelmRelease as stored.
async fn apply_all(
    client: &Client,
    manifest: &StepManifest,
    annotations: &Annotations<'_>,
    settings: &Settings,
    log: &Log,
) -> Result<Value, Stop> {
    if let Some(repo) = &manifest.repository {
        apply(
            client,
            &HELM_REPOSITORY.api_resource(),
            repo,
            &Annotations {
                requested_at: annotations.requested_at,
                force: false,
            },
            settings,
            log,
        )
        .await?;
    }
    apply(
        client,
        &HELM_RELEASE.api_resource(),
        &manifest.release,
        annotations,
        settings,
        log,
    )
    .await
}

async fn apply(
    client: &Client,
    resource: &ApiResource,
    object: &Value,
    annotations: &Annotations<'_>,
    settings: &Settings,
    log: &Log,
) -> Result<Value, Stop> {
    let object = rules::annotated(object, annotations.requested_at, annotations.force);
    let (name, namespace) = rules::name_and_namespace(&object);
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, resource);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let what = format!("applying {} {namespace}/{name}", resource.kind);
    let stored = settings
        .call(&what, api.patch(&name, &params, &Patch::Apply(&object)))
        .await?
        .map_err(|e| api_error(what.clone(), e))?;
    let stored = serde_json::to_value(&stored)
        .map_err(|e| Stop::Error(anyhow!(e).context("reading the applied object")))?;
    step_event!(
        log,
        info,
        "applied",
        kind = resource.kind.as_str(),
        object = %format!("{namespace}/{name}"),
        generation = stored.pointer("/metadata/generation").and_then(serde_json::Value::as_i64),
        chartVersion = stored.pointer("/spec/chart/spec/version").and_then(serde_json::Value::as_str),
    );
    Ok(stored)
}

async fn wait_released(
    client: &Client,
    manifest: &StepManifest,
    target: Target,
    requested_at: &str,
    settings: &Settings,
    log: &Log,
) -> Result<(), Stop> {
    let api = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &manifest.namespace,
        &HELM_RELEASE.api_resource(),
    );
    let mut wait = Wait::new(target, settings.timeout);
    let what = format!("reading HelmRelease {}", log.object);
    // Once the HelmRepository has handled our request it stays handled: stop reading it then.
    let mut handled = manifest.repository.is_none();
    loop {
        if !handled && let Some(repo) = &manifest.repository {
            handled = repository_handled(client, repo, requested_at, settings).await;
        }
        let observed = match settings.call(&what, api.get_opt(&manifest.name)).await {
            Ok(Ok(found)) => Some(
                found
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| Stop::Error(anyhow!(e).context("reading the HelmRelease")))?,
            ),
            Ok(Err(e)) if transient(&e) => {
                step_event!(log, warn, "api-retry", message = %format!("{what}: {e}"));
                None
            }
            Ok(Err(e)) => return Err(api_error(what, e)),
            Err(_) => None,
        };
        let step = match &observed {
            Some(found) => wait.observe(
                log.start.elapsed(),
                Snapshot {
                    release: found.as_ref(),
                    repository_handled: handled,
                },
            ),
            None if settings.remaining().is_zero() => Step::Done(wait.expire()),
            None => {
                settings.pause().await;
                continue;
            }
        };
        match step {
            Step::Continue { judgement, changed } => {
                if changed {
                    log.state(&judgement);
                }
            }
            Step::Done(Outcome::Released(j)) => {
                step_event!(
                    log,
                    info,
                    "released",
                    reason = j.reason.as_str(),
                    message = j.message.as_str(),
                    revision = j.revision.as_deref(),
                    generation = j.generation,
                    observedGeneration = j.observed_generation,
                );
                return Ok(());
            }
            Step::Done(Outcome::Failed(j)) => {
                return Err(Stop::Failed {
                    reason: j.reason.clone(),
                    message: rules::failed_message(&j),
                });
            }
            Step::Done(Outcome::TimedOut(last)) => {
                return Err(Stop::TimedOut(rules::timed_out_message(
                    settings.timeout,
                    last.as_ref(),
                )));
            }
        }
        settings.pause().await;
    }
}

/// Whether the step's HelmRepository has fetched its index since our request (read errors: not
/// yet; the HelmRelease's own state still decides everything else).
async fn repository_handled(
    client: &Client,
    repo: &Value,
    requested_at: &str,
    settings: &Settings,
) -> bool {
    let (name, namespace) = rules::name_and_namespace(repo);
    let api = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &namespace,
        &HELM_REPOSITORY.api_resource(),
    );
    match settings
        .call("reading the HelmRepository", api.get_opt(&name))
        .await
    {
        Ok(Ok(Some(obj))) => serde_json::to_value(obj)
            .is_ok_and(|v| orkestra::live::helm_release::repository_handled(&v, requested_at)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// delete

/// Deletes the HelmRelease, then its HelmRepository unless another HelmRelease still uses it,
/// each waited for until it is gone (Flux's finalizers hold both a moment).
async fn delete(
    client: &Client,
    manifest: &StepManifest,
    settings: &Settings,
    log: &Log,
) -> Result<(), Stop> {
    let release = Removal::new(
        client,
        HELM_RELEASE,
        &manifest.namespace,
        &manifest.name,
        &log.object,
    );
    match release.remove(settings, log).await? {
        Removed::Absent => step_event!(
            log,
            info,
            "deleted",
            message = "the HelmRelease does not exist"
        ),
        Removed::Gone => step_event!(log, info, "deleted"),
        Removed::Replaced => step_event!(
            log,
            info,
            "deleted",
            message = "a new HelmRelease took its name"
        ),
    }
    if let Some(repo) = &manifest.repository {
        delete_repository_if_unused(client, repo, settings, log).await?;
    }
    Ok(())
}

async fn delete_repository_if_unused(
    client: &Client,
    repo: &Value,
    settings: &Settings,
    log: &Log,
) -> Result<(), Stop> {
    let (name, namespace) = rules::name_and_namespace(repo);
    let releases = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &namespace,
        &HELM_RELEASE.api_resource(),
    );
    let what = format!("listing HelmReleases in {namespace}");
    let list = settings
        .call(&what, releases.list(&kube::api::ListParams::default()))
        .await?
        .map_err(|e| api_error(what.clone(), e))?;
    let releases: Vec<Value> = list
        .items
        .iter()
        .filter_map(|hr| serde_json::to_value(hr).ok())
        .collect();
    let users = rules::repository_users(repo, &releases);
    let object = format!("{namespace}/{name}");
    if !users.is_empty() {
        step_event!(
            log,
            info,
            "repository-kept",
            helmRepository = %object,
            usedBy = %users.join(", "),
        );
        return Ok(());
    }
    let repository = Removal::new(client, HELM_REPOSITORY, &namespace, &name, &object);
    if repository.remove(settings, log).await? != Removed::Absent {
        step_event!(log, info, "repository-deleted", helmRepository = %object);
    }
    Ok(())
}

/// One object the delete removes: its resource type, API and name.
struct Removal<'a> {
    resource: ResourceType,
    api: Api<DynamicObject>,
    name: &'a str,
    /// `namespace/name`, as the lines and messages name it.
    object: &'a str,
}

/// How a [`Removal`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Removed {
    /// There was nothing to delete.
    Absent,
    Gone,
    /// Gone, and a new object (another UID) already has its name.
    Replaced,
}

impl<'a> Removal<'a> {
    fn new(
        client: &Client,
        resource: ResourceType,
        namespace: &str,
        name: &'a str,
        object: &'a str,
    ) -> Self {
        let api = Api::namespaced_with(client.clone(), namespace, &resource.api_resource());
        Removal {
            resource,
            api,
            name,
            object,
        }
    }

    /// Deletes the object and reads it every interval until it is gone, saying what holds it
    /// whenever that changes; at the deadline, a timeout naming what is left.
    async fn remove(&self, settings: &Settings, log: &Log) -> Result<Removed, Stop> {
        let what = format!("reading {} {}", self.resource.kind, self.object);
        let Some(existing) = settings
            .call(&what, self.api.get_opt(self.name))
            .await?
            .map_err(|e| api_error(what.clone(), e))?
        else {
            return Ok(Removed::Absent);
        };
        let uid = existing.uid();
        let deleting = format!("deleting {} {}", self.resource.kind, self.object);
        match settings
            .call(
                &deleting,
                self.api.delete(self.name, &DeleteParams::default()),
            )
            .await?
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(api_error(deleting, e)),
        }
        let mut last: Option<String> = None;
        loop {
            match settings.call(&what, self.api.get_opt(self.name)).await {
                Ok(Ok(None)) => return Ok(Removed::Gone),
                Ok(Ok(Some(obj))) if obj.uid() != uid => return Ok(Removed::Replaced),
                Ok(Ok(Some(obj))) => {
                    let left = rules::leftover(&serde_json::to_value(&obj).unwrap_or_default());
                    if last.as_ref() != Some(&left) {
                        self.progress(log, &left);
                        last = Some(left);
                    }
                }
                Ok(Err(e)) if transient(&e) => {
                    step_event!(log, warn, "api-retry", message = %format!("{what}: {e}"));
                }
                Ok(Err(e)) => return Err(api_error(what, e)),
                Err(_) => {}
            }
            if settings.remaining().is_zero() {
                return Err(Stop::TimedOut(rules::delete_timed_out_message(
                    self.resource.kind,
                    self.object,
                    settings.timeout,
                    last.as_deref(),
                )));
            }
            settings.pause().await;
        }
    }

    /// A `deleting` line for the HelmRelease (the run's own object), `repository-deleting` for
    /// its HelmRepository.
    fn progress(&self, log: &Log, left: &str) {
        if self.resource == HELM_RELEASE {
            step_event!(log, info, "deleting", message = left);
        } else {
            step_event!(
                log,
                info,
                "repository-deleting",
                helmRepository = self.object,
                message = left
            );
        }
    }
}

/// Errors worth retrying until the deadline: throttling, server errors, connection trouble.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// What every line of one run carries.
struct Log {
    action: &'static str,
    object: String,
    start: Instant,
}

impl Log {
    fn object(&self) -> Option<&str> {
        Some(self.object.as_str()).filter(|o| !o.is_empty())
    }

    /// Seconds since the start, to the millisecond.
    fn elapsed(&self) -> f64 {
        (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
    }

    fn state(&self, j: &Judgement) {
        let (flux_reason, flux_message) = j.flux_reason();
        step_event!(
            self,
            info,
            "state",
            state = j.phase.as_str(),
            reason = j.reason.as_str(),
            message = j.message.as_str(),
            fluxReason = flux_reason,
            fluxMessage = flux_message,
            generation = j.generation,
            observedGeneration = j.observed_generation,
            revision = j.revision.as_deref(),
        );
    }

    /// Logs why the executor stops (the last line: what Argo shows of a failed step, through
    /// `terminationMessagePolicy: FallbackToLogsOnError`) and returns its exit code.
    fn end(&self, stop: Stop) -> ExitCode {
        let code = match stop {
            Stop::Failed { reason, message } => {
                step_event!(self, error, "failed", reason = %reason, message = %message);
                EXIT_FAILED
            }
            Stop::TimedOut(message) => {
                step_event!(self, error, "timeout", message = %message);
                EXIT_TIMEOUT
            }
            Stop::Usage(message) => {
                step_event!(self, error, "usage", message = %message);
                EXIT_ERROR
            }
            Stop::Error(e) => {
                step_event!(self, error, "error", message = %format!("{e:#}"));
                EXIT_ERROR
            }
        };
        ExitCode::from(code)
    }
}
