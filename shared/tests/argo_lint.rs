//! Every Workflow the project generates passes Argo's own validation: the lint and
//! `workflow/validate` code of the Argo version the test cluster runs, built by
//! `tests/argo-lint/build.sh` (whose binary `ORKESTRA_ARGO_LINT` names; `tests/run` sets it).
//! Without it these tests skip, unless `ORKESTRA_ARGO_LINT_REQUIRED=1` (then they fail).
//!
//! Fed: the first `promote` Workflow of every example, every `tests/fixtures/argo` group and every
//! admitted `tests/fixtures/warnings` group (forward releases with gates, every executor type),
//! the rollback Workflow of each (removing an application, restoring the rest), and a batch of
//! generated groups with names and sizes near every limit (property test).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use orkestra::admission::{defaults, validate};
use orkestra::api::ApplicationGroupSpec;
use orkestra::emit::revision;
use orkestra::emit::revision::{NewRevision, Owner, ReleaseType};
use orkestra::emit::rollback;
use orkestra::input::load;
use orkestra::input::parse;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{Value, json};

/// The validator binary, or `None` (skip) when it is not built and not required.
fn argo_lint() -> Option<PathBuf> {
    match std::env::var_os("ORKESTRA_ARGO_LINT") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("ORKESTRA_ARGO_LINT_REQUIRED").as_deref() == Ok("1") => {
            panic!("ORKESTRA_ARGO_LINT is not set: build it with tests/argo-lint/build.sh")
        }
        _ => {
            eprintln!("skipped: ORKESTRA_ARGO_LINT is not set (tests/argo-lint/build.sh)");
            None
        }
    }
}

