//! amx-runtime: the layer an inference engine talks to (tile state, worker pool, buffer
//! types, weight placement, scheduling). Under construction: see the project's issues.
//!
//! Today it re-exports [`amx_core`] so that engines can depend on one crate.

pub use amx_core;
