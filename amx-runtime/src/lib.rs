//! # amx-runtime
//!
//! The layer an inference engine talks to, built so that the bugs from porting AMX into
//! a C++ engine cannot happen here:
//!
//! - [`tile_state`]: the AMX permission once per process, tile state released when a
//!   thread is done with it.
//! - [`pool`]: a worker pool that splits a matmul over threads through amx-core's range
//!   API, with reusable workspaces (no allocation per call in steady state), and
//!   [`pool::Matmul`] for engines that bring their own threads.
//! - [`buffer`]: buffer types (`is_host`, alignment, sizes, op support, upload that packs,
//!   download that unpacks): host memory and the AMX buffer type (`is_host = false`).
//! - [`weight`]: owned packed weights built from a GGUF tensor's ggml type, dims and
//!   bytes ([`weight::PackedWeight`]): matmuls, GET_ROWS from the packed bytes, and
//!   weights concatenated along `n` for fused projections.
//! - [`hugepage`]: zeroed buffers on transparent huge pages for packed weights (the
//!   decode-time weight stream runs closer to the memory's bandwidth on 2 MiB pages).
//! - [`backend`]: backends that say which buffer types and ops they accept: the CPU
//!   backend (host buffers *and* the AMX buffer type), and a GPU-like test backend.
//! - [`tensor`], [`op`], [`graph`]: tensor descriptions, the ops with their ggml shape
//!   rules, and a small op graph.
//! - [`placement`], [`sched`], [`exec`]: per-tensor weight placement by asking buffer
//!   types about the real consuming op, a scheduler that refuses any graph where an op
//!   would read packed bytes it cannot read, and a runner that records which backend and
//!   kernel ran each op.
//! - [`reference`](mod@reference): the f32 reference ops; [`error`]: the error types.

pub mod backend;
pub mod buffer;
pub mod error;
pub mod exec;
pub mod graph;
pub mod hugepage;
pub mod op;
pub mod placement;
pub mod pool;
pub mod reference;
pub mod sched;
pub mod tensor;
#[doc(hidden)]
pub mod test_support;
#[cfg(test)]
mod test_util;
pub mod tile_state;
pub mod weight;

pub use amx_core;
