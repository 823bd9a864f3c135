//! The Argo Workflow templates that release a group, and the Workflow built from them.
//!
//! Layout: an `entry` DAG with one task per application; one DAG per application (`app-<name>`)
//! with one task per subchart and one for the application's own chart, which depends on every
//! subchart (the parent is released last, as in the original Orkestra); when an application has
//! several executors, each chart task runs a small DAG of them (`app-<name>--<chart>`). Executor
//! steps are container templates: ours (`kubectl-orkestra executor helmrelease`), keptn's, or the
//! user's own image.
//!
//! The templates are typed ([`template`]) and written straight to JSON text by hand
//! ([`crate::emit::json`], [`generated`]): for a large group, building `serde_json::Value` maps
//! would cost several times their text, and serde's serializer about twice what writing it does.
//!
//! The templates stay small enough to live in the group object: a step's HelmRelease manifest is
//! not written into it. Our executor reads it from the group's revision (the ControllerRevision
//! named like the Workflow), built by [`crate::emit::manifest::step_manifest`] from the same spec with
//! [`flux::release_manifest`]; a step only names its chart ([`chart_parameter`]). So a
//! 1,000-application group still fits etcd's 1.5 MiB, a Workflow releases exactly the manifests of
//! its revision, no manifest meets the argument size limit or Argo's `{{...}}` substitution.

use std::borrow::Cow;

use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::api::defaults::RELEASE_TIMEOUT;
use crate::api::{Application, ApplicationGroupSpec, Executor, ExecutorType, Release, Subchart};
use crate::duration;
use crate::emit::flux;
use crate::emit::json::{self, Json};
use crate::graph::{self, Dag};
use crate::input::parse;
use crate::naming;
use crate::naming::DNS1123_LABEL_MAX;

pub mod template;

use template::{
    Arguments, Capabilities, Container, InputParameter, Inputs, Limits, Parameter, ParameterValue,
    Requests, Resources, RetryStrategy, SeccompProfile, SecurityContext, Task, Template,
};

/// Workflow `apiVersion`.
pub const WORKFLOW_API_VERSION: &str = crate::api::resources::WORKFLOW.api_version;
/// Name of the entry DAG template.
pub const ENTRYPOINT: &str = "entry";
/// Template of our HelmRelease executor.
pub const HELMRELEASE_TEMPLATE: &str = "executor-helmrelease";
/// Template of the keptn executor.
pub const KEPTN_TEMPLATE: &str = "executor-keptn";
/// The keptn executor image the original Orkestra shipped.
pub const KEPTN_IMAGE: &str = "azureorkestra/keptn-executor:v0.1.0";
/// Argo's limit on template and task names (`workflow/validate`: `workflowFieldMaxLength`).
pub const ARGO_NAME_MAX: usize = 128;
/// Time Argo allows a step beyond the executor's own budget: scheduling, image pull, start-up and
/// the executor's last report. Past it Argo fails the step itself (a pod stuck `Pending`, e.g.
/// on an image it cannot pull, fails instead of waiting forever).
pub const POD_GRACE_SECONDS: u64 = 300;
/// Argo-level retries of an executor step, for pod-level failures only (`retryPolicy: OnError`:
/// eviction, a deleted pod, an image that cannot be pulled). A step whose executor exits non-zero
/// (its verdict on the release) is `Failed`, not `Error`, and is never retried.
pub const POD_RETRIES: u64 = 2;
/// The command of the keptn executor image, and of custom executors whose `image` names none.
pub const DEFAULT_EXECUTOR_COMMAND: &str = "/executor";
/// Attempts a step budgets for when `remediation.retries` is negative (Flux retries forever).
pub const UNBOUNDED_RETRIES_ATTEMPTS: u64 = 10;
/// Attempts a step budgets for at most, whatever `remediation.retries` says.
pub const MAX_BUDGETED_ATTEMPTS: u64 = 100;
/// Flux's pause between two attempts: its controllers' rate limiter starts at `--min-retry-delay`
/// (750 ms), doubles per failure and stops at `--max-retry-delay` (15 min).
const FLUX_MIN_RETRY_DELAY_MS: u64 = 750;
const FLUX_MAX_RETRY_DELAY_MS: u64 = 15 * 60 * 1000;
/// Time for helm-controller to notice a new generation.
const FLUX_NOTICE_SECONDS: u64 = 60;
/// The suspend template of manual gates.
pub const GATE_TEMPLATE: &str = "gate";
/// Workflow parameter switching gates `on` (default) or `off` (`promote --full`). The underscore
/// keeps it apart from the chart parameters, which are DNS labels.
pub const GATES_PARAMETER: &str = "orkestra_gates";

/// Every step container's `terminationMessagePolicy`: a step that fails without writing
/// `/dev/termination-log` gets the end of its log as its termination message, which Argo puts in
/// the node's message (`main: Error (exit code 1): <the executor's last lines>`), so `status`
/// shows why a step failed even after its pod is gone.
pub const TERMINATION_MESSAGE_POLICY: &str = "FallbackToLogsOnError";

