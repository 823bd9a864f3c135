//! `kubectl orkestra impact APP (GROUP | -f FILE) [--to VERSION]`: the applications that depend
//! on APP, in release order, and what a promote of a new version would release (see
//! `orkestra::plan::impact`).

use std::process::ExitCode;

use anyhow::{Result, bail};
use orkestra::plan::impact::{self, Impact};

use super::cluster;
use crate::cli::{FileArgs, ImpactArgs};
use crate::exit::{EXIT_FAILED, EXIT_OK};
use crate::input;
use crate::output::write_stdout;

pub fn run(args: &ImpactArgs) -> Result<ExitCode> {
    match &args.group {
        Some(group) => super::block_on(async {
            let cluster = cluster::connect(&args.kube).await?;
            let g = cluster.group(group).await?;
            print(
                &[impact::impact(
                    group,
                    &g.defaulted_spec(),
                    &args.application,
                    args.to.as_deref(),
                )?],
                args,
            )?;
            Ok(ExitCode::SUCCESS)
        }),
        None => files(args),
    }
}

fn print(impacts: &[Impact], args: &ImpactArgs) -> Result<()> {
    let structured = match impacts {
        [one] => cluster::write_structured(one, args.output)?,
        many => cluster::write_structured(&many, args.output)?,
    };
    if !structured {
        let text: Vec<String> = impacts.iter().map(Impact::render).collect();
        write_stdout(&text.join("\n"))?;
    }
    Ok(())
}

fn files(args: &ImpactArgs) -> Result<ExitCode> {
    let input = FileArgs {
        files: args.files.clone(),
        recursive: args.recursive,
    };
    let (groups, failed) = input::valid_groups(&input)?;
    let code = if failed { EXIT_FAILED } else { EXIT_OK };
    let mut impacts = Vec::new();
    for group in groups.iter().filter(|g| {
        g.spec
            .applications
            .iter()
            .any(|a| a.name == args.application)
    }) {
        impacts.push(impact::impact(
            &group.name,
            &group.spec,
            &args.application,
            args.to.as_deref(),
        )?);
    }
    let groups: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    if impacts.is_empty() {
        if code != EXIT_OK {
            return Ok(ExitCode::from(code));
        }
        bail!(
            "no application {:?} in {}",
            args.application,
            if groups.is_empty() {
                "any ApplicationGroup of the files".to_string()
            } else {
                format!("ApplicationGroup {}", groups.join(", "))
            }
        );
    }
    print(&impacts, args)?;
    Ok(ExitCode::from(code))
}
