//! `orkestra-webhook`: see the library for everything; this only parses flags and reports errors.
#![forbid(unsafe_code)]

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    orkestra_webhook::tls::install_default_provider();
    match orkestra_webhook::args::Cli::parse().run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orkestra-webhook: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
