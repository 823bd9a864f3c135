//! Has Flux released what we applied? A pure judgement of observed Flux `HelmRelease`
//! (`helm.toolkit.fluxcd.io/v2`) snapshots against the generation and chart version the executor
//! applied, and the wait built on it (the clock is passed in, so it is tested without one).
//!
//! The rules follow helm-controller v1.4 (`internal/reconcile/atomic_release.go`,
//! `internal/controller/helmrelease_controller.go`, `api/v2/helmrelease_types.go`):
//!
//! - **Released**: `status.observedGeneration >= metadata.generation`, `Ready=True` set for that
//!   generation, no `Reconciling=True`, and the attempted chart version (`status.lastAttemptedRevision`,
//!   else the newest `status.history[]` entry) matches the version applied. A `Ready=True` left over
//!   from the previous generation or chart version does not count.
//! - **Failed** (terminal, for this generation): `Stalled=True` (e.g. `RetriesExceeded`,
//!   `MissingRollbackTarget`, `AccessDenied`), or `Ready=False` with a release failure
//!   (`InstallFailed`, `UpgradeFailed`, `TestFailed`, a remediation reason) once the failure counter
//!   of the last attempted action exceeds its `remediation.retries` (Flux's `RetriesExhausted`).
//! - Anything else is a waiting state; the caller decides when to give up ([`Wait`]).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::version::{is_pinned, version_matches};

/// What the executor applied and now waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `metadata.generation` the apply returned.
    pub generation: i64,
    /// `spec.chart.spec.version` as applied (`None` with `spec.chartRef`, where Flux picks the chart).
    pub chart_version: Option<String>,
}

impl Target {
    /// The target of an applied HelmRelease, as the API server returned it.
    pub fn from_applied(applied: &Value) -> Self {
        Target {
            generation: int(applied.pointer("/metadata/generation")),
            chart_version: applied
                .pointer("/spec/chart/spec/version")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The HelmRelease does not exist (deleted under us).
    Missing,
    /// `spec.suspend: true`: Flux will not act until it is resumed.
    Suspended,
    /// helm-controller has not reported on this generation yet.
    Pending,
    /// helm-controller is working on it (`Reconciling=True` or `Ready=Unknown`).
    Progressing,
    /// A failure for this generation that Flux will retry (or a not-yet-ready source, dependency...).
    Retrying,
    /// `Ready=True` for this generation, but for another chart version than the one applied.
    OtherRevision,
    /// Released: done.
    Ready,
    /// Terminal failure: done.
    Failed,
}

impl Phase {
    /// Whether waiting should stop.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Ready | Phase::Failed)
    }

    /// Name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Missing => "Missing",
            Phase::Suspended => "Suspended",
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Retrying => "Retrying",
            Phase::OtherRevision => "OtherRevision",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
        }
    }
}

/// One `status.conditions[]` entry, as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    /// 0 when the condition carries none.
    pub observed_generation: i64,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.type_, self.status)?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The judgement of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub phase: Phase,
    /// Flux's reason (of the deciding condition), or ours (`NotObserved`, `Suspended`, ...).
    pub reason: String,
    /// Flux's message, or ours.
    pub message: String,
    /// `metadata.generation` seen (at least the applied one).
    pub generation: i64,
    /// `status.observedGeneration` seen.
    pub observed_generation: i64,
    /// The chart version helm-controller last attempted, when it says.
    pub revision: Option<String>,
    /// Every condition, as read (for the timeout report).
    pub conditions: Vec<Condition>,
}

impl Judgement {
    /// The `Ready` condition, when Flux wrote one: its reason is Flux's word on the state
    /// (`InstallFailed`, `SourceNotReady`, `Progressing`, ...) whatever the phase.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == "Ready")
    }

    /// Flux's reason and message: the Ready condition's, else the judgement's own.
    pub fn flux_reason(&self) -> (&str, &str) {
        match self.ready() {
            Some(c) if !c.reason.is_empty() => (&c.reason, &c.message),
            _ => (&self.reason, &self.message),
        }
    }
}

impl Judgement {
    /// What identifies a state for "log once per state change": the phase, reason and message.
    pub fn same_state(&self, other: &Judgement) -> bool {
        self.phase == other.phase
            && self.reason == other.reason
            && self.message == other.message
            && self.observed_generation == other.observed_generation
            && self.revision == other.revision
            && self.flux_reason() == other.flux_reason()
    }

    /// The conditions in one line: `Ready=False (InstallFailed): ...; Stalled=True (...)`.
    pub fn conditions_line(&self) -> String {
        conditions_line(&self.conditions)
    }
}

/// Our reason while helm-controller has not observed the applied generation.
pub const NOT_OBSERVED: &str = "NotObserved";

