//! The free-form `release.install`, `upgrade`, `rollback` and `uninstall` blocks, checked against
//! helm-controller v2's own schema for those fields (copied verbatim into the HelmRelease, so a
//! typo would otherwise pass admission and fail only when the step applies it).
//!
//! The schema is the real CRD's `openAPIV3Schema` for those four fields, descriptions removed,
//! checked in as `flux-release-blocks.json` (a test keeps it equal to the module's CRD). It is
//! read the way the API server reads it: types, `properties` (an unknown field is refused, as
//! `fieldValidation=Strict` does), `required`, `enum`, the duration `pattern`, and the two CEL
//! rules these fields carry (`!has(self.a) || self.b == 'X'` / `!= 'X'`).

use std::sync::LazyLock;

use serde_json::Value;

use crate::duration;
use crate::input::hints;

/// The checked-in copy.
pub const BLOCKS_JSON: &str = include_str!("flux-release-blocks.json");

static BLOCKS: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(BLOCKS_JSON).unwrap_or(Value::Null));

/// The schema of one block (`install`, `upgrade`, `rollback`, `uninstall`).
pub fn block_schema(block: &str) -> Option<&'static Value> {
    BLOCKS.pointer(&format!("/properties/{block}"))
}

/// Calls `report(path, message)` for everything in `value` that helm-controller's schema for
/// `release.<block>` refuses; `path` is the block's field path.
pub fn check_block(block: &str, value: &Value, path: &str, report: &mut dyn FnMut(String, String)) {
    if let Some(schema) = block_schema(block) {
        check(value, schema, path, report);
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn check(value: &Value, schema: &Value, path: &str, report: &mut dyn FnMut(String, String)) {
    let want = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let fits = match want {
        "object" => value.is_object(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        _ => true,
    };
    if !fits {
        let article = if want == "integer" || want == "object" || want == "array" {
            "an"
        } else {
            "a"
        };
        let want = if want == "array" { "list" } else { want };
        report(
            path.to_string(),
            format!(
                "must be {article} {want} (Flux's HelmRelease schema), not {}",
                type_name(value)
            ),
        );
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, v) in map {
                let child = format!("{path}.{key}");
                match props.and_then(|p| p.get(key)) {
                    Some(s) => check(v, s, &child, report),
                    None => {
                        let hint = props
                            .and_then(|p| hints::closest(key, p.keys().map(String::as_str)))
                            .map(|c| format!(" (did you mean {c:?}?)"))
                            .unwrap_or_default();
                        report(
                            child,
                            format!("unknown field {key:?} in Flux's HelmRelease schema{hint}"),
                        );
                    }
                }
            }
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(required) {
                    report(
                        format!("{path}.{required}"),
                        "is required by Flux's HelmRelease schema".to_string(),
                    );
                }
            }
            for rule in schema
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if cel_rule_broken(rule, value) {
                    let message = rule.get("message").and_then(Value::as_str).unwrap_or("");
                    report(path.to_string(), message.to_string());
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(v, s, &format!("{path}[{i}]"), report);
                }
            }
        }
        Value::String(s) => {
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                && !allowed.iter().any(|a| a.as_str() == Some(s))
            {
                let list: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                report(
                    path.to_string(),
                    format!("{s:?} is not one of {}", list.join(", ")),
                );
            }
            if schema.get("pattern").and_then(Value::as_str) == Some(duration::PATTERN)
                && duration::parse(s).is_none()
            {
                report(
                    path.to_string(),
                    format!(
                        "{s:?} is not a duration Flux accepts (write it like 5m, 90s, 1h30m or 500ms)"
                    ),
                );
            }
        }
        _ => {}
    }
}

