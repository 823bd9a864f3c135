//! What `orkestra-controller` does next for a group, decided from one observation: release a
//! changed spec (`releasePolicy.automatic`), roll a failed release back
//! (`releasePolicy.rollbackOnFailure`), or nothing. Pure, so every rule is a unit test.

use orkestra::emit::revision::ReleaseType;
use orkestra::live::control;

use crate::Observation;
use crate::release::{self, Decision};

/// What the controller does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Nothing: the group is released, in flight, or waits for a person.
    Nothing,
    /// Release the current spec (carry out the decision with [`release::promote`]).
    Release(Decision),
    /// Roll the failed revision `failed` back to revision `target` ([`release::rollback`]).
    Rollback { failed: i64, target: i64 },
    /// A policy asks for something that must not happen; the message says why and what to do.
    Held(String),
}

fn failed(phase: Option<&str>) -> bool {
    matches!(phase, Some("Failed" | "Error"))
}

/// Decides what the controller does for the observed group.
pub fn next(obs: &Observation) -> Next {
    let policy = obs.group.spec.policy();
    let name = &obs.group.name;
    if policy.automatic {
        match release::decide(obs) {
            Ok(decision @ Decision::Release { .. }) => {
                // A spec that already failed (and was rolled back, or is failing still) is not
                // released again on its own: GitOps re-applies it on every sync.
                let earlier = obs.revisions.iter().rev().find(|r| {
                    r.spec == obs.group.spec
                        && r.release_type == ReleaseType::Forward.as_str()
                        && failed(obs.workflow_phase(&r.workflow))
                });
                return match earlier {
                    Some(r) => Next::Held(format!(
                        "the release of this spec failed as revision {}; it is not released again automatically: change the spec, or `kubectl orkestra promote {name}`",
                        r.number
                    )),
                    None => Next::Release(decision),
                };
            }
            Ok(_) => {}
            Err(e) => return Next::Held(e.to_string()),
        }
    }
    if policy.rollback_on_failure {
        let Some(latest) = obs.unchanged() else {
            return Next::Nothing;
        };
        let wf = obs.workflow(&latest.workflow);
        let user_aborted = wf.and_then(control::aborted).is_some();
        if latest.release_type == ReleaseType::Forward.as_str()
            && failed(obs.workflow_phase(&latest.workflow))
            && !user_aborted
        {
            return match release::rollback_target(obs, None) {
                Ok(target) => Next::Rollback {
                    failed: latest.number,
                    target: target.number,
                },
                Err(_) => Next::Held(format!(
                    "revision {} failed and no earlier revision succeeded: nothing to roll back to",
                    latest.number
                )),
            };
        }
    }
    Next::Nothing
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{Rev, observation, rev, spec};

    fn auto() -> serde_json::Value {
        json!({"automatic": true, "rollbackOnFailure": true})
    }

    #[test]
    fn a_manual_group_is_never_released_by_the_controller() {
        let obs = observation(spec("1.0.0", json!({})), &[]);
        assert_eq!(next(&obs), Next::Nothing);
        let obs = observation(
            spec("1.1.0", json!({})),
            &[rev(1, spec("1.0.0", json!({})), Some("Succeeded"))],
        );
        assert_eq!(next(&obs), Next::Nothing);
    }

    #[test]
    fn an_automatic_group_is_released_once_per_spec() {
        let obs = observation(spec("1.0.0", auto()), &[]);
        assert!(matches!(
            next(&obs),
            Next::Release(Decision::Release { revision: 1, ref workflow, .. }) if workflow == "g-r1"
        ));
        // Released (and still running, or done): nothing more for this spec.
        for phase in ["Running", "Succeeded"] {
            let obs = observation(
                spec("1.0.0", auto()),
                &[rev(1, spec("1.0.0", auto()), Some(phase))],
            );
            assert_eq!(next(&obs), Next::Nothing, "{phase}");
        }
        let obs = observation(
            spec("1.1.0", auto()),
            &[rev(1, spec("1.0.0", auto()), Some("Succeeded"))],
        );
        assert!(matches!(
            next(&obs),
            Next::Release(Decision::Release { revision: 2, .. })
        ));
    }

    #[test]
    fn a_group_without_templates_is_held_with_the_reason() {
        let mut s = spec("1.0.0", auto());
        s["workflowTemplate"] = json!({});
        let obs = observation(s, &[]);
        assert!(matches!(next(&obs), Next::Held(m) if m.contains("mutating webhook")));
    }

    #[test]
    fn a_failed_release_rolls_back_to_the_last_success_once() {
        let good = spec("1.0.0", auto());
        let bad = spec("2.0.0", auto());
        let revs = [
            rev(1, good.clone(), Some("Succeeded")),
            rev(2, bad.clone(), Some("Failed")),
        ];
        let obs = observation(bad.clone(), &revs);
        assert_eq!(
            next(&obs),
            Next::Rollback {
                failed: 2,
                target: 1
            }
        );
        let errored = [
            rev(1, good.clone(), Some("Succeeded")),
            rev(2, bad.clone(), Some("Error")),
        ];
        assert_eq!(
            next(&observation(bad.clone(), &errored)),
            Next::Rollback {
                failed: 2,
                target: 1
            }
        );

        // After the rollback (however it ends), nothing: it happens once.
        for phase in ["Running", "Succeeded", "Failed"] {
            let revs = [
                rev(1, good.clone(), Some("Succeeded")),
                rev(2, bad.clone(), Some("Failed")),
                Rev {
                    rollback_of: Some(1),
                    ..rev(3, good.clone(), Some(phase))
                },
            ];
            assert_eq!(
                next(&observation(good.clone(), &revs)),
                Next::Nothing,
                "{phase}"
            );
        }
    }

    #[test]
    fn gitops_reapplying_a_failed_spec_is_held_not_released_again() {
        let good = spec("1.0.0", auto());
        let bad = spec("2.0.0", auto());
        let revs = [
            rev(1, good.clone(), Some("Succeeded")),
            rev(2, bad.clone(), Some("Failed")),
            Rev {
                rollback_of: Some(1),
                ..rev(3, good.clone(), Some("Succeeded"))
            },
        ];
        let obs = observation(bad, &revs);
        assert!(
            matches!(next(&obs), Next::Held(ref m) if m.contains("failed as revision 2") && m.contains("kubectl orkestra promote g")),
            "{:?}",
            next(&obs)
        );
    }

    #[test]
    fn no_rollback_after_an_abort_or_without_an_earlier_success_or_after_an_edit() {
        let good = spec("1.0.0", json!({"rollbackOnFailure": true}));
        let bad = spec("2.0.0", json!({"rollbackOnFailure": true}));
        let aborted = Rev {
            annotations: json!({orkestra::labels::ABORTED_AT: "2026-01-01T00:00:00Z"}),
            ..rev(2, bad.clone(), Some("Failed"))
        };
        let obs = observation(
            bad.clone(),
            &[rev(1, good.clone(), Some("Succeeded")), aborted],
        );
        assert_eq!(next(&obs), Next::Nothing);

        let obs = observation(bad.clone(), &[rev(1, bad.clone(), Some("Failed"))]);
        assert!(matches!(next(&obs), Next::Held(m) if m.contains("nothing to roll back to")));

        // Someone edits the spec after the failure (manual policy): their edit is not undone.
        let edited = spec("2.0.1", json!({"rollbackOnFailure": true}));
        let revs = [rev(1, good, Some("Succeeded")), rev(2, bad, Some("Failed"))];
        assert_eq!(next(&observation(edited, &revs)), Next::Nothing);
    }
}
