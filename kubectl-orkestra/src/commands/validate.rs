//! `kubectl orkestra validate -f PATH`: the webhook's verdict, offline.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Result, bail};
use orkestra::api::KIND;

use orkestra::admission::validate::{self, Violation};
use serde_json::{Value, json};

use crate::cli::{ValidateArgs, ValidateOutput};
use crate::exit::{EXIT_FAILED, EXIT_OK};
use crate::input;
use crate::output::{write_stderr, write_stdout};
use orkestra::emit::revision;

pub fn run(args: &ValidateArgs) -> Result<ExitCode> {
    let sources = input::read(&args.input)?;
    let mut text = String::new();
    let mut notes = String::new();
    let mut mutated = Vec::new();
    let mut workflows = Vec::new();
    let mut report = json!({ "groups": [], "skipped": [], "unreadable": [] });
    let (mut groups, mut invalid) = (0usize, 0usize);
    for source in &sources {
        let documents = match &source.documents {
            Ok(d) => d,
            Err(e) => {
                invalid += 1;
                let _ = writeln!(text, "{}: {}", source.name, e.message);
                push(
                    &mut report["unreadable"],
                    json!({ "file": source.name, "message": e.message }),
                );
                continue;
            }
        };
        for doc in documents {
            if doc.kind() != KIND {
                let kind = if doc.kind().is_empty() {
                    "an object without kind"
                } else {
                    doc.kind()
                };
                let _ = writeln!(
                    notes,
                    "{}: document {}: skipped {kind} {} (not an ApplicationGroup)",
                    source.name,
                    doc.index,
                    doc.name()
                );
                push(
                    &mut report["skipped"],
                    json!({ "file": source.name, "document": doc.index, "kind": doc.kind(), "name": doc.name() }),
                );
                continue;
            }
            groups += 1;
            let label = if doc.name().is_empty() {
                format!("{} document {}", source.name, doc.index)
            } else {
                doc.name().to_string()
            };
            let checked = validate::check(&doc.value);
            let valid = checked.report.is_valid();
            if !valid {
                invalid += 1;
            }
            text.push_str(&findings(&label, &checked.report));
            if valid {
                let w = checked.report.warnings.len();
                let extra = if w == 0 {
                    String::new()
                } else {
                    format!(" ({w} warning{})", if w == 1 { "" } else { "s" })
                };
                let _ = writeln!(text, "{label}: valid{extra}");
                if let Some(m) = &checked.mutated {
                    if args.show_workflow {
                        // The group is valid, so its stored form parses.
                        match revision::first_workflow(m) {
                            Ok(wf) => workflows.push(wf),
                            Err(e) => bail!("{label}: building its Workflow: {e}"),
                        }
                    }
                    mutated.push(m.clone());
                }
            }
            let mut entry = json!({
                "file": source.name,
                "document": doc.index,
                "name": doc.name(),
                "valid": valid,
                "errors": violations(&checked.report.errors),
                "warnings": violations(&checked.report.warnings),
            });
            if args.show_mutated && valid {
                entry["mutated"] = checked.mutated.unwrap_or(Value::Null);
            } else if args.show_workflow && valid {
                entry["workflow"] = workflows.last().cloned().unwrap_or(Value::Null);
            }
            push(&mut report["groups"], entry);
        }
    }
    if groups == 0 && invalid == 0 {
        write_stderr(&notes);
        return Err(input::no_groups(&args.input));
    }
    match args.output {
        ValidateOutput::Json => {
            write_stderr(&notes);
            write_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
        }
        ValidateOutput::Text if args.show_mutated || args.show_workflow => {
            // The objects go to stdout (ready for `kubectl apply -f -` or `argo lint -`), the
            // verdicts to stderr.
            write_stderr(&notes);
            write_stderr(&text);
            let objects = if args.show_workflow {
                &workflows
            } else {
                &mutated
            };
            write_stdout(&serde_saphyr::to_string_multiple(objects)?)?;
        }
        ValidateOutput::Text => {
            write_stderr(&notes);
            write_stdout(&text)?;
        }
    }
    Ok(ExitCode::from(if invalid == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    }))
}

/// One line per finding, `<group>: <path>: <message>`, then warnings as
/// `<group>: <path>: warning: <message>` (what `validate` and `audit` print).
pub fn findings(label: &str, report: &validate::Report) -> String {
    let mut text = String::new();
    for v in &report.errors {
        let _ = writeln!(text, "{label}: {v}");
    }
    for v in &report.warnings {
        let _ = writeln!(text, "{label}: {}warning: {}", prefix(v), v.message);
    }
    text
}

fn prefix(v: &Violation) -> String {
    if v.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", v.path)
    }
}

pub fn violations(list: &[Violation]) -> Value {
    list.iter()
        .map(|v| json!({ "path": v.path, "message": v.message }))
        .collect()
}

fn push(list: &mut Value, item: Value) {
    if let Some(a) = list.as_array_mut() {
        a.push(item);
    }
}
