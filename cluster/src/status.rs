//! The group's `status`, written by the controller: derived from the same live report that
//! `kubectl orkestra status` prints, so the two never disagree. Conditions follow the original
//! Orkestra (`Ready` with `Succeeded`, `Progressing`, `Failed`, `Suspended`, ...; one condition
//! per Workflow type) plus kstatus' `Reconciling` and `Stalled`, so Flux and `kubectl wait` read
//! it as they read any controller's.

use orkestra::labels;
use orkestra::live::report::{StatusReport, Verdict};
use orkestra::live::{revision, workflow};
use serde_json::{Value, json};

use crate::Observation;
use crate::observe::phase_of;
use crate::remove::Removal;

/// What the controller adds to the report: a removal in progress, or a policy held back.
#[derive(Debug, Clone, Default)]
pub struct Extra<'a> {
    pub removal: Option<&'a Removal>,
    pub held: Option<&'a str>,
}

/// One condition: type, status, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

fn condition(
    type_: &'static str,
    status: &'static str,
    reason: &str,
    message: String,
) -> Condition {
    Condition {
        type_,
        status,
        reason: reason.to_string(),
        message,
    }
}

/// The message of the first failed (else waiting) row, `app: message`.
fn first_problem(report: &StatusReport) -> Option<String> {
    let failed = report
        .rows
        .iter()
        .find(|r| matches!(r.step.as_deref(), Some("Failed" | "Error")));
    failed.and_then(|r| Some(format!("{}: {}", r.application, r.message()?)))
}

/// The `Ready` condition and kstatus' companions, from the live report.
pub fn ready(obs: &Observation, extra: &Extra<'_>) -> Vec<Condition> {
    let report = &obs.report;
    let name = &obs.group.name;
    let (status, reason, message) = if let Some(removal) = extra.removal {
        match removal {
            Removal::Failed { workflow, message } => (
                "False",
                "RemovalFailed",
                format!(
                    "removing the releases failed in workflow {}/{workflow}: {message}",
                    obs.namespace
                ),
            ),
            Removal::Removing { workflow, .. } => (
                "False",
                "Terminating",
                format!(
                    "removing the releases, dependents first (workflow {}/{workflow})",
                    obs.namespace
                ),
            ),
            Removal::Waiting { objects } => (
                "False",
                "Terminating",
                format!("waiting for Flux to remove {}", objects.join(", ")),
            ),
            Removal::Done => ("False", "Terminating", "releases removed".to_string()),
        }
    } else if let Some(held) = extra.held {
        ("False", "Held", held.to_string())
    } else if report.spec_changed || report.revision.is_none() {
        let automatic = obs.group.spec.policy().automatic;
        let message = match (report.revision, automatic) {
            (_, true) => "the controller is releasing the new spec".to_string(),
            (None, false) => format!("not released yet: `kubectl orkestra promote {name}`"),
            (Some(n), false) => format!(
                "the spec changed since revision {n}: `kubectl orkestra promote {name}` releases it"
            ),
        };
        let reason = if automatic {
            "Progressing"
        } else {
            "PromotionPending"
        };
        ("False", reason, message)
    } else {
        let revision = report.revision.unwrap_or_default();
        match report.verdict {
            Verdict::Succeeded => (
                "True",
                "Succeeded",
                format!("revision {revision} is released"),
            ),
            Verdict::Failed => (
                "False",
                "Failed",
                first_problem(report)
                    .or_else(|| report.workflow.as_ref().and_then(|w| w.message.clone()))
                    .unwrap_or_else(|| format!("the release of revision {revision} failed")),
            ),
            Verdict::Suspended => (
                "False",
                "Suspended",
                format!(
                    "revision {revision} waits at the gate of {}: `kubectl orkestra promote {name}` continues",
                    report
                        .workflow
                        .as_ref()
                        .map(|w| w.waiting_at_gates.join(", "))
                        .unwrap_or_default()
                ),
            ),
            Verdict::Pending | Verdict::Running | Verdict::NotReleased => (
                "Unknown",
                "Progressing",
                format!("releasing revision {revision}"),
            ),
        }
    };
    let mut out = vec![condition("Ready", status, reason, message.clone())];
    // kstatus: Reconciling while work goes on, Stalled when it cannot go on without a person.
    let stalled = matches!(reason, "Failed" | "RemovalFailed" | "Held");
    let reconciling = matches!(reason, "Progressing" | "Terminating");
    out.push(if reconciling {
        condition("Reconciling", "True", reason, message.clone())
    } else {
        condition("Reconciling", "False", reason, String::new())
    });
    out.push(if stalled {
        condition("Stalled", "True", reason, message)
    } else {
        condition("Stalled", "False", reason, String::new())
    });
    out
}

