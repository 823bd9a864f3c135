//! The Argo Workflow templates Orkestra generates, as typed values written straight to JSON text
//! by hand ([`Json`]; no `serde_json::Value` and no serializer in between: a large group's
//! templates are mostly its own strings, which these types borrow).
//!
//! Their JSON is exactly the text the Kubernetes API server stores for them: the mutating webhook
//! compares the stored templates with the generated ones as text, and the API server (like
//! `serde_json::Value`) writes object keys in sorted byte order. So every struct below writes its
//! fields in byte order of their JSON names (upper case sorts before lower case: `retryPolicy`
//! before `retryStrategy`), and skips absent fields instead of writing `null`.

use std::borrow::Cow;

use serde_json::Value;

use crate::emit::json::{self, Json, Object};

/// A Workflow template: a DAG of tasks, a container step or a suspend step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<'a> {
    pub container: Option<Container<'a>>,
    pub dag: Option<Tasks<'a>>,
    pub inputs: Option<Inputs<'a>>,
    pub name: Cow<'a, str>,
    pub parallelism: Option<i64>,
    pub retry_strategy: Option<RetryStrategy>,
    pub suspend: Option<Suspend>,
    /// Argo's deadline of the step.
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
        // Cannot fail: the text is JSON (`null` if it were not).
        serde_json::from_slice(&json::to_vec(self)).unwrap_or_default()
    }
}

/// The tasks of a DAG template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tasks<'a> {
    pub tasks: Vec<Task<'a>>,
}

/// A task of a DAG: the template it runs, after its dependencies, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task<'a> {
    pub arguments: Option<Arguments<'a>>,
    pub dependencies: Vec<Cow<'a, str>>,
    pub name: Cow<'a, str>,
    pub template: Cow<'a, str>,
    /// Argo's condition for running the task.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arguments<'a> {
    pub parameters: Vec<Parameter<'a>>,
}

/// A parameter passed: `name` set to `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter<'a> {
    pub name: &'a str,
    pub value: ParameterValue<'a>,
}

/// The value of a parameter passed: text, or a duration in seconds (written `"<n>s"`, without
/// a string of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterValue<'a> {
    Text(Cow<'a, str>),
    Seconds(u64),
}

/// The parameters a template takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs<'a> {
    pub parameters: Vec<InputParameter<'a>>,
}

/// A parameter taken, with its value when the task passes none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputParameter<'a> {
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryStrategy {
    /// A count, written as a string (Argo's `IntOrString`).
    pub limit: String,
    pub retry_policy: &'static str,
}

/// The (empty) body of a suspend template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspend {}

/// The container of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub limits: Limits,
    pub requests: Requests,
}

/// A container's resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory: &'static str,
}

/// A container's resource requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requests {
    pub cpu: &'static str,
    pub memory: &'static str,
}

/// A container's security context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityContext {
    pub allow_privilege_escalation: bool,
    pub capabilities: Capabilities,
    pub read_only_root_filesystem: Option<bool>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub seccomp_profile: SeccompProfile,
}

/// The Linux capabilities a container drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub drop: [&'static str; 1],
}

/// A container's seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompProfile {
    pub type_: &'static str,
}

impl Json for Template<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .optional("container", self.container.as_ref())
            .optional("dag", self.dag.as_ref())
            .optional("inputs", self.inputs.as_ref())
            .field("name", &self.name)
            .optional("parallelism", self.parallelism.as_ref())
            .optional("retryStrategy", self.retry_strategy.as_ref())
            .optional("suspend", self.suspend.as_ref())
            .optional("timeout", self.timeout)
            .end();
    }
}

impl Json for Tasks<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).field("tasks", &self.tasks).end();
    }
}

impl Json for Task<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .optional("arguments", self.arguments.as_ref())
            .optional("dependencies", json::non_empty(&self.dependencies))
            .field("name", &self.name)
            .field("template", &self.template)
            .optional("when", self.when.as_ref())
            .end();
    }
}

impl Json for Arguments<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).field("parameters", &self.parameters).end();
    }
}

impl Json for Parameter<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("name", self.name)
            .field("value", &self.value)
            .end();
    }
}

impl Json for ParameterValue<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Self::Text(text) => json::string(out, text),
            Self::Seconds(n) => {
                out.push(b'"');
                json::unsigned(out, *n);
                out.extend_from_slice(b"s\"");
            }
        }
    }
}

impl Json for Inputs<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).field("parameters", &self.parameters).end();
    }
}

impl Json for InputParameter<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .optional("default", self.default.as_ref())
            .field("name", self.name)
            .end();
    }
}

impl Json for RetryStrategy {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("limit", &self.limit)
            .field("retryPolicy", self.retry_policy)
            .end();
    }
}

impl Json for Suspend {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).end();
    }
}

impl Json for Container<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("args", &self.args)
            .field("command", &self.command)
            .field("image", &self.image)
            .field("name", self.name)
            .field("resources", &self.resources)
            .field("securityContext", &self.security_context)
            .field("terminationMessagePolicy", self.termination_message_policy)
            .end();
    }
}

impl Json for Resources {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("limits", &self.limits)
            .field("requests", &self.requests)
            .end();
    }
}

impl Json for Limits {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).field("memory", self.memory).end();
    }
}

impl Json for Requests {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("cpu", self.cpu)
            .field("memory", self.memory)
            .end();
    }
}

impl Json for SecurityContext {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("allowPrivilegeEscalation", &self.allow_privilege_escalation)
            .field("capabilities", &self.capabilities)
            .optional(
                "readOnlyRootFilesystem",
                self.read_only_root_filesystem.as_ref(),
            )
            .optional("runAsGroup", self.run_as_group.as_ref())
            .optional("runAsNonRoot", self.run_as_non_root.as_ref())
            .optional("runAsUser", self.run_as_user.as_ref())
            .field("seccompProfile", &self.seccomp_profile)
            .end();
    }
}

impl Json for Capabilities {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).field("drop", &self.drop).end();
    }
}

impl Json for SeccompProfile {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out).field("type", self.type_).end();
    }
}
