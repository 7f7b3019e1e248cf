//! The GEMM microkernels and what they share.
//!
//! - [`decode`]: quantized groups of a panel into unsigned bytes plus a per-row affine map;
//! - [`scalar`]: the reference path (f32 dequantization, f32 dot products);
//! - `vnni`: AVX-512 VNNI for small M;
//! - `amx`: AMX BF16 tiles for large M.

#[cfg(target_arch = "x86_64")]
pub(crate) mod amx;
pub(crate) mod decode;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vnni;

use core::ops::Range;

use crate::gemm::{Path, Prepared, SharedOut};
use crate::pack::PackedRef;

/// One checked block of work: output rows `rows` of panels `panels`.
pub(crate) struct Job<'a, 'w, 'x, 'y> {
    pub weights: &'a PackedRef<'w>,
    pub x: &'a Prepared<'x>,
    pub y: &'a SharedOut<'y>,
    pub panels: Range<usize>,
    pub rows: Range<usize>,
}

/// Runs `job` on the kernel of its prepared path.
///
/// # Safety
///
/// The job was checked (shapes, ranges, prepared kind against the weights); concurrent
/// jobs on the same output write disjoint values; `scratch` holds the path's scratch.
pub(crate) unsafe fn run(job: &Job<'_, '_, '_, '_>, scratch: &mut [u8]) {
    let float = job.weights.layout().format().sub_block().is_none();
    match job.x.path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prepared VNNI job exists only where `Path::Vnni` resolved, i.e. the
        // CPU has AVX-512 F/BW/VL/VNNI; the activations' kind was checked against the
        // weights; the rest is the forwarded contract.
        Path::Vnni if float => unsafe { vnni::run_float(job) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prepared VNNI job exists only where `Path::Vnni` resolved (AVX-512
        // F/BW/VL/VNNI present); the activations' kind was checked against the weights;
        // disjoint outputs and the scratch are this function's contract.
        Path::Vnni => unsafe { vnni::run_quantized(job) },
        #[cfg(target_arch = "x86_64")]
        Path::Amx => {
            // A prepared AMX job exists only where `Path::Amx` resolved, which checked
            // the token, so this cannot fail; if it ever did, nothing is written.
            if let Ok(amx) = crate::token::Amx::try_new() {
                // SAFETY: `Path::Amx` resolved, so the CPU has AVX-512 F/BW/VL/BF16; the
                // activations are BF16 tiles (checked kind); `scratch` holds
                // `scratch_bytes` for the AMX path; the rest is the forwarded contract.
                unsafe { amx::run(amx, job, scratch, decode::best()) }
            }
        }
        // Auto is resolved before a job is prepared; the VNNI and AMX paths exist on
        // x86_64 only.
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: forwarded contract.
        Path::Vnni | Path::Amx => unsafe { scalar::run(job) },
        // SAFETY: forwarded contract.
        Path::Scalar | Path::Auto => unsafe { scalar::run(job) },
    }
}
