//! The objects Orkestra creates: the Argo Workflow templates and Workflows ([`argo`], [`rollback`]),
//! the Flux HelmRelease and HelmRepository ([`flux`]), the ControllerRevision of each release
//! ([`revision`]) and each release step's manifest ([`manifest`]).

pub mod argo;
pub mod flux;
pub mod manifest;
pub mod revision;
pub mod rollback;
