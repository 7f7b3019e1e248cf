//! # amx-core
//!
//! Intel AMX quantized matrix multiplication for ggml block formats, as a `#![no_std]`
//! crate that never allocates and depends on nothing but `core`.
//!
//! - [`detect`]: what the CPU and the OS support ([`detect::Features`]).
//! - [`permission`]: the Linux `arch_prctl` request for tile-data state.
//! - [`token`]: zero-sized capability tokens; holding an [`token::Amx`] proves that
//!   detection and the permission succeeded, so the calls that need AMX can be safe.
//! - [`tile`]: the 64-byte palette-1 [`tile::TileConfig`] and the tile instructions.
//! - [`formats`]: the ggml block formats, one module each holding everything about it
//!   (byte layout, reference dequantizer, packed fields, decoders, AMX threshold), and the
//!   registry that lists them.
//! - [`gemm`]: `Y = X * W^T` on packed weights: the API, path dispatch and work ranges.
//! - [`moe`]: the mixture-of-experts matmul over a stack of packed experts.
//! - [`pack`]: the weight repack into 16-row VNNI panels behind a checked header, and back.
//!
//! Every buffer comes from the caller; sizes come from `const fn`s. No function panics on
//! caller input: bad input is an error value that says what was wrong, with the numbers.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod detect;
pub mod formats;
pub mod gemm;
mod kernels;
pub mod moe;
pub mod pack;
pub mod permission;
mod quantize;
#[doc(hidden)]
pub mod require;
pub mod tile;
pub mod token;

#[cfg(test)]
mod test_util;
