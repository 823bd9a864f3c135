//! The rollback Workflow: `remove` (applications added since the restored revision, dependents
//! first) then `apply` (the restored spec's own recorded `entry` DAG, gates off); and the reverse
//! Workflow of a deleted group, which only removes.

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
    // A reverse Workflow restores nothing: its target has no applications, and no `entry` DAG.
    if !target.applications.is_empty() {
        let mut apply = json!({ "name": "apply", "template": argo::ENTRYPOINT });
        if !tasks.is_empty() {
            apply["dependencies"] = json!(["remove"]);
        }
        root.push(apply);
    }
    if let Some(templates) = spec["templates"].as_array_mut() {
        templates.insert(
            0,
            json!({ "name": ROLLBACK_ENTRYPOINT, "dag": { "tasks": root } }),
        );
        if !tasks.is_empty() {
            templates.push(json!({ "name": REMOVE_TEMPLATE, "dag": { "tasks": tasks } }));
            templates.push(argo::executor_template(DELETE_TEMPLATE, &image, "delete").to_value());
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

/// Entry point of a reverse Workflow.
pub const REVERSE_ENTRYPOINT: &str = "reverse";

/// The reverse Workflow of a deleted group, as the original Orkestra ran one: every application
/// removed (each chart's HelmRelease and its HelmRepository, by the executor's `--action
/// delete`), dependents first, a parent chart before its subcharts. Named `<group>-reverse`,
/// labelled `workflow-type: reverse`, and not owned by the group: a foreground deletion of the
/// group must not collect the Workflow that is removing its releases.
pub fn reverse_workflow(owner: &Owner, current: &ApplicationGroupSpec, namespace: &str) -> Value {
    let target = ApplicationGroupSpec {
        applications: Vec::new(),
        workflow_template: current.workflow_template.clone().map(|mut wt| {
            wt.templates = None;
            wt
        }),
        ..ApplicationGroupSpec::default()
    };
    let r = NewRevision {
        number: 0,
        namespace,
        release_type: revision::ReleaseType::Rollback,
        promoted_by: None,
        rollback_of: None,
    };
    let mut wf = rollback_workflow(owner, current, &target, &r);
    let meta = &mut wf["metadata"];
    meta["name"] = json!(crate::naming::reverse_name(&owner.name));
    if let Some(m) = meta.as_object_mut() {
        m.remove("ownerReferences");
        m.remove("annotations");
    }
    if let Some(labels) = meta["labels"].as_object_mut() {
        labels.remove(crate::labels::REVISION_LABEL);
        labels.insert(crate::labels::WORKFLOW_TYPE_LABEL.into(), json!("reverse"));
    }
    let spec = &mut wf["spec"];
    spec["entrypoint"] = json!(REVERSE_ENTRYPOINT);
    if let Some(root) = spec.pointer_mut("/templates/0") {
        root["name"] = json!(REVERSE_ENTRYPOINT);
    }
    wf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn app(name: &str, deps: &[&str], subcharts: Value) -> Value {
        json!({"name": name, "dependencies": deps, "spec": {
            "chart": {"url": "https://c", "name": name, "version": "1.0.0"},
            "release": {"targetNamespace": name}, "subcharts": subcharts}})
    }

    #[test]
    fn reverse_removes_every_application_dependents_first_and_applies_nothing() {
        let spec: ApplicationGroupSpec = serde_json::from_value(json!({"applications": [
            app("db", &[], json!([])),
            app("api", &["db"], json!([])),
            app("cache", &["db"], json!([])),
            app("web", &["cache", "api"], json!([{"name": "ui"}, {"name": "edge", "dependencies": ["ui"]}])),
        ]}))
        .expect("spec");
        let owner = Owner {
            name: "shop".into(),
            uid: "u".into(),
            generation: Some(3),
        };
        let wf = reverse_workflow(&owner, &spec, "orkestra");
        let meta = &wf["metadata"];
        assert_eq!(meta["name"], "shop-reverse");
        assert_eq!(meta["labels"][labels::WORKFLOW_TYPE_LABEL], "reverse");
        assert_eq!(meta["labels"][labels::OWNER], "shop");
        assert!(meta["labels"].get(labels::REVISION_LABEL).is_none());
        assert!(meta.get("ownerReferences").is_none());
        assert_eq!(wf["spec"]["entrypoint"], REVERSE_ENTRYPOINT);
        let templates = wf["spec"]["templates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = templates
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        // Only the removal: no `entry` DAG, nothing re-applied.
        assert_eq!(
            names,
            vec![REVERSE_ENTRYPOINT, REMOVE_TEMPLATE, DELETE_TEMPLATE]
        );
        assert_eq!(
            templates[0]["dag"]["tasks"],
            json!([{"name": "remove", "template": REMOVE_TEMPLATE}])
        );
        let tasks = templates[1]["dag"]["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let order: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(
            order,
            vec!["web", "web--edge", "web--ui", "cache", "api", "db"]
        );
        // db goes last: everything that depends on it, directly or not, is removed first.
        assert_eq!(tasks[5]["dependencies"], json!(["cache", "api"]));
    }
}