/// Ready reasons that mean a release action (or its remediation) failed.
const RELEASE_FAILURE_REASONS: &[&str] = &[
    "InstallFailed",
    "UpgradeFailed",
    "TestFailed",
    "RollbackSucceeded",
    "RollbackFailed",
    "UninstallSucceeded",
    "UninstallFailed",
];

/// Judges one observed HelmRelease (`None`: it does not exist) against `target`.
pub fn judge(target: &Target, observed: Option<&Value>) -> Judgement {
    let Some(hr) = observed else {
        return Judgement {
            phase: Phase::Missing,
            reason: "NotFound".into(),
            message: "the HelmRelease does not exist".into(),
            generation: target.generation,
            observed_generation: 0,
            revision: None,
            conditions: Vec::new(),
        };
    };
    let generation = int(hr.pointer("/metadata/generation")).max(target.generation);
    let status = hr.get("status").unwrap_or(&Value::Null);
    let observed_generation = int(status.get("observedGeneration"));
    let last_attempted_generation = int(status.get("lastAttemptedGeneration"));
    let conditions = read_conditions(status);
    let revision = status
        .get("lastAttemptedRevision")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            status
                .pointer("/history/0/chartVersion")
                .and_then(Value::as_str)
        })
        .map(str::to_owned);
    let verdict = |phase: Phase, reason: &str, message: String| Judgement {
        phase,
        reason: reason.to_owned(),
        message,
        generation,
        observed_generation,
        revision: revision.clone(),
        conditions: conditions.clone(),
    };
    let find = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    // A condition speaks for this generation when it says so; one without observedGeneration
    // speaks for whatever generation the status as a whole last reported on.
    let current = |c: &Condition, fallback: i64| {
        if c.observed_generation > 0 {
            c.observed_generation >= generation
        } else {
            fallback >= generation
        }
    };

    if hr.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return verdict(
            Phase::Suspended,
            "Suspended",
            "spec.suspend is true: Flux does not reconcile it until resumed".into(),
        );
    }

    let stalled = find("Stalled").filter(|c| {
        c.status == "True" && current(c, observed_generation.max(last_attempted_generation))
    });
    if let Some(c) = stalled {
        return verdict(Phase::Failed, &c.reason, c.message.clone());
    }

    let ready = find("Ready");
    let reconciling = find("Reconciling").filter(|c| c.status == "True");

    if let Some(c) = ready.filter(|c| c.status == "False") {
        let this_generation = current(c, observed_generation.max(last_attempted_generation));
        if this_generation
            && RELEASE_FAILURE_REASONS.contains(&c.reason.as_str())
            && let Some((action, failures, retries)) = retries_exhausted(hr, &c.reason)
        {
            return verdict(
                Phase::Failed,
                &c.reason,
                format!(
                    "{} ({action} failed {failures} time(s), {retries} retries allowed)",
                    c.message
                ),
            );
        }
        if this_generation && reconciling.is_none() {
            return verdict(Phase::Retrying, &c.reason, c.message.clone());
        }
    }

    if let Some(c) = reconciling {
        return verdict(Phase::Progressing, &c.reason, c.message.clone());
    }

    let ready_true = ready.filter(|c| c.status == "True");
    if observed_generation < generation {
        let message = match ready_true {
            Some(_) if observed_generation <= 0 => format!(
                "Ready=True, but helm-controller has not observed generation {generation} yet"
            ),
            Some(_) => format!(
                "Ready=True is for generation {observed_generation}; waiting for generation {generation}"
            ),
            None if observed_generation <= 0 => {
                format!("waiting for helm-controller to observe generation {generation}")
            }
            None => format!(
                "waiting for helm-controller to observe generation {generation} (observed {observed_generation})"
            ),
        };
        return verdict(Phase::Pending, NOT_OBSERVED, message);
    }

    match ready {
        Some(c) if c.status == "True" => {
            if !current(c, observed_generation) {
                return verdict(
                    Phase::Pending,
                    NOT_OBSERVED,
                    format!(
                        "Ready=True is for generation {}; waiting for generation {generation}",
                        c.observed_generation
                    ),
                );
            }
            match (&target.chart_version, &revision) {
                (Some(want), Some(got)) if !version_matches(want, got) => verdict(
                    Phase::OtherRevision,
                    "OtherRevision",
                    format!("Ready=True for chart version {got}, applied {want}"),
                ),
                (Some(want), None) if is_pinned(want) => verdict(
                    Phase::OtherRevision,
                    "NoRevision",
                    format!("Ready=True but no attempted chart version reported (applied {want})"),
                ),
                _ => verdict(Phase::Ready, &c.reason, c.message.clone()),
            }
        }
        Some(c) if c.status == "False" => verdict(Phase::Retrying, &c.reason, c.message.clone()),
        Some(c) => verdict(Phase::Progressing, &c.reason, c.message.clone()),
        None => verdict(
            Phase::Pending,
            "NoReadyCondition",
            "helm-controller has not reported a Ready condition".into(),
        ),
    }
}

