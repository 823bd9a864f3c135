//! `kubectl orkestra audit`: every ApplicationGroup in the cluster checked against today's
//! rules exactly as the webhooks would check it if it were applied again (mutate, then
//! validate: `orkestra::admission::validate::check`, the same call as `validate -f`). For clusters that
//! held groups before the webhook existed, as Gatekeeper's audit.

use std::process::ExitCode;

use anyhow::Result;
use orkestra::admission::validate;
use serde_json::{Value, json};

use super::cluster::{self, APPLICATION_GROUP};
use super::validate::{findings, violations};
use crate::cli::AuditArgs;
use crate::exit::{EXIT_FAILED, EXIT_OK};
use crate::output::{write_stderr, write_stdout};

pub fn run(args: &AuditArgs) -> Result<ExitCode> {
    super::block_on(async {
        let cluster = cluster::connect(&args.kube).await?;
        let mut groups = cluster.list(APPLICATION_GROUP, None, "").await?;
        groups.sort_by(|a, b| name(a).cmp(name(b)));
        let mut text = String::new();
        let mut report = Vec::new();
        let mut invalid = 0;
        for group in &groups {
            let checked = validate::check(group);
            if !checked.report.is_valid() {
                invalid += 1;
            }
            text.push_str(&findings(name(group), &checked.report));
            report.push(json!({
                "name": name(group),
                "valid": checked.report.is_valid(),
                "errors": violations(&checked.report.errors),
                "warnings": violations(&checked.report.warnings),
            }));
        }
        if !cluster::write_structured(&json!({ "groups": report }), args.output)? {
            write_stdout(&text)?;
        }
        write_stderr(&format!(
            "audited {} ApplicationGroup{}: {invalid} would be denied by the webhook\n",
            groups.len(),
            if groups.len() == 1 { "" } else { "s" }
        ));
        Ok(ExitCode::from(if invalid == 0 {
            EXIT_OK
        } else {
            EXIT_FAILED
        }))
    })
}

fn name(group: &Value) -> &str {
    group
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}
