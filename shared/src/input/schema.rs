//! The CRD's OpenAPI schema, used offline the way the API server uses it: fields the schema does
//! not know are reported (the API server would refuse or prune them), so nothing a user wrote
//! disappears unnoticed, and numbers below a `minimum` are refused as the API server would.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

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
}

/// Calls `report(path, message)` for every field of `spec` and `status` that the schema does not
/// define. `apiVersion`, `kind` and `metadata` are the API server's business.
pub fn unknown_fields(object: &Value, report: &mut dyn FnMut(String, String)) {
    // A value is always well-formed, so the walk cannot fail.
    let _ = walk_object(object, report);
}

/// The same walk over any serde input, e.g. the object's JSON text: nothing is built, the parts
/// the schema leaves free (`x-kubernetes-preserve-unknown-fields`, such as the generated
/// templates and Helm values) are skipped as they are read. Fails only on malformed input.
pub fn walk_object<'de, D: Deserializer<'de>>(
    object: D,
    report: &mut dyn FnMut(String, String),
) -> Result<(), D::Error> {
    let Some(props) = SCHEMA.properties.as_ref() else {
        return IgnoredAny::deserialize(object).map(drop);
    };
    object.deserialize_any(Root {
        props,
        report,
        hints: hints::Hints::default(),
    })
}

/// The object's top level: `spec` and `status` are walked, the rest skipped.
struct Root<'s, 'r> {
    props: &'s BTreeMap<String, Node>,
    report: &'r mut dyn FnMut(String, String),
    hints: hints::Hints,
}

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let root = ["spec", "status"].into_iter().find(|r| *r == key.as_str());
            match root.and_then(|r| self.props.get(r).map(|n| (r, n))) {
                Some((root, schema)) => {
                    let mut path = vec![Step::Key(Key::Borrowed(root))];
                    map.next_value_seed(Walk {
                        schema,
                        path: &mut path,
                        hints: &mut self.hints,
                        report: &mut *self.report,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    // Anything but an object has no spec to walk.
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
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        IgnoredAny.visit_seq(seq).map(drop)
    }
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
        if self.schema.free {
            return IgnoredAny::deserialize(d).map(drop);
        }
        d.deserialize_any(self)
    }
}

impl Walk<'_, '_, '_> {
    /// The CRD's `minimum` bounds (parallelism, deadlines), as the API server applies them.
    fn number(self, value: f64, shown: &dyn fmt::Display) {
        if let Some(min) = self.schema.minimum
            && value < min
        {
            (self.report)(
                render(self.path),
                format!("must be at least {min} (got {shown})"),
            );
        }
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
            let unknown = known.is_none().then(|| {
                let hint = self
                    .hints
                    .closest(key.as_str(), props.keys().map(String::as_str))
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                format!("unknown field {:?}{hint}", key.as_str())
            });
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

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v as f64, &v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v as f64, &v);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v, &v);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
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
