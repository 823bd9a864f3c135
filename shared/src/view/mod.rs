//! Views of a group's DAG: waves (`levels`), `tree`, Graphviz `dot`, `mermaid`, `json` and
//! `svg` (laid out here, see [`svg`]), each with live status overlaid when there is some. One
//! renderer per format, used by `graph -f` (offline) and `graph GROUP` (live).

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::ApplicationGroupSpec;
use crate::duration;
use crate::graph;
use crate::live::report::NodeStatus;
use crate::naming;

pub mod history;
mod svg;
pub mod why;

/// Output formats of `graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Waves, one block per wave (the default).
    Levels,
    /// Dependency tree from the applications that depend on nothing.
    Tree,
    /// Graphviz.
    Dot,
    /// Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
    /// The view as JSON, for machines.
    Json,
    /// A standalone SVG picture: waves as columns, status as colours, the critical path in red.
    Svg,
}

/// One subchart in the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubchartNode {
    /// Subchart name.
    pub name: String,
    /// Subcharts released first.
    pub dependencies: Vec<String>,
    /// Wave within the application.
    pub wave: usize,
    /// HelmRelease name.
    pub release: String,
    /// Live state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
}

/// One application in the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppNode {
    /// Application name.
    pub name: String,
    /// `chart@version`.
    pub chart: String,
    /// Applications released first.
    pub dependencies: Vec<String>,
    /// Wave (0-based): applications of one wave can be released in parallel.
    pub wave: usize,
    /// Namespace of its HelmReleases.
    pub namespace: String,
    /// HelmRelease name of its own chart.
    pub release: String,
    /// Executors, in their declared order.
    pub executors: Vec<String>,
    /// Subcharts, released before the application's own chart.
    pub subcharts: Vec<SubchartNode>,
    /// True when on the critical path.
    pub critical: bool,
    /// Live state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
}

/// The whole DAG of a group, ready to render.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphView {
    /// Group name.
    pub group: String,
    /// Applications in declaration order.
    pub applications: Vec<AppNode>,
    /// Application names per wave.
    pub waves: Vec<Vec<String>>,
    /// Application names on the longest chain, first to last.
    pub critical_path: Vec<String>,
    /// What the critical path is weighted by: `count` or `duration`.
    pub critical_path_by: String,
    /// The expected time left of the release in flight, when known (set by the caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<crate::live::report::Eta>,
}

/// Why a view cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The applications (or one application's subcharts) form a cycle.
    #[error("the dependencies of {0} form a cycle; run `kubectl orkestra validate` for details")]
    Cyclic(String),
}

impl GraphView {
    /// Builds the view of a spec. `status(app, subchart)` gives live state where known; when
    /// durations are known the critical path is weighted by them, else by count.
    pub fn build(
        group: &str,
        spec: &ApplicationGroupSpec,
        status: &dyn Fn(&str, Option<&str>) -> Option<NodeStatus>,
    ) -> Result<Self, ViewError> {
        let apps = &spec.applications;
        let dag = graph::app_dag(spec);
        let levels = dag
            .levels()
            .ok_or_else(|| ViewError::Cyclic(format!("group {group:?}")))?;
        let mut nodes = Vec::with_capacity(apps.len());
        for (i, app) in apps.iter().enumerate() {
            let subs = &app.spec.subcharts;
            let sub_dag = graph::subchart_dag(app);
            let sub_levels = sub_dag.levels().ok_or_else(|| {
                ViewError::Cyclic(format!("application {:?}'s subcharts", app.name))
            })?;
            let chart = app.spec.chart.clone().unwrap_or_default();
            nodes.push(AppNode {
                name: app.name.clone(),
                chart: chart.describe(),
                dependencies: dag
                    .dependencies(i)
                    .iter()
                    .map(|&d| dag.name(d).to_string())
                    .collect(),
                wave: levels[i],
                namespace: naming::target_namespace(app),
                release: naming::release_name(&app.name),
                executors: app.spec.executors().into_iter().map(|e| e.name).collect(),
                subcharts: subs
                    .iter()
                    .enumerate()
                    .map(|(k, s)| SubchartNode {
                        name: s.name.clone(),
                        dependencies: sub_dag
                            .dependencies(k)
                            .iter()
                            .map(|&d| sub_dag.name(d).to_string())
                            .collect(),
                        wave: sub_levels[k],
                        release: naming::subchart_release_name(&app.name, &s.name),
                        status: status(&app.name, Some(&s.name)),
                    })
                    .collect(),
                critical: false,
                status: status(&app.name, None),
            });
        }
        let by_duration = nodes
            .iter()
            .any(|n| n.status.as_ref().and_then(|s| s.duration_seconds).is_some());
        let critical = dag.critical_path(|i| {
            if by_duration {
                nodes[i]
                    .status
                    .as_ref()
                    .and_then(|s| s.duration_seconds)
                    .unwrap_or(0.0)
            } else {
                1.0
            }
        });
        for &i in &critical {
            nodes[i].critical = true;
        }
        let waves = dag
            .waves()
            .unwrap_or_default()
            .into_iter()
            .map(|w| w.into_iter().map(|i| dag.name(i).to_string()).collect())
            .collect();
        Ok(Self {
            group: group.to_string(),
            critical_path: critical.iter().map(|&i| dag.name(i).to_string()).collect(),
            critical_path_by: if by_duration { "duration" } else { "count" }.into(),
            applications: nodes,
            waves,
            eta: None,
        })
    }

