//! Command-line interface: every command and flag, nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Release groups of Helm charts in dependency order with Argo Workflows and Flux.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-orkestra",
    bin_name = "kubectl orkestra",
    version,
    about,
    after_help = crate::exit::HELP,
    propagate_version = true
)]
pub struct Cli {
    /// kubectl's global flags, also accepted before the subcommand as kubectl passes them
    /// (`kubectl orkestra --context x -n ns status g`); clap hands their values down to the
    /// subcommand's own flags of the same name, which the commands read.
    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE", help_heading = crate::client::HEADING)]
    pub namespace: Option<String>,

    /// Log verbosity, as kubectl's: 0 warnings, 1-3 info, 4-5 debug, 6 and up trace (kube's
    /// requests); `RUST_LOG` overrides it. Logs go to stderr.
    #[arg(short = 'v', long = "v", global = true, value_name = "LEVEL", default_value_t = 0, help_heading = crate::client::HEADING)]
    pub verbosity: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check ApplicationGroup files offline with exactly the webhook's rules.
    Validate(ValidateArgs),
    /// Show the dependency DAG of a group in the cluster (live status) or of files (-f).
    Graph(GraphArgs),
    /// Show the live state of a group: one row per application and subchart.
    Status(StatusArgs),
    /// Release the group's current spec as a new revision, or continue past a manual gate.
    Promote(PromoteArgs),
    /// Restore a recorded revision across the whole group.
    Rollback(RollbackArgs),
    /// List the group's revisions: when, who, what changed, how the release ended.
    History(HistoryArgs),
    /// Why an application has not been released yet: its unmet dependencies down to the blocker.
    Why(WhyArgs),
    /// Every application that depends on one, in release order (its blast radius).
    Impact(ImpactArgs),
    /// Check every ApplicationGroup in the cluster against the webhook's rules.
    Audit(AuditArgs),
    /// Stop the release in flight (Argo's terminate, or stop with --stop); recorded in history.
    Abort(AbortArgs),
    /// Re-run a failed release from its failed steps (Argo's retry); no new revision.
    Retry(RetryArgs),
    /// Print the ApplicationGroup CustomResourceDefinition generated from the types.
    Crd,
    /// Release steps run by the group's Argo Workflow (in-cluster, or with a kubeconfig).
    #[command(subcommand)]
    Executor(ExecutorCommand),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Where ApplicationGroups are read from.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// File, directory (its *.yaml, *.yml and *.json files) or `-` for stdin; repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// Also read the directories under a directory.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: FileArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ValidateOutput::Text)]
    pub output: ValidateOutput,

    /// Print each valid group as the mutating webhook would store it (defaults and templates).
    #[arg(long, conflicts_with = "show_workflow")]
    pub show_mutated: bool,

    /// Print, as YAML, the Argo Workflow a first `promote` of each valid group would create
    /// (e.g. for `argo lint`); the verdicts go to stderr.
    #[arg(long)]
    pub show_workflow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    /// One line per finding: `<group>: <path>: <message>`.
    Text,
    /// A JSON report.
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// An ApplicationGroup in the cluster: its DAG with live status overlaid.
    #[arg(
        value_name = "GROUP",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    pub group: Option<String>,

    /// File, directory (its *.yaml, *.yml and *.json files) or `-` for stdin; repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,

    /// Also read the directories under a directory.
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Redraw as the release progresses, until it ends (GROUP only).
    #[arg(short = 'w', long, requires = "group")]
    pub watch: bool,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = GraphOutput::Levels)]
    pub output: GraphOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphOutput {
    /// Waves of applications that can be released together.
    Levels,
    /// Dependency tree.
    Tree,
    /// Graphviz (pipe into `dot -Tsvg`).
    Dot,
    /// Mermaid flowchart (GitHub markdown).
    Mermaid,
    /// JSON.
    Json,
    /// SVG picture (open in a browser): waves as columns, status colours, critical path in red.
    Svg,
}

