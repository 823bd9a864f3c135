//! The CRD's OpenAPI schema, used offline the way the API server uses it: fields the schema does
//! not know are reported (the API server would refuse or prune them), so nothing a user wrote
//! disappears unnoticed, and numbers below a `minimum` are refused as the API server would.
//!
//! Two ways in, one schema and one wording: [`walk`] goes over any serde input against the
//! schema (a value read from a file, or the status' text), and [`unknown_in_spec`] turns a field
//! the typed spec skipped while it was read (`serde_ignored`) into the same finding, so the
//! webhook's one typed pass over the spec also finds its unknown fields. The typed spec is the
//! schema's source (the CRD is generated from it), so both see the same fields.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::api::ApplicationGroupSpec;
use crate::input::hints;

/// The CRD's schema, reduced to what the walk asks of each node.
static SCHEMA: LazyLock<Node> = LazyLock::new(|| {
    let crd = crate::api::crd::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    Node::of(&schema)
});

/// One schema node: looked up once, not per value walked.
#[derive(Debug, Default)]
struct Node {
    /// `x-kubernetes-preserve-unknown-fields: true`: anything goes below.
    free: bool,
    /// The fields of an object, when the schema lists them.
    properties: Option<BTreeMap<String, Node>>,
    /// The schema of a list's items.
    items: Option<Box<Node>>,
    /// The least number allowed.
    minimum: Option<f64>,
}

impl Node {
    fn of(schema: &Value) -> Node {
        Node {
            free: schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)),
            properties: schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), Node::of(v)))
                        .collect()
                }),
            items: schema.get("items").map(|i| Box::new(Node::of(i))),
            minimum: schema.get("minimum").and_then(Value::as_f64),
        }
    }

    /// The node at `path` below this one.
    fn at(&self, path: &[Step<'_>]) -> Option<&Node> {
        path.iter().try_fold(self, |node, step| match step {
            Step::Key(k) => node.properties.as_ref()?.get(k.as_str()),
            Step::Index(_) => node.items.as_deref(),
        })
    }
}

/// Every field of `spec` and `status` of `object` that the schema does not define (see
/// [`walk`]). `apiVersion`, `kind` and `metadata` are the API server's business.
pub fn unknown_fields(object: &Value, report: &mut dyn FnMut(String, String)) {
    for root in ["spec", "status"] {
        if let Some(value) = object.get(root) {
            // A value is always well-formed, so the walk cannot fail.
            let _ = walk(root, value, report);
        }
    }
}

/// Walks `value`, the object's field `root` (`spec` or `status`), reporting every field the
/// schema does not define. Nothing is built: the parts the schema leaves free
/// (`x-kubernetes-preserve-unknown-fields`, such as Helm values) and plain values are skipped
/// as they are read. Fails only on malformed input.
pub fn walk<'de, D: Deserializer<'de>>(
    root: &'static str,
    value: D,
    report: &mut dyn FnMut(String, String),
) -> Result<(), D::Error> {
    let root_step = [Step::Key(Key::Borrowed(root))];
    let Some(schema) = SCHEMA.at(&root_step) else {
        return IgnoredAny::deserialize(value).map(drop);
    };
    let mut path = Vec::from(root_step);
    Walk {
        schema,
        path: &mut path,
        hints: &mut hints::Hints::default(),
        report,
    }
    .deserialize(value)
}

/// The finding for a field the typed spec skipped at `path` (from the object's root), or `None`
/// when the field is outside the spec.
pub fn unknown_in_spec(path: &serde_ignored::Path<'_>) -> Option<(String, String)> {
    let mut steps = Vec::new();
    steps_of(path, &mut steps);
    if !matches!(steps.first(), Some(Step::Key(k)) if k.as_str() == "spec") {
        return None;
    }
    let (Some(Step::Key(key)), Some(parent)) = (steps.last(), SCHEMA.at(&steps[..steps.len() - 1]))
    else {
        return None;
    };
    let props = parent.properties.as_ref()?;
    let message = unknown_message(key.as_str(), props, &mut hints::Hints::default());
    Some((render(&steps), message))
}

/// Reports the spec's numbers below the schema's `minimum` for them.
pub fn below_minimum(spec: &ApplicationGroupSpec, report: &mut dyn FnMut(String, String)) {
    let wt = spec.workflow_template.as_ref();
    let numbers = [
        ("parallelism", wt.and_then(|w| w.parallelism)),
        (
            "activeDeadlineSeconds",
            wt.and_then(|w| w.active_deadline_seconds),
        ),
    ];
    for (field, value) in numbers {
        let path = ["spec", "workflowTemplate", field].map(|k| Step::Key(Key::Borrowed(k)));
        if let (Some(value), Some(min)) = (value, SCHEMA.at(&path).and_then(|n| n.minimum))
            && (value as f64) < min
        {
            report(
                render(&path),
                format!("must be at least {min} (got {value})"),
            );
        }
    }
}