/// True when an application of the group asks for a manual gate.
pub fn has_gates(spec: &ApplicationGroupSpec) -> bool {
    spec.applications.iter().any(|a| a.spec.gate == Some(true))
}

/// The settings that shape the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Image running `kubectl-orkestra executor helmrelease`.
    pub executor_image: String,
    /// Parallelism of every DAG.
    pub parallelism: i64,
}

/// The Argo task name of an application, subchart or executor: its DNS-1123 form (validated to
/// be unique at its level). Argo refuses DAG task names that begin with a digit once dependencies
/// are used, so those get an `N` in front (upper case never occurs in a converted name, so the
/// prefix cannot collide with another key): `3scale` becomes `N3scale`.
pub fn app_key(app: &str) -> String {
    let key = naming::to_dns1123(app, DNS1123_LABEL_MAX)
        .unwrap_or_else(|| format!("x{}", naming::short_hash(app)));
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        format!("N{key}")
    } else {
        key
    }
}

/// A template name within Argo's 128 characters: `name` itself when it fits, else a prefix of it
/// and `-` plus 8 hex digits of its SHA-256 (so distinct long names stay distinct).
pub fn template_name(name: String) -> String {
    if name.len() <= ARGO_NAME_MAX {
        return name;
    }
    let hash = naming::short_hash(&name);
    let keep = ARGO_NAME_MAX - hash.len() - 1;
    // Every generated name is ASCII: any byte is a character boundary.
    format!("{}-{hash}", name.get(..keep).unwrap_or_default())
}

/// Name of an application's DAG template.
pub fn app_template(app: &str) -> String {
    key_template(&app_key(app))
}

/// Name of the DAG template of the application whose key is `key`.
fn key_template(key: &str) -> String {
    template_name(format!("app-{key}"))
}

/// The task names (keys) of what node `i` of `dag` depends on.
fn dependency_keys(dag: &Dag, i: usize) -> Vec<Cow<'static, str>> {
    dag.dependencies(i)
        .iter()
        .map(|&d| app_key(dag.name(d)).into())
        .collect()
}

/// Every template that releases the group, in a stable order: `entry`, the application DAGs,
/// then the executor containers.
pub fn templates(spec: &ApplicationGroupSpec, settings: &Settings) -> Vec<Value> {
    // Cannot fail: the text is a JSON list (empty if it were not).
    serde_json::from_slice(&json::to_vec(&generated(spec, settings))).unwrap_or_default()
}

/// The JSON array of [`templates`] (compact, object keys sorted as the API server stores them),
/// written straight from the typed templates.
pub fn templates_json(spec: &ApplicationGroupSpec, settings: &Settings) -> Box<RawValue> {
    // Cannot fail: the text is a JSON list (`null` if it were not).
    RawValue::from_string(json::to_string(&generated(spec, settings))).unwrap_or_default()
}

/// The templates that release `spec`, to write as JSON ([`Json`]): each is generated, written
/// and dropped in turn, so a large group's templates never exist all at once as structs. Written,
/// it is the JSON array of [`templates`].
pub fn generated<'a>(spec: &'a ApplicationGroupSpec, settings: &'a Settings) -> Generated<'a> {
    Generated(Group::new(spec, settings))
}

/// See [`generated`].
pub struct Generated<'a>(Group<'a>);

impl Generated<'_> {
    /// About the length of the templates' JSON text (a little more for an application with one
    /// executor and no subcharts), to size a buffer for them once.
    pub fn size_hint(&self) -> usize {
        let group = &self.0;
        (group.spec.applications.iter().zip(&group.apps))
            .map(|(app, names)| {
                let dependencies = (app.dependencies.iter()).map(|d| d.len() + 3);
                TEMPLATE_BYTES_PER_APPLICATION
                    + 4 * names.key.len()
                    + names.template.len()
                    + dependencies.sum::<usize>()
            })
            .sum::<usize>()
            + TEMPLATE_BYTES_FIXED
    }
}

/// The JSON text of one application's DAG template and entry task, beyond its names.
const TEMPLATE_BYTES_PER_APPLICATION: usize = 260;
/// The JSON text of the templates every group has (`entry` and the executor's).
const TEMPLATE_BYTES_FIXED: usize = 1_500;

impl Json for Generated<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        let mut first = true;
        self.0.each_template(&mut |t| {
            if !first {
                out.push(b',');
            }
            first = false;
            t.write_json(out);
        });
        out.push(b']');
    }
}

/// A group being turned into templates, with what they say of each application computed once
/// (the templates borrow it).
struct Group<'a> {
    spec: &'a ApplicationGroupSpec,
    settings: &'a Settings,
    dag: Dag,
    /// One per application, in declaration order.
    apps: Vec<AppNames>,
}

/// The task name, DAG template name and step budget of one application (the step times are
/// written out per step: kept for every application they would take more than the rest).
struct AppNames {
    /// [`app_key`].
    key: String,
    /// [`app_template`].
    template: String,
    /// [`step_budget`].
    budget: u64,
}

