//! Reading the cluster's state back, pure (the caller reads the objects and passes the clock in):
//! the Argo Workflow ([`workflow`]), Flux's HelmReleases ([`helm_release`]), the recorded
//! revisions ([`revision`]), what `status` shows ([`report`]) and the time a release has left
//! ([`eta`]); the Workflow changes that stop or retry a release ([`control`]); and the release
//! step's decisions ([`executor`]).

pub mod control;
pub mod eta;
pub mod executor;
pub mod helm_release;
pub mod report;
pub mod revision;
pub mod workflow;