impl From<GraphOutput> for orkestra::view::Format {
    fn from(o: GraphOutput) -> Self {
        match o {
            GraphOutput::Levels => Self::Levels,
            GraphOutput::Tree => Self::Tree,
            GraphOutput::Dot => Self::Dot,
            GraphOutput::Mermaid => Self::Mermaid,
            GraphOutput::Json => Self::Json,
            GraphOutput::Svg => Self::Svg,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ExecutorCommand {
    /// Apply a Flux HelmRelease (and its HelmRepository) and wait until Flux has released exactly
    /// that spec, or delete one and wait until it is gone. Exit codes: 0 released (or deleted),
    /// 1 release failed, 2 usage or API error, 3 timeout.
    Helmrelease(HelmReleaseExecutorArgs),
}

#[derive(Debug, Args)]
pub struct HelmReleaseExecutorArgs {
    /// install: create or upgrade, then wait for Ready; delete: delete, then wait until gone.
    #[arg(long, value_enum)]
    pub action: ExecutorAction,

    /// A HelmRelease, or a List / multi-document stream of a HelmRepository and a HelmRelease,
    /// as YAML or JSON text; `@PATH` reads a file, `@-` stdin.
    #[arg(
        long,
        value_name = "TEXT|@PATH",
        allow_hyphen_values = true,
        required_unless_present = "revision",
        conflicts_with = "revision"
    )]
    pub manifest: Option<String>,

    /// Read the manifest of `--chart` from the group's revision, the ControllerRevision
    /// NAMESPACE/NAME (what the generated Workflows do: `{{workflow.namespace}}/{{workflow.name}}`).
    #[arg(long, value_name = "NAMESPACE/NAME", requires = "chart")]
    pub revision: Option<String>,

    /// With `--revision`: the chart step (`<application>` or `<application>--<subchart>`, as the
    /// Workflow's tasks name them).
    #[arg(long, value_name = "KEY", requires = "revision")]
    pub chart: Option<String>,

    /// How long the whole step may take (Go duration, e.g. 5m, 90s).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,

    /// How often to read the HelmRelease while waiting (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorAction {
    /// Apply and wait until released.
    Install,
    /// Delete and wait until gone.
    Delete,
}

/// Output of the cluster commands, as kubectl's `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterOutput {
    /// A table.
    Table,
    /// A table with more columns.
    Wide,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    orkestra::duration::parse(s).ok_or_else(|| format!("{s:?} is not a duration (e.g. 30s, 10m)"))
}

/// `--wait` and its knobs, the same on status, promote and rollback.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait until the release ends, showing progress: exit 0 when it succeeded, 1 when it failed,
    /// 3 on timeout.
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// How often a live view is redrawn when nothing changed (changes show at once: the views
    /// follow watch streams).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration, hide = true)]
    pub interval: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,

    /// Redraw as the release progresses, until it ends.
    #[arg(short = 'w', long)]
    pub watch: bool,

    #[command(flatten)]
    pub waiting: WaitArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Print the plan (waves, changes against the last successful revision, gates); change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Pass every manual gate (those waiting now and those to come).
    #[arg(long)]
    pub full: bool,

    #[command(flatten)]
    pub waiting: WaitArgs,

    /// Output format (of the plan with --dry-run, of the status with --wait).
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// The revision to restore (default: the last one whose release succeeded).
    #[arg(long, value_name = "N")]
    pub to_revision: Option<i64>,

    /// Print the plan (removals in reverse order, then re-applies in order); change nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub waiting: WaitArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The application.
    pub application: String,

    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}

#[derive(Debug, Args)]
pub struct ImpactArgs {
    /// The application.
    pub application: String,

    /// An ApplicationGroup in the cluster.
    #[arg(
        value_name = "GROUP",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    pub group: Option<String>,

    /// File, directory (its *.yaml, *.yml and *.json files) or `-` for stdin; repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,

    /// Also read the directories under a directory.
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// Also show what promoting the application at this chart version would release.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}

#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Stop as `argo stop` does (exit handlers run) instead of terminating at once.
    #[arg(long)]
    pub stop: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The ApplicationGroup.
    pub group: String,

    #[command(flatten)]
    pub kube: crate::client::KubeArgs,

    /// Namespace of the group's Workflows (default: the group's spec.workflowTemplate.namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub waiting: WaitArgs,

    /// Output format (of the status with --wait).
    #[arg(short, long, value_enum, default_value_t = ClusterOutput::Table)]
    pub output: ClusterOutput,
}
