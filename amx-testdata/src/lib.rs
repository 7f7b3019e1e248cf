//! # amx-testdata (test support, not published)
//!
//! The test data the amx-rs crates share, in a crate of its own so that no library has to
//! (dev-)depend on the benchmark crate:
//!
//! - [`vectors`]: the GGUF test vectors of `tests/vectors/` (weights, reference
//!   dequantization, activations, float64 reference outputs) loaded and shape-checked,
//!   and the [`vectors::nmse`] metric.
//! - [`random`]: deterministic pseudo-random bytes and values.
//! - [`weights`]: weights with moderate scales for a format ([`weights::bench_weights`]).
//! - [`test_dir`]: scratch directories and the repository's vector files.
//!
//! It depends on amx-core and amx-gguf only.

pub mod random;
pub mod test_dir;
pub mod vectors;
pub mod weights;