impl<'a> Group<'a> {
    fn new(spec: &'a ApplicationGroupSpec, settings: &'a Settings) -> Self {
        let apps = spec
            .applications
            .iter()
            .map(|app| {
                let key = app_key(&app.name);
                AppNames {
                    template: key_template(&key),
                    key,
                    budget: step_budget(app),
                }
            })
            .collect();
        Self {
            spec,
            settings,
            dag: graph::app_dag(spec),
            apps,
        }
    }

    /// Calls `f` with every template, in the order of [`templates`].
    fn each_template(&self, f: &mut impl FnMut(Template<'_>)) {
        f(Template::dag(
            ENTRYPOINT.into(),
            self.entry_tasks(),
            Some(self.settings.parallelism),
        ));
        let mut executors = Vec::new();
        for i in 0..self.apps.len() {
            if self.dag.is_first(i) {
                let (dag, extra) = self.application_templates(i, &mut executors);
                f(dag);
                extra.into_iter().for_each(&mut *f);
            }
        }
        if has_gates(self.spec) {
            f(Template::suspend(GATE_TEMPLATE));
        }
        f(helmrelease_template(&self.settings.executor_image));
        if executors.contains(&ExecutorType::Keptn) {
            f(keptn_template());
        }
        custom_templates(&self.spec.applications)
            .into_iter()
            .for_each(f);
    }

    /// The `entry` DAG's tasks: one per application, after a gate when it asks for one.
    fn entry_tasks(&self) -> Vec<Task<'_>> {
        let mut tasks = Vec::with_capacity(self.apps.len());
        for (i, (app, names)) in self.spec.applications.iter().zip(&self.apps).enumerate() {
            if !self.dag.is_first(i) {
                continue;
            }
            let deps = self
                .dag
                .dependencies(i)
                .iter()
                .map(|&d| Cow::from(self.apps[d].key.as_str()))
                .collect();
            let (key, template) = (names.key.as_str(), names.template.as_str());
            if app.spec.gate != Some(true) {
                tasks.push(Task::new(key, template, deps));
                continue;
            }
            // A gate: a suspend step after the application's dependencies and before it, which
            // `kubectl orkestra promote` resumes; skipped when the Workflow's `orkestra_gates`
            // parameter is `off` (`promote --full`).
            let gate = gate_task(key);
            tasks.push(Task {
                when: Some(format!(
                    "{{{{workflow.parameters.{GATES_PARAMETER}}}}} != off"
                )),
                ..Task::new(gate.clone(), GATE_TEMPLATE, deps)
            });
            tasks.push(Task::new(key, template, vec![gate.into()]));
        }
        tasks
    }

    /// The DAG of application `i`, and the per-chart executor DAGs it needs; notes the executor
    /// types it uses in `used`.
    fn application_templates(
        &self,
        i: usize,
        used: &mut Vec<ExecutorType>,
    ) -> (Template<'_>, Vec<Template<'_>>) {
        let (app, names) = (&self.spec.applications[i], &self.apps[i]);
        // Borrowed when declared (always, once defaulted): no copy per application.
        let implicit;
        let executors = match app.spec.workflow.as_slice() {
            [] => {
                implicit = [Executor::default_helmrelease()];
                &implicit[..]
            }
            declared => declared,
        };
        for e in executors {
            if let Some(t) = e.executor_type()
                && !used.contains(&t)
            {
                used.push(t);
            }
        }
        let sub_dag = graph::subchart_dag(app);
        let mut tasks = Vec::new();
        let mut extra = Vec::new();
        let mut sub_keys = Vec::new();
        for (k, sub) in app.spec.subcharts.iter().enumerate() {
            if !sub_dag.is_first(k) {
                continue;
            }
            let key = app_key(&sub.name);
            tasks.push(chart_task(
                app,
                names,
                subchart_parameter(&names.key, &key).into(),
                key.clone().into(),
                dependency_keys(&sub_dag, k),
                executors,
                &mut extra,
            ));
            sub_keys.push(key.into());
        }
        let key = names.key.as_str();
        tasks.push(chart_task(
            app,
            names,
            key.into(),
            key.into(),
            sub_keys,
            executors,
            &mut extra,
        ));
        let dag = Template::dag(names.template.as_str().into(), tasks, None);
        (dag, extra)
    }
}

