//! `kubectl orkestra`: the kubectl plugin for Orkestra ApplicationGroups.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod client;
mod commands;
mod complete;
mod exit;
mod input;
mod logging;
mod output;

/// The executable's name (kubectl finds it as `kubectl orkestra`).
const BIN: &str = "kubectl-orkestra";

fn main() -> ExitCode {
    // `kubectl_complete-orkestra ARGS... WORD` runs `kubectl-orkestra __complete ARGS... WORD`:
    // answered before parsing, since the words are whatever the user has typed so far.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "__complete") {
        let cmd = <cli::Cli as clap::CommandFactory>::command();
        let _ = output::write_stdout(&complete::answer(&cmd, &args[2..]));
        return ExitCode::SUCCESS;
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            if !err.use_stderr() {
                return ExitCode::SUCCESS; // --help, --version
            }
            return ExitCode::from(exit::EXIT_ERROR);
        }
    };
    match cli.command {
        cli::Command::Executor(_) => logging::executor(),
        _ => logging::plugin(cli.verbosity),
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // `kubectl orkestra graph ... | head` closes stdout early: that is not an error.
            if err.chain().any(|e| {
                e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "error: {err:#}");
            ExitCode::from(exit::EXIT_ERROR)
        }
    }
}
