//! Test support for the end-to-end suites: the shared test cluster, per-test scopes (names, labels,
//! namespaces), the built `kubectl`, webhook registration by `url` + `caBundle` with the `dryRun`
//! marker wait, and child processes (the webhook binary) that die with the test.
//!
//! The cluster is the one `tests/cluster/cluster.sh up` started; its `export` lines are read from the
//! environment (`ORKESTRA_TEST_*`), once per test binary. Without them an end-to-end test prints
//! "skipped: no cluster (run tests/run)" and passes, unless `ORKESTRA_E2E_REQUIRED=1` (CI), where it
//! fails with the reason:
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_test() -> anyhow::Result<()> {
//!     let cluster = orkestra_e2e::cluster_or_skip!();
//!     let scope = cluster.scope("my-test");
//!     let client = cluster.client().await?;
//!     // ...
//!     Ok(())
//! }
//! ```
//!
//! Suites that need the real node, Argo and Flux (`tests/real_*.rs`, against `cluster.sh up --node`)
//! start with `let cluster = orkestra_e2e::node_cluster_or_skip!();` instead: a [`NodeCluster`]
//! (a [`TestCluster`] plus [`NodeCluster::chart_repo`], [`NodeCluster::executor_image`] and
//! [`NodeCluster::images`]). They skip unless `ORKESTRA_TEST_NODE=1`, and fail instead when
//! `ORKESTRA_E2E_NODE_REQUIRED=1`. Every other suite uses `cluster_or_skip!()` and runs on the plain
//! cluster, where tests may write Argo and Flux status by hand (no controller overwrites it).
//!
//! A kube `Client` belongs to the tokio runtime that made it, and every `#[tokio::test]` has its own
//! runtime, so clients are made per test ([`TestCluster::client`]), never shared.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;
use kube::{Client, Config};
use orkestra::api::resources;
use tokio::io::AsyncWriteExt as _;

/// Label carried by every object a test creates; its value is the test's [`TestScope::id`]. Webhook
/// configurations registered by a test select on it, so tests running in parallel never see each
/// other's webhooks.
pub const TEST_LABEL: &str = "e2e.orkestra.azure.microsoft.com/test";

/// API group of ApplicationGroups.
pub const ORKESTRA_GROUP: &str = orkestra::api::GROUP;

/// How long a test waits for something the apiserver does asynchronously (webhook configuration
/// propagation, CRD discovery). Generous: the machine has 2 cores and compiles while tests run.
pub const ASYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// `orkestra.azure.microsoft.com/v1alpha1` `applicationgroups` (cluster-scoped).
pub fn applicationgroup_resource() -> ApiResource {
    resources::APPLICATION_GROUP.api_resource()
}

/// Argo `argoproj.io/v1alpha1` `workflows` (namespaced).
pub fn workflow_resource() -> ApiResource {
    resources::WORKFLOW.api_resource()
}

/// Argo `argoproj.io/v1alpha1` `workflowtemplates` (namespaced; only tests use them).
pub fn workflow_template_resource() -> ApiResource {
    resources::ResourceType {
        api_version: resources::WORKFLOW.api_version,
        kind: "WorkflowTemplate",
        plural: "workflowtemplates",
    }
    .api_resource()
}

/// Flux `helm.toolkit.fluxcd.io/v2` `helmreleases` (namespaced).
pub fn helmrelease_resource() -> ApiResource {
    resources::HELM_RELEASE.api_resource()
}

/// Flux `source.toolkit.fluxcd.io/v1` `helmrepositories` (namespaced).
pub fn helmrepository_resource() -> ApiResource {
    resources::HELM_REPOSITORY.api_resource()
}

/// The test cluster for this test binary, or `None` when end-to-end tests are to be skipped. On a
/// real-node cluster (`ORKESTRA_TEST_NODE=1`) it is always `None`: see [`node_cluster`].
///
/// # Panics
/// When `ORKESTRA_E2E_REQUIRED=1` and no cluster is configured, or when the environment names a
/// cluster whose files are missing: a test that cannot reach its cluster must fail, not pass.
pub fn cluster() -> Option<&'static TestCluster> {
    if env_flag("ORKESTRA_TEST_NODE") {
        // Suites on the plain cluster may write Argo and Flux status by hand; the real controllers
        // of a node cluster would overwrite it.
        eprintln!(
            "skipped: a real-node cluster runs only the real_* suites (node_cluster_or_skip!)"
        );
        return None;
    }
    static CLUSTER: OnceLock<Result<Option<TestCluster>, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| TestCluster::from_env().map_err(|e| format!("{e:#}"))) {
        Ok(Some(cluster)) => Some(cluster),
        Ok(None) => {
            if required() {
                panic!(
                    "ORKESTRA_E2E_REQUIRED=1 but ORKESTRA_TEST_KUBECONFIG is not set: no test cluster. \
                     Run the tests through tests/run, or eval \"$(tests/cluster/cluster.sh up)\" first."
                );
            }
            eprintln!("skipped: no cluster (run tests/run)");
            None
        }
        Err(reason) => panic!("the test cluster named by the environment is unusable: {reason}"),
    }
}

