//! Every rule an ApplicationGroup must follow, in one pure function that both the validating
//! webhook and `kubectl orkestra validate` call.
//!
//! Each finding names the field it is about (`spec.applications[2].dependencies[0]`). Errors deny
//! the object; warnings admit it and are shown to the user (admission `warnings`).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::admission::flux_schema;
use crate::api::limits;
use crate::api::{Application, ApplicationGroupSpec, Executor, ExecutorType, KIND};
use crate::duration;
use crate::emit::argo;
use crate::graph::{self, Dag, Declarations, Incomplete};
use crate::input::hints::Hints;
use crate::input::object::{GroupObject, Source};
use crate::input::parse;
use crate::naming;
use crate::naming::DNS1123_LABEL_MAX;

/// etcd refuses requests over 1.5 MiB (`--max-request-bytes` default), so no larger object can be stored.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;
/// Timeouts above this are warned about: a stuck release blocks the whole group that long.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(3600);

/// One broken rule (or a warning), with the field path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path, e.g. `spec.applications[2].dependencies[0]`; empty for the whole object.
    pub path: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl Violation {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything validation found about one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Broken rules: the object must be refused.
    pub errors: Vec<Violation>,
    /// Things that work but hurt.
    pub warnings: Vec<Violation>,
}

impl Report {
    /// True when no rule is broken (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Violation::new(path, message));
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Violation::new(path, message));
    }
}

/// Validates a whole ApplicationGroup object (`apiVersion`, `kind`, `metadata`, `spec`) as the
/// API server would receive it; `old` is the stored object on UPDATE.
///
/// On UPDATE the rules ratchet: a violation the stored object already had (the same message)
/// is a warning, not an error, so a group stored before a rule existed can still be labelled,
/// finalized and repaired step by step. Only what the update itself breaks is refused. The size
/// limits are the exception: an object beyond them is refused whatever the stored one was.
pub fn validate_object(new: &Value, old: Option<&Value>) -> Report {
    validate_source(Source::Value(new), old.map(Source::Value))
}

/// [`validate_object`] of the objects' JSON text, as the webhook receives them: the objects are
/// read once into the typed spec, without building them as values.
pub fn validate_json(new: &[u8], old: Option<&[u8]>) -> Report {
    validate_source(Source::Json(new), old.map(Source::Json))
}

fn validate_source(new: Source<'_>, old: Option<Source<'_>>) -> Report {
    match new.read() {
        Ok(new) => validate_read(&new, old.and_then(|o| o.read().ok()).as_ref()),
        Err(e) => {
            let mut report = Report::default();
            report.error("", e.to_string());
            report
        }
    }
}

/// [`validate_object`] of objects already read.
pub fn validate_read(new: &GroupObject, old: Option<&GroupObject>) -> Report {
    let (mut report, within_limits) = validate_one(new);
    // The size limits never ratchet: beyond them nothing else was checked.
    let Some(old) = old.filter(|_| within_limits) else {
        return report;
    };
    if let (Ok(old_spec), Ok(spec)) = (&old.spec, &new.spec)
        && limits::check(old_spec).is_empty()
    {
        compare_with_stored(old_spec, spec, &mut report);
    }
    if report.errors.is_empty() {
        return report;
    }
    let before: std::collections::HashSet<String> = validate_one(old)
        .0
        .errors
        .into_iter()
        .map(|v| v.message)
        .collect();
    let (kept, stale): (Vec<Violation>, Vec<Violation>) = report
        .errors
        .into_iter()
        .partition(|v| !before.contains(&v.message));
    report.errors = kept;
    report.warnings.extend(stale.into_iter().map(|v| {
        Violation::new(
            v.path,
            format!("already invalid before this update: {}", v.message),
        )
    }));
    report
}

