//! amx-rs in a candle-based engine: GGUF weights packed once by amx-rs, applied to candle
//! tensors as a `CustomOp1`, next to candle-core's own `QMatMul`.
//!
//! ```
//! use amx_candle::AmxMatMul;
//! use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
//! use candle_core::{Device, Module, Tensor};
//!
//! # fn main() -> candle_core::Result<()> {
//! let (n, k) = (64, 256);
//! // A weight as candle loads it from a GGUF file (here quantized by candle).
//! let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu)?;
//! let qw = QTensor::quantize(&w, GgmlDType::Q4K)?;
//!
//! // Load time: pack once (or `AmxMatMul::from_ggml_bytes` on the raw GGUF bytes), and
//! // optionally give it threads (`.with_threads(t)?` or a shared `.with_pool(pool)`).
//! let op = AmxMatMul::from_qtensor(&qw)?;
//!
//! // Run time: f32 [..., K] in, f32 [..., N] out, like QMatMul::forward.
//! let xs = Tensor::randn(0f32, 1.0, (2, 3, k), &Device::Cpu)?;
//! let ys = op.forward(&xs)?;
//! assert_eq!(ys.dims(), &[2, 3, n]);
//!
//! let theirs = QMatMul::from_qtensor(qw)?.forward(&xs)?;
//! let err = (&ys - &theirs)?.sqr()?.sum_all()?.to_scalar::<f32>()?;
//! let norm = theirs.sqr()?.sum_all()?.to_scalar::<f32>()?;
//! assert!(err <= 1e-3 * norm);
//! # Ok(())
//! # }
//! ```
//!
//! - [`format_of`] / [`dtype_of`]: candle's `GgmlDType` against amx-rs's `Format` (Q4_0,
//!   Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, F16, BF16 on both sides;
//!   candle-core 0.11 has no IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0 or NVFP4, amx-rs no Q8_1, Q8_K or F32 weights).
//! - [`AmxMatMul`]: the packed weight and the op.
//! - [`qtensor_from_ggml`]: candle's `QTensor` from the same ggml bytes (tests, the
//!   comparison).
//! - [`candle_path`]: which kernel candle-core 0.11.1 runs for a dtype and shape here.
//!
//! The `compare` binary times both on the same weights and inputs (see the README).
//!
//! # Sharing a thread with candle's own AMX kernel
//!
//! candle-core 0.11.1's Q4_K kernel for M >= 32 uses AMX and loads its tile configuration
//! once per thread, remembered in a thread-local flag it never re-checks. On a thread
//! where amx-rs has since loaded its own configuration, candle's Q4_K matmuls return
//! wrong values; after amx-runtime's pool has released the thread's tiles, they fault
//! (SIGILL). Route every Q4_K matmul through [`AmxMatMul`], or keep candle's quantized
//! matmuls and amx-rs on different threads.

mod candle_path;
mod dtype;
mod error;
mod matmul;
mod rows;

pub use candle_path::candle_path;
pub use dtype::{
    SHARED_FORMATS, check_ggml_bytes, dtype_of, format_of, ggml_type_of, qtensor_from_ggml,
};
pub use error::AdapterError;
pub use matmul::AmxMatMul;

/// The README's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