/// `let cluster = cluster_or_skip!();` in a test returning `Result`: the [`TestCluster`], or an
/// early `Ok(())` when there is no cluster and none is required (see [`cluster`]).
#[macro_export]
macro_rules! cluster_or_skip {
    () => {
        match $crate::cluster() {
            ::std::option::Option::Some(cluster) => cluster,
            ::std::option::Option::None => return ::std::result::Result::Ok(()),
        }
    };
}

/// The real-node test cluster for this test binary (`tests/cluster/cluster.sh up --node`: a kubelet,
/// the scheduler and controller-manager, the real Argo and Flux controllers, a Helm repository of
/// `tests/charts/` and the project's webhook), or `None` when the suite is to be skipped.
///
/// Skipped unless `ORKESTRA_TEST_NODE=1`; with `ORKESTRA_E2E_NODE_REQUIRED=1` (tests/run) a missing
/// node cluster fails instead.
///
/// # Panics
/// When a node cluster is required and the environment names none, or names an unusable one.
pub fn node_cluster() -> Option<&'static NodeCluster> {
    static NODE: OnceLock<Result<Option<NodeCluster>, String>> = OnceLock::new();
    let node = NODE.get_or_init(|| {
        if !env_flag("ORKESTRA_TEST_NODE") {
            return Ok(None);
        }
        let cluster = TestCluster::from_env()
            .map_err(|e| format!("{e:#}"))?
            .ok_or("ORKESTRA_TEST_NODE=1 but ORKESTRA_TEST_KUBECONFIG is not set")?;
        NodeCluster::from_env(cluster)
            .map(Some)
            .map_err(|e| format!("{e:#}"))
    });
    match node {
        Ok(Some(node)) => Some(node),
        Ok(None) => {
            if env_flag("ORKESTRA_E2E_NODE_REQUIRED") {
                panic!(
                    "ORKESTRA_E2E_NODE_REQUIRED=1 but ORKESTRA_TEST_NODE is not 1: no real-node cluster. \
                     Run the tests through tests/run, or eval \"$(tests/cluster/cluster.sh up --node)\" first."
                );
            }
            eprintln!(
                "skipped: no real-node cluster (tests/cluster/cluster.sh up --node; tests/run)"
            );
            None
        }
        Err(reason) => {
            panic!("the real-node cluster named by the environment is unusable: {reason}")
        }
    }
}

/// `let cluster = node_cluster_or_skip!();` at the start of a `tests/real_*.rs` test returning
/// `Result`: the [`NodeCluster`], or an early `Ok(())` when there is none and none is required
/// (see [`node_cluster`]).
#[macro_export]
macro_rules! node_cluster_or_skip {
    () => {
        match $crate::node_cluster() {
            ::std::option::Option::Some(cluster) => cluster,
            ::std::option::Option::None => return ::std::result::Result::Ok(()),
        }
    };
}

/// A [`TestCluster`] with a real node and the real Argo and Flux controllers (it derefs to the
/// [`TestCluster`]). No test may write Argo or Flux status in it: the controllers own them.
#[derive(Debug, Clone)]
pub struct NodeCluster {
    cluster: TestCluster,
    chart_repo: String,
    executor_image: String,
    images: Vec<String>,
    pod_kubeconfig_secret: String,
}

