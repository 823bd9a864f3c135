//! STUB (being written): defaulting and template generation.
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DefaultsError(String);

/// The RFC 6902 patch from `obj` to its defaulted form (only `add` operations; empty when nothing changes).
pub fn mutation_patch(obj: &Value) -> Result<json_patch::Patch, DefaultsError> {
    let _ = obj;
    Ok(json_patch::Patch(vec![]))
}
