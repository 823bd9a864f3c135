//! `kubectl orkestra graph -f PATH`: the DAG of each group in a file; `graph GROUP`: the DAG of a
//! group in the cluster with the live status of its latest release overlaid (and `--watch`).

use std::process::ExitCode;

use anyhow::Result;
use orkestra::view::GraphView;

use super::cluster;
use super::watch::Live;
use crate::cli::{FileArgs, GraphArgs};
use crate::exit::{EXIT_FAILED, EXIT_OK};
use crate::input;
use crate::output::write_stdout;

pub fn run(args: &GraphArgs) -> Result<ExitCode> {
    match &args.group {
        Some(group) => live(args, group),
        None => files(args),
    }
}

fn live(args: &GraphArgs, group: &str) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let color = cluster::colour();
        let mut last = String::new();
        let live = match args.watch {
            true => Some(Live::start(&cluster, group, args.namespace.as_deref()).await?),
            false => None,
        };
        loop {
            let obs = match &live {
                Some(live) => live.observe()?,
                None => cluster::observe(&cluster, group, args.namespace.as_deref()).await?,
            };
            let report = &obs.report;
            let spec = obs.group.defaulted_spec();
            let mut view =
                GraphView::build(group, &spec, &|app, sub| report.node_status(app, sub))?;
            view.eta = report.eta.clone();
            let mut text = view.render(args.output.into(), color);
            if matches!(
                args.output,
                crate::cli::GraphOutput::Levels | crate::cli::GraphOutput::Tree
            ) {
                text.push_str(&format!("\n{}\n", report.summary()));
            }
            if !args.watch {
                write_stdout(&text)?;
                return Ok(ExitCode::SUCCESS);
            }
            if text != last {
                if color {
                    write_stdout("\x1b[H\x1b[2J")?;
                } else if !last.is_empty() {
                    write_stdout("\n")?;
                }
                write_stdout(&text)?;
                last = text;
            }
            if report.verdict.is_final() {
                return Ok(super::status::exit_code(report, false));
            }
            if let Some(live) = &live {
                live.next(std::time::Duration::from_secs(1)).await;
            }
        }
    })
}

fn files(args: &GraphArgs) -> Result<ExitCode> {
    let color = cluster::colour();
    let input = FileArgs {
        files: args.files.clone(),
        recursive: args.recursive,
    };
    let (groups, failed) = input::valid_groups(&input)?;
    for (i, group) in groups.iter().enumerate() {
        let view = GraphView::build(&group.name, &group.spec, &|_, _| None)?;
        if i > 0 && args.output == crate::cli::GraphOutput::Svg {
            anyhow::bail!(
                "-o svg draws one ApplicationGroup per picture; {} holds several (pass one file per group)",
                group.source
            );
        }
        if i > 0
            && matches!(
                args.output,
                crate::cli::GraphOutput::Levels | crate::cli::GraphOutput::Tree
            )
        {
            write_stdout("\n")?;
        }
        write_stdout(&view.render(args.output.into(), color))?;
    }
    if groups.is_empty() && !failed {
        return Err(input::no_groups(&input));
    }
    let code = if failed { EXIT_FAILED } else { EXIT_OK };
    Ok(ExitCode::from(code))
}