/// The task releasing one chart (its [`chart_parameter`] is `param`): the executor itself when
/// there is one, else a DAG of them (added to `extra`).
fn chart_task<'s>(
    app: &Application,
    names: &'s AppNames,
    param: Cow<'s, str>,
    key: Cow<'s, str>,
    deps: Vec<Cow<'s, str>>,
    executors: &[Executor],
    extra: &mut Vec<Template<'s>>,
) -> Task<'s> {
    let budget = names.budget;
    if let [only] = executors {
        let (template, arguments) = executor_call(app, only, &param, budget);
        return Task {
            arguments: Some(arguments),
            ..Task::new(key, template, deps)
        };
    }
    let name = template_name(format!("app-{}--{key}", names.key));
    let exec_dag = Dag::new(
        executors
            .iter()
            .map(|e| (e.name.as_str(), e.dependencies.iter().map(String::as_str))),
    );
    let tasks = executors
        .iter()
        .enumerate()
        .filter(|(i, _)| exec_dag.is_first(*i))
        .map(|(i, e)| {
            let (template, arguments) = executor_call(app, e, &param, budget);
            Task {
                arguments: Some(arguments),
                ..Task::new(app_key(&e.name), template, dependency_keys(&exec_dag, i))
            }
        })
        .collect();
    extra.push(Template::dag(name.clone().into(), tasks, None));
    Task::new(key, name, deps)
}

/// How long an executor step waits for its release, in seconds (see [`step_timeout`]).
///
/// One attempt is one Helm action (`release.timeout`), plus its remediation (the rollback or
/// uninstall Flux runs after a failure when retries are set, bounded by `release.rollback.timeout`
/// / `release.uninstall.timeout`, which default to `release.timeout`). Flux makes
/// `remediation.retries + 1` attempts of the action at hand (install or upgrade; the larger count
/// of the two), pausing between them as its rate limiter does; a negative count retries forever,
/// for which the step budgets [`UNBOUNDED_RETRIES_ATTEMPTS`]. Plus a minute for Flux to notice the
/// new generation.
pub fn step_budget(app: &Application) -> u64 {
    let unset = Release::default();
    let release = app.spec.release.as_ref().unwrap_or(&unset);
    let seconds = |value: Option<&str>, fallback: u64| {
        value
            .and_then(duration::parse)
            .map_or(fallback, |d| d.as_secs_f64().ceil() as u64)
    };
    let default_action = duration::parse(RELEASE_TIMEOUT).map_or(300, |d| d.as_secs());
    let action = seconds(release.timeout.as_deref(), default_action);
    let block_timeout = |block: &Option<Value>| {
        seconds(
            block
                .as_ref()
                .and_then(|b| b.get("timeout"))
                .and_then(Value::as_str),
            action,
        )
    };
    let remediation = block_timeout(&release.rollback).max(block_timeout(&release.uninstall));
    let attempts = [&release.install, &release.upgrade]
        .into_iter()
        .map(|block| {
            let retries = block
                .as_ref()
                .and_then(|b| b.pointer("/remediation/retries"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match u64::try_from(retries) {
                Ok(r) => r.saturating_add(1).min(MAX_BUDGETED_ATTEMPTS),
                Err(_) => UNBOUNDED_RETRIES_ATTEMPTS,
            }
        })
        .max()
        .unwrap_or(1);
    // Flux remediates a failed attempt only when retries are set (or remediateLastFailure).
    let per_attempt = if attempts > 1 {
        action + remediation
    } else {
        action
    };
    let pauses: u64 = (0..attempts.saturating_sub(1))
        .map(|k| {
            FLUX_MIN_RETRY_DELAY_MS
                .saturating_mul(1u64 << k.min(40))
                .min(FLUX_MAX_RETRY_DELAY_MS)
        })
        .sum::<u64>()
        .div_ceil(1000);
    attempts * per_attempt + pauses + FLUX_NOTICE_SECONDS
}

/// The executor's `--timeout` for one application's steps: [`step_budget`] as a duration.
pub fn step_timeout(app: &Application) -> String {
    format!("{}s", step_budget(app))
}

/// Argo's own deadline for one step (the template's `timeout`): the executor's budget plus
/// [`POD_GRACE_SECONDS`].
pub fn step_deadline(app: &Application) -> String {
    format!("{}s", deadline(step_budget(app)))
}

/// Argo's deadline of a step whose executor has `budget` seconds.
fn deadline(budget: u64) -> u64 {
    budget + POD_GRACE_SECONDS
}

/// The Workflow parameter holding the manifest of one chart's release: the application's key,
/// or `<application>--<subchart>`.
pub fn chart_parameter(app: &Application, subchart: Option<&Subchart>) -> String {
    let key = app_key(&app.name);
    match subchart {
        None => key,
        Some(s) => subchart_parameter(&key, &app_key(&s.name)),
    }
}

/// The [`chart_parameter`] of subchart `sub_key` of application `app_key`.
fn subchart_parameter(app_key: &str, sub_key: &str) -> String {
    format!("{app_key}--{sub_key}")
}

/// Suffix of the parameter holding the base64 HelmRelease that keptn and custom executors read.
const BASE64_SUFFIX: &str = "--base64";

/// The template an executor runs and the arguments it gets for one chart.
fn executor_call<'s>(
    app: &Application,
    executor: &Executor,
    param: &Cow<'s, str>,
    budget: u64,
) -> (Cow<'static, str>, Arguments<'s>) {
    use ParameterValue::{Seconds, Text};
    let (timeout, deadline) = (Seconds(budget), Seconds(deadline(budget)));
    let encoded = || {
        Text(Cow::Owned(format!(
            "{{{{workflow.parameters.{param}{BASE64_SUFFIX}}}}}"
        )))
    };
    match executor.executor_type() {
        Some(ExecutorType::Keptn) => {
            let (cm_name, cm_namespace) = parse::keptn_config_map(executor).unwrap_or_default();
            (
                KEPTN_TEMPLATE.into(),
                arguments([
                    ("helmrelease", encoded()),
                    ("timeout", timeout),
                    ("deadline", deadline),
                    ("configMapName", Text(cm_name.into())),
                    ("configMapNamespace", Text(cm_namespace.into())),
                ]),
            )
        }
        Some(ExecutorType::Custom) => {
            let data = executor
                .params
                .as_ref()
                .and_then(|p| p.get("data"))
                .map(Value::to_string)
                .unwrap_or_default();
            (
                custom_template(&app.name, &executor.name).into(),
                arguments([
                    ("helmrelease", encoded()),
                    ("timeout", timeout),
                    ("deadline", deadline),
                    ("data", Text(b64(&data).into())),
                ]),
            )
        }
        // Unknown types are refused by validation; release with our executor meanwhile.
        Some(ExecutorType::HelmRelease) | None => (
            HELMRELEASE_TEMPLATE.into(),
            arguments([
                ("chart", Text(param.clone())),
                ("timeout", timeout),
                ("deadline", deadline),
            ]),
        ),
    }
}

fn arguments<'a, const N: usize>(pairs: [(&'a str, ParameterValue<'a>); N]) -> Arguments<'a> {
    Arguments {
        parameters: pairs
            .into_iter()
            .map(|(name, value)| Parameter { name, value })
            .collect(),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The command of our executor image.
const OUR_COMMAND: &str = "kubectl-orkestra";

/// A step's container, with the security context and resources every step pod runs with: no
/// privilege escalation, no capabilities, the runtime's seccomp profile, and requests plus a
/// memory limit (so a step can neither take the node's memory nor go unscheduled under quota).
/// Our own executor (`command: [kubectl-orkestra]`) also runs as the image's non-root user 65532
/// with a read-only root filesystem; keptn and custom images are the user's, and may need to
/// write or run as root.
fn container<'a>(
    name: &'a str,
    image: Cow<'a, str>,
    command: Vec<Cow<'a, str>>,
    args: Vec<&'a str>,
) -> Container<'a> {
    let ours = command.first().is_some_and(|c| c == OUR_COMMAND);
    let user = ours.then_some(65532);
    Container {
        args,
        command,
        image,
        name,
        resources: Resources {
            limits: Limits {
                memory: if ours { "128Mi" } else { "512Mi" },
            },
            requests: Requests {
                cpu: "10m",
                memory: "32Mi",
            },
        },
        security_context: SecurityContext {
            allow_privilege_escalation: false,
            capabilities: Capabilities { drop: ["ALL"] },
            read_only_root_filesystem: ours.then_some(true),
            run_as_group: user,
            run_as_non_root: ours.then_some(true),
            run_as_user: user,
            seccomp_profile: SeccompProfile {
                type_: "RuntimeDefault",
            },
        },
        termination_message_policy: TERMINATION_MESSAGE_POLICY,
    }
}

/// Our executor's release step: it reads the manifest of chart `chart` from the group's revision
/// (the ControllerRevision named like the Workflow, in its namespace; see
/// [`crate::emit::manifest::step_manifest`]), so the manifest is never an argument: no size limit, and
/// Argo's `{{...}}` substitution never sees the values.
fn helmrelease_template(image: &str) -> Template<'_> {
    container_template(
        HELMRELEASE_TEMPLATE.into(),
        vec![InputParameter::required("chart")],
        executor_container(
            image,
            "install",
            &[
                "--revision",
                "{{workflow.namespace}}/{{workflow.name}}",
                "--chart",
                "{{inputs.parameters.chart}}",
            ],
        ),
    )
}

