//! STUB (being written): every rule, one implementation.
use serde_json::Value;

/// One broken rule (or a warning), with the field path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path, e.g. `spec.applications[2].dependencies[0]`.
    pub path: String,
    pub message: String,
}

/// Everything validation found about one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<Violation>,
    pub warnings: Vec<Violation>,
}

/// Validates a whole ApplicationGroup object as JSON (`old` is the stored object on UPDATE).
pub fn validate_object(new: &Value, old: Option<&Value>) -> Report {
    let _ = (new, old);
    Report::default()
}
