//! What `promote` and `rollback` will do, before they do it ([`promote`], [`rollback`]), what
//! changes per application between two specs ([`diff`]), and the blast radius of one application
//! ([`impact`]).

pub mod diff;
pub mod impact;
pub mod promote;
pub mod rollback;