/// The container running our executor: `kubectl-orkestra executor helmrelease --action
/// <action>`, then `args`, waiting at most the template's `timeout` input.
fn executor_container<'a>(image: &'a str, action: &'a str, args: &[&'a str]) -> Container<'a> {
    let mut all = vec!["executor", "helmrelease", "--action", action];
    all.extend_from_slice(args);
    all.extend(["--timeout", "{{inputs.parameters.timeout}}"]);
    container("executor", image.into(), vec![OUR_COMMAND.into()], all)
}

/// Inputs every executor template takes: the executor's `timeout` and Argo's `deadline` (the
/// template's own `timeout`), with defaults for callers that pass neither.
fn time_inputs() -> [InputParameter<'static>; 2] {
    let default_deadline = duration::parse(RELEASE_TIMEOUT)
        .map_or(0, |d| d.as_secs())
        .saturating_add(FLUX_NOTICE_SECONDS + POD_GRACE_SECONDS);
    [
        InputParameter {
            default: Some(RELEASE_TIMEOUT.into()),
            name: "timeout",
        },
        InputParameter {
            default: Some(format!("{default_deadline}s").into()),
            name: "deadline",
        },
    ]
}

/// A container template: `inputs` (plus [`time_inputs`]), the container, Argo's deadline and its
/// retries of pod-level failures.
fn container_template<'a>(
    name: Cow<'a, str>,
    mut inputs: Vec<InputParameter<'a>>,
    container: Container<'a>,
) -> Template<'a> {
    inputs.extend(time_inputs());
    Template {
        container: Some(container),
        inputs: Some(Inputs { parameters: inputs }),
        retry_strategy: Some(RetryStrategy {
            limit: POD_RETRIES.to_string(),
            retry_policy: "OnError",
        }),
        timeout: Some("{{inputs.parameters.deadline}}"),
        ..Template::named(name)
    }
}

