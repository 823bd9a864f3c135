//! `kubectl orkestra`: the kubectl plugin for Orkestra ApplicationGroups.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod client;
mod commands;
mod input;
mod output;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            if !err.use_stderr() {
                return ExitCode::SUCCESS; // --help, --version
            }
            // In a Workflow step, exit 2 means "timed out": a bad executor flag is an error (3).
            let executor = std::env::args().nth(1).is_some_and(|a| a == "executor");
            return ExitCode::from(if executor {
                commands::executor::EXIT_ERROR
            } else {
                commands::EXIT_USAGE
            });
        }
    };
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
            ExitCode::from(commands::EXIT_USAGE)
        }
    }
}
