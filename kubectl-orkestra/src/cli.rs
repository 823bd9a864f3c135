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
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check ApplicationGroup files offline with exactly the webhook's rules.
    Validate(ValidateArgs),
    /// Show the dependency DAG of ApplicationGroups: waves, tree, dot, mermaid or json.
    Graph(GraphArgs),
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
    #[arg(long)]
    pub show_mutated: bool,
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
    #[command(flatten)]
    pub input: FileArgs,

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
}

impl From<GraphOutput> for orkestra::render::Format {
    fn from(o: GraphOutput) -> Self {
        match o {
            GraphOutput::Levels => Self::Levels,
            GraphOutput::Tree => Self::Tree,
            GraphOutput::Dot => Self::Dot,
            GraphOutput::Mermaid => Self::Mermaid,
            GraphOutput::Json => Self::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ExecutorCommand {
    /// Apply a Flux HelmRelease (and its HelmRepository) and wait until Flux has released exactly
    /// that spec, or delete one and wait until it is gone. Exit codes: 0 released (or deleted),
    /// 1 release failed, 2 timeout, 3 usage or API error.
    Helmrelease(HelmReleaseExecutorArgs),
}

#[derive(Debug, Args)]
pub struct HelmReleaseExecutorArgs {
    /// install: create or upgrade, then wait for Ready; delete: delete, then wait until gone.
    #[arg(long, value_enum)]
    pub action: ExecutorAction,

    /// A HelmRelease, or a List / multi-document stream of a HelmRepository and a HelmRelease,
    /// as YAML or JSON text; `@PATH` reads a file, `@-` stdin.
    #[arg(long, value_name = "TEXT|@PATH", allow_hyphen_values = true)]
    pub manifest: String,

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