/// A container template running our executor with `--action install|delete` on the `manifest`
/// input, waiting at most the `timeout` input (rollback removals: their manifests name the
/// objects only, see [`crate::emit::flux::identity_manifest`]).
pub fn executor_template<'a>(name: &'a str, image: &'a str, action: &'a str) -> Template<'a> {
    container_template(
        name.into(),
        vec![InputParameter::required("manifest")],
        executor_container(
            image,
            action,
            &["--manifest", "{{inputs.parameters.manifest}}"],
        ),
    )
}

/// The arguments of keptn and custom executor images: the base64 HelmRelease to install
/// (`--spec`) and the `timeout` input, then `more`.
fn image_args(more: &[&'static str]) -> Vec<&'static str> {
    let mut all = vec![
        "--spec",
        "{{inputs.parameters.helmrelease}}",
        "--action",
        "install",
        "--timeout",
        "{{inputs.parameters.timeout}}",
    ];
    all.extend_from_slice(more);
    all
}

fn keptn_template() -> Template<'static> {
    container_template(
        KEPTN_TEMPLATE.into(),
        vec![
            InputParameter::required("helmrelease"),
            InputParameter::required("configMapName"),
            InputParameter::required("configMapNamespace"),
        ],
        container(
            "executor",
            KEPTN_IMAGE.into(),
            vec![DEFAULT_EXECUTOR_COMMAND.into()],
            image_args(&[
                "--configmap-name",
                "{{inputs.parameters.configMapName}}",
                "--configmap-namespace",
                "{{inputs.parameters.configMapNamespace}}",
            ]),
        ),
    )
}

/// Custom executors get one template each, so each runs its own image. Its name is made of the
/// lower-case DNS forms (Argo names the step's pod after it).
fn custom_template(app: &str, executor: &str) -> String {
    let key =
        |s: &str| naming::to_dns1123(s, DNS1123_LABEL_MAX).unwrap_or_else(|| naming::short_hash(s));
    template_name(format!("executor-custom--{}--{}", key(app), key(executor)))
}

/// The container templates of custom executors: the user's image, its `name` when it is a DNS
/// label and its `command` when usable (the other fields of `image` are not used).
fn custom_templates(apps: &[Application]) -> Vec<Template<'_>> {
    let mut out: Vec<Template<'_>> = Vec::new();
    for app in apps {
        for e in app
            .spec
            .workflow
            .iter()
            .filter(|e| e.executor_type() == Some(ExecutorType::Custom))
        {
            let name = custom_template(&app.name, &e.name);
            if out.iter().any(|t| t.name == name) {
                continue;
            }
            let container_name = e
                .image
                .as_ref()
                .and_then(|i| i.get("name"))
                .and_then(Value::as_str)
                .filter(|n| naming::is_dns1123_label(n))
                .unwrap_or("executor");
            let command = parse::custom_command(e).map_or_else(
                || vec![DEFAULT_EXECUTOR_COMMAND.into()],
                |c| c.into_iter().map(Cow::Owned).collect(),
            );
            out.push(container_template(
                name.into(),
                vec![
                    InputParameter::required("helmrelease"),
                    InputParameter::required("data"),
                ],
                container(
                    container_name,
                    parse::custom_image(e).unwrap_or_default().into(),
                    command,
                    image_args(&["--interval", "1s", "--data", "{{inputs.parameters.data}}"]),
                ),
            ));
        }
    }
    out
}

/// Identity and ownership of a Workflow created for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowMeta {
    /// Workflow name, e.g. `<group>-r3`.
    pub name: String,
    /// Namespace the Workflow runs in.
    pub namespace: String,
    /// Labels (owner, revision, type).
    pub labels: Vec<(String, String)>,
}

