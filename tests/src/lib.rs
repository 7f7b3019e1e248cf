//! Helpers shared by the workspace-level integration tests in `tests/tests/`.

use std::path::PathBuf;

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path};
use amx_core::pack;

/// The README's Rust blocks, compiled and run as doctests by `cargo test`, so that the
/// examples it shows cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The directory holding the GGUF test vectors (copied from gguf-py generated files).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// The concrete paths (not `Auto`) this machine can run; skips each one it cannot with a
/// notice (a failure when `AMX_RS_REQUIRE` requires it:
/// [`amx_runtime::test_support::skip_path`]).
pub fn available_paths() -> Vec<Path> {
    [Path::Amx, Path::Vnni, Path::Scalar]
        .into_iter()
        .filter(|p| {
            let ok = p.available();
            if !ok {
                amx_runtime::test_support::skip_path(*p);
            }
            ok
        })
        .collect()
}

/// Packs `w` (`n` rows of `k` values of `format`) and runs one whole GEMM with `x` (`m`
/// rows of `k`) on `path`, returning `y` (`m` rows of `n`, row stride `n`).
pub fn run_gemm(
    format: Format,
    w: &[u8],
    x: &[f32],
    m: usize,
    n: usize,
    k: usize,
    path: Path,
) -> Result<Vec<f32>, GemmError> {
    let mut packed = vec![0u8; pack::packed_size(format, n, k, 1)?];
    pack::pack(format, n, k, 1, w, &mut packed)?;
    let mut y = vec![f32::NAN; m * n];
    let mut ws = vec![0u8; gemm::workspace_bytes(format, m, k, path)?];
    let xr = MatRef::new(x, m, k, k)?;
    let mut ym = MatMut::new(&mut y, m, n, n)?;
    gemm::gemm(&packed, format, &xr, &mut ym, path, &mut ws)?;
    Ok(y)
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    amx_testdata::random::pseudo_random_bytes(seed, len)
}

/// Random weights of `rows` rows of `k` values in `format` whose scales are finite and
/// moderate (random bytes elsewhere), so results can be compared numerically.
pub fn random_weights(format: Format, seed: u64, rows: usize, k: usize) -> Vec<u8> {
    amx_testdata::weights::bench_weights(format, seed, rows, k).expect("k fits the block")
}

/// Random activations in [-1, 1).
pub fn random_activations(seed: u64, len: usize) -> Vec<f32> {
    random_bytes(seed, 2 * len)
        .chunks_exact(2)
        .map(|b| (f32::from(u16::from_le_bytes([b[0], b[1]])) / 32768.0) - 1.0)
        .collect()
}
