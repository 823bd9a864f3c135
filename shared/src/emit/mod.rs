//! The objects Orkestra creates: the Argo Workflow templates and Workflows ([`argo`], [`rollback`]),
//! the Flux HelmRelease and HelmRepository ([`flux`]), the ControllerRevision of each release
//! ([`revision`]) and each release step's manifest ([`manifest`]); [`json`] writes JSON text by
//! hand, as the templates are written.

pub mod argo;
pub mod flux;
pub mod json;
pub mod manifest;
pub mod revision;
pub mod rollback;
