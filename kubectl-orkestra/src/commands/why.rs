//! `kubectl orkestra why APP GROUP`: why an application has not been released yet, from one
//! observation of the group (see `orkestra::view::why`).

use std::process::ExitCode;

use anyhow::Result;

use super::cluster;
use crate::cli::WhyArgs;
use crate::output::write_stdout;

pub fn run(args: &WhyArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let why =
            orkestra::view::why::why(&obs.report, &obs.group.defaulted_spec(), &args.application)?;
        if !cluster::write_structured(&why, args.output)? {
            write_stdout(&why.render())?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
