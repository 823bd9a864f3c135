//! The CRD's OpenAPI schema, used offline the way the API server uses it: fields the schema does
//! not know are reported (the API server would refuse or prune them), so nothing a user wrote
//! disappears unnoticed, and numbers below a `minimum` are refused as the API server would.

use std::sync::LazyLock;

use crate::input::hints;
use serde_json::Value;

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = crate::api::crd::crd();
    crd.spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
});

/// Calls `report(path, message)` for every field of `spec` and `status` that the schema does not
/// define. `apiVersion`, `kind` and `metadata` are the API server's business.
pub fn unknown_fields(object: &Value, report: &mut dyn FnMut(String, String)) {
    let Some(props) = SCHEMA.get("properties") else {
        return;
    };
    for root in ["spec", "status"] {
        if let (Some(value), Some(schema)) = (object.get(root), props.get(root)) {
            walk(
                value,
                schema,
                &mut vec![Step::Key(root)],
                &mut hints::Hints::default(),
                report,
            );
        }
    }
}

/// One step of a field path; the path is only turned into text when something is reported.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn walk<'a>(
    value: &'a Value,
    schema: &Value,
    path: &mut Vec<Step<'a>>,
    hints: &mut hints::Hints,
    report: &mut dyn FnMut(String, String),
) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, v) in map {
                path.push(Step::Key(key));
                match props.get(key) {
                    Some(s) => walk(v, s, path, hints, report),
                    None => {
                        let hint = hints
                            .closest(key, props.keys().map(String::as_str))
                            .map(|c| format!(" (did you mean {c:?}?)"))
                            .unwrap_or_default();
                        report(render(path), format!("unknown field {key:?}{hint}"));
                    }
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    walk(v, s, path, hints, report);
                    path.pop();
                }
            }
        }
        Value::Number(n) => {
            // The CRD's `minimum` bounds (parallelism, deadlines), as the API server applies them.
            if let (Some(v), Some(min)) =
                (n.as_f64(), schema.get("minimum").and_then(Value::as_f64))
                && v < min
            {
                report(render(path), format!("must be at least {min} (got {n})"));
            }
        }
        _ => {}
    }
}

fn render(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typos_are_caught_with_a_hint() {
        let obj = json!({"spec": {"applications": [{"name": "a", "dependecies": [],
            "spec": {"chart": {"urll": "x"}, "release": {"values": {"anything": 1}}}}]}});
        let mut found = Vec::new();
        unknown_fields(&obj, &mut |p, m| found.push(format!("{p}: {m}")));
        assert_eq!(
            found,
            vec![
                "spec.applications[0].dependecies: unknown field \"dependecies\" (did you mean \"dependencies\"?)",
                "spec.applications[0].spec.chart.urll: unknown field \"urll\" (did you mean \"url\"?)",
            ]
        );
    }
}