/// Writes each Workflow to its own file in a fresh directory and runs the validator over it:
/// `Ok(output)` when it accepts them all, `Err(output)` otherwise.
fn lint(bin: &Path, name: &str, workflows: &[(String, Value)]) -> Result<String, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("argo-lint-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for (file, wf) in workflows {
        let text = serde_saphyr::to_string(wf).unwrap_or_else(|e| panic!("{file}: {e}"));
        fs::write(dir.join(format!("{file}.yaml")), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = Command::new(bin)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A group as the webhooks would store it; panics when it is refused.
fn stored(file: &str, object: &Value) -> Value {
    let checked = validate::check(object);
    assert!(
        checked.report.is_valid(),
        "{file}: {:?}",
        checked.report.errors
    );
    checked
        .mutated
        .unwrap_or_else(|| panic!("{file}: not defaulted"))
}

/// The rollback Workflow from `object`'s spec back to the same spec without its last
/// application that nothing depends on (so the rollback removes one application), if any.
fn rollback_of(object: &Value) -> Option<Value> {
    let current = parse::parse_spec(object).ok()?;
    let apps = &current.applications;
    let leaf = apps
        .iter()
        .rposition(|a| !apps.iter().any(|b| b.dependencies.contains(&a.name)))?;
    if apps.len() < 2 {
        return None;
    }
    let mut target = ApplicationGroupSpec {
        workflow_template: None,
        ..current.clone()
    };
    target.applications.remove(leaf);
    let target = defaults::default_spec(&target);
    let name = object.pointer("/metadata/name")?.as_str()?.to_string();
    let owner = Owner {
        name,
        uid: "0b7d4c1e-0000-4000-8000-000000000001".into(),
        generation: Some(3),
    };
    let r = NewRevision {
        number: 2,
        namespace: orkestra::api::defaults::WORKFLOW_NAMESPACE,
        release_type: ReleaseType::Rollback,
        promoted_by: Some("admin"),
        rollback_of: Some(1),
    };
    Some(rollback::rollback_workflow(&owner, &current, &target, &r))
}

/// Every Workflow made from the groups in the repository: forward and rollback.
fn repository_workflows() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for dir in ["examples", "tests/fixtures/argo", "tests/fixtures/warnings"] {
        for path in yaml_files(dir) {
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let docs = load::documents(&text).unwrap_or_else(|e| panic!("{stem}: {e}"));
            for doc in docs {
                let file = format!("{}-{stem}-{}", dir.replace('/', "-"), doc.index);
                let object = stored(&file, &doc.value);
                let wf = revision::first_workflow(&object).unwrap_or_else(|e| panic!("{e}"));
                out.push((format!("{file}-forward"), wf));
                if let Some(wf) = rollback_of(&object) {
                    out.push((format!("{file}-rollback"), wf));
                }
            }
        }
    }
    out
}

#[test]
fn every_generated_workflow_passes_argos_validation() {
    let Some(bin) = argo_lint() else { return };
    let workflows = repository_workflows();
    let rollbacks = workflows
        .iter()
        .filter(|(f, _)| f.ends_with("-rollback"))
        .count();
    assert!(
        workflows.len() >= 8 && rollbacks >= 3,
        "{} workflows",
        workflows.len()
    );
    if let Err(out) = lint(&bin, "repository", &workflows) {
        panic!("Argo refuses generated Workflows:\n{out}");
    }
}

/// The validator does refuse what the controller would refuse (so the test above can fail).
#[test]
fn argos_validation_refuses_the_defects_it_is_there_to_catch() {
    let Some(bin) = argo_lint() else { return };
    let base = |templates: Value| {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
               "metadata": {"name": "bad", "namespace": "orkestra"},
               "spec": {"entrypoint": "entry", "templates": templates}})
    };
    let leaf = |name: &str| json!({"name": name, "container": {"image": "busybox:1", "command": ["true"]}});
    let cases = [
        (
            "long-template",
            base(json!([
                {"name": "entry", "dag": {"tasks": [{"name": "a", "template": "t".repeat(129)}]}},
                leaf(&"t".repeat(129)),
            ])),
        ),
        (
            "digit-task",
            base(json!([
                {"name": "entry", "dag": {"tasks": [
                    {"name": "web", "template": "step"},
                    {"name": "3scale", "template": "step", "dependencies": ["web"]},
                ]}},
                leaf("step"),
            ])),
        ),
        (
            "unknown-field",
            base(
                json!([{"name": "entry", "container": {"image": "busybox:1", "commands": ["true"]}}]),
            ),
        ),
    ];
    for (name, wf) in cases {
        let result = lint(&bin, &format!("refused-{name}"), &[(name.to_string(), wf)]);
        assert!(result.is_err(), "{name} was accepted: {result:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Property: every group validate accepts yields Workflows Argo accepts.

/// A name of `len` characters, starting with `first` (a digit or a letter), with `-` and `.`
/// inside where `dots` allows them.
fn name(len: std::ops::RangeInclusive<usize>, dots: bool) -> impl Strategy<Value = String> {
    let body = if dots { "[a-z0-9.-]" } else { "[a-z0-9-]" };
    (prop::sample::select(vec!['3', 'a', 'z', '0']), len)
        .prop_flat_map(move |(first, n)| {
            prop::collection::vec(
                prop::string::string_regex(body).unwrap_or_else(|e| panic!("{e}")),
                n.saturating_sub(2),
            )
            .prop_map(move |mid| format!("{first}{}x", mid.concat()))
        })
        .prop_map(move |s| {
            if dots {
                // A DNS subdomain: no empty or dash-edged labels.
                s.split('.')
                    .map(|l| l.trim_matches('-'))
                    .filter(|l| !l.is_empty())
                    .map(|l| l.chars().take(63).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(".")
            } else {
                s
            }
        })
}

fn group_strategy() -> impl Strategy<Value = Value> {
    let app = (
        name(1..=63, false),
        prop::collection::vec(name(1..=63, false), 0..3),
        prop::collection::vec((name(1..=63, false), 0..3usize), 1..4),
        any::<bool>(),
        prop::sample::select(vec!["1m", "90s", "1h30m", "500ms", "2.5m"]),
        -2i64..4,
    );
    (name(1..=253, true), prop::collection::vec(app, 1..5)).prop_map(|(group, apps)| {
        let names: Vec<String> = apps.iter().map(|a| a.0.clone()).collect();
        let applications: Vec<Value> = apps
            .iter()
            .enumerate()
            .map(|(i, (app, subs, executors, gate, timeout, retries))| {
                let workflow: Vec<Value> = executors
                    .iter()
                    .enumerate()
                    .map(|(k, (e, kind))| {
                        let e = format!("{e}{k}").chars().rev().take(63).collect::<String>();
                        match kind {
                            0 => json!({"name": e, "type": "helmrelease"}),
                            1 => json!({"name": e, "type": "keptn",
                                        "params": {"configMapRef": {"name": "k", "namespace": "keptn"}}}),
                            _ => json!({"name": e, "type": "custom",
                                        "image": {"name": "check", "image": "registry.example.com/c:1", "command": ["/c"]},
                                        "params": {"data": {"x": "{{workflow.name}}"}}}),
                        }
                    })
                    .collect();
                json!({
                    "name": app,
                    "dependencies": names[..i].iter().take(2).collect::<Vec<_>>(),
                    "spec": {
                        "gate": gate,
                        "chart": {"url": format!("https://charts.example.com/{app}"), "name": app, "version": "1.0.0"},
                        "release": {"timeout": timeout, "install": {"remediation": {"retries": retries}},
                                    "values": {"note": "{{workflow.name}} {{inputs.parameters.manifest}}"}},
                        "subcharts": subs.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
                        "workflow": workflow,
                    },
                })
            })
            .collect();
        json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
               "metadata": {"name": group}, "spec": {"applications": applications}})
    })
}

#[test]
fn every_group_validate_accepts_yields_workflows_argo_accepts() {
    let Some(bin) = argo_lint() else { return };
    let config = Config::default();
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = group_strategy();
    let mut workflows = Vec::new();
    let mut refused = 0;
    // Bounded: one validator run over the whole batch.
    for i in 0..64 {
        let group = strategy
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("{e}"))
            .current();
        let checked = validate::check(&group);
        let Some(object) = checked.mutated.filter(|_| checked.report.is_valid()) else {
            refused += 1;
            continue;
        };
        let wf = revision::first_workflow(&object).unwrap_or_else(|e| panic!("{e}"));
        workflows.push((format!("generated-{i}-forward"), wf));
        if let Some(wf) = rollback_of(&object) {
            workflows.push((format!("generated-{i}-rollback"), wf));
        }
    }
    assert!(
        workflows.len() >= 48,
        "too few generated groups were valid ({refused} refused)"
    );
    if let Err(out) = lint(&bin, "generated", &workflows) {
        panic!("Argo refuses Workflows of groups validate accepts:\n{out}");
    }
}
