//! `orkestra-webhook`: see the library for everything; this only parses flags and reports errors.
#![forbid(unsafe_code)]

use clap::Parser as _;

// A 1,000-application review briefly takes tens of megabytes; glibc malloc fragments and keeps
// most of it after a burst, and musl's is slow. jemalloc returns it (decay), as in linkerd.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
