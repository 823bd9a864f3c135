//! The blast radius of one application: every application that depends on it, directly or not,
//! in release order; and, for a new chart version, what a promote of that change would do.
//!
//! A promote runs the group's whole Workflow, but only HelmReleases whose spec changed make Flux
//! upgrade anything: the application's own chart and the subcharts that follow its version.
//! Its dependents run again after it (their steps wait for it and fail with it); the others are
//! re-applied unchanged, independent of the change.

use std::collections::VecDeque;
use std::fmt::Write as _;

use serde::Serialize;

use crate::api::ApplicationGroupSpec;
use crate::graph::app_dag;
use crate::input::hints;
use crate::naming;

/// An application that depends on the one looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependent {
    /// Application.
    pub name: String,
    /// `chart@version`.
    pub chart: String,
    /// Wave (1-based).
    pub wave: usize,
    /// True when it lists the application among its own dependencies.
    pub direct: bool,
    /// The shortest chain of dependencies from the application to this one, both included.
    pub via: Vec<String>,
}

/// One HelmRelease a promote would upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseChange {
    /// `namespace/name` of the HelmRelease.
    pub helm_release: String,
    /// `chart@version` now.
    pub from: String,
    /// `chart@version` after the promote.
    pub to: String,
}

/// What promoting the application at another version would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromoteImpact {
    /// The new chart version.
    pub to: String,
    /// HelmReleases Flux would upgrade (empty when the version is the current one).
    pub upgraded: Vec<ReleaseChange>,
    /// Applications whose steps run again after the upgrade and wait for it (charts unchanged).
    pub rerun_after: Vec<String>,
    /// Applications re-applied unchanged that do not wait for it.
    pub unaffected: Vec<String>,
    /// Applications with a manual gate among those that run after it.
    pub gates: Vec<String>,
}

/// The blast radius of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    /// Group.
    pub group: String,
    /// The application looked at.
    pub application: String,
    /// Its `chart@version`.
    pub chart: String,
    /// Every application depending on it, directly or not, in release order.
    pub dependents: Vec<Dependent>,
    /// With a new version: what a promote would do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote: Option<PromoteImpact>,
}

/// Why the impact cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpactError {
    /// No application of that name.
    #[error("ApplicationGroup {group:?} has no application {app:?}{hint}")]
    UnknownApplication {
        /// Group.
        group: String,
        /// The name asked for.
        app: String,
        /// ` (did you mean "x"?)`, or empty.
        hint: String,
    },
    /// The applications form a cycle.
    #[error(
        "the dependencies of group {0:?} form a cycle; run `kubectl orkestra validate` for details"
    )]
    Cyclic(String),
}

/// The index of application `app`, or the error naming the closest one.
pub fn find_application(
    group: &str,
    spec: &ApplicationGroupSpec,
    app: &str,
) -> Result<usize, ImpactError> {
    spec.applications
        .iter()
        .position(|a| a.name == app)
        .ok_or_else(|| ImpactError::UnknownApplication {
            group: group.to_string(),
            app: app.to_string(),
            hint: hints::closest(app, spec.applications.iter().map(|a| a.name.as_str()))
                .map(|c| format!(" (did you mean {c:?}?)"))
                .unwrap_or_default(),
        })
}

fn chart_of(spec: &ApplicationGroupSpec, i: usize) -> String {
    spec.applications[i]
        .spec
        .chart
        .clone()
        .unwrap_or_default()
        .describe()
}