/// The Workflow parameters of a group: the gate switch, and the base64 HelmRelease of each chart
/// whose application has a keptn or custom executor (their images read it from `--spec`; base64
/// has no `{`, so Argo's substitution cannot touch it). Our executor's steps need none: they read
/// their manifests from the revision.
pub fn workflow_parameters(group: &str, spec: &ApplicationGroupSpec) -> Vec<Value> {
    let mut out = Vec::new();
    if has_gates(spec) {
        out.push(json!({ "name": GATES_PARAMETER, "value": "on" }));
    }
    for app in &spec.applications {
        let encoded = app.spec.workflow.iter().any(|e| {
            matches!(
                e.executor_type(),
                Some(ExecutorType::Keptn | ExecutorType::Custom)
            )
        });
        if !encoded {
            continue;
        }
        let charts = app.spec.subcharts.iter().map(Some).chain([None]);
        for sub in charts {
            let name = chart_parameter(app, sub);
            let release = flux::helm_release(group, app, sub).to_string();
            out.push(json!({ "name": format!("{name}{BASE64_SUFFIX}"), "value": b64(&release) }));
        }
    }
    out
}

/// A Workflow that runs the group's injected templates, exactly as the object shows them, with
/// the release manifests of this spec as its parameters.
pub fn workflow(group: &str, spec: &ApplicationGroupSpec, meta: &WorkflowMeta) -> Value {
    let wt = spec.workflow_template.clone().unwrap_or_default();
    let labels: Map<String, Value> = meta
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut wf_spec = json!({
        "entrypoint": ENTRYPOINT,
        "arguments": { "parameters": workflow_parameters(group, spec) },
        "templates": wt.templates.unwrap_or_default(),
    });
    if let Some(sa) = wt.service_account_name {
        wf_spec["serviceAccountName"] = json!(sa);
    }
    if let Some(p) = wt.parallelism {
        wf_spec["parallelism"] = json!(p);
    }
    if let Some(gc) = wt.pod_gc {
        wf_spec["podGC"] = gc;
    }
    if let Some(d) = wt.active_deadline_seconds {
        wf_spec["activeDeadlineSeconds"] = json!(d);
    }
    json!({
        "apiVersion": WORKFLOW_API_VERSION,
        "kind": "Workflow",
        "metadata": { "name": meta.name, "namespace": meta.namespace, "labels": labels },
        "spec": wf_spec,
    })
}

/// Name of the gate task before an application (upper case: no application key has any, so it
/// never collides with an application's task).
pub fn gate_task(app_key: &str) -> String {
    format!("Gate-{app_key}")
}

#[cfg(test)]
mod timeout_tests {
    use super::*;
    use serde_json::json;

    fn app(release: Value) -> Application {
        serde_json::from_value(json!({"name": "a", "spec": {"chart": {"url": "https://c", "name": "a"}, "release": release}}))
            .unwrap_or_default()
    }

    #[test]
    fn every_step_container_keeps_the_end_of_its_log_as_its_message() {
        let spec: ApplicationGroupSpec = serde_json::from_value(json!({"applications": [
            {"name": "a", "spec": {"chart": {"url": "https://c", "name": "a"}, "workflow": [
                {"name": "helmrelease", "type": "helmrelease"},
                {"name": "gate", "type": "keptn", "params": {"configMapRef": {"name": "k", "namespace": "k"}}},
                {"name": "smoke", "type": "custom", "image": {"name": "smoke", "image": "busybox:1.36", "command": ["sh"]}},
            ]}},
        ]}))
        .unwrap_or_default();
        let settings = Settings {
            executor_image: "img".into(),
            parallelism: 1,
        };
        let containers: Vec<Value> = templates(&spec, &settings)
            .into_iter()
            .filter_map(|t| t.get("container").cloned())
            .collect();
        assert_eq!(containers.len(), 3, "{containers:?}");
        for c in &containers {
            assert_eq!(
                c["terminationMessagePolicy"], TERMINATION_MESSAGE_POLICY,
                "{c}"
            );
        }
        assert_eq!(containers[2]["command"], json!(["sh"]));
    }

    #[test]
    fn a_step_allows_every_attempt_remediation_and_pause_flux_makes() {
        // One 5m action, no remediation without retries, a minute to notice.
        assert_eq!(step_timeout(&app(json!({}))), "360s");
        assert_eq!(step_deadline(&app(json!({}))), "660s");
        assert_eq!(step_timeout(&app(json!({"timeout": "10m"}))), "660s");
        // 4 attempts of 2m + 2m of rollback each, pauses of 0.75 + 1.5 + 3 s.
        let retried = json!({"timeout": "2m", "install": {"remediation": {"retries": 3}}, "upgrade": {"remediation": {"retries": 1}}});
        assert_eq!(
            step_timeout(&app(retried)),
            format!("{}s", 4 * 240 + 6 + 60)
        );
        // Remediation timeouts of their own count instead.
        let own = json!({"timeout": "1m", "upgrade": {"remediation": {"retries": 1}}, "uninstall": {"timeout": "3m"}});
        assert_eq!(step_timeout(&app(own)), format!("{}s", 2 * 240 + 1 + 60));
    }

    #[test]
    fn negative_retries_are_kept_and_budgeted_as_many_attempts() {
        let forever = json!({"timeout": "1m", "install": {"remediation": {"retries": -1}}});
        let budget = step_budget(&app(forever));
        assert!(budget > 10 * 120, "{budget}");
        assert!(budget < 10 * 120 + 60 + 2000, "{budget}");
    }