/// The rules on one object, and whether it is within the size limits.
fn validate_one(new: &GroupObject) -> (Report, bool) {
    let mut report = Report::default();
    if new.kind.as_deref() != Some(KIND) {
        report.error("kind", format!("expected kind {KIND}"));
        return (report, true);
    }
    if new.name.is_empty() && new.generate_name.is_none() {
        report.error("metadata.name", "the group needs a name");
    }
    // The size limits first: nothing else runs on an object beyond them.
    let exceeded = new.spec.as_ref().map(limits::check).unwrap_or_default();
    if !exceeded.is_empty() {
        for e in exceeded {
            report.error(e.path, e.message);
        }
        return (report, false);
    }
    for (path, message) in &new.schema_findings {
        report.error(path.clone(), message.clone());
    }
    match &new.spec {
        Ok(spec) => validate_spec(spec, &mut report),
        Err(e) => report.error(e.path.clone(), e.message.clone()),
    }
    if new.bytes > MAX_OBJECT_BYTES {
        report.error(
            "",
            format!(
                "the object is {:.2} MiB as JSON; etcd stores at most 1.5 MiB per object",
                new.bytes as f64 / (1024.0 * 1024.0)
            ),
        );
    }
    (report, true)
}

/// Validates a parsed spec; the rules that need no metadata.
///
/// Paths and messages are written only for what is reported: a valid group of a thousand
/// applications costs a few passes over its names.
pub fn validate_spec(spec: &ApplicationGroupSpec, report: &mut Report) {
    let apps = &spec.applications;
    if apps.is_empty() {
        report.error("spec.applications", "at least one application is required");
        return;
    }
    let items: Vec<(&str, &[String])> = apps
        .iter()
        .map(|a| (a.name.as_str(), a.dependencies.as_slice()))
        .collect();
    let mut hints = Hints::default();
    Level::APPLICATIONS.check(&items, &mut hints, report);
    for (i, app) in apps.iter().enumerate() {
        validate_application(i, app, &mut hints, report);
    }
    check_release_names(apps, report);
    if let Some(wt) = &spec.workflow_template
        && let Some(ns) = &wt.namespace
        && !naming::is_dns1123_label(ns)
    {
        report.error(
            "spec.workflowTemplate.namespace",
            format!("{ns:?} is not a valid namespace name (DNS-1123 label)"),
        );
    }
}

/// One level of the three nested dependency graphs: the rules they all share.
struct Level<'a> {
    /// `application`, `subchart` or `executor`.
    what: &'static str,
    /// The application (index and name) whose subcharts or executors these are; `None` for the
    /// group's applications.
    owner: Option<(usize, &'a str)>,
    /// Field of the list in the application's spec (`subcharts`, `workflow`).
    field: &'static str,
    /// Completes "which is not ...".
    peers: &'static str,
}