/// The blast radius of `app` in `spec` (defaulted), and with `to` the promote of that version.
pub fn impact(
    group: &str,
    spec: &ApplicationGroupSpec,
    app: &str,
    to: Option<&str>,
) -> Result<Impact, ImpactError> {
    let i = find_application(group, spec, app)?;
    let dag = app_dag(spec);
    let order = dag
        .topological_order()
        .ok_or_else(|| ImpactError::Cyclic(group.to_string()))?;
    let levels = dag.levels().unwrap_or_default();
    // Breadth first from the application along "is depended on by": shortest chains.
    let mut previous: Vec<Option<usize>> = vec![None; dag.len()];
    let mut reached = vec![false; dag.len()];
    reached[i] = true;
    let mut queue = VecDeque::from([i]);
    while let Some(n) = queue.pop_front() {
        for d in dag.dependents(n) {
            if !reached[d] {
                reached[d] = true;
                previous[d] = Some(n);
                queue.push_back(d);
            }
        }
    }
    let dependents: Vec<Dependent> = order
        .iter()
        .copied()
        .filter(|&d| reached[d] && d != i)
        .map(|d| {
            let mut via = vec![d];
            while let Some(p) = previous[*via.last().unwrap_or(&i)] {
                via.push(p);
            }
            via.reverse();
            Dependent {
                name: dag.name(d).to_string(),
                chart: chart_of(spec, d),
                wave: levels.get(d).map_or(1, |l| l + 1),
                direct: dag.dependencies(d).contains(&i),
                via: via.iter().map(|&n| dag.name(n).to_string()).collect(),
            }
        })
        .collect();
    let promote = to.map(|version| {
        let application = &spec.applications[i];
        let old = application.spec.chart.clone().unwrap_or_default();
        let old_version = old.version_or_default().to_string();
        let mut upgraded = Vec::new();
        if old_version != version {
            for rel in naming::releases_of(application) {
                let (chart, pinned) = match &rel.subchart {
                    None => (old.name.clone(), None),
                    Some(sub) => (
                        sub.clone(),
                        application
                            .spec
                            .subcharts
                            .iter()
                            .find(|s| &s.name == sub)
                            .and_then(|s| s.version.clone()),
                    ),
                };
                // A subchart with its own version does not follow the parent's.
                if pinned.is_none() {
                    upgraded.push(ReleaseChange {
                        helm_release: format!("{}/{}", rel.namespace, rel.name),
                        from: format!("{chart}@{old_version}"),
                        to: format!("{chart}@{version}"),
                    });
                }
            }
        }
        let rerun_after: Vec<String> = dependents.iter().map(|d| d.name.clone()).collect();
        PromoteImpact {
            to: version.to_string(),
            gates: dependents
                .iter()
                .filter(|d| {
                    spec.applications
                        .iter()
                        .any(|a| a.name == d.name && a.spec.gate == Some(true))
                })
                .map(|d| d.name.clone())
                .collect(),
            unaffected: order
                .iter()
                .filter(|&&n| n != i && !reached[n])
                .map(|&n| dag.name(n).to_string())
                .collect(),
            upgraded,
            rerun_after,
        }
    });
    Ok(Impact {
        group: group.to_string(),
        application: app.to_string(),
        chart: chart_of(spec, i),
        dependents,
        promote,
    })
}

