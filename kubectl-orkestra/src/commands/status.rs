//! `kubectl orkestra status GROUP`: one row per application and subchart, from the group, its
//! latest Workflow and its HelmReleases; `--watch` redraws until the release ends, `--wait` exits
//! by its result (0 succeeded, 1 failed, 3 timed out).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use orkestra::live::report::{StatusReport, Verdict};
use orkestra::view::GraphView;

use super::cluster::{self, Cluster, Observation};
use super::watch::Live;
use crate::cli::{ClusterOutput, StatusArgs, WaitArgs};
use crate::exit::{EXIT_FAILED, EXIT_TIMEOUT};
use crate::output::{self, write_stderr, write_stdout};

pub fn run(args: &StatusArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        if args.waiting.wait {
            return wait_and_report(
                &cluster,
                &args.group,
                args.namespace.as_deref(),
                &args.waiting,
                args.output,
            )
            .await;
        }
        if !args.watch {
            let obs = cluster::observe(&cluster, &args.group, args.namespace.as_deref()).await?;
            write_stdout(&render(&obs.report, args.output)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        let live = Live::start(&cluster, &args.group, args.namespace.as_deref()).await?;
        let mut last = String::new();
        loop {
            let obs = live.observe()?;
            let text = render(&obs.report, args.output)?;
            if text != last {
                if cluster::colour() {
                    write_stdout("\x1b[H\x1b[2J")?;
                } else if !last.is_empty() {
                    write_stdout("\n")?;
                }
                write_stdout(&text)?;
                last = text;
            }
            if obs.report.verdict.is_final() {
                return Ok(exit_code(&obs.report, false));
            }
            live.next(args.waiting.interval).await;
        }
    })
}

/// An observation at the end of a wait.
pub struct Waited {
    pub report: StatusReport,
    pub timed_out: bool,
}

/// Watches the group until its latest release ends or `timeout` passes; progress (one line per
/// change) goes to stderr when `progress`. `interval` is how often the view is redrawn without a
/// change (durations grow); changes show as they happen.
pub async fn wait(
    cluster: &Cluster,
    group: &str,
    namespace: Option<&str>,
    timeout: Duration,
    interval: Duration,
    progress: bool,
) -> Result<Waited> {
    let start = Instant::now();
    let mut last = String::new();
    // In a terminal, progress is the live DAG (redrawn); elsewhere (CI logs) one line per change.
    let live_dag = progress && std::io::stderr().is_terminal() && cluster::colour_allowed();
    let live = Live::start(cluster, group, namespace).await?;
    loop {
        let Observation {
            report, group: g, ..
        } = live.observe()?;
        let line = report.summary();
        if live_dag {
            let mut view =
                GraphView::build(group, &g.defaulted_spec(), &|a, s| report.node_status(a, s))?;
            view.eta = report.eta.clone();
            let text = format!(
                "{}\n[{:>4}s] {line}\n",
                view.render(orkestra::view::Format::Levels, true),
                start.elapsed().as_secs()
            );
            if text != last {
                write_stderr(&format!("\x1b[H\x1b[2J{text}"));
                last = text;
            }
        } else if progress && line != last {
            write_stderr(&format!(
                "[{:>4}s] {group}: {line}\n",
                start.elapsed().as_secs()
            ));
            last = line;
        }
        if report.verdict.is_final() {
            return Ok(Waited {
                report,
                timed_out: false,
            });
        }
        if start.elapsed() >= timeout {
            write_stderr(&format!(
                "timed out after {} waiting for ApplicationGroup {group}: {}\n",
                orkestra::duration::human(timeout),
                report.summary()
            ));
            return Ok(Waited {
                report,
                timed_out: true,
            });
        }
        live.next(
            interval
                .min(timeout.saturating_sub(start.elapsed()))
                .max(Duration::from_millis(50)),
        )
        .await;
    }
}

/// Waits for the release with progress on stderr (see [`wait`]), prints the final report and
/// returns the CI exit code: what `--wait` does on status, promote and rollback.
pub async fn wait_and_report(
    cluster: &Cluster,
    group: &str,
    namespace: Option<&str>,
    waiting: &WaitArgs,
    output: ClusterOutput,
) -> Result<ExitCode> {
    let waited = wait(
        cluster,
        group,
        namespace,
        waiting.timeout,
        waiting.interval,
        true,
    )
    .await?;
    print(&waited.report, output)?;
    Ok(exit_code(&waited.report, waited.timed_out))
}