    fn app(&self, name: &str) -> Option<&AppNode> {
        self.applications.iter().find(|a| a.name == name)
    }

    /// Renders the view. `color` adds ANSI colours for status (terminals only).
    pub fn render(&self, format: Format, color: bool) -> String {
        match format {
            Format::Levels => self.levels(color),
            Format::Tree => self.tree(color),
            Format::Dot => self.dot(),
            Format::Mermaid => self.mermaid(),
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Svg => self.svg(),
        }
    }

    fn header(&self) -> String {
        let n = self.applications.len();
        let mut s = format!(
            "ApplicationGroup {}: {n} application{} in {} wave{}\n",
            self.group,
            if n == 1 { "" } else { "s" },
            self.waves.len(),
            if self.waves.len() == 1 { "" } else { "s" },
        );
        if !self.critical_path.is_empty() {
            let _ = writeln!(
                s,
                "critical path ({}): {}",
                self.critical_path_by,
                self.critical_path.join(" -> ")
            );
        }
        if let Some(eta) = &self.eta {
            let _ = writeln!(s, "expected: {}", eta.describe());
        }
        s
    }

    fn levels(&self, color: bool) -> String {
        let mut s = self.header();
        let name_w = self
            .applications
            .iter()
            .map(|a| a.name.len())
            .max()
            .unwrap_or(0);
        let chart_w = self
            .applications
            .iter()
            .map(|a| a.chart.len())
            .max()
            .unwrap_or(0);
        for (w, wave) in self.waves.iter().enumerate() {
            let _ = writeln!(s, "\nwave {}", w + 1);
            for app in wave.iter().filter_map(|n| self.app(n)) {
                let mark = if app.critical { '*' } else { ' ' };
                let needs = if app.dependencies.is_empty() {
                    "no dependencies".to_string()
                } else {
                    format!("needs {}", app.dependencies.join(", "))
                };
                let _ = writeln!(
                    s,
                    "  {mark} {:<name_w$}  {:<chart_w$}  {needs}{}",
                    app.name,
                    app.chart,
                    status_suffix(app.status.as_ref(), color)
                );
                if !app.subcharts.is_empty() {
                    let _ = writeln!(s, "      subcharts: {}", subchart_waves(app, color));
                }
            }
        }
        if self.applications.iter().any(|a| a.critical) {
            s.push_str("\n* on the critical path\n");
        }
        s
    }

    fn tree(&self, color: bool) -> String {
        let mut s = self.header();
        s.push('\n');
        let mut shown = Vec::new();
        let roots: Vec<&AppNode> = self
            .applications
            .iter()
            .filter(|a| a.dependencies.is_empty())
            .collect();
        for (i, root) in roots.iter().enumerate() {
            self.tree_node(&mut s, root, "", i + 1 == roots.len(), &mut shown, color);
        }
        s
    }

    fn tree_node(
        &self,
        s: &mut String,
        app: &AppNode,
        prefix: &str,
        last: bool,
        shown: &mut Vec<String>,
        color: bool,
    ) {
        let branch = if last { "└── " } else { "├── " };
        let seen = shown.contains(&app.name);
        let _ = writeln!(
            s,
            "{prefix}{branch}{} ({}){}{}",
            app.name,
            app.chart,
            status_suffix(app.status.as_ref(), color),
            if seen { " (see above)" } else { "" }
        );
        if seen {
            return;
        }
        shown.push(app.name.clone());
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        let dependents: Vec<&AppNode> = self
            .applications
            .iter()
            .filter(|a| a.dependencies.contains(&app.name))
            .collect();
        if !app.subcharts.is_empty() {
            let last_child = dependents.is_empty();
            let _ = writeln!(
                s,
                "{child_prefix}{}subcharts: {}",
                if last_child {
                    "└── "
                } else {
                    "├── "
                },
                subchart_waves(app, color)
            );
        }
        for (i, d) in dependents.iter().enumerate() {
            self.tree_node(s, d, &child_prefix, i + 1 == dependents.len(), shown, color);
        }
    }

