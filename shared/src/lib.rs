//! Orkestra's domain: the `ApplicationGroup` API, its dependency graphs, the validation rules,
//! the defaulting that injects the Argo Workflow templates, and the views of a group.
//!
//! Everything here is pure: no network, no clocks, no files. The webhook and the kubectl plugin
//! are thin shells around these functions, so they can never disagree.

pub mod api;
pub mod argo;
pub mod control;
pub mod defaults;
pub mod duration;
pub mod eta;
pub mod flux;
pub mod flux_schema;
pub mod graph;
pub mod impact;
pub mod limits;
pub mod live;
pub mod load;
pub mod model;
pub mod names;
pub mod plan;
pub mod policy;
pub mod release;
pub mod render;
pub mod revision;
pub mod schema;
pub mod validate;
pub mod why;
