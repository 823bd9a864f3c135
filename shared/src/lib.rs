//! Orkestra's domain: the `ApplicationGroup` API, its dependency graphs, the validation rules,
//! the defaulting that injects the Argo Workflow templates, and the views of a group.
//!
//! Everything here is pure: no network, no clocks, no files. The webhook and the kubectl plugin
//! are thin shells around these functions, so they can never disagree.
//!
//! Modules import one way, from the bottom up: [`api`] -> [`input`] -> [`naming`], [`labels`],
//! [`duration`], [`time`], [`version`], [`graph`] -> [`emit`] -> [`admission`] -> [`live`] -> [`plan`] ->
//! [`view`].

pub mod admission;
pub mod api;
pub mod duration;
pub mod emit;
pub mod graph;
pub mod input;
pub mod labels;
pub mod live;
pub mod naming;
pub mod plan;
pub mod time;
pub mod version;
pub mod view;