impl Level<'_> {
    const APPLICATIONS: Level<'static> = Level {
        what: "application",
        owner: None,
        field: "",
        peers: "an application in this group",
    };

    /// ` of application "x"`, or empty at the top level.
    fn owner(&self) -> String {
        match self.owner {
            None => String::new(),
            Some((_, app)) => format!(" of application {app:?}"),
        }
    }

    /// Path of the list, e.g. `spec.applications[0].spec.subcharts`.
    fn base(&self) -> String {
        match self.owner {
            None => "spec.applications".into(),
            Some((i, _)) => format!("spec.applications[{i}].spec.{}", self.field),
        }
    }

    /// Prefix of cycle messages.
    fn cycle(&self) -> String {
        match self.owner {
            None => "dependency cycle".into(),
            Some((_, app)) => format!("{} dependency cycle in application {app:?}", self.what),
        }
    }

    /// Names, duplicates, unknown and self dependencies, and cycles.
    fn check(&self, items: &[(&str, &[String])], hints: &mut Hints, report: &mut Report) {
        let what = self.what;
        let names = Declarations::new(items.iter().map(|(n, _)| *n));
        let mut converted: foldhash::HashMap<Cow<'_, str>, (usize, &str)> =
            foldhash::HashMap::with_capacity_and_hasher(items.len(), Default::default());
        for (i, &(name, _)) in items.iter().enumerate() {
            let path = || format!("{}[{i}].name", self.base());
            if name.is_empty() {
                report.error(path(), format!("{what} name is required{}", self.owner()));
                continue;
            }
            let j = names.first(i);
            if j != i {
                report.error(
                    path(),
                    format!(
                        "duplicate {what} name {name:?}{} (also at {}[{j}])",
                        self.owner(),
                        self.base()
                    ),
                );
                continue;
            }
            match naming::dns1123(name, DNS1123_LABEL_MAX) {
                None => report.error(
                    path(),
                    format!(
                        "{what} name {name:?}{} has no letters or digits to make a Kubernetes name from",
                        self.owner()
                    ),
                ),
                Some(k8s) => {
                    if let Some(&(j, other)) = converted.get(&k8s) {
                        report.error(
                            path(),
                            format!(
                                "{what} names {other:?} and {name:?}{} both become the Kubernetes name {k8s:?} ({}[{j}])",
                                self.owner(),
                                self.base()
                            ),
                        );
                    } else {
                        converted.insert(k8s, (i, name));
                    }
                }
            }
        }
        // Each dependency resolved once, for these rules and for the graph.
        let mut targets = Vec::with_capacity(items.iter().map(|(_, deps)| deps.len()).sum());
        for (i, &(name, deps)) in items.iter().enumerate() {
            let first_target = targets.len();
            for (j, dep) in deps.iter().enumerate() {
                let path = || format!("{}[{i}].dependencies[{j}]", self.base());
                let target = names.get(dep);
                targets.push(target);
                // An empty name declares nothing (the graph still links it).
                let known = !dep.is_empty() && target.is_some();
                if dep == name {
                    report.error(
                        path(),
                        format!("{what} {name:?}{} depends on itself", self.owner()),
                    );
                } else if !known {
                    let hint = hints
                        .closest(dep, items.iter().map(|(n, _)| *n))
                        .map(|c| format!(" (did you mean {c:?}?)"))
                        .unwrap_or_default();
                    report.error(
                        path(),
                        format!(
                            "{what} {name:?}{} depends on {dep:?}, which is not {}{hint}",
                            self.owner(),
                            self.peers
                        ),
                    );
                } else if targets[first_target..first_target + j].contains(&target) {
                    // Known names are equal exactly when they resolve to the same item.
                    report.warn(
                        path(),
                        format!(
                            "{what} {name:?}{} lists dependency {dep:?} twice",
                            self.owner()
                        ),
                    );
                }
            }
        }
        // Without dependencies there are no edges, so no cycles.
        if targets.is_empty() {
            return;
        }
        let mut start = 0;
        let graph = Dag::resolved(
            &names,
            items.iter().map(|(name, deps)| {
                let resolved = &targets[start..start + deps.len()];
                start += deps.len();
                (*name, resolved.iter().copied())
            }),
        );
        let cycles = graph.cycles();
        for cycle in &cycles.cycles {
            // The cycle is reported at the dependency entry that starts it.
            let (from, to) = (cycle[0], graph.name(cycle[1 % cycle.len()]));
            let path = match items[from].1.iter().position(|d| d == to) {
                Some(j) => format!("{}[{from}].dependencies[{j}]", self.base()),
                None => format!("{}[{from}].dependencies", self.base()),
            };
            report.error(
                path,
                format!("{}: {}", self.cycle(), graph.describe_cycle(cycle)),
            );
        }
        match cycles.incomplete {
            None => {}
            Some(Incomplete::MoreCycles) => report.error(
                self.base(),
                format!(
                    "{}: more than {max} cycles exist; the first {max} are listed",
                    self.cycle(),
                    max = graph::MAX_CYCLES
                ),
            ),
            Some(Incomplete::OutOfSteps) => report.error(
                self.base(),
                format!(
                    "{}: the search for cycles stopped after {} steps; there may be more cycles than are listed",
                    self.cycle(),
                    graph::CYCLE_STEPS
                ),
            ),
        }
    }
}

