//! Reading what a user wrote: text into Kubernetes objects ([`load`]), an object into the typed
//! API ([`parse`]), fields the CRD's schema does not know ([`schema`]; [`skipped`] says cheaply
//! whether there are any), and "did you mean" hints.

pub mod hints;
pub mod load;
pub mod object;
pub mod parse;
pub mod schema;
pub mod skipped;