    #[test]
    fn long_names_stay_within_argos_limits() {
        let long = template_name("a".repeat(200));
        assert_eq!(long.len(), ARGO_NAME_MAX);
        assert_ne!(long, template_name(format!("{}b", "a".repeat(199))));
        assert_eq!(template_name("app-x".into()), "app-x");
        assert_eq!(app_key("3scale"), "N3scale");
        assert_eq!(app_key("web"), "web");
        let name = custom_template(&"a".repeat(63), &"b".repeat(63));
        assert!(
            name.len() <= ARGO_NAME_MAX && name == name.to_lowercase(),
            "{name}"
        );
    }
}

#[cfg(test)]
mod typed_tests {
    use super::*;

    /// Specs covering every template shape, with the templates the `serde_json::Value`-based
    /// generator these types replaced wrote for them (`serde_json::to_vec` of its list), byte for
    /// byte: the text the API server stores, which the mutating webhook compares.
    const GOLDEN: [(&str, &str, &str); 4] = [
        (
            "plain",
            include_str!("../../tests/fixtures/templates/plain.spec.json"),
            include_str!("../../tests/fixtures/templates/plain.templates.json"),
        ),
        (
            "gates",
            include_str!("../../tests/fixtures/templates/gates.spec.json"),
            include_str!("../../tests/fixtures/templates/gates.templates.json"),
        ),
        (
            "subcharts",
            include_str!("../../tests/fixtures/templates/subcharts.spec.json"),
            include_str!("../../tests/fixtures/templates/subcharts.templates.json"),
        ),
        (
            "executors",
            include_str!("../../tests/fixtures/templates/executors.spec.json"),
            include_str!("../../tests/fixtures/templates/executors.templates.json"),
        ),
    ];

    fn spec(name: &str, text: &str) -> ApplicationGroupSpec {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The settings the golden files were written with: the spec's own, else fixed ones.
    fn settings(spec: &ApplicationGroupSpec) -> Settings {
        let wt = spec.workflow_template.clone().unwrap_or_default();
        Settings {
            executor_image: wt
                .executor_image
                .unwrap_or_else(|| "ghcr.io/orkestra/executor:test".into()),
            parallelism: wt.parallelism.unwrap_or(10),
        }
    }

    #[test]
    fn typed_templates_write_the_bytes_the_value_based_generator_wrote() {
        for (name, text, golden) in GOLDEN {
            let spec = spec(name, text);
            let settings = settings(&spec);
            assert_eq!(templates_json(&spec, &settings).get(), golden, "{name}");
            let values = serde_json::to_string(&templates(&spec, &settings)).unwrap_or_default();
            assert_eq!(values, golden, "{name}");
        }
    }

    #[test]
    fn typed_fields_are_written_as_serde_json_writes_their_values() {
        // A `Value` writes its keys sorted, as the API server does, and its strings escaped as
        // serde_json escapes them: the hand-written text must survive that round trip as is.
        let group = |n: usize| {
            let apps: Vec<Value> = (0..n)
                .map(|i| {
                    let deps: Vec<String> = (0..i.min(3)).map(|d| format!("app-{d}")).collect();
                    json!({"name": format!("app-{i}"), "dependencies": deps, "spec": {
                        "chart": {"url": "https://c", "name": format!("chart-{i}")},
                        "gate": i % 7 == 3}})
                })
                .collect();
            serde_json::to_string(&json!({ "applications": apps })).unwrap_or_default()
        };
        let generated = group(40);
        // User strings that need escaping reach the templates through custom executors.
        let escapes = serde_json::to_string(&json!({"applications": [{"name": "odd", "spec": {
            "chart": {"url": "https://c", "name": "odd"},
            "workflow": [{"name": "check", "type": "custom", "image": {
                "image": "registry.example/\u{e9}t\u{e9}:\"1\"",
                "command": ["sh", "-c", "printf 'a\\tb\\n' \"$0\"\n\t\u{1}\u{1f}\u{7f}", "\u{2603}"]}}]}}]}))
        .unwrap_or_default();
        let specs = GOLDEN.iter().map(|(name, text, _)| (*name, *text)).chain([
            ("generated", generated.as_str()),
            ("escapes", escapes.as_str()),
        ]);
        for (name, text) in specs {
            let spec = spec(name, text);
            let json = templates_json(&spec, &settings(&spec));
            let sorted: Value = serde_json::from_str(json.get()).unwrap_or_default();
            assert_eq!(
                serde_json::to_string(&sorted).unwrap_or_default(),
                json.get(),
                "{name}"
            );
        }
        let odd = templates_json(
            &spec("escapes", &escapes),
            &settings(&spec("escapes", &escapes)),
        );
        for escaped in [
            "\\\"$0\\\"\\n\\t\\u0001\\u001f\u{7f}",
            r"\\t",
            "\u{2603}",
            "\u{e9}t",
        ] {
            assert!(odd.get().contains(escaped), "{escaped} in {}", odd.get());
        }
    }
}
