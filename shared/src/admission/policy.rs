//! What a cluster admin allows groups to ask for: the namespaces their Workflows run in, the
//! service accounts those run as, and the images they run. Whoever may write a group and promote
//! it runs these images as that account in that namespace, so without a policy Orkestra would
//! hand out every service account of the cluster. The webhook takes the policy from its flags
//! and denies a group outside it in every enforcement mode, naming the rule.

use serde_json::Value;

use crate::admission::validate::Violation;
use crate::api::defaults::workflow_settings;
use crate::api::{ExecutorType, Templates};
use crate::emit::argo;
use crate::input::object::GroupObject;
use crate::input::parse;

/// The admin's policy. An empty list allows anything for its field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Namespaces `spec.workflowTemplate.namespace` may name.
    pub workflow_namespaces: Vec<String>,
    /// Service accounts `spec.workflowTemplate.serviceAccountName` may name.
    pub service_accounts: Vec<String>,
    /// Prefixes every executor image must start with (end them with `/` or `:`, so that
    /// `ghcr.io/orkestra-rs/` does not also allow `ghcr.io/orkestra-rs-evil/`).
    pub image_prefixes: Vec<String>,
}

impl Policy {
    /// True when nothing is restricted.
    pub fn is_open(&self) -> bool {
        self.workflow_namespaces.is_empty()
            && self.service_accounts.is_empty()
            && self.image_prefixes.is_empty()
    }

    /// Every way `object` (an ApplicationGroup, defaulted or not) leaves the policy. Defaults
    /// count: a group that names no namespace runs in the default one, which must be allowed.
    pub fn check(&self, object: &GroupObject) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.is_open() {
            return out;
        }
        let Ok(spec) = &object.spec else {
            return out; // the rules report why the spec cannot be read
        };
        let wt = workflow_settings(spec);
        let namespace = wt.namespace.unwrap_or_default();
        if !allowed(&self.workflow_namespaces, &namespace, str::eq) {
            out.push(self.denial(
                "spec.workflowTemplate.namespace",
                "workflow namespace",
                &namespace,
                "--allowed-workflow-namespaces",
                &self.workflow_namespaces,
            ));
        }
        let account = wt.service_account_name.unwrap_or_default();
        if !allowed(&self.service_accounts, &account, str::eq) {
            out.push(self.denial(
                "spec.workflowTemplate.serviceAccountName",
                "service account",
                &account,
                "--allowed-service-accounts",
                &self.service_accounts,
            ));
        }
        if self.image_prefixes.is_empty() {
            return out;
        }
        let mut images: Vec<(String, String)> = vec![(
            "spec.workflowTemplate.executorImage".into(),
            wt.executor_image.unwrap_or_default(),
        )];
        for (i, app) in spec.applications.iter().enumerate() {
            for (k, e) in app.spec.workflow.iter().enumerate() {
                let path = format!("spec.applications[{i}].spec.workflow[{k}]");
                match e.executor_type() {
                    Some(ExecutorType::Custom) => {
                        if let Some(image) = parse::custom_image(e) {
                            images.push((format!("{path}.image.image"), image));
                        }
                    }
                    Some(ExecutorType::Keptn) => {
                        images.push((format!("{path}.type"), argo::KEPTN_IMAGE.into()));
                    }
                    _ => {}
                }
            }
        }
        // The stored templates are what a promote runs.
        let templates = (spec.workflow_template.as_ref())
            .and_then(|w| w.templates.as_ref())
            .map(Templates::to_values)
            .unwrap_or_default();
        for (t, template) in templates.iter().enumerate() {
            if let Some(image) = template.pointer("/container/image").and_then(Value::as_str)
                && !images.iter().any(|(_, i)| i == image)
            {
                images.push((
                    format!("spec.workflowTemplate.templates[{t}].container.image"),
                    image.to_string(),
                ));
            }
        }
        for (path, image) in images {
            if !allowed(&self.image_prefixes, &image, |i, p| i.starts_with(p)) {
                out.push(self.denial(
                    &path,
                    "image",
                    &image,
                    "--allowed-image-prefixes",
                    &self.image_prefixes,
                ));
            }
        }
        out
    }

    fn denial(
        &self,
        path: &str,
        what: &str,
        value: &str,
        rule: &str,
        list: &[String],
    ) -> Violation {
        Violation {
            path: path.to_string(),
            message: format!(
                "{what} {value:?} is not allowed by the cluster's Orkestra policy ({rule}={})",
                list.join(",")
            ),
        }
    }
}

fn allowed(list: &[String], value: &str, matches: impl Fn(&str, &str) -> bool) -> bool {
    list.is_empty() || list.iter().any(|entry| matches(value, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::object::Source;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            workflow_namespaces: vec!["orkestra".into()],
            service_accounts: vec!["orkestra".into()],
            image_prefixes: vec!["ghcr.io/orkestra-rs/".into(), "azureorkestra/".into()],
        }
    }

    fn check(policy: &Policy, object: &Value) -> Vec<Violation> {
        Source::Value(object)
            .read()
            .map(|o| policy.check(&o))
            .unwrap_or_default()
    }

    fn group(workflow_template: Value, executors: Value) -> Value {
        json!({"kind": "ApplicationGroup", "metadata": {"name": "g"}, "spec": {
            "workflowTemplate": workflow_template,
            "applications": [{"name": "a", "spec": {"chart": {"url": "https://c", "name": "a"},
                "release": {}, "workflow": executors}}]}})
    }

    #[test]
    fn the_defaults_are_within_a_policy_that_allows_them() {
        let g = group(json!({}), json!([{"name": "k", "type": "keptn"}]));
        assert_eq!(check(&policy(), &g), vec![]);
        assert_eq!(
            check(
                &Policy::default(),
                &group(json!({"namespace": "kube-system"}), json!([]))
            ),
            vec![]
        );
    }

    #[test]
    fn each_rule_is_named() {
        let g = group(
            json!({"namespace": "kube-system", "serviceAccountName": "replicaset-controller",
                   "executorImage": "ghcr.io/orkestra-rs-evil/x:1"}),
            json!([{"name": "c", "type": "custom", "image": {"image": "evil.example.com/pwn:1"}}]),
        );
        let got: Vec<String> = check(&policy(), &g)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.workflowTemplate.namespace: workflow namespace \"kube-system\" is not allowed by the cluster's Orkestra policy (--allowed-workflow-namespaces=orkestra)",
                "spec.workflowTemplate.serviceAccountName: service account \"replicaset-controller\" is not allowed by the cluster's Orkestra policy (--allowed-service-accounts=orkestra)",
                "spec.workflowTemplate.executorImage: image \"ghcr.io/orkestra-rs-evil/x:1\" is not allowed by the cluster's Orkestra policy (--allowed-image-prefixes=ghcr.io/orkestra-rs/,azureorkestra/)",
                "spec.applications[0].spec.workflow[0].image.image: image \"evil.example.com/pwn:1\" is not allowed by the cluster's Orkestra policy (--allowed-image-prefixes=ghcr.io/orkestra-rs/,azureorkestra/)",
            ]
        );
    }

    #[test]
    fn hand_written_templates_are_checked_too() {
        let mut g = group(json!({}), json!([]));
        g["spec"]["workflowTemplate"]["templates"] =
            json!([{"name": "x", "container": {"image": "busybox:1"}}]);
        let got = check(&policy(), &g);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].path,
            "spec.workflowTemplate.templates[0].container.image"
        );
    }
}
