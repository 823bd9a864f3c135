//! The expected time left of a release in flight, from the step durations of the group's earlier
//! releases: each application is expected to take as long as its step took the last time it
//! succeeded; what is left is the longest chain of remaining work (the critical path of what has
//! not finished yet), counting a running step's elapsed time as done.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::ApplicationGroupSpec;
use crate::emit::argo;
use crate::graph::app_dag;
use crate::labels;
use crate::live::report::{Eta, StatusReport, Verdict};
use crate::live::workflow::{self, Step};

fn revision_of(workflow: &Value) -> i64 {
    workflow
        .pointer("/metadata/labels")
        .and_then(|l| l.get(labels::REVISION_LABEL))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Seconds each application's step took the last time it succeeded, in the Workflows other than
/// `current` (newest revision first).
pub fn expected_durations(
    spec: &ApplicationGroupSpec,
    workflows: &[Value],
    current: Option<&str>,
) -> BTreeMap<String, f64> {
    let by_key: BTreeMap<String, &str> = spec
        .applications
        .iter()
        .map(|a| (argo::app_key(&a.name), a.name.as_str()))
        .collect();
    let mut earlier: Vec<&Value> = workflows
        .iter()
        .filter(|w| w.pointer("/metadata/name").and_then(Value::as_str) != current)
        .collect();
    earlier.sort_by_key(|w| std::cmp::Reverse(revision_of(w)));
    let mut out = BTreeMap::new();
    for wf in earlier {
        let name = wf
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for node in workflow::nodes(wf) {
            if node.phase != "Succeeded" {
                continue;
            }
            if let Step::Application(key) = workflow::classify(name, &node)
                && let Some(app) = by_key.get(&key)
                && let (Some(start), Some(end)) = (node.started_at, node.finished_at)
            {
                out.entry((*app).to_string())
                    .or_insert(((end - start).max(0)) as f64);
            }
        }
    }
    out
}

/// The time left of the release in `report`; `None` when nothing is in flight.
pub fn eta(
    report: &StatusReport,
    spec: &ApplicationGroupSpec,
    expected: &BTreeMap<String, f64>,
) -> Option<Eta> {
    if !matches!(
        report.verdict,
        Verdict::Pending | Verdict::Running | Verdict::Suspended
    ) {
        return None;
    }
    let dag = app_dag(spec);
    let order = dag.topological_order()?;
    let mut finish = vec![0.0_f64; dag.len()];
    let mut left = vec![0.0_f64; dag.len()];
    let mut via: Vec<Option<usize>> = vec![None; dag.len()];
    let mut unknown = Vec::new();
    let mut at_gate = false;
    for &i in &order {
        let name = dag.name(i);
        let row = report
            .rows
            .iter()
            .find(|r| r.application == name && r.subchart.is_none());
        let step = row.and_then(|r| r.step.as_deref()).unwrap_or("Pending");
        left[i] = match step {
            "Succeeded" | "Skipped" | "Omitted" => 0.0,
            _ => {
                at_gate |= step == "Suspended";
                match expected.get(name) {
                    Some(&e) if step == "Running" => {
                        (e - row.and_then(|r| r.duration_seconds).unwrap_or(0.0)).max(0.0)
                    }
                    Some(&e) => e,
                    None => {
                        unknown.push(name.to_string());
                        0.0
                    }
                }
            }
        };
        via[i] = dag
            .dependencies(i)
            .iter()
            .copied()
            .max_by(|&a, &b| finish[a].total_cmp(&finish[b]).then(b.cmp(&a)));
        finish[i] = via[i].map_or(0.0, |b| finish[b]) + left[i];
    }
    let end = (0..dag.len()).max_by(|&a, &b| finish[a].total_cmp(&finish[b]).then(b.cmp(&a)))?;
    let mut path = Vec::new();
    let mut at = Some(end);
    while let Some(n) = at {
        if left[n] > 0.0 {
            path.push(dag.name(n).to_string());
        }
        at = via[n];
    }
    path.reverse();
    Some(Eta {
        seconds: finish[end],
        path,
        unknown,
        at_gate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::report::Observed;
    use crate::time;
    use serde_json::json;

    fn spec() -> ApplicationGroupSpec {
        let app = |name: &str, deps: &[&str]| {
            json!({"name": name, "dependencies": deps, "spec": {
                "chart": {"url": "https://c", "name": name, "version": "1.0.0"}, "release": {}}})
        };
        crate::admission::defaults::default_spec(
            &serde_json::from_value(json!({"applications": [
                app("db", &[]), app("cache", &[]), app("api", &["db", "cache"]), app("web", &["api"]), app("new", &[]),
            ]}))
            .expect("spec"),
        )
    }

    fn wf(
        name: &str,
        revision: i64,
        phase: &str,
        nodes: &[(&str, &str, &str, Option<&str>)],
    ) -> Value {
        let nodes: serde_json::Map<String, Value> = nodes
            .iter()
            .map(|(task, phase, start, end)| {
                let mut n = json!({"name": format!("{name}.{task}"), "type": "DAG", "phase": phase, "startedAt": start});
                if let Some(e) = end {
                    n["finishedAt"] = json!(e);
                }
                (format!("{name}-{task}"), n)
            })
            .collect();
        json!({"metadata": {"name": name, "namespace": "orkestra", "labels": {labels::REVISION_LABEL: revision.to_string()}},
               "status": {"phase": phase, "nodes": nodes}})
    }

    #[test]
    fn time_left_along_the_longest_remaining_chain() {
        let t = |s: u32| format!("2026-12-01T10:{:02}:{:02}Z", s / 60, s % 60);
        let r1 = wf(
            "shop-r1",
            1,
            "Succeeded",
            &[
                ("db", "Succeeded", &t(0), Some(&t(100))),
                ("cache", "Succeeded", &t(0), Some(&t(10))),
                ("api", "Succeeded", &t(100), Some(&t(160))),
                ("web", "Succeeded", &t(160), Some(&t(190))),
            ],
        );
        // r2 succeeded db faster: the newest duration counts.
        let r2 = wf(
            "shop-r2",
            2,
            "Failed",
            &[
                ("db", "Succeeded", &t(0), Some(&t(50))),
                ("api", "Failed", &t(50), Some(&t(55))),
            ],
        );
        let r3 = wf(
            "shop-r3",
            3,
            "Running",
            &[
                ("db", "Running", &t(0), None),
                ("cache", "Succeeded", &t(0), Some(&t(10))),
            ],
        );
        let all = vec![r1, r2, r3.clone()];
        let expected = expected_durations(&spec(), &all, Some("shop-r3"));
        assert_eq!(expected.get("db"), Some(&50.0));
        assert_eq!(expected.get("api"), Some(&60.0));
        let now = time::parse_time(&t(20)).expect("time");
        let report = StatusReport::build(&Observed {
            group: "shop",
            spec: &spec(),
            conditions: &[],
            revision: Some((3, true)),
            workflow: Some(&r3),
            helm_releases: &[],
            now,
        });
        let eta = eta(&report, &spec(), &expected).expect("eta");
        // db has 30 s left of 50, then api 60, then web 30.
        assert_eq!(eta.seconds, 120.0);
        assert_eq!(eta.path, vec!["db", "api", "web"]);
        assert_eq!(eta.unknown, vec!["new"]);
        assert_eq!(
            eta.describe(),
            "at least 2m left (db -> api -> web); never released before: new"
        );
    }
}