/// `Some((action, failures, retries))` when the action a `Ready=False` reason stands for has used
/// up its retries: Flux's `RetriesExhausted`, `retries >= 0 && failures > retries` (retries default
/// to 0; a negative count retries forever). The action is `status.lastAttemptedReleaseAction`, else
/// the one the reason names.
fn retries_exhausted(hr: &Value, reason: &str) -> Option<(&'static str, i64, i64)> {
    let action = match hr
        .pointer("/status/lastAttemptedReleaseAction")
        .and_then(Value::as_str)
    {
        Some("install") => "install",
        Some("upgrade") => "upgrade",
        _ => match reason {
            "InstallFailed" => "install",
            "UpgradeFailed" => "upgrade",
            _ => return None,
        },
    };
    let (failures, retries) = match action {
        "install" => (
            int(hr.pointer("/status/installFailures")),
            int(hr.pointer("/spec/install/remediation/retries")),
        ),
        _ => (
            int(hr.pointer("/status/upgradeFailures")),
            int(hr.pointer("/spec/upgrade/remediation/retries")),
        ),
    };
    // RetryOnFailure never exhausts: Flux retries after its interval until the spec changes.
    let strategy = hr
        .pointer(&format!("/spec/{action}/strategy/name"))
        .and_then(Value::as_str);
    if strategy == Some("RetryOnFailure") {
        return None;
    }
    (retries >= 0 && failures > retries).then_some((action, failures, retries))
}

/// Conditions in one line: `Ready=False (InstallFailed): ...; Stalled=True (...)`.
pub fn conditions_line(conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return "no conditions".into();
    }
    conditions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The conditions of a Flux object's `status`, in their order.
pub fn read_conditions(status: &Value) -> Vec<Condition> {
    let text = |c: &Value, key: &str| {
        c.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    status
        .get("conditions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|c| Condition {
                    type_: text(c, "type"),
                    status: text(c, "status"),
                    reason: text(c, "reason"),
                    message: text(c, "message"),
                    observed_generation: int(c.get("observedGeneration")),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Released: `Ready=True` for the applied generation and version.
    Released(Judgement),
    /// Terminal failure, with Flux's reason and message.
    Failed(Judgement),
    /// Time is up; the last judgement (with its conditions), if any snapshot was seen.
    TimedOut(Option<Judgement>),
}

/// What to do after one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep waiting. `changed` is true when the state differs from the previous observation
    /// (the caller logs one line per change).
    Continue { judgement: Judgement, changed: bool },
    /// Stop.
    Done(Outcome),
}

/// Part of the message source-controller gives a chart version its repository index lacks
/// (`no 'demo' chart with version matching '9.9.9' found`).
const MISSING_VERSION: &str = "chart with version matching";
/// How long a missing version must persist after the HelmRepository handled our request before
/// it is final (the HelmChart is re-reconciled from the new index within a moment).
pub const MISSING_VERSION_GRACE: Duration = Duration::from_secs(5);

/// Whether the HelmRepository has fetched its index since our reconcile request: its
/// `status.lastHandledReconcileAt` is the `requestedAt` we set, and it is Ready for its current
/// generation.
pub fn repository_handled(repository: &Value, requested_at: &str) -> bool {
    let handled = repository
        .pointer("/status/lastHandledReconcileAt")
        .and_then(Value::as_str)
        == Some(requested_at);
    let generation = int(repository.pointer("/metadata/generation"));
    let observed = int(repository.pointer("/status/observedGeneration"));
    let ready = read_conditions(repository.get("status").unwrap_or(&Value::Null))
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    handled && observed >= generation && ready
}

/// One snapshot of what the executor waits on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot<'a> {
    /// The HelmRelease (`None`: it does not exist).
    pub release: Option<&'a Value>,
    /// Whether its HelmRepository has handled our reconcile request ([`repository_handled`]);
    /// always true when the step applies no HelmRepository.
    pub repository_handled: bool,
}

/// A failure Flux repeats without counting it: `status.failures` grows while the action's own
/// counter (`installFailures`, `upgradeFailures`) does not, e.g. a chart that fails to render
/// (no Helm release is made, so no retry is used up and Flux tries forever).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Uncounted {
    reason: String,
    failures: i64,
    counted: i64,
}

/// Waiting for a release: feed it each observed snapshot with the time elapsed since the apply.
#[derive(Debug, Clone)]
pub struct Wait {
    target: Target,
    timeout: Duration,
    last: Option<Judgement>,
    uncounted: Option<Uncounted>,
    missing_since: Option<Duration>,
}

