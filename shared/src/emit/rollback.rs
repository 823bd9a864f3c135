//! The rollback Workflow: `remove` (applications added since the restored revision, dependents
//! first) then `apply` (the restored spec's own recorded `entry` DAG, gates off).

use serde_json::{Value, json};

use crate::api::ApplicationGroupSpec;
use crate::api::defaults::{EXECUTOR_IMAGE, RELEASE_TIMEOUT, workflow_settings};
use crate::emit::revision::{self, NewRevision, Owner};
use crate::emit::{argo, flux};
use crate::graph;

/// Applications of `current` that `target` lacks, dependents before their dependencies.
pub fn removed_in_reverse(
    current: &ApplicationGroupSpec,
    target: &ApplicationGroupSpec,
) -> Vec<usize> {
    let dag = graph::app_dag(current);
    let order = dag
        .reverse_order()
        .unwrap_or_else(|| (0..current.applications.len()).rev().collect());
    order
        .into_iter()
        .filter(|&i| {
            !target
                .applications
                .iter()
                .any(|t| t.name == current.applications[i].name)
        })
        .collect()
}

/// Template that deletes one chart's HelmRelease (the executor's `--action delete`).
pub const DELETE_TEMPLATE: &str = "executor-helmrelease-delete";
/// Entry point of a rollback Workflow.
pub const ROLLBACK_ENTRYPOINT: &str = "rollback";
/// The DAG removing applications added since the restored revision.
pub const REMOVE_TEMPLATE: &str = "remove";
/// Prefix of the parameters holding the manifests of removed charts.
const REMOVE_PARAMETER_PREFIX: &str = "remove--";

/// The rollback Workflow: `remove` (added applications, reverse order) then `apply` (the restored
/// spec's own recorded `entry` DAG, gates off), as revision `r` of the group.
pub fn rollback_workflow(
    owner: &Owner,
    current: &ApplicationGroupSpec,
    target: &ApplicationGroupSpec,
    r: &NewRevision<'_>,
) -> Value {
    let mut wf = argo::workflow(&owner.name, target, &revision::workflow_meta(owner, r));
    revision::finish_workflow(&mut wf, owner, r, true);
    let removed = removed_in_reverse(current, target);
    let image = workflow_settings(target)
        .executor_image
        .unwrap_or_else(|| EXECUTOR_IMAGE.into());
    let mut tasks: Vec<Value> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    // Task names of each removed application, so its dependencies' removals can wait for them.
    let mut done: Vec<(String, Vec<String>)> = Vec::new();
    for &i in &removed {
        let app = &current.applications[i];
        let timeout = app
            .spec
            .release
            .as_ref()
            .and_then(|r| r.timeout.clone())
            .unwrap_or_else(|| RELEASE_TIMEOUT.into());
        // What depends on this application was removed earlier in `removed`: wait for it.
        let after: Vec<String> = done
            .iter()
            .filter(|(name, _)| {
                current
                    .applications
                    .iter()
                    .any(|a| &a.name == name && a.dependencies.contains(&app.name))
            })
            .flat_map(|(_, t)| t.clone())
            .collect();
        let own = argo::chart_parameter(app, None);
        let mut names = vec![own.clone()];
        let mut push = |param: String, deps: Vec<String>, manifest: Value| {
            params.push(json!({ "name": format!("{REMOVE_PARAMETER_PREFIX}{param}"), "value": manifest.to_string() }));
            let mut t = json!({
                "name": param,
                "template": DELETE_TEMPLATE,
                "arguments": { "parameters": [
                    { "name": "manifest", "value": format!("{{{{workflow.parameters.{REMOVE_PARAMETER_PREFIX}{param}}}}}") },
                    { "name": "timeout", "value": timeout },
                ]},
            });
            if !deps.is_empty() {
                t["dependencies"] = json!(deps);
            }
            tasks.push(t);
        };
        // The parent chart goes first (it was released last), then its subcharts in reverse.
        push(
            own.clone(),
            after,
            flux::identity_manifest(&owner.name, app, None),
        );
        let subs = &app.spec.subcharts;
        for sub in subs.iter().rev() {
            let param = argo::chart_parameter(app, Some(sub));
            let mut deps = vec![own.clone()];
            deps.extend(
                subs.iter()
                    .filter(|s| s.dependencies.contains(&sub.name))
                    .map(|s| argo::chart_parameter(app, Some(s))),
            );
            push(
                param.clone(),
                deps,
                flux::identity_manifest(&owner.name, app, Some(sub)),
            );
            names.push(param);
        }
        done.push((app.name.clone(), names));
    }
    let spec = &mut wf["spec"];
    let mut root = Vec::new();
    if !tasks.is_empty() {
        root.push(json!({ "name": "remove", "template": REMOVE_TEMPLATE }));
    }
    let mut apply = json!({ "name": "apply", "template": argo::ENTRYPOINT });
    if !tasks.is_empty() {
        apply["dependencies"] = json!(["remove"]);
    }
    root.push(apply);
    if let Some(templates) = spec["templates"].as_array_mut() {
        templates.insert(
            0,
            json!({ "name": ROLLBACK_ENTRYPOINT, "dag": { "tasks": root } }),
        );
        if !tasks.is_empty() {
            templates.push(json!({ "name": REMOVE_TEMPLATE, "dag": { "tasks": tasks } }));
            let mut delete = argo::executor_template(DELETE_TEMPLATE, &image, "delete");
            argo::harden(&mut delete);
            templates.push(delete);
        }
    }
    spec["entrypoint"] = json!(ROLLBACK_ENTRYPOINT);
    if let Some(p) = spec
        .pointer_mut("/arguments/parameters")
        .and_then(Value::as_array_mut)
    {
        p.extend(params);
    }
    wf
}