    fn dot(&self) -> String {
        let mut s = format!(
            "digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white];\n",
            quote(&self.group)
        );
        for (w, wave) in self.waves.iter().enumerate() {
            let members: Vec<String> = wave.iter().map(|n| quote(n)).collect();
            let _ = writeln!(
                s,
                "  {{ rank=same; /* wave {} */ {}; }}",
                w + 1,
                members.join("; ")
            );
        }
        for app in &self.applications {
            let mut label = format!("{}\\n{}", escape(&app.name), escape(&app.chart));
            if !app.subcharts.is_empty() {
                let names: Vec<&str> = app.subcharts.iter().map(|s| s.name.as_str()).collect();
                let _ = write!(label, "\\nsubcharts: {}", escape(&names.join(", ")));
            }
            if let Some(st) = &app.status {
                let _ = write!(label, "\\n[{}]", escape(&st.phase));
            }
            let fill = app
                .status
                .as_ref()
                .map_or("white", |st| phase_colour(&st.phase).1);
            let pen = if app.critical {
                ", penwidth=2, color=\"#c0392b\""
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  {} [label=\"{label}\", fillcolor=\"{fill}\"{pen}];",
                quote(&app.name)
            );
        }
        for app in &self.applications {
            for dep in &app.dependencies {
                let critical = self.on_critical_edge(dep, &app.name);
                let style = if critical {
                    " [penwidth=2, color=\"#c0392b\"]"
                } else {
                    ""
                };
                let _ = writeln!(s, "  {} -> {}{style};", quote(dep), quote(&app.name));
            }
        }
        s.push_str("}\n");
        s
    }

    fn mermaid(&self) -> String {
        let id = |name: &str| {
            let i = self
                .applications
                .iter()
                .position(|a| a.name == name)
                .unwrap_or(0);
            format!("a{i}")
        };
        let mut s = String::from("flowchart LR\n");
        for app in &self.applications {
            let mut label = format!(
                "{}<br/>{}",
                mermaid_text(&app.name),
                mermaid_text(&app.chart)
            );
            if let Some(st) = &app.status {
                let _ = write!(label, "<br/>{}", mermaid_text(&st.phase));
            }
            let _ = writeln!(s, "  {}[\"{label}\"]", id(&app.name));
        }
        let mut edge = 0;
        let mut critical_edges = Vec::new();
        for app in &self.applications {
            for dep in &app.dependencies {
                let _ = writeln!(s, "  {} --> {}", id(dep), id(&app.name));
                if self.on_critical_edge(dep, &app.name) {
                    critical_edges.push(edge.to_string());
                }
                edge += 1;
            }
        }
        let mut classes: Vec<(&str, Vec<String>)> = Vec::new();
        for app in &self.applications {
            if let Some(st) = &app.status {
                let class = phase_colour(&st.phase).2;
                match classes.iter_mut().find(|(c, _)| *c == class) {
                    Some((_, ids)) => ids.push(id(&app.name)),
                    None => classes.push((class, vec![id(&app.name)])),
                }
            }
        }
        for (class, ids) in &classes {
            let fill = match *class {
                "succeeded" => "#c8e6c9",
                "failed" => "#ffcdd2",
                "running" => "#fff9c4",
                _ => "#eeeeee",
            };
            let _ = writeln!(s, "  classDef {class} fill:{fill}");
            let _ = writeln!(s, "  class {} {class}", ids.join(","));
        }
        let critical: Vec<String> = self
            .applications
            .iter()
            .filter(|a| a.critical)
            .map(|a| id(&a.name))
            .collect();
        if !critical.is_empty() {
            let _ = writeln!(s, "  classDef critical stroke:#c0392b,stroke-width:3px");
            let _ = writeln!(s, "  class {} critical", critical.join(","));
        }
        if !critical_edges.is_empty() {
            let _ = writeln!(
                s,
                "  linkStyle {} stroke:#c0392b,stroke-width:3px",
                critical_edges.join(",")
            );
        }
        s
    }

    fn on_critical_edge(&self, from: &str, to: &str) -> bool {
        self.critical_path
            .windows(2)
            .any(|w| w[0] == from && w[1] == to)
    }
}

fn subchart_waves(app: &AppNode, color: bool) -> String {
    let max = app.subcharts.iter().map(|s| s.wave).max().unwrap_or(0);
    let mut parts: Vec<String> = (0..=max)
        .map(|w| {
            let names: Vec<String> = app
                .subcharts
                .iter()
                .filter(|s| s.wave == w)
                .map(|s| format!("{}{}", s.name, status_suffix(s.status.as_ref(), color)))
                .collect();
            format!("[{}]", names.join(", "))
        })
        .collect();
    parts.push(format!("[{}]", app.name));
    parts.join(" -> ")
}

fn status_suffix(status: Option<&NodeStatus>, color: bool) -> String {
    let Some(st) = status else {
        return String::new();
    };
    let mut text = st.phase.clone();
    if let Some(d) = st.duration_seconds {
        let _ = write!(
            text,
            " {}",
            duration::human(std::time::Duration::from_secs_f64(d.max(0.0)))
        );
    }
    if color {
        format!("  \x1b[{}m{text}\x1b[0m", phase_colour(&st.phase).0)
    } else {
        format!("  [{text}]")
    }
}

/// ANSI code, Graphviz fill and Mermaid class for a phase.
fn phase_colour(phase: &str) -> (&'static str, &'static str, &'static str) {
    match phase {
        "Succeeded" | "Ready" => ("32", "#c8e6c9", "succeeded"),
        "Failed" | "Error" | "NotReady" | "Stalled" => ("31", "#ffcdd2", "failed"),
        "Running" | "Progressing" => ("33", "#fff9c4", "running"),
        _ => ("90", "#eeeeee", "pending"),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ApplicationGroupSpec {
        serde_json::from_value(json!({"applications": [
            {"name": "db", "spec": {"chart": {"url": "https://c", "name": "postgresql", "version": "12.1.0"}, "release": {}}},
            {"name": "cache", "spec": {"chart": {"url": "https://c", "name": "redis", "version": "17.0.0"}, "release": {}}},
            {"name": "api", "dependencies": ["db", "cache"], "spec": {"chart": {"url": "https://c", "name": "api", "version": "1.0.0"}, "release": {},
                "subcharts": [{"name": "worker"}, {"name": "web", "dependencies": ["worker"]}]}}
        ]}))
        .unwrap_or_default()
    }

    #[test]
    fn levels_view() {
        let view =
            GraphView::build("shop", &spec(), &|_, _| None).unwrap_or_else(|e| panic!("{e}"));
        let expected = "\
ApplicationGroup shop: 3 applications in 2 waves
critical path (count): db -> api

wave 1
  * db     postgresql@12.1.0  no dependencies
    cache  redis@17.0.0       no dependencies

wave 2
  * api    api@1.0.0          needs db, cache
      subcharts: [worker] -> [web] -> [api]

* on the critical path
";
        assert_eq!(view.render(Format::Levels, false), expected);
    }

    #[test]
    fn critical_path_by_duration() {
        let status = |app: &str, sub: Option<&str>| {
            (sub.is_none()).then(|| NodeStatus {
                phase: "Succeeded".into(),
                message: None,
                duration_seconds: Some(if app == "cache" { 90.0 } else { 10.0 }),
            })
        };
        let view = GraphView::build("shop", &spec(), &status).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(view.critical_path, vec!["cache", "api"]);
        assert!(
            view.render(Format::Levels, false)
                .contains("cache  redis@17.0.0       no dependencies  [Succeeded 1m30s]")
        );
        let dot = view.render(Format::Dot, false);
        assert!(dot.contains("\"cache\" -> \"api\" [penwidth=2"), "{dot}");
        let mermaid = view.render(Format::Mermaid, false);
        assert!(
            mermaid.contains("a1 --> a2") && mermaid.contains("linkStyle 1 stroke"),
            "{mermaid}"
        );
    }

    #[test]
    fn tree_view() {
        let view =
            GraphView::build("shop", &spec(), &|_, _| None).unwrap_or_else(|e| panic!("{e}"));
        let tree = view.render(Format::Tree, false);
        assert!(tree.contains("├── db (postgresql@12.1.0)\n│   └── api (api@1.0.0)\n│       └── subcharts: [worker] -> [web] -> [api]\n└── cache (redis@17.0.0)\n    └── api (api@1.0.0) (see above)\n"), "{tree}");
    }
}