impl Wait {
    pub fn new(target: Target, timeout: Duration) -> Self {
        Wait {
            target,
            timeout,
            last: None,
            uncounted: None,
            missing_since: None,
        }
    }

    /// The target waited for.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The last judgement made.
    pub fn last(&self) -> Option<&Judgement> {
        self.last.as_ref()
    }

    /// Judges a snapshot. A terminal state wins over the deadline: a Ready seen at the deadline
    /// is a success. Beyond [`judge`], two failures are final here because they need history:
    /// a failure Flux repeats without counting it (the same `InstallFailed`/`UpgradeFailed` for
    /// this generation while `status.failures` grows and the action's counter does not), and a
    /// chart version missing from the repository once the HelmRepository has handled our
    /// request (before that, the same message is a stale index during a normal upgrade).
    pub fn observe(&mut self, elapsed: Duration, snapshot: Snapshot<'_>) -> Step {
        let mut judgement = judge(&self.target, snapshot.release);
        if !judgement.phase.is_terminal()
            && let Some(hr) = snapshot.release
        {
            let message = match self.repeated_uncounted(hr, &judgement) {
                Some(m) => Some(m),
                None => self.missing_version(elapsed, &judgement, snapshot),
            };
            if let Some(message) = message {
                judgement.phase = Phase::Failed;
                judgement.reason = judgement.flux_reason().0.to_string();
                judgement.message = message;
            }
        }
        let changed = self
            .last
            .as_ref()
            .is_none_or(|last| !last.same_state(&judgement));
        self.last = Some(judgement.clone());
        match judgement.phase {
            Phase::Ready => Step::Done(Outcome::Released(judgement)),
            Phase::Failed => Step::Done(Outcome::Failed(judgement)),
            _ if elapsed >= self.timeout => Step::Done(Outcome::TimedOut(Some(judgement))),
            _ => Step::Continue { judgement, changed },
        }
    }

    fn repeated_uncounted(&mut self, hr: &Value, j: &Judgement) -> Option<String> {
        let ready = j.ready().filter(|c| {
            c.status == "False"
                && matches!(c.reason.as_str(), "InstallFailed" | "UpgradeFailed")
                && (c.observed_generation >= j.generation
                    || (c.observed_generation == 0 && j.observed_generation >= j.generation))
        });
        let attempted = int(hr.pointer("/status/lastAttemptedGeneration"));
        let Some(c) = ready.filter(|_| attempted >= j.generation) else {
            self.uncounted = None;
            return None;
        };
        let now = Uncounted {
            reason: c.reason.clone(),
            failures: int(hr.pointer("/status/failures")),
            counted: int(hr.pointer("/status/installFailures"))
                + int(hr.pointer("/status/upgradeFailures")),
        };
        let repeated = self.uncounted.as_ref().is_some_and(|seen| {
            seen.reason == now.reason && now.failures > seen.failures && now.counted == seen.counted
        });
        if repeated {
            return Some(format!(
                "{} (Flux failed {} times without making a Helm release, so no retry counts and it would try forever; change the spec)",
                c.message, now.failures
            ));
        }
        if self
            .uncounted
            .as_ref()
            .is_none_or(|seen| seen.reason != now.reason || seen.counted != now.counted)
        {
            self.uncounted = Some(now);
        }
        None
    }

    fn missing_version(
        &mut self,
        elapsed: Duration,
        j: &Judgement,
        snapshot: Snapshot<'_>,
    ) -> Option<String> {
        let missing = j
            .ready()
            .filter(|c| c.status == "False" && c.message.contains(MISSING_VERSION));
        let Some(c) = missing.filter(|_| snapshot.repository_handled) else {
            self.missing_since = None;
            return None;
        };
        let since = *self.missing_since.get_or_insert(elapsed);
        (elapsed.saturating_sub(since) >= MISSING_VERSION_GRACE).then(|| {
            format!(
                "{} (the HelmRepository has fetched its index since the apply)",
                c.message
            )
        })
    }

    /// The deadline passed without a snapshot (e.g. the API kept failing).
    pub fn expire(&self) -> Outcome {
        Outcome::TimedOut(self.last.clone())
    }
}

/// How a HelmRelease stands, as [`judge`] decides it (the executor's judgement,
/// so `status` and the release steps never disagree), with Flux's own words.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseState {
    /// `True` when released for the current generation and chart version, `False` when failed
    /// or failing, `Unknown` while Flux works on it; `None` before Flux has looked at it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// The judgement's phase (`Ready`, `Retrying`, `Failed`, `Pending`, ...).
    pub phase: String,
    /// Flux's reason (`InstallSucceeded`, `UpgradeFailed`, `Progressing`, ...), or ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Flux's message, or ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// True when Flux has not yet observed the current generation (the condition is old news).
    pub stale: bool,
    /// `Stalled=True`: Flux gave up retrying (suggest `flux reconcile --force`).
    pub stalled: bool,
}