impl Impact {
    /// The impact for people.
    pub fn render(&self) -> String {
        let n = self.dependents.len();
        let mut s = format!(
            "ApplicationGroup {}: {n} application{} depend{} on {} ({})\n",
            self.group,
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            self.application,
            self.chart
        );
        let name_w = self
            .dependents
            .iter()
            .map(|d| d.name.len())
            .max()
            .unwrap_or(0);
        let chart_w = self
            .dependents
            .iter()
            .map(|d| d.chart.len())
            .max()
            .unwrap_or(0);
        for d in &self.dependents {
            let how = if d.direct {
                "directly".to_string()
            } else {
                format!("through {}", d.via[1..d.via.len() - 1].join(" -> "))
            };
            let _ = writeln!(
                s,
                "  wave {}  {:<name_w$}  {:<chart_w$}  {how}",
                d.wave, d.name, d.chart
            );
        }
        if let Some(p) = &self.promote {
            let _ = writeln!(s, "\nPromoting {} to {}:", self.application, p.to);
            if p.upgraded.is_empty() {
                let _ = writeln!(
                    s,
                    "  upgrades nothing: {} is already at {}",
                    self.application, p.to
                );
            } else {
                for u in &p.upgraded {
                    let _ = writeln!(
                        s,
                        "  upgrades     {}  {} -> {}",
                        u.helm_release, u.from, u.to
                    );
                }
            }
            let list = |v: &[String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            let _ = writeln!(
                s,
                "  then re-runs {} (charts unchanged; they wait for it and stop if it fails)",
                list(&p.rerun_after)
            );
            let _ = writeln!(
                s,
                "  leaves       {} (re-applied unchanged, not waiting for it)",
                list(&p.unaffected)
            );
            if !p.gates.is_empty() {
                let _ = writeln!(
                    s,
                    "  pauses at the gate of {} until `kubectl orkestra promote {}`",
                    p.gates.join(", "),
                    self.group
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ApplicationGroupSpec {
        let app = |name: &str, deps: &[&str], version: &str| {
            json!({"name": name, "dependencies": deps, "spec": {
                "chart": {"url": "https://c", "name": name, "version": version}, "release": {}}})
        };
        let mut api = app("api", &["db"], "1.4.0");
        api["spec"]["subcharts"] =
            json!([{"name": "worker"}, {"name": "pinned", "version": "9.9.9"}]);
        let mut web = app("web", &["api"], "2.0.0");
        web["spec"]["gate"] = json!(true);
        serde_json::from_value(json!({"applications": [
            app("db", &[], "12.1.0"), app("cache", &[], "17.0.0"), api, web,
            app("admin", &["web", "db"], "0.1.0"),
        ]}))
        .expect("spec")
    }

    #[test]
    fn dependents_in_release_order_with_the_chain_to_each() {
        let i = impact("shop", &spec(), "db", None).expect("impact");
        let names: Vec<(&str, usize, bool)> = i
            .dependents
            .iter()
            .map(|d| (d.name.as_str(), d.wave, d.direct))
            .collect();
        assert_eq!(
            names,
            vec![("api", 2, true), ("web", 3, false), ("admin", 4, true)]
        );
        assert_eq!(i.dependents[1].via, vec!["db", "api", "web"]);
        assert_eq!(
            i.render(),
            "ApplicationGroup shop: 3 applications depend on db (db@12.1.0)\n\
             \x20 wave 2  api    api@1.4.0    directly\n\
             \x20 wave 3  web    web@2.0.0    through api\n\
             \x20 wave 4  admin  admin@0.1.0  directly\n"
        );
        assert!(
            impact("shop", &spec(), "admin", None)
                .expect("impact")
                .dependents
                .is_empty()
        );
    }

    #[test]
    fn a_promote_upgrades_the_chart_and_the_subcharts_that_follow_it() {
        let i = impact("shop", &spec(), "api", Some("1.5.0")).expect("impact");
        let p = i.promote.expect("promote");
        let up: Vec<(&str, &str, &str)> = p
            .upgraded
            .iter()
            .map(|u| (u.helm_release.as_str(), u.from.as_str(), u.to.as_str()))
            .collect();
        assert_eq!(
            up,
            vec![
                ("api/api-worker", "worker@1.4.0", "worker@1.5.0"),
                ("api/api", "api@1.4.0", "api@1.5.0"),
            ]
        );
        assert_eq!(p.rerun_after, vec!["web", "admin"]);
        assert_eq!(p.unaffected, vec!["db", "cache"]);
        assert_eq!(p.gates, vec!["web"]);
        let same = impact("shop", &spec(), "api", Some("1.4.0")).expect("impact");
        assert!(same.promote.expect("promote").upgraded.is_empty());
    }

    #[test]
    fn unknown_applications_get_a_hint() {
        let err = impact("shop", &spec(), "apj", None).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "ApplicationGroup \"shop\" has no application \"apj\" (did you mean \"api\"?)"
        );
    }
}