fn validate_application(i: usize, app: &Application, hints: &mut Hints, report: &mut Report) {
    let at = |field: &str| format!("spec.applications[{i}].spec.{field}");
    let who = || format!("application {:?}", app.name);
    match &app.spec.chart {
        None => report.error(at("chart"), format!("{} has no chart", who())),
        Some(chart) => {
            if chart.url.is_empty() {
                report.error(
                    at("chart.url"),
                    format!("{}: the chart URL is required", who()),
                );
            } else if !["https://", "http://", "oci://"]
                .iter()
                .any(|s| chart.url.starts_with(s))
            {
                report.error(
                    at("chart.url"),
                    format!(
                        "{}: chart URL {:?} must start with https://, http:// or oci://",
                        who(),
                        chart.url
                    ),
                );
            }
            if chart.name.is_empty() {
                report.error(
                    at("chart.name"),
                    format!("{}: the chart name is required", who()),
                );
            }
            let version = chart.version.as_deref().unwrap_or("");
            if !crate::version::is_pinned(version) {
                report.warn(
                    at("chart.version"),
                    format!(
                        "{}: chart version {version:?} is not pinned; releases may differ",
                        who()
                    ),
                );
            }
        }
    }
    match &app.spec.release {
        None => report.error(at("release"), format!("{} has no release settings", who())),
        Some(release) => {
            if let Some(ns) = &release.target_namespace
                && !naming::is_dns1123_label(ns)
            {
                report.error(
                    at("release.targetNamespace"),
                    format!("{}: target namespace {ns:?} is not a valid namespace name (DNS-1123 label)", who()),
                );
            }
            for (field, value) in [
                ("interval", &release.interval),
                ("timeout", &release.timeout),
            ] {
                let Some(value) = value else { continue };
                match duration::parse(value) {
                    None => report.error(
                        at(&format!("release.{field}")),
                        format!("{}: {value:?} is not a duration Flux accepts (write it like 5m, 90s, 1h30m or 500ms)", who()),
                    ),
                    Some(d) if field == "timeout" && d > LONG_TIMEOUT => report.warn(
                        at("release.timeout"),
                        format!("{}: timeout {value} is very long; a stuck release blocks the group that long", who()),
                    ),
                    Some(_) => {}
                }
            }
            for (block, value) in [
                ("install", &release.install),
                ("upgrade", &release.upgrade),
                ("rollback", &release.rollback),
                ("uninstall", &release.uninstall),
            ] {
                if let Some(value) = value {
                    let path = at(&format!("release.{block}"));
                    flux_schema::check_block(block, value, &path, &mut |p, m| {
                        report.error(p, format!("{}: {m}", who()))
                    });
                }
            }
            for action in ["install", "upgrade"] {
                let block = if action == "install" {
                    &release.install
                } else {
                    &release.upgrade
                };
                let retries = block
                    .as_ref()
                    .and_then(|b| b.pointer("/remediation/retries"))
                    .and_then(Value::as_i64);
                if retries.is_some_and(|r| r < 0) {
                    report.warn(
                        at(&format!("release.{action}.remediation.retries")),
                        format!(
                            "{}: negative retries make Flux retry forever; the release step gives up after {} attempts ({})",
                            who(),
                            argo::UNBOUNDED_RETRIES_ATTEMPTS,
                            duration::human(Duration::from_secs(argo::step_budget(app)))
                        ),
                    );
                }
            }
        }
    }
    let subcharts: Vec<(&str, &[String])> = app
        .spec
        .subcharts
        .iter()
        .map(|s| (s.name.as_str(), s.dependencies.as_slice()))
        .collect();
    let executors: Vec<(&str, &[String])> = app
        .spec
        .workflow
        .iter()
        .map(|e| (e.name.as_str(), e.dependencies.as_slice()))
        .collect();
    for (what, field, peers, items) in [
        (
            "subchart",
            "subcharts",
            "a subchart of this application",
            &subcharts,
        ),
        (
            "executor",
            "workflow",
            "an executor of this application",
            &executors,
        ),
    ] {
        if items.is_empty() {
            continue;
        }
        Level {
            what,
            owner: Some((i, &app.name)),
            field,
            peers,
        }
        .check(items, hints, report);
    }
    let app_key = (!subcharts.is_empty())
        .then(|| naming::dns1123(&app.name, DNS1123_LABEL_MAX))
        .flatten();
    for (k, sub) in app.spec.subcharts.iter().enumerate() {
        if app_key.is_some() && naming::dns1123(&sub.name, DNS1123_LABEL_MAX) == app_key {
            report.error(
                at(&format!("subcharts[{k}].name")),
                format!("subchart {:?} of application {:?} has the same Kubernetes name as its application; the two release steps would collide", sub.name, app.name),
            );
        }
    }
    for (k, executor) in app.spec.workflow.iter().enumerate() {
        validate_executor(
            |field| at(&format!("workflow[{k}].{field}")),
            &app.name,
            executor,
            report,
        );
    }
}