fn steps_of(path: &serde_ignored::Path<'_>, out: &mut Vec<Step<'static>>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            steps_of(parent, out);
            out.push(Step::Index(*index));
        }
        Path::Map { parent, key } => {
            steps_of(parent, out);
            out.push(Step::Key(Key::Owned(key.clone())));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => steps_of(parent, out),
    }
}

fn unknown_message(key: &str, props: &BTreeMap<String, Node>, hints: &mut hints::Hints) -> String {
    let hint = hints
        .closest(key, props.keys().map(String::as_str))
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default();
    format!("unknown field {key:?}{hint}")
}

/// A key as read: borrowed from the input when it can be, so the path costs nothing until a
/// finding renders it.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// One step of a field path; the path is only turned into text when something is reported.
enum Step<'de> {
    Key(Key<'de>),
    Index(usize),
}

/// Walks one value against its schema.
struct Walk<'s, 'p, 'de> {
    schema: &'s Node,
    path: &'p mut Vec<Step<'de>>,
    hints: &'p mut hints::Hints,
    report: &'p mut dyn FnMut(String, String),
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Only objects with known fields and lists are looked into; everything else is skipped
        // as fast as the input can be read.
        let node = self.schema;
        if node.free || (node.properties.is_none() && node.items.is_none()) {
            return IgnoredAny::deserialize(d).map(drop);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(props) = self.schema.properties.as_ref() else {
            return IgnoredAny.visit_map(map).map(drop);
        };
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let known = props.get(key.as_str());
            let unknown = known
                .is_none()
                .then(|| unknown_message(key.as_str(), props, self.hints));
            self.path.push(Step::Key(key));
            match (known, unknown) {
                (Some(schema), _) => map.next_value_seed(Walk {
                    schema,
                    path: &mut *self.path,
                    hints: &mut *self.hints,
                    report: &mut *self.report,
                })?,
                (None, message) => {
                    (self.report)(render(self.path), message.unwrap_or_default());
                    map.next_value::<IgnoredAny>()?;
                }
            }
            self.path.pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(items) = self.schema.items.as_deref() else {
            return IgnoredAny.visit_seq(seq).map(drop);
        };
        let mut i = 0;
        loop {
            self.path.push(Step::Index(i));
            let more = seq.next_element_seed(Walk {
                schema: items,
                path: &mut *self.path,
                hints: &mut *self.hints,
                report: &mut *self.report,
            })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    // A value of another type than the schema says is the typed spec's to report.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn render(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k.as_str()),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k.as_str());
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

    /// Every number the schema bounds, by path.
    fn bounded(node: &Node, path: String, out: &mut Vec<String>) {
        if node.minimum.is_some() {
            out.push(path.clone());
        }
        for (k, child) in node.properties.iter().flatten() {
            bounded(child, format!("{path}.{k}"), out);
        }
        if let Some(items) = &node.items {
            bounded(items, format!("{path}[]"), out);
        }
    }

    #[test]
    fn every_minimum_of_the_schema_is_checked_on_the_typed_spec() {
        let mut paths = Vec::new();
        bounded(&SCHEMA, String::new(), &mut paths);
        assert_eq!(
            paths,
            vec![
                ".spec.workflowTemplate.activeDeadlineSeconds",
                ".spec.workflowTemplate.parallelism"
            ],
            "a new bounded number needs its line in below_minimum"
        );
        let spec: ApplicationGroupSpec = serde_json::from_value(json!({"applications": [],
            "workflowTemplate": {"parallelism": 0, "activeDeadlineSeconds": -5}}))
        .unwrap_or_default();
        let mut found = Vec::new();
        below_minimum(&spec, &mut |p, m| found.push(format!("{p}: {m}")));
        assert_eq!(
            found,
            vec![
                "spec.workflowTemplate.parallelism: must be at least 1 (got 0)",
                "spec.workflowTemplate.activeDeadlineSeconds: must be at least 1 (got -5)",
            ]
        );
    }

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

    /// Every object of the schema whose fields it lists, below `path` (lists as `[]`).
    fn objects(node: &Node, path: String, out: &mut std::collections::BTreeSet<String>) {
        if node.free {
            return;
        }
        for (k, child) in node.properties.iter().flatten() {
            objects(child, format!("{path}.{k}"), out);
        }
        if node.properties.is_some() {
            out.insert(path.clone());
        }
        if let Some(items) = &node.items {
            objects(items, format!("{path}[]"), out);
        }
    }

    /// Every object in `value` the schema lists the fields of: (JSON pointer, field path,
    /// schema path).
    fn places(
        node: &Node,
        value: &Value,
        at: (String, String, String),
        out: &mut Vec<(String, String, String)>,
    ) {
        if node.free {
            return;
        }
        let (pointer, path, schema_path) = at;
        match value {
            Value::Object(fields) => {
                let Some(props) = &node.properties else {
                    return;
                };
                for (k, v) in fields {
                    if let Some(child) = props.get(k) {
                        let at = (
                            format!("{pointer}/{k}"),
                            format!("{path}.{k}"),
                            format!("{schema_path}.{k}"),
                        );
                        places(child, v, at, out);
                    }
                }
                out.push((pointer, path, schema_path));
            }
            Value::Array(items) => {
                let Some(node) = node.items.as_deref() else {
                    return;
                };
                for (i, v) in items.iter().enumerate() {
                    let at = (
                        format!("{pointer}/{i}"),
                        format!("{path}[{i}]"),
                        format!("{schema_path}[]"),
                    );
                    places(node, v, at, out);
                }
            }
            _ => {}
        }
    }

    /// A group with every object of the schema in it, each field set.
    fn everything() -> Value {
        let condition = json!({"type": "Ready", "status": "True", "reason": "Done", "message": "m",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1});
        let chart_status =
            json!({"error": "e", "version": "1.0.0", "staged": true, "conditions": [condition]});
        json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
            "metadata": {"name": "all", "labels": {"a": "b"}},
            "spec": {
                "interval": "1m",
                "releasePolicy": {"automatic": true, "rollbackOnFailure": true},
                "workflowTemplate": {"namespace": "orkestra", "serviceAccountName": "orkestra",
                    "parallelism": 2, "podGC": {"strategy": "OnPodSuccess"}, "executorImage": "i:1",
                    "activeDeadlineSeconds": 60, "templates": [{"name": "t", "anything": {"x": 1}}]},
                "applications": [{"name": "a", "dependencies": [],
                    "spec": {"gate": true,
                        "chart": {"url": "https://c", "name": "c", "version": "1.0.0",
                            "authSecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "s",
                                "namespace": "n", "fieldPath": "f", "resourceVersion": "1", "uid": "u"}},
                        "release": {"interval": "1m", "targetNamespace": "n", "timeout": "5m",
                            "values": {"free": {"deep": 1}}, "install": {"x": 1}, "upgrade": {"x": 1},
                            "rollback": {"x": 1}, "uninstall": {"x": 1}},
                        "subcharts": [{"name": "s", "dependencies": [], "version": "1.0.0"}],
                        "workflow": [{"name": "w", "dependencies": [], "type": "custom",
                            "image": {"image": "busybox:1"}, "params": {"x": 1}}]}}]},
            "status": {"observedGeneration": 1, "lastSucceededGeneration": 1, "conditions": [condition],
                "applications": [{"name": "a", "error": "e", "version": "1.0.0", "staged": true,
                    "conditions": [condition], "subcharts": {"s": chart_status}}]}})
    }

    #[test]
    fn an_unknown_field_is_found_in_every_object_of_the_spec_and_the_status() {
        use crate::input::object::Source;
        let group = everything();
        let text = serde_json::to_vec(&group).unwrap_or_default();
        let clean = Source::Json(&text).read().expect("JSON");
        assert!(clean.spec.is_ok(), "{:?}", clean.spec);
        assert_eq!(clean.schema_findings, vec![], "the group is clean");
        // A clean spec is read once: the read that names fields is not taken.
        let text_of = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        assert_eq!(
            crate::input::object::spec_skips_fields(&text_of(&text)),
            Some(false)
        );

        let mut wanted = std::collections::BTreeSet::new();
        let mut found = Vec::new();
        for root in ["spec", "status"] {
            let node = SCHEMA
                .at(&[Step::Key(Key::Borrowed(root))])
                .expect("in the schema");
            objects(node, root.into(), &mut wanted);
            let at = (format!("/{root}"), root.to_string(), root.to_string());
            places(node, &group[root], at, &mut found);
        }
        let mut covered = std::collections::BTreeSet::new();
        for (pointer, path, schema_path) in found {
            let mut object = group.clone();
            if let Some(Value::Object(fields)) = object.pointer_mut(&pointer) {
                fields.insert("zzUnknownField".into(), json!({"deep": [1]}));
            }
            let text = serde_json::to_vec(&object).unwrap_or_default();
            let read = Source::Json(&text).read().expect("JSON");
            // The spec's are found by the typed read, the status' by the schema walk.
            assert_eq!(
                crate::input::object::spec_skips_fields(&text_of(&text)),
                Some(pointer.starts_with("/spec")),
                "{pointer}"
            );
            assert_eq!(
                read.schema_findings,
                vec![(
                    format!("{path}.zzUnknownField"),
                    "unknown field \"zzUnknownField\"".to_string()
                )],
                "{pointer}"
            );
            covered.insert(schema_path);
        }
        assert_eq!(
            covered, wanted,
            "everything() needs an object at each of these"
        );
    }
}
