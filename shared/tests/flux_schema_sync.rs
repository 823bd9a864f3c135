//! The checked-in copy of helm-controller's schema for the release blocks
//! (`shared/src/flux-release-blocks.json`) is the module's own CRD, descriptions removed. The CRD
//! is read from `ORKESTRA_FLUX_HELM_CRD`, else from the Go module cache; without it the test
//! skips, unless `ORKESTRA_FLUX_HELM_CRD_REQUIRED=1`.

use std::path::PathBuf;

use serde_json::Value;

const MODULE: &str = "github.com/fluxcd/helm-controller@v1.4.0";
const CRD: &str = "config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml";

fn crd_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORKESTRA_FLUX_HELM_CRD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("GOMODCACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/pkg/mod")))?;
    Some(home.join(MODULE).join(CRD)).filter(|p| p.exists())
}

fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("description");
            map.values_mut().for_each(strip_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

/// Every `pattern` and CEL rule in `v`, so the offline checker is known to read them all.
fn patterns_and_rules(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(p) = map.get("pattern").and_then(Value::as_str) {
                out.push(format!("pattern {p}"));
            }
            for r in map
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(format!(
                    "rule {}",
                    r.get("rule").and_then(Value::as_str).unwrap_or("")
                ));
            }
            map.values().for_each(|v| patterns_and_rules(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| patterns_and_rules(v, out)),
        _ => {}
    }
}

#[test]
fn the_checked_in_schema_is_the_modules_crd() {
    let Some(path) = crd_path() else {
        assert!(
            std::env::var("ORKESTRA_FLUX_HELM_CRD_REQUIRED").as_deref() != Ok("1"),
            "the helm-controller CRD was not found (set ORKESTRA_FLUX_HELM_CRD)"
        );
        eprintln!("skipped: {MODULE} is not in the Go module cache");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let crd: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let v2 = versions
        .iter()
        .find(|v| v["name"] == "v2")
        .unwrap_or_else(|| panic!("no v2 in {}", path.display()));
    let checked_in: Value = serde_json::from_str(orkestra::admission::flux_schema::BLOCKS_JSON)
        .unwrap_or_else(|e| panic!("{e}"));
    for block in ["install", "upgrade", "rollback", "uninstall"] {
        let mut real = v2
            .pointer(&format!(
                "/schema/openAPIV3Schema/properties/spec/properties/{block}"
            ))
            .cloned()
            .unwrap_or_else(|| panic!("no spec.{block} in the CRD"));
        strip_descriptions(&mut real);
        assert_eq!(
            Some(&real),
            checked_in.pointer(&format!("/properties/{block}")),
            "shared/src/flux-release-blocks.json is out of date for {block}: extract it again from {}",
            path.display()
        );
    }
    let mut found = Vec::new();
    patterns_and_rules(&checked_in, &mut found);
    for f in &found {
        let known = f == &format!("pattern {}", orkestra::duration::PATTERN)
            || f.strip_prefix("rule ")
                .is_some_and(|r| orkestra::admission::flux_schema::parse_cel_rule(r).is_some());
        assert!(known, "the offline checker does not read {f}");
    }
}