/// `at(field)` is the path of the executor's `field`.
fn validate_executor(
    at: impl Fn(&str) -> String,
    app: &str,
    executor: &Executor,
    report: &mut Report,
) {
    let who = || format!("executor {:?} of application {app:?}", executor.name);
    let types = || ExecutorType::NAMES.join(", ");
    match (&executor.type_, executor.executor_type()) {
        (None, _) => report.error(
            at("type"),
            format!("{} has no type (one of {})", who(), types()),
        ),
        (Some(t), None) => report.error(
            at("type"),
            format!("{} has unknown type {t:?} (one of {})", who(), types()),
        ),
        (_, Some(ExecutorType::HelmRelease)) => {}
        (_, Some(ExecutorType::Keptn)) => {
            if parse::keptn_config_map(executor).is_none() {
                report.error(
                    at("params"),
                    format!(
                        "keptn {} needs params.configMapRef with a name and a namespace",
                        who()
                    ),
                );
            }
        }
        (_, Some(ExecutorType::Custom)) => {
            if parse::custom_image(executor).is_none() {
                report.error(
                    at("image"),
                    format!(
                        "custom {} needs image.image, the container image to run",
                        who()
                    ),
                );
            } else if parse::custom_command(executor).is_none()
                && !parse::custom_command_unusable(executor)
            {
                report.warn(
                    at("image.command"),
                    format!(
                        "custom {} names no command; the step runs {} in its image",
                        who(),
                        argo::DEFAULT_EXECUTOR_COMMAND
                    ),
                );
            }
            if parse::custom_command_unusable(executor) {
                report.error(
                    at("image.command"),
                    format!(
                        "custom {}: image.command must be a non-empty list of strings, e.g. [sh, -c, \"...\", smoke]",
                        who()
                    ),
                );
            }
        }
    }
}

/// Two releases with one name in one namespace would fight over the same Helm release.
fn check_release_names(apps: &[Application], report: &mut Report) {
    // (namespace, release name) -> the application (its index) and subchart releasing it first.
    let mut seen = foldhash::HashMap::with_capacity_and_hasher(apps.len(), Default::default());
    for (i, app) in apps.iter().enumerate() {
        let namespace = naming::namespace_of(app);
        let subs = &app.spec.subcharts;
        for (k, release) in naming::releases(app).enumerate() {
            let subchart = release.subchart;
            // A subchart listed twice is already reported as a duplicate.
            if subchart.is_some() && subs[..k].iter().any(|s| Some(s.name.as_str()) == subchart) {
                continue;
            }
            match seen.entry((namespace.clone(), release.name)) {
                Entry::Occupied(first) => {
                    let (j, other): (usize, Option<&str>) = *first.get();
                    let (namespace, name) = first.key();
                    report.error(
                        match subchart {
                            Some(_) => format!("spec.applications[{i}].spec.subcharts[{k}].name"),
                            None => format!("spec.applications[{i}].name"),
                        },
                        format!(
                            "{} and {} would both release {name:?} into namespace {namespace:?}",
                            naming::describe_release(&app.name, subchart),
                            naming::describe_release(&apps[j].name, other),
                        ),
                    );
                }
                Entry::Vacant(entry) => {
                    entry.insert((i, subchart));
                }
            }
        }
    }
}