/// The original's workflow conditions: the latest Workflow of each type, `True` when it
/// succeeded, `False` when it failed or waits at a gate, `Unknown` while it runs.
pub fn workflows(obs: &Observation) -> Vec<Condition> {
    let type_of = |w: &Value| {
        w.pointer("/metadata/labels")
            .and_then(|l| l.get(labels::WORKFLOW_TYPE_LABEL))
            .and_then(Value::as_str)
            .unwrap_or("forward")
            .to_string()
    };
    let mut out = Vec::new();
    for (t, type_) in [
        ("forward", "ForwardWorkflowSucceeded"),
        ("reverse", "ReverseWorkflowSucceeded"),
        ("rollback", "RollbackWorkflowSucceeded"),
    ] {
        let of_type = obs.workflows.iter().filter(|w| type_of(w) == t);
        let Some(w) = revision::latest_of(of_type) else {
            continue;
        };
        let name = crate::name_of(w);
        let suspended = workflow::nodes(w).iter().any(|n| n.is_active_suspend());
        let (status, reason) = match phase_of(w) {
            "Succeeded" => ("True", "Succeeded"),
            "Failed" | "Error" => ("False", "Failed"),
            _ if suspended => ("False", "Suspended"),
            _ => ("Unknown", "Progressing"),
        };
        out.push(condition(
            type_,
            status,
            reason,
            format!("workflow {}/{name}: {}", obs.namespace, phase_of(w)),
        ));
    }
    out
}

/// Per-application status, as the original wrote it: the chart version and the HelmRelease's
/// conditions, for the application's own chart and each subchart.
pub fn applications(obs: &Observation) -> Value {
    let mut apps: Vec<Value> = Vec::new();
    for row in &obs.report.rows {
        let hr = obs.helm_releases.iter().find(|hr| {
            hr.pointer("/metadata/namespace").and_then(Value::as_str) == Some(&row.namespace)
                && crate::name_of(hr) == row.helm_release
        });
        let mut chart = json!({
            "version": row.chart.rsplit_once('@').map_or("", |(_, v)| v),
        });
        if let Some(c) = hr.and_then(|hr| hr.pointer("/status/conditions")) {
            chart["conditions"] = c.clone();
        }
        let failed = matches!(row.step.as_deref(), Some("Failed" | "Error"))
            || row
                .release
                .as_ref()
                .is_some_and(|r| r.ready.as_deref() == Some("False"));
        if failed && let Some(m) = row.message() {
            chart["error"] = json!(m);
        }
        match &row.subchart {
            None => {
                let mut app = chart;
                app["name"] = json!(row.application);
                apps.push(app);
            }
            Some(sub) => {
                if let Some(app) = apps.iter_mut().rev().find(|a| a["name"] == row.application) {
                    app["subcharts"][sub] = chart;
                }
            }
        }
    }
    Value::Array(apps)
}

/// The status to write: conditions (keeping each one's `lastTransitionTime` while its status
/// holds), `observedGeneration`, `lastSucceededGeneration`, and the applications.
pub fn status(obs: &Observation, extra: &Extra<'_>, now: &str) -> Value {
    let group = &obs.group;
    let previous = group.conditions();
    let generation = group.generation();
    let mut conditions: Vec<Condition> = ready(obs, extra);
    conditions.extend(workflows(obs));
    let conditions: Vec<Value> = conditions
        .into_iter()
        .map(|c| {
            let since = previous
                .iter()
                .find(|p| p["type"] == c.type_ && p["status"] == c.status)
                .and_then(|p| p["lastTransitionTime"].as_str())
                .unwrap_or(now);
            json!({
                "type": c.type_,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": since,
                "observedGeneration": generation.unwrap_or_default(),
            })
        })
        .collect();
    let ready_now = conditions.first().is_some_and(|c| c["status"] == "True");
    let last_succeeded = if ready_now {
        generation
    } else {
        group
            .object
            .pointer("/status/lastSucceededGeneration")
            .and_then(Value::as_i64)
    };
    let mut status = json!({
        "conditions": conditions,
        "applications": applications(obs),
    });
    if let Some(g) = generation {
        status["observedGeneration"] = json!(g);
    }
    if let Some(g) = last_succeeded {
        status["lastSucceededGeneration"] = json!(g);
    }
    status
}