impl NodeCluster {
    fn from_env(cluster: TestCluster) -> Result<Self> {
        let var = |name: &str| -> Result<String> {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("{name} is not set (ORKESTRA_TEST_NODE=1 is)"))
        };
        Ok(NodeCluster {
            cluster,
            chart_repo: var("ORKESTRA_CHART_REPO")?,
            executor_image: var("ORKESTRA_TEST_EXECUTOR_IMAGE")?,
            images: var("ORKESTRA_TEST_IMAGES")?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            pod_kubeconfig_secret: var("ORKESTRA_TEST_POD_KUBECONFIG_SECRET")?,
        })
    }

    /// URL of the Helm repository on 127.0.0.1 serving every chart of `tests/charts/` (and each
    /// subchart of them as a chart of its own), e.g. `http://127.0.0.1:PORT`.
    pub fn chart_repo(&self) -> &str {
        &self.chart_repo
    }

    /// The executor image, built from this tree's `kubectl-orkestra` and imported into the node;
    /// the webhook's default `spec.workflowTemplate.executorImage`.
    pub fn executor_image(&self) -> &str {
        &self.executor_image
    }

    /// Every image imported into the node (fixed tags; nothing can be pulled).
    pub fn images(&self) -> &[String] {
        &self.images
    }

    /// Name of the Secret (key `kubeconfig`) that Argo mounts into every Workflow pod: the API at
    /// `https://127.0.0.1:PORT` with the pod's own ServiceAccount token. `up --node` creates it in
    /// namespace `orkestra`; [`NodeCluster::install_pod_kubeconfig`] copies it elsewhere.
    pub fn pod_kubeconfig_secret(&self) -> &str {
        &self.pod_kubeconfig_secret
    }

    /// Copies the pods' kubeconfig Secret into `namespace`, for Workflows that run there.
    pub async fn install_pod_kubeconfig(&self, client: &Client, namespace: &str) -> Result<()> {
        let name = self.pod_kubeconfig_secret.as_str();
        let source = Api::<Secret>::namespaced(client.clone(), "orkestra")
            .get(name)
            .await
            .with_context(|| format!("reading Secret orkestra/{name}"))?;
        let copy = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: source.metadata.labels,
                ..ObjectMeta::default()
            },
            data: source.data,
            ..Secret::default()
        };
        Api::<Secret>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &copy)
            .await
            .with_context(|| format!("creating Secret {namespace}/{name}"))?;
        Ok(())
    }

    /// The busybox image (`sh`, `sleep`, `echo`, ...) for custom executor steps and chart pods.
    pub fn busybox_image(&self) -> Result<&str> {
        self.images
            .iter()
            .find(|i| i.contains("/busybox:"))
            .map(String::as_str)
            .context("ORKESTRA_TEST_IMAGES names no busybox image")
    }
}

impl std::ops::Deref for NodeCluster {
    type Target = TestCluster;

    fn deref(&self) -> &TestCluster {
        &self.cluster
    }
}

fn env_flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn required() -> bool {
    env_flag("ORKESTRA_E2E_REQUIRED")
}

/// The running test cluster, as described by the `export` lines of `tests/cluster/cluster.sh up`.
#[derive(Debug, Clone)]
pub struct TestCluster {
    kubeconfig: PathBuf,
    admin_context: String,
    user_context: String,
    user: String,
    kubectl: PathBuf,
    ca: PathBuf,
    webhook_cert: PathBuf,
    webhook_key: PathBuf,
    log_dir: PathBuf,
}

impl TestCluster {
    /// Reads the cluster from the environment; `Ok(None)` when `ORKESTRA_TEST_KUBECONFIG` is unset.
    pub fn from_env() -> Result<Option<Self>> {
        if env_path("ORKESTRA_TEST_KUBECONFIG").is_none() {
            return Ok(None);
        }
        let required_file = |var: &str| -> Result<PathBuf> {
            let path = env_path(var)
                .with_context(|| format!("{var} is not set (ORKESTRA_TEST_KUBECONFIG is)"))?;
            if !path.is_file() {
                bail!(
                    "{var}={} does not exist: is the test cluster still up?",
                    path.display()
                );
            }
            Ok(path)
        };
        let cluster = TestCluster {
            kubeconfig: required_file("ORKESTRA_TEST_KUBECONFIG")?,
            admin_context: env_or("ORKESTRA_TEST_CONTEXT", "admin"),
            user_context: env_or("ORKESTRA_TEST_USER_CONTEXT", "user"),
            user: env_or("ORKESTRA_TEST_USER", "orkestra-user"),
            kubectl: required_file("ORKESTRA_TEST_KUBECTL")?,
            ca: required_file("ORKESTRA_TEST_CA")?,
            webhook_cert: required_file("ORKESTRA_TEST_WEBHOOK_CERT")?,
            webhook_key: required_file("ORKESTRA_TEST_WEBHOOK_KEY")?,
            log_dir: log_dir(),
        };
        Ok(Some(cluster))
    }

