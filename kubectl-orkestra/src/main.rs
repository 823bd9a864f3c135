//! `kubectl orkestra`: the kubectl plugin for Orkestra ApplicationGroups.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod commands;
mod input;
mod output;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
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
