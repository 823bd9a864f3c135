//! The Argo Workflow templates Orkestra generates, as typed values serialized straight to JSON
//! (no `serde_json::Value` in between: a large group's templates are mostly its own strings,
//! which these types borrow).
//!
//! Their JSON is exactly the text the Kubernetes API server stores for them: the mutating webhook
//! compares the stored templates with the generated ones as text, and the API server (like
//! `serde_json::Value`) writes object keys in sorted byte order. So every struct below declares its
//! fields in byte order of their JSON names (upper case sorts before lower case: `retryPolicy`
//! before `retryStrategy`), and skips absent fields instead of writing `null`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

/// A Workflow template: a DAG of tasks, a container step or a suspend step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag: Option<Tasks<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs<'a>>,
    pub name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend: Option<Suspend>,
    /// Argo's deadline of the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<&'a str>,
}

impl<'a> Template<'a> {
    /// A template with only a name, to fill in.
    pub fn named(name: Cow<'a, str>) -> Self {
        Self {
            container: None,
            dag: None,
            inputs: None,
            name,
            parallelism: None,
            retry_strategy: None,
            suspend: None,
            timeout: None,
        }
    }

    /// A DAG template running `tasks`, at most `parallelism` at once when set.
    pub fn dag(name: Cow<'a, str>, tasks: Vec<Task<'a>>, parallelism: Option<i64>) -> Self {
        Self {
            dag: Some(Tasks { tasks }),
            parallelism,
            ..Self::named(name)
        }
    }

    /// A suspend template (`{}`: it waits until resumed).
    pub fn suspend(name: &'a str) -> Self {
        Self {
            suspend: Some(Suspend {}),
            ..Self::named(name.into())
        }
    }

    /// The template as a JSON value.
    pub fn to_value(&self) -> Value {
        // Cannot fail: a template holds only strings, numbers and booleans (`null` if it did).
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The tasks of a DAG template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tasks<'a> {
    pub tasks: Vec<Task<'a>>,
}

/// A task of a DAG: the template it runs, after its dependencies, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Cow<'a, str>>,
    pub name: Cow<'a, str>,
    pub template: Cow<'a, str>,
    /// Argo's condition for running the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl<'a> Task<'a> {
    /// A task running `template` after `dependencies`, without arguments.
    pub fn new(
        name: impl Into<Cow<'a, str>>,
        template: impl Into<Cow<'a, str>>,
        dependencies: Vec<Cow<'a, str>>,
    ) -> Self {
        Self {
            arguments: None,
            dependencies,
            name: name.into(),
            template: template.into(),
            when: None,
        }
    }
}

/// The parameters a task passes to its template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arguments<'a> {
    pub parameters: Vec<Parameter<'a>>,
}

/// A parameter passed: `name` set to `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// The parameters a template takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inputs<'a> {
    pub parameters: Vec<InputParameter<'a>>,
}

/// A parameter taken, with its value when the task passes none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputParameter<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Cow<'a, str>>,
    pub name: &'a str,
}

impl<'a> InputParameter<'a> {
    /// A parameter every task passes.
    pub fn required(name: &'a str) -> Self {
        Self {
            default: None,
            name,
        }
    }
}

/// Argo's retries of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// A count, written as a string (Argo's `IntOrString`).
    pub limit: String,
    pub retry_policy: &'static str,
}

/// The (empty) body of a suspend template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspend {}

/// The container of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container<'a> {
    pub args: Vec<&'a str>,
    pub command: Vec<Cow<'a, str>>,
    pub image: Cow<'a, str>,
    pub name: &'a str,
    pub resources: Resources,
    pub security_context: SecurityContext,
    pub termination_message_policy: &'static str,
}

/// A container's resource requests and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub limits: Limits,
    pub requests: Requests,
}

/// A container's resource limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub memory: &'static str,
}

/// A container's resource requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requests {
    pub cpu: &'static str,
    pub memory: &'static str,
}

/// A container's security context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    pub allow_privilege_escalation: bool,
    pub capabilities: Capabilities,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    pub seccomp_profile: SeccompProfile,
}

/// The Linux capabilities a container drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub drop: [&'static str; 1],
}

/// A container's seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub type_: &'static str,
}