/// Warnings that need the stored object: applications others depended on that are now gone.
fn compare_with_stored(
    old: &ApplicationGroupSpec,
    new: &ApplicationGroupSpec,
    report: &mut Report,
) {
    let present = |name: &str| new.applications.iter().any(|a| a.name == name);
    for removed in old.applications.iter().filter(|a| !present(&a.name)) {
        let dependents: Vec<&str> = old
            .applications
            .iter()
            .filter(|a| a.dependencies.contains(&removed.name) && present(&a.name))
            .map(|a| a.name.as_str())
            .collect();
        if let Some(first) = dependents.first() {
            let more = match dependents.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            report.warn(
                "spec.applications",
                format!(
                    "application {:?} is removed, but {first:?}{more} depended on it until now",
                    removed.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(apps: Value) -> Value {
        json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
               "metadata": {"name": "shop"}, "spec": {"applications": apps}})
    }

    fn app(name: &str, deps: &[&str]) -> Value {
        json!({"name": name, "dependencies": deps,
               "spec": {"chart": {"url": "https://c.example.com", "name": name, "version": "1.0.0"}, "release": {}}})
    }

    #[test]
    fn removing_an_application_others_depended_on_warns_on_update() {
        let old = group(json!([
            app("db", &[]),
            app("api", &["db"]),
            app("web", &["api", "db"])
        ]));
        let new = group(json!([app("api", &[]), app("web", &["api"])]));
        let report = validate_object(&new, Some(&old));
        assert!(report.is_valid());
        assert_eq!(
            report.warnings,
            vec![Violation::new(
                "spec.applications",
                "application \"db\" is removed, but \"api\" and 1 more depended on it until now"
            )]
        );
        assert!(validate_object(&new, None).warnings.is_empty());
    }

    #[test]
    fn violations_the_stored_object_had_are_warnings_on_update() {
        let old = group(json!([app("db", &["api"]), app("api", &["db"])]));
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"team": "shop"});
        let report = validate_object(&labelled, Some(&old));
        assert!(report.is_valid(), "{:?}", report.errors);
        assert_eq!(
            report.warnings,
            vec![Violation::new(
                "spec.applications[0].dependencies[0]",
                "already invalid before this update: dependency cycle: db -> api -> db"
            )]
        );
        // What the update itself breaks is still refused.
        let worse = group(json!([
            app("db", &["api"]),
            app("api", &["db"]),
            app("web", &["web"])
        ]));
        let report = validate_object(&worse, Some(&old));
        assert_eq!(
            report.errors,
            vec![Violation::new(
                "spec.applications[2].dependencies[0]",
                "application \"web\" depends on itself"
            )]
        );
        assert!(!validate_object(&labelled, None).is_valid());
        // The size limits are not ratcheted.
        let long = group(json!([app(&"x".repeat(limits::MAX_NAME_CHARS + 1), &[])]));
        assert!(!validate_object(&long, Some(&long)).is_valid());
    }

    #[test]
    fn objects_beyond_the_limits_are_refused_before_anything_else() {
        let apps: Vec<Value> = (0..=limits::MAX_APPLICATIONS)
            .map(|i| app(&format!("a{i}"), &["nowhere"]))
            .collect();
        let report = validate_object(&group(Value::Array(apps)), None);
        assert_eq!(
            report.errors,
            vec![Violation::new(
                "spec.applications",
                "1001 applications; at most 1000 per group"
            )]
        );
    }

    #[test]
    fn objects_too_large_for_etcd_are_refused() {
        let mut big = app("db", &[]);
        big["spec"]["release"]["values"] = json!({"blob": "x".repeat(MAX_OBJECT_BYTES)});
        let report = validate_object(&group(json!([big])), None);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(
            report.errors[0].to_string(),
            "the object is 1.50 MiB as JSON; etcd stores at most 1.5 MiB per object"
        );
    }

    #[test]
    fn wrong_kind_is_refused() {
        let report = validate_object(&json!({"kind": "ConfigMap"}), None);
        assert_eq!(
            report.errors[0].to_string(),
            "kind: expected kind ApplicationGroup"
        );
    }
}

/// What admission would make of an object: the mutating webhook's result and the validating
/// webhook's verdict on it, in the API server's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Errors and warnings about the object as it would be stored.
    pub report: Report,
    /// The defaulted object, when the spec could be read.
    pub mutated: Option<Value>,
}

/// Mutates, then validates `object`, exactly as `kubectl apply` through both webhooks would.
pub fn check(object: &Value) -> Checked {
    match crate::admission::defaults::default_object(object) {
        Ok(mutated) => Checked {
            report: validate_object(&mutated, None),
            mutated: Some(mutated),
        },
        Err(_) => Checked {
            report: validate_object(object, None),
            mutated: None,
        },
    }
}
