//! What admission decides: every rule a group must follow ([`validate`], [`policy`], the Flux
//! blocks in [`flux_schema`]) and the defaults the mutating webhook writes ([`defaults`]).

pub mod defaults;
pub mod flux_schema;
pub mod policy;
pub mod validate;
