//! `kubectl orkestra promote GROUP`: release the group's current spec as a new revision (a
//! ControllerRevision and the Workflow `<group>-r<N>` built from the injected templates), or
//! continue a release paused at a manual gate. `--dry-run` prints the plan and changes nothing.
//! The decision and the release are `orkestra_cluster::release`'s, which the controller's
//! automatic releases use too.

use std::process::ExitCode;

use anyhow::Result;
use orkestra::live::revision::last_succeeded;
use orkestra::naming::revision_name;
use orkestra::plan::promote::plan;
use orkestra_cluster::release::{self, Actor, Decision, Promoted};

use super::cluster;
use super::status;
use crate::cli::{ClusterOutput, PromoteArgs};
use crate::output::{write_stderr, write_stdout};

pub fn run(args: &PromoteArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
        let group = &obs.group;
        let ns = obs.namespace.as_str();

        if args.dry_run {
            let base = last_succeeded(&obs.revisions, &obs.phases(), None);
            let p = plan(&group.defaulted_spec(), base.map(|r| (r.number, &r.spec)));
            if !cluster::write_structured(&p, args.output)? {
                let mut text = p.render(&group.name);
                match (obs.unchanged(), obs.report.workflow.as_ref()) {
                    (Some(r), Some(w)) if !w.waiting_at_gates.is_empty() => text.push_str(&format!(
                        "\nWould continue revision {} (workflow {}) past the gate of {}; nothing else changes.\n",
                        r.number, w.name, w.waiting_at_gates.join(", ")
                    )),
                    (Some(r), _) => text.push_str(&format!(
                        "\nNothing to promote: the spec is unchanged since revision {}.\n",
                        r.number
                    )),
                    (None, _) => text.push_str(&format!(
                        "\nWould record revision {} and create Workflow {ns}/{}.\n",
                        obs.next_revision,
                        revision_name(&group.name, obs.next_revision)
                    )),
                }
                text.push_str("(dry run: nothing was changed)\n");
                write_stdout(&text)?;
            }
            return Ok(ExitCode::SUCCESS);
        }

        let decision = release::decide(&obs)?;
        if let Decision::Release { superseded, .. } = &decision {
            // Said before anything changes.
            for s in superseded.iter().filter(|s| !s.paused) {
                write_stderr(&format!(
                    "warning: workflow {ns}/{} is still {}; both will release this group\n",
                    s.workflow, s.phase
                ));
            }
        }
        let actor = Actor {
            who: cluster.whoami().await,
            tool: "kubectl orkestra promote",
        };
        let name = &group.name;
        match release::promote(&cluster, &obs, &decision, args.full, &actor).await? {
            Promoted::Unchanged {
                revision,
                workflow,
                phase,
            } => write_stderr(&format!(
                "ApplicationGroup {name}: the spec is unchanged since revision {revision} (workflow {ns}/{workflow}: {phase}); nothing to promote{}\n",
                if matches!(phase.as_str(), "Failed" | "Error") {
                    format!(
                        " (fix the spec and promote again, or `kubectl orkestra rollback {name}`)"
                    )
                } else {
                    String::new()
                }
            )),
            Promoted::Resumed {
                revision,
                workflow,
                gates,
            } => write_stderr(&format!(
                "ApplicationGroup {name}: revision {revision} continues past the gate of {} (workflow {ns}/{workflow})\n",
                gates.join(", ")
            )),
            Promoted::Recreated { revision, workflow } => write_stderr(&format!(
                "ApplicationGroup {name}: the Workflow of revision {revision} was gone; created {ns}/{workflow} again\n"
            )),
            Promoted::Released {
                revision,
                workflow,
                terminated,
                ..
            } => {
                for t in terminated {
                    write_stderr(&format!(
                        "workflow {ns}/{t} was paused at a gate of an older spec: terminated\n"
                    ));
                }
                write_stderr(&format!(
                    "ApplicationGroup {name}: revision {revision} recorded; workflow {ns}/{workflow} created\n"
                ));
            }
        }
        if args.waiting.wait {
            return status::wait_and_report(
                &cluster,
                &args.group,
                args.namespace.as_deref(),
                &args.waiting,
                args.output,
            )
            .await;
        }
        if matches!(args.output, ClusterOutput::Json | ClusterOutput::Yaml) {
            let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
            write_stdout(&status::render(&obs.report, args.output)?)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
