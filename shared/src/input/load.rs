//! The one loader: YAML (multi-document) or JSON text in, one JSON value per Kubernetes object
//! out. `kind: List` documents are opened into their items.

use serde_json::Value;

/// A document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    /// What the parser said, with the line and column when it knows them.
    pub message: String,
}

/// One object read from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based position of the document among the non-empty documents of the stream.
    pub index: usize,
    /// The object.
    pub value: Value,
}

impl Document {
    /// `kind` of the object, or empty.
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// `metadata.name` of the object, or empty.
    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// Reads every object in `text`. Empty documents are skipped.
pub fn documents(text: &str) -> Result<Vec<Document>, LoadError> {
    // serde-saphyr reads JSON too (YAML 1.2 is a superset), so there is one code path.
    let values: Vec<Value> = serde_saphyr::from_str_multiple(text).map_err(|e| {
        if let Some(message) = budget_message(&e) {
            return LoadError { message };
        }
        // The first line says what and where ("line 3 column 6: ..."); the rest is a snippet.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or_default();
        LoadError {
            message: first.strip_prefix("error: ").unwrap_or(first).to_string(),
        }
    })?;
    let mut out = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let index = i + 1;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.extend(items.into_iter().map(|value| Document { index, value }));
            }
            value => out.push(Document { index, value }),
        }
    }
    Ok(out)
}

/// The reader's limits (alias bombs, huge or deep documents) in words, with the limit.
fn budget_message(e: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::budget::BudgetBreach as B;
    let serde_saphyr::Error::Budget { breach, .. } = e.without_snippet() else {
        return None;
    };
    let max = serde_saphyr::Budget::default();
    Some(match breach {
        B::Nodes { .. } => format!(
            "too many YAML values: at most {} in one input",
            max.max_nodes
        ),
        B::Depth { .. } => format!("nested too deeply: at most {} levels", max.max_depth),
        B::Documents { .. } => format!(
            "too many YAML documents: at most {} in one input",
            max.max_documents
        ),
        B::ScalarBytes { .. } => format!(
            "too much text in YAML values: at most {} MiB in one input",
            max.max_total_scalar_bytes >> 20
        ),
        B::Aliases { .. }
        | B::Anchors { .. }
        | B::AliasAnchorRatio { .. }
        | B::MergeKeys { .. } => {
            "too many YAML aliases, anchors or merge keys (expanding them would explode)"
                .to_string()
        }
        _ => "the YAML is too large or too complex to read".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "kind: A\n---\n---\nkind: List\nitems:\n- kind: B\n- kind: C\n";
        let docs = documents(text).unwrap_or_default();
        let kinds: Vec<(usize, &str)> = docs.iter().map(|d| (d.index, d.kind())).collect();
        assert_eq!(kinds, vec![(1, "A"), (2, "B"), (2, "C")]);
    }

    #[test]
    fn json_reads_too() {
        let docs = documents(r#"{"kind": "ApplicationGroup", "metadata": {"name": "x"}}"#)
            .unwrap_or_default();
        assert_eq!(docs[0].name(), "x");
    }

    #[test]
    fn reader_limits_are_told_in_words() {
        let many = format!("[{}]", vec!["0"; 250_001].join(","));
        let e = documents(&many)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(e, "too many YAML values: at most 250000 in one input");
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = documents("kind: A\nspec:\n  x: [1, 2\n")
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(e, "line 3 column 6: unclosed bracket '['");
    }
}