/// 0 when the release succeeded, 1 when it failed (or none exists), 3 on timeout.
pub fn exit_code(report: &StatusReport, timed_out: bool) -> ExitCode {
    if timed_out {
        return ExitCode::from(EXIT_TIMEOUT);
    }
    match report.verdict {
        Verdict::Succeeded => ExitCode::SUCCESS,
        Verdict::Failed | Verdict::NotReleased => ExitCode::from(EXIT_FAILED),
        _ => ExitCode::SUCCESS,
    }
}

fn print(report: &StatusReport, output: ClusterOutput) -> Result<()> {
    write_stdout(&render(report, output)?)
}

/// The report in the requested format.
pub fn render(report: &StatusReport, output: ClusterOutput) -> Result<String> {
    Ok(match output {
        ClusterOutput::Json => serde_json::to_string_pretty(report)? + "\n",
        ClusterOutput::Yaml => serde_saphyr::to_string(report)?,
        ClusterOutput::Table => table(report, false),
        ClusterOutput::Wide => table(report, true),
    })
}

fn table(r: &StatusReport, wide: bool) -> String {
    let now = cluster::now();
    let mut s = format!("ApplicationGroup: {}\n", r.group);
    match r.revision {
        Some(n) if r.spec_changed => {
            let _ = writeln!(
                s,
                "Revision:         {n} (the spec has changed since: `kubectl orkestra promote {}` releases it)",
                r.group
            );
        }
        Some(n) => {
            let _ = writeln!(s, "Revision:         {n}");
        }
        None => s.push_str("Revision:         none (never promoted)\n"),
    }
    if !r.conditions.is_empty() {
        let conds: Vec<String> = r
            .conditions
            .iter()
            .map(|c| {
                let mut t = format!("{}={}", c.type_, c.status);
                if !c.reason.is_empty() {
                    let _ = write!(t, " ({})", c.reason);
                }
                t
            })
            .collect();
        let _ = writeln!(s, "Conditions:       {}", conds.join(", "));
    }
    match &r.workflow {
        Some(w) => {
            let _ = writeln!(
                s,
                "Workflow:         {}/{} ({}) {} {}{}",
                w.namespace,
                w.name,
                w.workflow_type.as_deref().unwrap_or("forward"),
                if w.phase.is_empty() {
                    "Pending"
                } else {
                    &w.phase
                },
                cluster::seconds(w.duration_seconds),
                w.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        None => s.push_str("Workflow:         none\n"),
    }
    let _ = writeln!(s, "Status:           {}", r.summary());
    if let Some(eta) = &r.eta {
        let _ = writeln!(s, "Expected:         {}", eta.describe());
    }
    s.push('\n');
    let mut headers = vec![
        "APPLICATION",
        "WAVE",
        "DEPENDS ON",
        "CHART",
        "READY",
        "REASON",
        "STEP",
        "STARTED",
        "DURATION",
        "MESSAGE",
    ];
    if wide {
        headers.extend(["NAMESPACE", "HELMRELEASE"]);
    }
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            let name = match &row.subchart {
                Some(sub) => format!("  {}/{sub}", row.application),
                None if row.gate => format!("{} [gate]", row.application),
                None => row.application.clone(),
            };
            let rel = row.release.as_ref();
            let mut reason = rel
                .and_then(|x| x.reason.clone())
                .unwrap_or_else(|| "-".into());
            if rel.is_some_and(|x| x.stalled) {
                reason.push_str(" (stalled: flux reconcile helmrelease --force)");
            } else if rel.is_some_and(|x| x.stale) {
                reason.push_str(" (old generation)");
            }
            let message = row.message().unwrap_or_default();
            let mut cells = vec![
                name,
                row.wave.to_string(),
                if row.dependencies.is_empty() {
                    "-".into()
                } else {
                    row.dependencies.join(",")
                },
                row.chart.clone(),
                match rel {
                    None => "-".into(),
                    Some(x) => x.ready.clone().unwrap_or_else(|| "Unknown".into()),
                },
                reason,
                row.step.clone().unwrap_or_else(|| "-".into()),
                row.started_at.as_deref().map_or_else(
                    || "-".into(),
                    |t| format!("{} ago", cluster::age(Some(t), now)),
                ),
                cluster::seconds(row.duration_seconds),
                if wide {
                    message
                } else {
                    cluster::truncate(&message, 60)
                },
            ];
            if wide {
                cells.extend([row.namespace.clone(), row.helm_release.clone()]);
            }
            cells
        })
        .collect();
    s.push_str(&output::table(&headers, &rows));
    if !r.removals.is_empty() {
        let removals: Vec<String> = r.removals.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "\nRemovals:         {}", removals.join(", "));
    }
    s
}
