//! `kubectl orkestra history GROUP`: every recorded revision, who promoted it, the charts it
//! changed and how its Workflow ended (like `helm history` and `kubectl rollout history`).

use std::process::ExitCode;

use anyhow::Result;

use super::cluster::{self, CONTROLLER_REVISION, WORKFLOW};
use crate::cli::{ClusterOutput, HistoryArgs};
use crate::output::{table, write_stdout};
use orkestra::labels;
use orkestra::live::revision;
use orkestra::view::history;

pub fn run(args: &HistoryArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let group = cluster.group(&args.group).await?;
        let ns = group.workflow_namespace(args.namespace.as_deref());
        let selector = labels::owner_selector(&group.name);
        let (revisions, workflows) = tokio::join!(
            cluster.list(CONTROLLER_REVISION, Some(&ns), &selector),
            cluster.list(WORKFLOW, Some(&ns), &selector)
        );
        let uid = group.owner().uid;
        let revisions: Vec<_> = revisions?
            .into_iter()
            .filter(|r| revision::owned_by(r, &uid))
            .collect();
        let workflows: Vec<_> = workflows?
            .into_iter()
            .filter(|w| revision::owned_by(w, &uid))
            .collect();
        let mut rows = history::history(
            &revision::read_all(&revisions),
            &revision::workflow_phases(&workflows),
        );
        history::mark_controls(&mut rows, &workflows);
        if cluster::write_structured(&rows, args.output)? {
            return Ok(ExitCode::SUCCESS);
        }
        if rows.is_empty() {
            write_stdout(&format!(
                "ApplicationGroup {} has no revisions in namespace {ns}: `kubectl orkestra promote {}` records the first\n",
                group.name, group.name
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        let now = cluster::now();
        let wide = args.output == ClusterOutput::Wide;
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let kind = match r.rollback_of {
                    Some(n) => format!("rollback to {n}"),
                    None => r.release_type.clone(),
                };
                let changes = if r.changes.is_empty() {
                    "-".to_string()
                } else {
                    r.changes.join("; ")
                };
                vec![
                    r.revision.to_string(),
                    if wide {
                        r.created.clone().unwrap_or_else(|| "-".into())
                    } else {
                        cluster::age(r.created.as_deref(), now)
                    },
                    r.promoted_by.clone().unwrap_or_else(|| "-".into()),
                    kind,
                    if wide {
                        changes
                    } else {
                        cluster::truncate(&changes, 70)
                    },
                    r.workflow.clone(),
                    {
                        let mut phase = r.phase.clone().unwrap_or_else(|| "(deleted)".into());
                        if let Some(a) = &r.aborted {
                            phase.push_str(&format!(" ({a})"));
                        }
                        if let Some(n) = r.retries {
                            phase.push_str(&format!(" (retried {n}x)"));
                        }
                        phase
                    },
                ]
            })
            .collect();
        write_stdout(&table(
            &[
                "REVISION",
                if wide { "CREATED" } else { "AGE" },
                "BY",
                "TYPE",
                "CHANGES",
                "WORKFLOW",
                "PHASE",
            ],
            &cells,
        ))?;
        Ok(ExitCode::SUCCESS)
    })
}