/// Reads a HelmRelease's readiness, judged against its own generation and chart version.
pub fn release_state(helm_release: &Value) -> ReleaseState {
    let j = judge(&Target::from_applied(helm_release), Some(helm_release));
    let ready_condition = j.conditions.iter().find(|c| c.type_ == "Ready");
    let stale = j.phase == Phase::Pending && j.reason == NOT_OBSERVED;
    // While Flux has not caught up, its last Ready condition says more than our "waiting".
    let (reason, message) = match ready_condition {
        Some(c) if stale => (c.reason.clone(), c.message.clone()),
        _ => (j.reason.clone(), j.message.clone()),
    };
    let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
    let ready = match j.phase {
        Phase::Ready => Some("True"),
        Phase::Failed | Phase::Retrying => Some("False"),
        _ if j.conditions.is_empty() => None,
        _ => Some("Unknown"),
    };
    ReleaseState {
        ready: ready.map(str::to_string),
        phase: j.phase.as_str().to_string(),
        reason: non_empty(reason),
        message: non_empty(message),
        stale,
        stalled: j
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(type_: &str, status: &str, reason: &str, generation: i64) -> Value {
        json!({
            "type": type_, "status": status, "reason": reason,
            "message": format!("{type_} {reason}"), "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })
    }

    fn hr(generation: i64, version: &str, status: Value) -> Value {
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": { "name": "podinfo", "namespace": "apps", "generation": generation },
            "spec": {
                "interval": "5m",
                "chart": { "spec": { "chart": "podinfo", "version": version,
                    "sourceRef": { "kind": "HelmRepository", "name": "podinfo" } } },
            },
            "status": status,
        })
    }

    fn snap(release: Option<&Value>) -> Snapshot<'_> {
        Snapshot {
            release,
            repository_handled: true,
        }
    }

    fn target(generation: i64, version: &str) -> Target {
        Target::from_applied(&hr(generation, version, json!({})))
    }

    fn ready_status(generation: i64, revision: &str) -> Value {
        json!({
            "observedGeneration": generation,
            "lastAttemptedGeneration": generation,
            "lastAttemptedRevision": revision,
            "lastAttemptedReleaseAction": "install",
            "conditions": [
                cond("Ready", "True", "InstallSucceeded", generation),
                cond("Released", "True", "InstallSucceeded", generation),
            ],
        })
    }

    #[test]
    fn ready_for_this_generation_and_version() {
        let t = target(1, "6.5.3");
        let j = judge(&t, Some(&hr(1, "6.5.3", ready_status(1, "6.5.3"))));
        assert_eq!(j.phase, Phase::Ready, "{j:?}");
        assert_eq!(j.reason, "InstallSucceeded");
        assert_eq!(j.revision.as_deref(), Some("6.5.3"));
    }

    #[test]
    fn stale_ready_from_the_previous_generation_is_not_accepted() {
        // Generation 2 applied; helm-controller still shows Ready for generation 1.
        let t = target(2, "6.6.0");
        let j = judge(&t, Some(&hr(2, "6.6.0", ready_status(1, "6.5.3"))));
        assert_eq!(j.phase, Phase::Pending, "{j:?}");
        assert!(j.message.contains("generation 1"), "{}", j.message);
        // Ready condition stamped for gen 1 while status.observedGeneration was bumped.
        let mut status = ready_status(1, "6.6.0");
        status["observedGeneration"] = json!(2);
        let j = judge(&t, Some(&hr(2, "6.6.0", status)));
        assert_eq!(j.phase, Phase::Pending, "{j:?}");
    }

    #[test]
    fn observed_object_newer_than_the_apply_raises_the_bar() {
        // Someone changed the spec after us: generation 3 must be observed.
        let t = target(2, "6.6.0");
        let j = judge(&t, Some(&hr(3, "6.6.0", ready_status(2, "6.6.0"))));
        assert_eq!(j.phase, Phase::Pending);
        assert_eq!(j.generation, 3);
    }

    #[test]
    fn chart_version_mismatch_is_not_accepted() {
        let t = target(2, "6.6.0");
        let j = judge(&t, Some(&hr(2, "6.6.0", ready_status(2, "6.5.3"))));
        assert_eq!(j.phase, Phase::OtherRevision, "{j:?}");
        assert!(j.message.contains("6.5.3") && j.message.contains("6.6.0"));
        // No revision reported at all for a pinned version: not accepted either.
        let mut status = ready_status(2, "");
        status
            .as_object_mut()
            .map(|s| s.remove("lastAttemptedRevision"));
        let j = judge(&t, Some(&hr(2, "6.6.0", status)));
        assert_eq!(j.phase, Phase::OtherRevision, "{j:?}");
        // The history's newest entry stands in for lastAttemptedRevision.
        let mut status = ready_status(2, "");
        status["history"] = json!([{ "chartVersion": "6.6.0" }, { "chartVersion": "6.5.3" }]);
        let j = judge(&t, Some(&hr(2, "6.6.0", status)));
        assert_eq!(j.phase, Phase::Ready, "{j:?}");
    }

    #[test]
    fn a_range_with_no_revision_reported_is_released() {
        // A range with no revision reported is still released (chartRef, exotic sources).
        let t = target(1, "*");
        let mut status = ready_status(1, "");
        status
            .as_object_mut()
            .map(|s| s.remove("lastAttemptedRevision"));
        assert_eq!(judge(&t, Some(&hr(1, "*", status))).phase, Phase::Ready);
    }

    #[test]
    fn stalled_is_terminal_with_fluxs_reason() {
        let t = target(1, "6.5.3");
        let status = json!({
            "observedGeneration": 1,
            "conditions": [
                cond("Stalled", "True", "RetriesExceeded", 1),
                cond("Ready", "False", "InstallFailed", 1),
            ],
        });
        let j = judge(&t, Some(&hr(1, "6.5.3", status)));
        assert_eq!(j.phase, Phase::Failed);
        assert_eq!(j.reason, "RetriesExceeded");
        assert_eq!(j.message, "Stalled RetriesExceeded");
    }

    #[test]
    fn stalled_from_the_previous_generation_is_not_terminal() {
        let t = target(2, "6.6.0");
        let status = json!({
            "observedGeneration": 1,
            "conditions": [
                cond("Stalled", "True", "RetriesExceeded", 1),
                cond("Ready", "False", "InstallFailed", 1),
            ],
        });
        let j = judge(&t, Some(&hr(2, "6.6.0", status)));
        assert_eq!(j.phase, Phase::Pending, "{j:?}");
    }

    #[test]
    fn install_failure_is_terminal_once_retries_are_exhausted() {
        let t = target(1, "6.5.3");
        let failed = |failures: i64, retries: Option<i64>| {
            let mut obj = hr(
                1,
                "6.5.3",
                json!({
                    "observedGeneration": 1,
                    "lastAttemptedGeneration": 1,
                    "lastAttemptedReleaseAction": "install",
                    "lastAttemptedRevision": "6.5.3",
                    "installFailures": failures,
                    "failures": failures,
                    "conditions": [
                        cond("Ready", "False", "InstallFailed", 1),
                        cond("Released", "False", "InstallFailed", 1),
                    ],
                }),
            );
            if let Some(r) = retries {
                obj["spec"]["install"] = json!({ "remediation": { "retries": r } });
            }
            obj
        };
        // Default retries = 0: the first failure is final.
        let j = judge(&t, Some(&failed(1, None)));
        assert_eq!(j.phase, Phase::Failed, "{j:?}");
        assert_eq!(j.reason, "InstallFailed");
        assert!(j.message.contains("install failed 1 time(s), 0 retries"));
        // Retries left: keep waiting.
        assert_eq!(judge(&t, Some(&failed(2, Some(3)))).phase, Phase::Retrying);
        assert_eq!(judge(&t, Some(&failed(4, Some(3)))).phase, Phase::Failed);
        // Negative retries: forever.
        assert_eq!(judge(&t, Some(&failed(9, Some(-1)))).phase, Phase::Retrying);
        // RetryOnFailure: Flux retries after its interval, never exhausts.
        let mut obj = failed(5, None);
        obj["spec"]["install"] = json!({ "strategy": { "name": "RetryOnFailure" } });
        assert_eq!(judge(&t, Some(&obj)).phase, Phase::Retrying);
    }

    #[test]
    fn upgrade_failure_counts_upgrade_failures() {
        let t = target(3, "2.0.0");
        let mut obj = hr(
            3,
            "2.0.0",
            json!({
                "observedGeneration": 3,
                "lastAttemptedReleaseAction": "upgrade",
                "lastAttemptedRevision": "2.0.0",
                "installFailures": 0,
                "upgradeFailures": 2,
                "conditions": [
                    cond("Ready", "False", "RollbackSucceeded", 3),
                    cond("Remediated", "True", "RollbackSucceeded", 3),
                ],
            }),
        );
        obj["spec"]["upgrade"] = json!({ "remediation": { "retries": 1 } });
        let j = judge(&t, Some(&obj));
        assert_eq!(j.phase, Phase::Failed, "{j:?}");
        assert!(j.message.contains("upgrade failed 2 time(s), 1 retries"));
    }

    #[test]
    fn failure_of_the_previous_generation_is_not_terminal() {
        let t = target(2, "6.6.0");
        let obj = hr(
            2,
            "6.6.0",
            json!({
                "observedGeneration": 1,
                "lastAttemptedGeneration": 1,
                "lastAttemptedReleaseAction": "install",
                "installFailures": 1,
                "conditions": [cond("Ready", "False", "InstallFailed", 1)],
            }),
        );
        assert_eq!(judge(&t, Some(&obj)).phase, Phase::Pending);
    }

    #[test]
    fn progressing_and_other_waiting_states() {
        let t = target(1, "6.5.3");
        // Reconciling while Ready is Unknown.
        let status = json!({
            "conditions": [
                cond("Reconciling", "True", "Progressing", 1),
                cond("Ready", "Unknown", "Progressing", 1),
            ],
        });
        let j = judge(&t, Some(&hr(1, "6.5.3", status)));
        assert_eq!(j.phase, Phase::Progressing);
        assert_eq!(j.reason, "Progressing");
        // A failure being retried (ProgressingWithRetry) is progress, not an end.
        let status = json!({
            "observedGeneration": 1,
            "lastAttemptedReleaseAction": "install",
            "installFailures": 1,
            "conditions": [
                cond("Reconciling", "True", "ProgressingWithRetry", 1),
                cond("Ready", "False", "InstallFailed", 1),
            ],
        });
        let mut obj = hr(1, "6.5.3", status);
        obj["spec"]["install"] = json!({ "remediation": { "retries": 2 } });
        assert_eq!(judge(&t, Some(&obj)).phase, Phase::Progressing);
        // Source not ready yet: Ready=False, not a release failure.
        let status = json!({ "conditions": [cond("Ready", "False", "SourceNotReady", 1)] });
        let j = judge(&t, Some(&hr(1, "6.5.3", status)));
        assert_eq!(j.phase, Phase::Retrying);
        assert_eq!(j.reason, "SourceNotReady");
        // No status at all.
        let j = judge(&t, Some(&hr(1, "6.5.3", json!({}))));
        assert_eq!(j.phase, Phase::Pending);
        assert_eq!(j.conditions_line(), "no conditions");
        // Suspended.
        let mut obj = hr(1, "6.5.3", json!({}));
        obj["spec"]["suspend"] = json!(true);
        assert_eq!(judge(&t, Some(&obj)).phase, Phase::Suspended);
        // Gone.
        assert_eq!(judge(&t, None).phase, Phase::Missing);
    }

    #[test]
    fn wait_logs_changes_and_times_out_with_the_last_conditions() {
        let t = target(1, "6.5.3");
        let mut wait = Wait::new(t, Duration::from_secs(10));
        let pending = hr(1, "6.5.3", json!({}));
        let step = wait.observe(Duration::from_secs(0), snap(Some(&pending)));
        assert!(
            matches!(step, Step::Continue { changed: true, .. }),
            "{step:?}"
        );
        let step = wait.observe(Duration::from_secs(1), snap(Some(&pending)));
        assert!(
            matches!(step, Step::Continue { changed: false, .. }),
            "{step:?}"
        );
        let progressing = hr(
            1,
            "6.5.3",
            json!({ "conditions": [cond("Reconciling", "True", "Progressing", 1),
                                   cond("Ready", "Unknown", "Progressing", 1)] }),
        );
        let step = wait.observe(Duration::from_secs(2), snap(Some(&progressing)));
        assert!(
            matches!(step, Step::Continue { changed: true, .. }),
            "{step:?}"
        );
        match wait.observe(Duration::from_secs(10), snap(Some(&progressing))) {
            Step::Done(Outcome::TimedOut(Some(j))) => {
                assert_eq!(j.phase, Phase::Progressing);
                assert_eq!(
                    j.conditions_line(),
                    "Reconciling=True (Progressing): Reconciling Progressing; \
                     Ready=Unknown (Progressing): Ready Progressing"
                );
            }
            other => panic!("expected a timeout: {other:?}"),
        }
        assert!(matches!(wait.expire(), Outcome::TimedOut(Some(_))));
    }

    #[test]
    fn terminal_state_at_the_deadline_wins() {
        let t = target(1, "6.5.3");
        let mut wait = Wait::new(t, Duration::from_secs(1));
        let ready = hr(1, "6.5.3", ready_status(1, "6.5.3"));
        let step = wait.observe(Duration::from_secs(5), snap(Some(&ready)));
        assert!(matches!(step, Step::Done(Outcome::Released(_))), "{step:?}");
        assert_eq!(
            Wait::new(target(1, "1"), Duration::ZERO).expire(),
            Outcome::TimedOut(None)
        );
    }

    fn render_failure(failures: i64) -> Value {
        hr(
            2,
            "1.0.0",
            json!({
                "observedGeneration": 1,
                "lastAttemptedGeneration": 2,
                "lastAttemptedReleaseAction": "install",
                "failures": failures,
                "installFailures": 0,
                "conditions": [
                    cond("Reconciling", "True", "ProgressingWithRetry", 2),
                    cond("Ready", "False", "InstallFailed", 2),
                ],
            }),
        )
    }

    #[test]
    fn a_failure_flux_repeats_without_counting_fails_soon_with_its_message() {
        let mut wait = Wait::new(target(2, "1.0.0"), Duration::from_secs(600));
        let first = render_failure(1);
        let step = wait.observe(Duration::from_secs(1), snap(Some(&first)));
        assert!(
            matches!(step, Step::Continue { changed: true, .. }),
            "{step:?}"
        );
        let again = render_failure(1);
        assert!(matches!(
            wait.observe(Duration::from_secs(2), snap(Some(&again))),
            Step::Continue { changed: false, .. }
        ));
        let grown = render_failure(2);
        match wait.observe(Duration::from_secs(3), snap(Some(&grown))) {
            Step::Done(Outcome::Failed(j)) => {
                assert_eq!(j.reason, "InstallFailed");
                assert!(
                    j.message
                        .starts_with("Ready InstallFailed (Flux failed 2 times"),
                    "{}",
                    j.message
                );
            }
            other => panic!("expected a failure: {other:?}"),
        }
    }

    #[test]
    fn counted_retries_are_not_mistaken_for_repeated_uncounted_failures() {
        let mut wait = Wait::new(target(2, "1.0.0"), Duration::from_secs(600));
        let retry = |n: i64| {
            let mut obj = render_failure(n);
            obj["status"]["installFailures"] = json!(n);
            obj["spec"]["install"] = json!({"remediation": {"retries": 5}});
            obj
        };
        for n in 1..4 {
            let obj = retry(n);
            let step = wait.observe(Duration::from_secs(n as u64), snap(Some(&obj)));
            assert!(matches!(step, Step::Continue { .. }), "{n}: {step:?}");
        }
    }

    #[test]
    fn a_missing_version_fails_only_once_the_repository_handled_our_request() {
        let missing = hr(
            1,
            "9.9.9",
            json!({
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "False", "reason": "SourceNotReady",
                    "message": "HelmChart 'apps/apps-demo' is not ready: no 'demo' chart with version matching '9.9.9' found",
                    "observedGeneration": 1}],
            }),
        );
        let mut wait = Wait::new(target(1, "9.9.9"), Duration::from_secs(600));
        let stale = Snapshot {
            release: Some(&missing),
            repository_handled: false,
        };
        for t in 0..30 {
            let step = wait.observe(Duration::from_secs(t), stale);
            assert!(matches!(step, Step::Continue { .. }), "{t}: {step:?}");
        }
        let handled = snap(Some(&missing));
        assert!(matches!(
            wait.observe(Duration::from_secs(31), handled),
            Step::Continue { .. }
        ));
        match wait.observe(Duration::from_secs(36), handled) {
            Step::Done(Outcome::Failed(j)) => {
                assert!(
                    j.message
                        .contains("no 'demo' chart with version matching '9.9.9' found"),
                    "{}",
                    j.message
                );
                assert_eq!(j.reason, "SourceNotReady");
            }
            other => panic!("expected a failure: {other:?}"),
        }
    }

    #[test]
    fn the_repository_has_handled_our_request() {
        let repo = |handled: &str, ready: &str| {
            json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
                "lastHandledReconcileAt": handled,
                "conditions": [{"type": "Ready", "status": ready, "reason": "Succeeded"}]}})
        };
        assert!(repository_handled(&repo("t1", "True"), "t1"));
        assert!(!repository_handled(&repo("t0", "True"), "t1"));
        assert!(!repository_handled(&repo("t1", "False"), "t1"));
    }

    #[test]
    fn state_changes_of_fluxs_reason_alone_are_logged() {
        let mut wait = Wait::new(target(1, "1.0.0"), Duration::from_secs(600));
        let with = |reason: &str| {
            hr(
                1,
                "1.0.0",
                json!({"conditions": [cond("Reconciling", "True", "Progressing", 1), cond("Ready", "Unknown", reason, 1)]}),
            )
        };
        let (a, b) = (with("Progressing"), with("SourceNotReady"));
        assert!(matches!(
            wait.observe(Duration::ZERO, snap(Some(&a))),
            Step::Continue { changed: true, .. }
        ));
        assert!(matches!(
            wait.observe(Duration::ZERO, snap(Some(&b))),
            Step::Continue { changed: true, .. }
        ));
    }
}
