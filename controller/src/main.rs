//! `orkestra-controller`: see the library for everything; this only parses flags and reports errors.

use clap::Parser as _;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let args = orkestra_controller::Args::parse();
    orkestra_controller::init_logging(args.log_format);
    match orkestra_controller::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("orkestra-controller: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