/// True when writing `status` would change what the group shows (times aside).
pub fn differs(group: &Value, status: &Value) -> bool {
    group.get("status") != Some(status)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{Rev, observation, rev, spec};

    fn find<'a>(status: &'a Value, t: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == t))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn a_released_group_is_ready_and_current() {
        let s = spec("1.0.0", json!({}));
        let obs = observation(s.clone(), &[rev(1, s, Some("Succeeded"))]);
        let st = status(&obs, &Extra::default(), "2026-01-01T00:01:00Z");
        let ready = find(&st, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("Succeeded"))
        );
        assert_eq!(st["observedGeneration"], 3);
        assert_eq!(st["lastSucceededGeneration"], 3);
        assert_eq!(find(&st, "ForwardWorkflowSucceeded")["status"], "True");
        assert_eq!(find(&st, "Stalled")["status"], "False");
        assert_eq!(find(&st, "Reconciling")["status"], "False");
        assert_eq!(st["applications"][0]["name"], "db");
        assert_eq!(st["applications"][0]["version"], "1.0.0");
    }

    #[test]
    fn manual_pending_running_failed_and_suspended_read_as_the_original_and_kstatus_want() {
        let s = spec("1.0.0", json!({}));
        let pending = observation(s.clone(), &[]);
        let st = status(&pending, &Extra::default(), "t");
        assert_eq!(find(&st, "Ready")["reason"], "PromotionPending");
        assert!(
            find(&st, "Ready")["message"]
                .as_str()
                .is_some_and(|m| m.contains("kubectl orkestra promote g"))
        );
        assert!(st.get("lastSucceededGeneration").is_none(), "{st}");

        let running = observation(s.clone(), &[rev(1, s.clone(), Some("Running"))]);
        let st = status(&running, &Extra::default(), "t");
        assert_eq!(find(&st, "Ready")["status"], "Unknown");
        assert_eq!(find(&st, "Reconciling")["status"], "True");
        assert_eq!(
            find(&st, "ForwardWorkflowSucceeded")["reason"],
            "Progressing"
        );

        let failed = observation(s.clone(), &[rev(1, s.clone(), Some("Failed"))]);
        let st = status(&failed, &Extra::default(), "t");
        assert_eq!(
            (
                find(&st, "Ready")["status"].as_str(),
                find(&st, "Ready")["reason"].as_str()
            ),
            (Some("False"), Some("Failed"))
        );
        assert_eq!(find(&st, "Stalled")["status"], "True");
        assert_eq!(find(&st, "ForwardWorkflowSucceeded")["status"], "False");

        let rolled = observation(
            s.clone(),
            &[
                rev(1, s.clone(), Some("Succeeded")),
                Rev {
                    rollback_of: Some(1),
                    ..rev(2, s.clone(), Some("Succeeded"))
                },
            ],
        );
        let st = status(&rolled, &Extra::default(), "t");
        assert_eq!(find(&st, "RollbackWorkflowSucceeded")["status"], "True");
        assert_eq!(find(&st, "ForwardWorkflowSucceeded")["status"], "True");
    }

    #[test]
    fn held_removal_and_transition_times() {
        let s = spec("1.0.0", json!({"automatic": true}));
        let obs = observation(s.clone(), &[rev(1, s.clone(), Some("Succeeded"))]);
        let held = status(
            &obs,
            &Extra {
                removal: None,
                held: Some("the release of this spec failed"),
            },
            "t1",
        );
        assert_eq!(find(&held, "Ready")["reason"], "Held");
        assert_eq!(find(&held, "Stalled")["status"], "True");

        let removal = Removal::Failed {
            workflow: "g-reverse".into(),
            message: "db: timed out".into(),
        };
        let removing = |removal: &Removal| {
            status(
                &obs,
                &Extra {
                    removal: Some(removal),
                    held: None,
                },
                "t1",
            )
        };
        let st = removing(&removal);
        assert_eq!(find(&st, "Ready")["reason"], "RemovalFailed");
        assert!(
            find(&st, "Ready")["message"]
                .as_str()
                .is_some_and(|m| m.contains("orkestra/g-reverse") && m.contains("db: timed out"))
        );

        let removal = Removal::Waiting {
            objects: vec![
                "HelmRelease apps/db".into(),
                "HelmRepository apps/127-0-0-1-8080".into(),
            ],
        };
        let st = removing(&removal);
        assert_eq!(find(&st, "Ready")["reason"], "Terminating");
        assert_eq!(
            find(&st, "Ready")["message"],
            "waiting for Flux to remove HelmRelease apps/db, HelmRepository apps/127-0-0-1-8080"
        );

        // A condition keeps its lastTransitionTime while its status holds.
        let mut obs = observation(s.clone(), &[rev(1, s, Some("Succeeded"))]);
        let first = status(&obs, &Extra::default(), "2026-01-01T00:00:00Z");
        obs.group.object["status"] = first.clone();
        let again = status(&obs, &Extra::default(), "2026-01-01T01:00:00Z");
        assert_eq!(
            find(&again, "Ready")["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );
        assert!(!differs(&obs.group.object, &again));
    }
}