    /// A client with cluster-admin rights (`system:masters`).
    pub async fn client(&self) -> Result<Client> {
        self.client_for(&self.admin_context).await
    }

    /// A client for [`TestCluster::user_name`], a user with no RBAC permissions until a test grants some.
    pub async fn user_client(&self) -> Result<Client> {
        self.client_for(&self.user_context).await
    }

    async fn client_for(&self, context: &str) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .with_context(|| format!("reading {}", self.kubeconfig.display()))?;
        let options = KubeConfigOptions {
            context: Some(context.to_owned()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("context {context} of {}", self.kubeconfig.display()))?;
        Client::try_from(config).context("building a kube client for the test cluster")
    }

    /// The user name of the non-admin identity (for RoleBindings in RBAC tests).
    pub fn user_name(&self) -> &str {
        &self.user
    }

    /// Kubeconfig of the test cluster (admin context current, `user` context for the non-admin user).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The `kubectl` built with the apiserver, same version.
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// PEM of the test CA: it signed the apiserver's and the webhook's serving certs.
    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.ca).with_context(|| format!("reading {}", self.ca.display()))
    }

    /// Path of the test CA certificate.
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// Serving cert (SAN `IP:127.0.0.1`) and key for a webhook the tests start on 127.0.0.1.
    pub fn webhook_tls(&self) -> (&Path, &Path) {
        (&self.webhook_cert, &self.webhook_key)
    }

    /// A fresh [`TestScope`]: unique names and a label value for one test.
    pub fn scope(&'static self, test: &str) -> TestScope {
        TestScope::new(self, test)
    }

    /// Runs the built kubectl as admin: `kubectl --kubeconfig … --context admin ARGS`.
    pub async fn kubectl<I, S>(&self, args: I) -> Result<CommandOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.kubectl_full(&self.admin_context, args, None).await
    }

    /// Like [`TestCluster::kubectl`], with `stdin` fed to the process (`kubectl apply -f -`).
    pub async fn kubectl_stdin<I, S>(&self, args: I, stdin: &str) -> Result<CommandOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.kubectl_full(&self.admin_context, args, Some(stdin))
            .await
    }

    /// Runs the built kubectl as the non-admin user.
    pub async fn kubectl_as_user<I, S>(&self, args: I, stdin: Option<&str>) -> Result<CommandOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.kubectl_full(&self.user_context, args, stdin).await
    }

    async fn kubectl_full<I, S>(
        &self,
        context: &str,
        args: I,
        stdin: Option<&str>,
    ) -> Result<CommandOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(context);
        cmd.args(args);
        run(cmd, stdin).await
    }

    /// A command with this cluster in its environment: `KUBECONFIG` set, and the workspace's
    /// `target/<profile>` and the built kubectl's directory first on `PATH` (so `kubectl orkestra …`
    /// finds both the plugin and the same-version kubectl).
    pub fn command(&self, program: impl AsRef<OsStr>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env("KUBECONFIG", &self.kubeconfig);
        let mut path: Vec<PathBuf> = Vec::new();
        if let Ok(dir) = target_dir() {
            path.push(dir);
        }
        if let Some(dir) = self.kubectl.parent() {
            path.push(dir.to_path_buf());
        }
        if let Some(existing) = std::env::var_os("PATH") {
            path.extend(std::env::split_paths(&existing));
        }
        if let Ok(joined) = std::env::join_paths(path) {
            cmd.env("PATH", joined);
        }
        cmd.kill_on_drop(true);
        cmd
    }

    /// Starts the webhook binary (`target/<profile>/orkestra-webhook`) on a free 127.0.0.1 port with
    /// the test serving cert, plus `extra_args` (e.g. `["--enforcement", "warn"]`), and waits until it
    /// accepts connections. The process is killed when the returned value is dropped.
    pub async fn start_webhook(&self, extra_args: &[&str]) -> Result<WebhookServer> {
        let binary = workspace_bin("orkestra-webhook")?;
        let mut last_error = None;
        // A port chosen here can be taken before the child binds it: try a few times.
        for _ in 0..3 {
            let port = free_port()?;
            let metrics_port = free_port()?;
            let mut cmd = std::process::Command::new(&binary);
            cmd.arg("--bind-address")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--tls-cert-file")
                .arg(&self.webhook_cert)
                .arg("--tls-private-key-file")
                .arg(&self.webhook_key)
                .arg("--metrics-bind-address")
                .arg(format!("127.0.0.1:{metrics_port}"))
                .args(extra_args);
            let mut child = ChildGuard::spawn_in(&self.log_dir, "orkestra-webhook", cmd)?;
            match child
                .wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)), ASYNC_TIMEOUT)
                .await
            {
                Ok(()) => {
                    return Ok(WebhookServer {
                        child,
                        port,
                        metrics_port,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("the webhook did not start")))
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where child processes log: the cluster's log directory, or the temp dir.
fn log_dir() -> PathBuf {
    env_path("ORKESTRA_TEST_STATE")
        .map(|state| state.join("logs"))
        .unwrap_or_else(|| std::env::temp_dir().join("orkestra-e2e"))
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// `Ok(self)` when the command exited 0, else an error carrying its output.
    pub fn expect_success(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(anyhow!("command failed: {self}"))
        }
    }

    /// `Ok(self)` when the command exited non-zero, else an error carrying its output.
    pub fn expect_failure(self) -> Result<Self> {
        if self.success() {
            Err(anyhow!("command unexpectedly succeeded: {self}"))
        } else {
            Ok(self)
        }
    }
}

impl fmt::Display for CommandOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion, feeding it `stdin`, and captures its output. Async on purpose: a test
/// may serve a webhook from its own runtime while kubectl waits on the apiserver that calls it.
pub async fn run(mut cmd: tokio::process::Command, stdin: Option<&str>) -> Result<CommandOutput> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let program = format!("{:?}", cmd.as_std().get_program());
    let mut child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("child stdin")?;
        pipe.write_all(input.as_bytes())
            .await
            .with_context(|| format!("writing stdin of {program}"))?;
        drop(pipe);
    }
    let out = child
        .wait_with_output()
        .await
        .with_context(|| format!("waiting for {program}"))?;
    Ok(CommandOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Unique names and a label value for one test, so that tests sharing the cluster (and cluster-scoped
/// ApplicationGroups) never collide. Namespaces it creates are deleted when it is dropped.
#[derive(Debug)]
pub struct TestScope {
    cluster: &'static TestCluster,
    id: String,
    namespaces: Vec<String>,
}

impl TestScope {
    fn new(cluster: &'static TestCluster, test: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let unique = format!(
            "{}{}{}",
            base36(std::process::id()),
            base36(nanos % 1296),
            base36(n)
        );
        // 63 = DNS-1123 label and label value limit; keep room for `name()` suffixes.
        let mut prefix = dns_label(test);
        prefix.truncate(30);
        let id = format!("{}-{unique}", prefix.trim_end_matches('-'));
        TestScope {
            cluster,
            id,
            namespaces: Vec::new(),
        }
    }

    /// The value of [`TEST_LABEL`] on this test's objects, also the prefix of its names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A unique DNS-1123 name for an object of this test: `<id>-<suffix>`, at most 63 characters.
    pub fn name(&self, suffix: &str) -> String {
        let mut name = format!("{}-{}", self.id, dns_label(suffix));
        name.truncate(63);
        name.trim_end_matches('-').to_owned()
    }

    /// `{TEST_LABEL: id}`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(TEST_LABEL.to_owned(), self.id.clone())])
    }

    /// `TEST_LABEL=id`, for list calls and `kubectl -l`.
    pub fn label_selector(&self) -> String {
        format!("{TEST_LABEL}={}", self.id)
    }

    /// Adds this test's label to a manifest (`metadata.labels`), creating the maps as needed.
    pub fn label(&self, manifest: &mut serde_json::Value) -> Result<()> {
        let metadata = manifest
            .as_object_mut()
            .context("manifest is not an object")?
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({}));
        let labels = metadata
            .as_object_mut()
            .context("metadata is not an object")?
            .entry("labels")
            .or_insert_with(|| serde_json::json!({}));
        labels
            .as_object_mut()
            .context("metadata.labels is not an object")?
            .insert(
                TEST_LABEL.to_owned(),
                serde_json::Value::String(self.id.clone()),
            );
        Ok(())
    }

    /// Creates a labelled namespace for this test (deleted, without waiting, when the scope drops).
    /// Without a controller-manager, a deleted namespace stays `Terminating`: harmless in a
    /// throwaway cluster, and names never repeat.
    pub async fn namespace(&mut self, client: &Client, suffix: &str) -> Result<String> {
        let name = self.name(suffix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(self.labels()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        self.namespaces.push(name.clone());
        Ok(name)
    }

    /// Registers a ValidatingWebhookConfiguration for ApplicationGroups CREATE/UPDATE that calls `url`,
    /// trusting the test CA and selecting only objects labelled with this test's id.
    pub async fn register_validating_webhook(
        &self,
        client: &Client,
        url: &str,
    ) -> Result<WebhookRegistration> {
        self.register_webhook(client, url, &WebhookOptions::validating())
            .await
    }

    /// Registers a MutatingWebhookConfiguration (`reinvocationPolicy: IfNeeded`), as above.
    pub async fn register_mutating_webhook(
        &self,
        client: &Client,
        url: &str,
    ) -> Result<WebhookRegistration> {
        self.register_webhook(client, url, &WebhookOptions::mutating())
            .await
    }

    /// Registers a webhook configuration as described by `options`. It is deleted when the returned
    /// value is dropped. Configurations take effect asynchronously: follow with [`wait_for_marker`].
    pub async fn register_webhook(
        &self,
        client: &Client,
        url: &str,
        options: &WebhookOptions,
    ) -> Result<WebhookRegistration> {
        let name = self.name(match options.kind {
            WebhookKind::Validating => "validating",
            WebhookKind::Mutating => "mutating",
        });
        let metadata = ObjectMeta {
            name: Some(name.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        };
        let client_config = WebhookClientConfig {
            url: Some(url.to_owned()),
            ca_bundle: Some(ByteString(self.cluster.ca_pem()?)),
            service: None,
        };
        let rules = Some(vec![RuleWithOperations {
            api_groups: Some(vec![options.api_group.clone()]),
            api_versions: Some(vec![options.api_version.clone()]),
            operations: Some(options.operations.clone()),
            resources: Some(vec![options.resource.clone()]),
            scope: Some(options.scope.clone()),
        }]);
        // ApplicationGroups are cluster-scoped, so a namespaceSelector would not apply: select by label.
        let object_selector = Some(LabelSelector {
            match_labels: Some(self.labels()),
            ..LabelSelector::default()
        });
        let admission_review_versions = vec!["v1".to_owned()];
        let post = PostParams::default();
        match options.kind {
            WebhookKind::Validating => {
                let config = ValidatingWebhookConfiguration {
                    metadata,
                    webhooks: Some(vec![ValidatingWebhook {
                        name: options.webhook_name.clone(),
                        client_config,
                        rules,
                        object_selector,
                        admission_review_versions,
                        side_effects: "None".to_owned(),
                        failure_policy: Some(options.failure_policy.clone()),
                        timeout_seconds: Some(options.timeout_seconds),
                        match_conditions: Some(options.match_conditions.clone()),
                        ..ValidatingWebhook::default()
                    }]),
                };
                Api::<ValidatingWebhookConfiguration>::all(client.clone())
                    .create(&post, &config)
                    .await
                    .with_context(|| format!("creating ValidatingWebhookConfiguration {name}"))?;
            }
            WebhookKind::Mutating => {
                let config = MutatingWebhookConfiguration {
                    metadata,
                    webhooks: Some(vec![MutatingWebhook {
                        name: options.webhook_name.clone(),
                        client_config,
                        rules,
                        object_selector,
                        admission_review_versions,
                        side_effects: "None".to_owned(),
                        failure_policy: Some(options.failure_policy.clone()),
                        timeout_seconds: Some(options.timeout_seconds),
                        reinvocation_policy: Some("IfNeeded".to_owned()),
                        match_conditions: Some(options.match_conditions.clone()),
                        ..MutatingWebhook::default()
                    }]),
                };
                Api::<MutatingWebhookConfiguration>::all(client.clone())
                    .create(&post, &config)
                    .await
                    .with_context(|| format!("creating MutatingWebhookConfiguration {name}"))?;
            }
        }
        Ok(WebhookRegistration {
            cluster: self.cluster,
            kind: options.kind,
            name,
        })
    }
}

impl Drop for TestScope {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            self.cluster.kubectl_blocking(&[
                "delete",
                "namespace",
                ns,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

impl TestCluster {
    /// Best-effort synchronous kubectl for `Drop` (which cannot await); failures are only printed.
    fn kubectl_blocking(&self, args: &[&str]) {
        let out = std::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(&self.admin_context)
            .args(args)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "cleanup `kubectl {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cleanup `kubectl {}` failed: {e}", args.join(" ")),
        }
    }
}

/// Validating or mutating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    Validating,
    Mutating,
}

/// What a registered webhook matches and how the apiserver treats its failures.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub kind: WebhookKind,
    /// Fully qualified webhook name (at least three DNS labels).
    pub webhook_name: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    /// `Cluster`, `Namespaced` or `*`.
    pub scope: String,
    pub operations: Vec<String>,
    /// `Fail` or `Ignore`.
    pub failure_policy: String,
    pub timeout_seconds: i32,
    /// CEL conditions the apiserver checks before calling (those of the install manifests).
    pub match_conditions: Vec<MatchCondition>,
}

/// The `matchConditions` of the webhooks in `manifests/webhook/base/webhookconfigurations.yaml`,
/// so tests register the webhooks exactly as a user's cluster does. Empty if the file cannot be
/// read (the tests that depend on them then fail with a clear message).
pub fn manifest_match_conditions() -> Vec<MatchCondition> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/webhook/base/webhookconfigurations.yaml"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text).unwrap_or_default();
    docs.iter()
        .find_map(|d| d.pointer("/webhooks/0/matchConditions").cloned())
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default()
}

