//! Invariants of defaulting and validation over generated groups and arbitrary input.

use orkestra::admission::defaults::{default_object, mutation_patch, mutation_patch_json};
use orkestra::admission::validate;
use orkestra::input::load;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const NAMES: [&str; 6] = ["db", "cache", "api", "web", "queue", "auth"];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z0-9*. -]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn maybe(s: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop::option::of(s)
}

/// A group whose applications set some optional fields and leave others to the defaults.
fn group() -> impl Strategy<Value = Value> {
    let app = (
        0..NAMES.len(),
        prop::collection::vec(0..NAMES.len(), 0..3),
        maybe("(1m|5m|90s|2h)".prop_map(Value::String)),
        maybe("(ns-a|ns-b)".prop_map(Value::String)),
        maybe("(1\\.0\\.0|\\*|2\\.3\\.4)".prop_map(Value::String)),
        maybe(any_json()),
        any::<bool>(),
    )
        .prop_map(|(name, deps, timeout, ns, version, values, keptn)| {
            let mut release = Map::new();
            for (k, v) in [("timeout", timeout), ("targetNamespace", ns), ("values", values)] {
                if let Some(v) = v {
                    release.insert(k.into(), v);
                }
            }
            let mut chart = json!({"url": "https://charts.example.com", "name": NAMES[name]});
            if let Some(v) = version {
                chart["version"] = v;
            }
            let mut spec = json!({"chart": chart, "release": release});
            if keptn {
                spec["workflow"] = json!([
                    {"name": "helmrelease", "type": "helmrelease"},
                    {"name": "gate", "type": "keptn", "dependencies": ["helmrelease"],
                     "params": {"configMapRef": {"name": "c", "namespace": "n"}}}
                ]);
            }
            json!({"name": NAMES[name], "dependencies": deps.iter().map(|d| NAMES[*d]).collect::<Vec<_>>(), "spec": spec})
        });
    (prop::collection::vec(app, 1..6), prop::option::of(1i64..20)).prop_map(|(apps, parallelism)| {
        let mut spec = json!({"applications": apps});
        if let Some(p) = parallelism {
            spec["workflowTemplate"] = json!({"parallelism": p});
        }
        json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
               "metadata": {"name": "g"}, "spec": spec})
    })
}

/// Every leaf of `a` is in `b` with the same value (ignoring the generated templates).
fn preserved(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.iter().try_for_each(|(k, v)| {
            if k == "templates" {
                return Ok(());
            }
            let p = format!("{path}/{k}");
            match y.get(k) {
                Some(w) => preserved(v, w, &p),
                None => Err(format!("{p} lost")),
            }
        }),
        // An empty list is unset: defaulting may fill it (the implicit helmrelease executor).
        (Value::Array(x), Value::Array(_)) if x.is_empty() => Ok(()),
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path} changed length"));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .try_for_each(|(i, (v, w))| preserved(v, w, &format!("{path}/{i}")))
        }
        (x, y) if x == y => Ok(()),
        (Value::Null, _) => Ok(()),
        _ => Err(format!("{path}: {a} became {b}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn defaulting_is_idempotent_and_keeps_user_values(obj in group()) {
        let once = default_object(&obj).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let twice = default_object(&once).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&once, &twice);
        prop_assert!(mutation_patch(&once).map(|p| p.is_empty()).unwrap_or(false));
        preserved(&obj, &once, "").map_err(TestCaseError::fail)?;
    }

    #[test]
    fn the_patch_turns_the_input_into_the_defaulted_object(obj in group()) {
        let patch = mutation_patch(&obj).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Applied as the API server applies it: from the JSON the webhook sends.
        let sent: json_patch::Patch = serde_json::from_slice(&patch.clone().into_json())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut patched = obj.clone();
        json_patch::patch(&mut patched, &sent).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let defaulted = default_object(&obj).ok();
        prop_assert_eq!(Some(&patched), defaulted.as_ref());
        // The webhook's path, from the object's text, says the same.
        let text = serde_json::to_vec(&obj).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let from_text = mutation_patch_json(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(from_text.into_json(), patch.into_json());
        let stored = serde_json::to_vec(&patched).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(validate::validate_json(&stored, Some(&text)), validate::validate_object(&patched, Some(&obj)));
    }

    #[test]
    fn a_group_is_refused_for_cycles_iff_its_graph_is_cyclic(obj in group()) {
        let report = validate::check(&obj).report;
        let spec = orkestra::input::parse::parse_spec(&obj).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let dag = orkestra::graph::Dag::new(spec.applications.iter().map(|a| (a.name.as_str(), a.dependencies.iter().map(String::as_str))));
        let cyclic = dag.topological_order().is_none();
        let reported = report.errors.iter().any(|v| v.message.starts_with("dependency cycle"));
        prop_assert_eq!(cyclic, reported);
    }

    #[test]
    fn validation_never_panics_on_arbitrary_specs(spec in any_json(), old in any_json()) {
        let obj = json!({"kind": "ApplicationGroup", "metadata": {"name": "x"}, "spec": spec});
        let _ = validate::check(&obj);
        let _ = validate::validate_object(&obj, Some(&json!({"kind": "ApplicationGroup", "spec": old})));
        let _ = mutation_patch(&obj);
    }

    #[test]
    fn validation_never_panics_on_mangled_groups(obj in group(), at in any::<prop::sample::Index>(), junk in any_json()) {
        // Replace one value somewhere in a realistic group with junk.
        let mut pointers = Vec::new();
        collect_pointers(&obj, String::new(), &mut pointers);
        let mut mangled = obj.clone();
        if let Some(slot) = mangled.pointer_mut(at.get(pointers.as_slice()).as_str()) {
            *slot = junk;
        }
        let _ = validate::check(&mangled);
    }

    #[test]
    fn the_loader_never_panics(text in "(?s).{0,200}") {
        if let Ok(docs) = load::documents(&text) {
            for d in docs {
                let _ = validate::check(&d.value);
            }
        }
    }
}

fn collect_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| collect_pointers(v, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| collect_pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
}
