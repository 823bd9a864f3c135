//! `kubectl orkestra graph -f PATH`: the DAG of each group in a file.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use orkestra::api::KIND;
use orkestra::render::GraphView;
use orkestra::{model, validate};

use super::{EXIT_INVALID, EXIT_OK};
use crate::cli::GraphArgs;
use crate::input;
use crate::output::{write_stderr, write_stdout};

pub fn run(args: &GraphArgs) -> Result<ExitCode> {
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut code = EXIT_OK;
    let mut first = true;
    for source in input::read(&args.input)? {
        let documents = match source.documents {
            Ok(d) => d,
            Err(e) => {
                write_stderr(&format!("{}: {}\n", source.name, e.message));
                code = EXIT_INVALID;
                continue;
            }
        };
        for doc in documents.iter().filter(|d| d.kind() == KIND) {
            let checked = validate::check(&doc.value);
            if !checked.report.is_valid() {
                for v in &checked.report.errors {
                    write_stderr(&format!("{}: {v}\n", doc.name()));
                }
                code = EXIT_INVALID;
                continue;
            }
            let object = checked.mutated.as_ref().unwrap_or(&doc.value);
            let spec = model::parse_spec(object)?;
            let view = GraphView::build(doc.name(), &spec, &|_, _| None)?;
            if !first
                && matches!(
                    args.output,
                    crate::cli::GraphOutput::Levels | crate::cli::GraphOutput::Tree
                )
            {
                write_stdout("\n")?;
            }
            first = false;
            write_stdout(&view.render(args.output.into(), color))?;
        }
    }
    Ok(ExitCode::from(code))
}
