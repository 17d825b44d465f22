//! What every driver does the same way, written once: namespace ownership
//! (`namespace`), the prepared-state holder (`state`) and, for REST engines, the HTTP
//! client and the one mapping of transport errors and status codes to `ErrorKind`
//! (`http`).
//!
//! Why three small modules rather than a base driver type: engines differ in their own
//! calls (how a collection is looked up, created or dropped; which HTTP paths exist), and
//! a trait with hooks for exactly those calls keeps the shared rule (refuse what is not
//! ours, classify a 503 as a lost engine) in one place while each driver stays a plain
//! struct. This module must never hold engine-specific knowledge: anything that names a
//! path, a table or a client crate other than `reqwest` belongs in the driver's own file.

pub mod http;
pub mod namespace;
pub mod state;

pub use namespace::{
    attach_own, prepare_own, release_own, release_prepared, Found, Namespace, MARKER_KEY, MARKER_VALUE,
};
pub use state::Prepared;