/// The CEL rules of these fields: `!has(self.A) || self.B == 'X'` (or `!=`). `true` when the
/// rule is one of these and `object` breaks it; other rules are not judged here (the sync test
/// makes sure no other kind appears).
fn cel_rule_broken(rule: &Value, object: &Value) -> bool {
    let Some((field, other, equal, literal)) = rule
        .get("rule")
        .and_then(Value::as_str)
        .and_then(parse_cel_rule)
    else {
        return false;
    };
    if object.get(field).is_none() {
        return false;
    }
    let actual = object.get(other).and_then(Value::as_str);
    let holds = if equal {
        actual == Some(literal)
    } else {
        actual != Some(literal)
    };
    !holds
}

/// `(A, B, ==?, X)` of `!has(self.A) || self.B == 'X'` / `!= 'X'`.
pub fn parse_cel_rule(rule: &str) -> Option<(&str, &str, bool, &str)> {
    let (has, cmp) = rule.split_once(" || ")?;
    let field = has.strip_prefix("!has(self.")?.strip_suffix(')')?;
    let cmp = cmp.strip_prefix("self.")?;
    let (other, equal, literal) = match (cmp.split_once(" == "), cmp.split_once(" != ")) {
        (Some((o, l)), None) => (o, true, l),
        (None, Some((o, l))) => (o, false, l),
        _ => return None,
    };
    let literal = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    Some((field, other, equal, literal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn findings(block: &str, value: Value) -> Vec<String> {
        let mut out = Vec::new();
        check_block(block, &value, "release", &mut |p, m| {
            out.push(format!("{p}: {m}"))
        });
        out
    }

    #[test]
    fn the_real_schemas_blocks_are_embedded() {
        for block in ["install", "upgrade", "rollback", "uninstall"] {
            assert!(block_schema(block).is_some(), "{block}");
        }
    }

    #[test]
    fn valid_blocks_pass() {
        assert!(
            findings(
                "install",
                json!({"remediation": {"retries": -1}, "createNamespace": true, "timeout": "10m"})
            )
            .is_empty()
        );
        assert!(findings("upgrade", json!({"strategy": {"name": "RetryOnFailure", "retryInterval": "1m"}, "crds": "CreateReplace"})).is_empty());
        assert!(
            findings(
                "uninstall",
                json!({"deletionPropagation": "foreground", "keepHistory": false})
            )
            .is_empty()
        );
    }

    #[test]
    fn typos_types_enums_durations_and_rules_are_refused_with_their_path() {
        assert_eq!(
            findings("install", json!({"remediation": {"retires": 3}})),
            vec![
                "release.remediation.retires: unknown field \"retires\" in Flux's HelmRelease schema (did you mean \"retries\"?)"
            ]
        );
        assert_eq!(
            findings(
                "upgrade",
                json!({"remediation": {"retries": "3"}, "crds": "Always"})
            ),
            vec![
                "release.crds: \"Always\" is not one of Skip, Create, CreateReplace",
                "release.remediation.retries: must be an integer (Flux's HelmRelease schema), not a string",
            ]
        );
        assert_eq!(
            findings("rollback", json!({"timeout": "0"})),
            vec![
                "release.timeout: \"0\" is not a duration Flux accepts (write it like 5m, 90s, 1h30m or 500ms)"
            ]
        );
        assert_eq!(
            findings(
                "install",
                json!({"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}})
            ),
            vec![
                "release.strategy: .retryInterval cannot be set when .name is 'RemediateOnFailure'"
            ]
        );
        assert_eq!(
            findings("upgrade", json!({"strategy": {"retryInterval": "1m"}})),
            vec![
                "release.strategy.name: is required by Flux's HelmRelease schema",
                "release.strategy: .retryInterval can only be set when .name is 'RetryOnFailure'",
            ]
        );
    }

    #[test]
    fn cel_rules_of_this_form_are_read() {
        assert_eq!(
            parse_cel_rule("!has(self.retryInterval) || self.name != 'RemediateOnFailure'"),
            Some(("retryInterval", "name", false, "RemediateOnFailure"))
        );
        assert_eq!(parse_cel_rule("self.a > 1"), None);
    }
}