impl WebhookOptions {
    /// ApplicationGroups CREATE/UPDATE, `failurePolicy: Fail`, 10 s.
    pub fn validating() -> Self {
        WebhookOptions {
            kind: WebhookKind::Validating,
            webhook_name: format!("validate.{ORKESTRA_GROUP}"),
            api_group: ORKESTRA_GROUP.to_owned(),
            api_version: "v1alpha1".to_owned(),
            resource: "applicationgroups".to_owned(),
            scope: "Cluster".to_owned(),
            operations: vec!["CREATE".to_owned(), "UPDATE".to_owned()],
            failure_policy: "Fail".to_owned(),
            timeout_seconds: 10,
            match_conditions: manifest_match_conditions(),
        }
    }

    /// As [`WebhookOptions::validating`], for the mutating webhook.
    pub fn mutating() -> Self {
        WebhookOptions {
            kind: WebhookKind::Mutating,
            webhook_name: format!("mutate.{ORKESTRA_GROUP}"),
            ..WebhookOptions::validating()
        }
    }
}

/// A registered webhook configuration; deleted (synchronously, with kubectl) on drop.
#[derive(Debug)]
pub struct WebhookRegistration {
    cluster: &'static TestCluster,
    kind: WebhookKind,
    name: String,
}

impl WebhookRegistration {
    /// Name of the Validating/MutatingWebhookConfiguration object.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for WebhookRegistration {
    fn drop(&mut self) {
        let kind = match self.kind {
            WebhookKind::Validating => "validatingwebhookconfiguration",
            WebhookKind::Mutating => "mutatingwebhookconfiguration",
        };
        self.cluster.kubectl_blocking(&[
            "delete",
            kind,
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// Repeats a `dryRun=All` create of `probe` until `accept` approves the apiserver's answer, and
/// returns that answer. Webhook configurations take effect asynchronously (about a second, no
/// guarantee), so a test first waits for its marker: e.g. a labelled ApplicationGroup with a
/// self-dependency must be denied, or a valid one must come back with the injected defaults.
/// Nothing is persisted. Fails after `timeout` with the last answer.
pub async fn wait_for_marker<F>(
    api: &Api<DynamicObject>,
    probe: &DynamicObject,
    timeout: Duration,
    mut accept: F,
) -> Result<Result<DynamicObject, kube::Error>>
where
    F: FnMut(&Result<DynamicObject, kube::Error>) -> bool,
{
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let start = Instant::now();
    loop {
        let answer = api.create(&params, probe).await;
        if accept(&answer) {
            return Ok(answer);
        }
        if start.elapsed() >= timeout {
            bail!("the webhook marker was not seen within {timeout:?}; last answer: {answer:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The apiserver's `Status` when `result` is an API error (a denial, a schema rejection, …).
pub fn api_error<T>(result: &Result<T, kube::Error>) -> Option<&Status> {
    match result {
        Err(kube::Error::Api(status)) => Some(status),
        _ => None,
    }
}

/// True when `result` is an API error whose message contains `needle`.
pub fn denied_with<T>(result: &Result<T, kube::Error>, needle: &str) -> bool {
    api_error(result).is_some_and(|status| status.message.contains(needle))
}

/// Polls `f` every 200 ms until it returns `Ok(Some(value))`, for at most `timeout`; the last error
/// (or "still None") is reported on timeout.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        let last = match f().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => anyhow!("condition not met yet"),
            Err(e) => e,
        };
        if start.elapsed() >= timeout {
            return Err(last.context(format!("timed out after {timeout:?} waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The running webhook binary: its port and process (killed on drop).
#[derive(Debug)]
pub struct WebhookServer {
    pub child: ChildGuard,
    pub port: u16,
    pub metrics_port: u16,
}

impl WebhookServer {
    /// `https://127.0.0.1:<port><path>`, e.g. `url("/validate")`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// A child process that is killed (and reaped) when dropped; its stdout and stderr go to a log file
/// so a failing test can show them.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: std::process::Child,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd`, logging to a file in the test cluster's log directory (or the temp dir).
    pub fn spawn(name: &str, cmd: std::process::Command) -> Result<Self> {
        Self::spawn_in(&log_dir(), name, cmd)
    }

    fn spawn_in(dir: &Path, name: &str, mut cmd: std::process::Command) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join(format!(
            "{}-{}-{}.log",
            dns_label(name),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file handle")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(ChildGuard {
            name: name.to_owned(),
            child,
            log,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until `addr` accepts TCP connections; fails early if the process exits.
    pub async fn wait_for_tcp(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited ({status}) before listening on {addr}; its output:\n{}",
                    self.name,
                    self.output()
                );
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                bail!(
                    "{} did not listen on {addr} within {timeout:?}; its output:\n{}",
                    self.name,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to 0, read, close).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound address")?
        .port())
}

/// `target/<profile>` of this workspace, found from the running test binary
/// (`target/<profile>/deps/<test>-<hash>`).
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let deps = exe
        .parent()
        .context("test binary has no parent directory")?;
    let dir = if deps.file_name() == Some(OsStr::new("deps")) {
        deps.parent()
    } else {
        Some(deps)
    };
    dir.map(Path::to_path_buf)
        .context("test binary is not under target/<profile>")
}

/// A binary of this workspace in `target/<profile>` (e.g. `orkestra-webhook`, `kubectl-orkestra`).
/// `cargo test` builds other packages' binaries only when asked: tests/run runs
/// `cargo build --workspace --bins` first.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let path = target_dir()?.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "{} is not built: run `cargo build --workspace --bins` first (tests/run does)",
            path.display()
        );
    }
    Ok(path)
}

/// Lower-case, `[a-z0-9-]`, no leading/trailing `-`: usable in DNS-1123 names and label values.
fn dns_label(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        "t".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_are_clean() {
        assert_eq!(dns_label("Smoke_Test::bookinfo"), "smoke-test--bookinfo");
        assert_eq!(dns_label("--"), "t");
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
