//! # amx-bench (library part)
//!
//! What the `amx-bench` main job and subcommands are made of (GGUF files are read with
//! the `amx-gguf` crate; the test vectors and test weights come from `amx-testdata`,
//! shared with the other crates' tests, which never depend on this one):
//!
//! - [`gemm_bench`]: what a throughput figure measures ([`gemm_bench::Column`]: our
//!   dispatched path, a forced path, or the [`baseline`]) and how ([`gemm_bench::measure`],
//!   on an amx-runtime pool); [`throughput`] builds the main job's tables from it, with a
//!   [`progress`] bar; [`peak`] times the tile unit's peak in the same run.
//! - [`decode_bench`]: decode-shaped matmuls (SmolLM2-135M at M = 1) on one thread and
//!   on a pool side by side (`bench --decode`).
//! - [`pack_bench`], [`moe_bench`], [`verify`], [`summary`], [`report`], [`gguf_report`]:
//!   the other subcommands' measurements and reports.

pub mod baseline;
pub mod decode_bench;
pub mod gemm_bench;
pub mod gguf_report;
pub mod moe_bench;
pub mod pack_bench;
pub mod peak;
pub mod progress;
pub mod report;
pub mod summary;
pub mod throughput;
pub mod verify;
