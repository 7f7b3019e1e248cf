//! # amx-runtime
//!
//! The layer an inference engine talks to. Most engines need only the first part below
//! (weights from a GGUF file, a pool, one-line matmuls); the graph, placement and
//! scheduler layer after it is for engines that mix backends (a GPU for some layers,
//! AMX for the rest) and want a guarantee that no op ever reads packed bytes it cannot
//! read.
//!
//! # The engine path
//!
//! 1. **Load**: [`amx_gguf::GgufFile::open`] maps the file; [`weight::PackedWeight::from_gguf`]
//!    packs one tensor (ggml type and dims from the file: `ne0 = k`, `ne1 = n`, `ne2` =
//!    stacked experts, so `n` and `k` cannot be swapped) into huge-page memory. A weight
//!    in a type without a packed format is dequantized by the engine and packed as BF16
//!    ([`weight::PackedWeight::from_f32_as_bf16`]). Fused projections (QKV, gate + up):
//!    [`weight::PackedWeight::concat_rows`]. Token embeddings: one packed copy serves the
//!    lookup ([`weight::PackedWeight::dequantize_row`]) and the tied logits.
//! 2. **Threads**: one [`pool::Pool`] per process (or per socket). A job too small to pay
//!    for a second thread runs on the calling thread alone ([`pool::DEFAULT_MIN_SHARE_MACS`]).
//! 3. **Matmuls**: [`pool::Pool::linear`] (`y = x * W^T`, M from the lengths),
//!    [`pool::Pool::linear_many`] (one input, several weights, one job),
//!    [`pool::Pool::moe`] (the grouped expert matmul, from the router's ids).
//!
//! ```
//! use amx_runtime::amx_gguf::GgufFile;
//! use amx_runtime::pool::Pool;
//! use amx_runtime::weight::PackedWeight;
//!
//! // A test vector of the repository: a Q4_1 weight `w` (64 rows of 256 values), an
//! // activation row `x` and gguf-py's float64 product `y`, stored as f32.
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/q4_1_m1_n64_k256_plain.gguf");
//! let file = GgufFile::open(path)?;
//! let w = PackedWeight::from_gguf(&file, "w")?;
//! assert_eq!((w.n(), w.k()), (64, 256));
//! let x = file.tensor_f32("x")?;
//!
//! let pool = Pool::new(2);
//! let mut y = vec![0f32; w.n()];
//! pool.linear(&w.packed(), &x, &mut y)?; // may request the AMX permission (not at M = 1)
//! let want = file.tensor_f32("y")?;
//! let err: f32 = y.iter().zip(&want).map(|(a, b)| (a - b) * (a - b)).sum();
//! let norm: f32 = want.iter().map(|b| b * b).sum();
//! assert!(err <= 1e-4 * norm, "NMSE {}", err / norm);
//!
//! // The same matrix twice as a stack of two experts; each token picks both.
//! let bytes = file.tensor_bytes("w")?.repeat(2);
//! let experts = PackedWeight::from_ggml(3, &[256, 64, 2], &bytes)?; // 3 = ggml's Q4_1
//! let mut ye = vec![0f32; 2 * w.n()];
//! pool.moe(&experts.packed(), &x, &[1, 0], 2, &mut ye)?;
//! assert_eq!(&ye[..w.n()], &ye[w.n()..]);
//! assert_eq!(&ye[..w.n()], &y[..]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **The AMX permission.** Linux gives a process the AMX tile state only after it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); [`tile_state`] asks once per process, the first
//! time a call takes the AMX path. Calls that may take it say so in their docs ("may
//! request the AMX permission"): the pool's matmuls, the AMX buffer type's compute, the
//! scheduler's runs. A process that must not use AMX forces another path
//! ([`amx_core::gemm::Path`]) or runs on a machine without it; everything still works.
//!
//! **Accuracy per path** (all three compute with the weights exactly as stored):
//! - VNNI (`Path::Vnni`, decode and small M): activations rounded to int8 per 32-value
//!   block, as ggml's Q8 does; on SmolLM2-135M the logits sit about 3 % (relative L2)
//!   from a float64 reference.
//! - AMX (`Path::Amx`, prefill): activations rounded to BF16; about 0.8 % there.
//! - Scalar (`Path::Scalar`): f32 dequantization and f32 dot products, exact up to f32
//!   summation; slow, for references and tests.
//!
//! `Path::Auto` takes AMX from a per-format row count up ([`amx_core::gemm::amx_min_rows`])
//! and VNNI below. Force a path when results must not depend on M (a reference run, a
//! test comparing batch sizes) or to compare paths; the extremes each path treats
//! differently (subnormals, values past the BF16 range) are listed in amx-core's gemm
//! docs.
//!
//! # The modules
//!
//! - [`weight`]: owned packed weights ([`weight::PackedWeight`]).
//! - [`pool`]: the worker pool, its one-line calls, the threshold that keeps small jobs
//!   on one thread, reusable workspaces (no allocation per call in steady state), and
//!   [`pool::Matmul`] for engines that bring their own threads.
//! - [`tile_state`]: the AMX permission once per process, tile state released when a
//!   thread is done with it.
//! - [`hugepage`]: zeroed buffers on transparent huge pages for packed weights (the
//!   decode-time weight stream runs closer to the memory's bandwidth on 2 MiB pages).
//!
//! The graph layer, for engines that mix backends:
//!
//! - [`buffer`]: buffer types (`is_host`, alignment, sizes, op support, upload that packs,
//!   download that unpacks): host memory and the AMX buffer type (`is_host = false`).
//! - [`backend`]: backends that say which buffer types and ops they accept: the CPU
//!   backend (host buffers *and* the AMX buffer type), and a GPU-like test backend.
//! - [`tensor`], [`op`], [`graph`]: tensor descriptions, the ops with their ggml shape
//!   rules, and a small op graph.
//! - [`placement`], [`sched`], [`exec`]: per-tensor weight placement by asking buffer
//!   types about the real consuming op, a scheduler that refuses any graph where an op
//!   would read packed bytes it cannot read, and a runner that records which backend and
//!   kernel ran each op; [`exec::Prepared`] runs a graph step after step without
//!   allocating (buffers made once per step shape, temporaries from a bump arena).
//! - State that persists across runs (a KV cache,
//!   [`graph::TensorKind::State`]): host buffers the engine owns, passed to every run
//!   and read in place by ops such as the fused [`op::Op::Attention`]; the engine
//!   appends each step's keys and values between runs. `amx-llm` is the engine that
//!   shows all of it on real GGUF models.
//! - [`reference`](mod@reference): the f32 reference ops; [`error`]: the error types.

pub mod backend;
pub mod buffer;
pub mod error;
pub mod exec;
mod fast_math;
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
pub use amx_gguf;
