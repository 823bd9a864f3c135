//! One module per subcommand; each turns parsed arguments into calls to the `orkestra` crate.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};

mod audit;
mod cluster;
mod control;
mod executor;
mod graph;
mod history;
mod impact;
mod promote;
mod rollback;
mod status;
mod validate;
mod watch;
mod why;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Promote(args) => promote::run(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::History(args) => history::run(&args),
        Command::Why(args) => why::run(&args),
        Command::Impact(args) => impact::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Abort(args) => control::abort(&args),
        Command::Retry(args) => control::retry(&args),
        Command::Executor(command) => Ok(executor::run(&command)),
        Command::Crd => {
            crate::output::write_stdout(&orkestra::api::crd::crd_yaml())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            crate::output::write_stdout(&crate::complete::script(shell, &mut cmd))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a cluster command's future on a single-threaded runtime (fast to start; the commands
/// wait on the network, not the CPU).
fn block_on<F: Future<Output = Result<ExitCode>>>(f: F) -> Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
