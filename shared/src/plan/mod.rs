//! What `promote` and `rollback` will do, before they do it ([`promote`], [`rollback`]), what
//! changes per application between two specs ([`diff`]), and the blast radius of one application
//! ([`impact`]).

pub mod diff;
pub mod impact;
pub mod promote;
pub mod rollback;

/// The two specs the plan tests compare: `old`, and `new` with a changed, an unchanged and two
/// added applications (one gated, with subcharts).
#[cfg(test)]
mod fixtures {
    use serde_json::{Value, json};

    use crate::api::ApplicationGroupSpec;

    fn spec(v: Value) -> ApplicationGroupSpec {
        serde_json::from_value(v).expect("spec")
    }

    fn app(name: &str, deps: &[&str], version: &str, values: Value) -> Value {
        json!({"name": name, "dependencies": deps, "spec": {"chart": {"url": "https://c", "name": name, "version": version}, "release": {"targetNamespace": name, "values": values}}})
    }

    pub fn old() -> ApplicationGroupSpec {
        spec(
            json!({"applications": [app("db", &[], "1.0.0", json!({"a": 1})), app("api", &["db"], "1.0.0", json!({}))],
            "workflowTemplate": {"templates": [{"name": "entry", "dag": {"tasks": [{"name": "db", "template": "app-db"}]}}]}}),
        )
    }

    pub fn new() -> ApplicationGroupSpec {
        spec(json!({"applications": [
            app("db", &[], "1.1.0", json!({"a": 2, "b": {"c": true}})),
            app("api", &["db"], "1.0.0", json!({})),
            app("cache", &["db"], "1.0.0", json!({})),
            {"name": "web", "dependencies": ["cache", "api"], "spec": {"gate": true, "chart": {"url": "https://c", "name": "web", "version": "2.0.0"}, "release": {"targetNamespace": "web"},
                "subcharts": [{"name": "ui"}, {"name": "edge", "dependencies": ["ui"]}]}},
        ]}))
    }
}
