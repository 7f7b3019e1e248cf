//! Every available kernel path against the scalar reference on fuzzer-chosen small
//! shapes, block bytes (any scales, NaN and infinity included) and activations.
//!
//! Where the reference value is finite the path's value must be within a bound derived
//! from the operands: `sum_k |w| * (|x| * 2^-7 + dx_k)`, covering BF16 rounding of both
//! operands (AMX path) and int8 rounding of the activations (`dx_k` = the block's
//! max |x| / 127, VNNI path), plus f32 rounding of the VNNI path's affine decoding: it
//! computes `scale * sum(u x) + bias * sum(x)` per sub-block, so a weight that is exactly
//! 0 (`scale * u + bias = 0`) may still leave a rounding error of the size of those two
//! terms (`affine_bound`). Where the reference is not finite, the path's value must not be
//! finite either.
#![no_main]

use amx_core::formats::half::f16_to_f32;
use amx_core::formats::{Format, dequantize, e8m0_to_f32_half, ue4m3_to_f32_half};
use amx_core::gemm::{self, MatMut, MatRef, Path};
use amx_core::pack::{pack, packed_size};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    m: u8,
    n: u8,
    blocks: u8,
    weights: Vec<u8>,
    activations: Vec<u16>,
}

/// IQ1_M's `|d|`: its f16 bits are the top nibbles of the four `u16` at bytes 48..56.
fn iq1m_d(block: &[u8]) -> f64 {
    let s = |w: usize| u16::from_le_bytes([block[48 + 2 * w], block[49 + 2 * w]]);
    let bits = (s(0) >> 12) | ((s(1) >> 8) & 0xf0) | ((s(2) >> 4) & 0xf00) | (s(3) & 0xf000);
    f64::from(f16_to_f32(bits)).abs()
}

/// An upper bound of `|scale| * u + |bias|` over one block's weights, the sizes of the two
/// terms the VNNI path's affine decoding adds (see amx-core's codecs, `formats/*/x86.rs`: `u`
/// unsigned, sub-block scales at most 63, Q6_K's at most 128 and IQ4_XS's and Q3_K's at
/// most 32 in magnitude; Q2_K's scales and mins at most 15 with `u` at most 3, Q3_K's `u`
/// at most 7 with a bias of 4 scales; MXFP4's `u` at most 24 and its bias `-12 d`; TQ2_0's
/// `u` at most 3 (TQ1_0's 2) and its bias `-d`; IQ2_XXS's `u` at most 86 and its bias 43 scales of at most 3.875 d;
/// IQ3_XXS's `u` at most 124, its bias 62 scales of at most 7.75 d;
/// IQ3_S's `u` at most 30, its bias 15 scales of at most 31 d;
/// IQ1_S's `u` at most 2, its bias 1.125 scales of at most 15 d;
/// IQ1_M's `u` at most 18, its bias 9 scales of at most 15 d / 8 (`iq1m_d`); NVFP4's as MXFP4's, per 16 values); 0 for F16/BF16, which are not decoded that way.
fn affine_bound(format: Format, block: &[u8]) -> f64 {
    let h = |at: usize| f64::from(f16_to_f32(u16::from_le_bytes([block[at], block[at + 1]]))).abs();
    match format {
        Format::Q4_0 => 23.0 * h(0),
        Format::Q4_1 => 15.0 * h(0) + h(2),
        Format::Q5_0 => 47.0 * h(0),
        Format::Q5_1 => 31.0 * h(0) + h(2),
        Format::Q8_0 => 383.0 * h(0),
        Format::Q4_K => 63.0 * (15.0 * h(0) + h(2)),
        Format::Q5_K => 63.0 * (31.0 * h(0) + h(2)),
        Format::Q6_K => 128.0 * 95.0 * h(208),
        Format::IQ4_NL => 383.0 * h(0),
        Format::IQ4_XS => 32.0 * 383.0 * h(0),
        Format::Q2_K => 15.0 * (3.0 * h(80) + h(82)),
        Format::Q3_K => 32.0 * 11.0 * h(108),
        Format::MXFP4 => 36.0 * f64::from(e8m0_to_f32_half(block[0])),
        Format::TQ1_0 => 3.0 * h(52),
        Format::IQ2_XXS => 129.0 * 3.875 * h(0),
        Format::IQ2_S => 129.0 * 3.875 * h(0),
        Format::IQ2_XS => 129.0 * 3.875 * h(0),
        Format::IQ3_XXS => 186.0 * 7.75 * h(0),
        Format::IQ3_S => 45.0 * 31.0 * h(0),
        Format::IQ1_S => 47.0 * 15.0 * h(0),
        Format::IQ1_M => 27.0 * 15.0 / 8.0 * iq1m_d(block),
        Format::TQ2_0 => 4.0 * h(64),
        Format::NVFP4 => 36.0 * block[..4].iter().map(|&x| f64::from(ue4m3_to_f32_half(x))).fold(0.0, f64::max),
        _ => 0.0,
    }
}

fn run(
    format: Format,
    packed: &[u8],
    x: &[f32],
    m: usize,
    n: usize,
    k: usize,
    path: Path,
) -> Option<Vec<f32>> {
    let mut y = vec![0f32; m * n];
    let mut ws = vec![0u8; gemm::workspace_bytes(format, m, k, path).ok()?];
    let xr = MatRef::new(x, m, k, k).ok()?;
    let mut ym = MatMut::new(&mut y, m, n, n).ok()?;
    gemm::gemm(packed, format, &xr, &mut ym, path, &mut ws).expect("valid call");
    Some(y)
}

fuzz_target!(|input: Input| {
    let format = Format::ALL[usize::from(input.format) % Format::ALL.len()];
    let (m, n) = (usize::from(input.m % 24) + 1, usize::from(input.n % 40) + 1);
    let k = match format.block_values() {
        1 => usize::from(input.blocks % 80) + 1,
        b => (usize::from(input.blocks % 3) + 1) * b,
    };
    let row_bytes = format.row_bytes(k).expect("k fits");
    if input.weights.is_empty() {
        return;
    }
    let mut w: Vec<u8> = input.weights.iter().copied().cycle().take(n * row_bytes).collect();
    if format == Format::MXFP4 {
        // The VNNI path forms `scale * sum(u * q)` in f32 before the activation scale, a
        // sum of up to 32 * 24 * 127 < 2^17: from E8M0 exponent 239 on (scales of 2^111
        // and more) that overflows where the exact product need not. Real weights' scales
        // are near 2^0 (gpt-oss: bytes about 110..130); keep to the range the kernels
        // are exact in.
        for b in w.chunks_exact_mut(format.block_bytes()) {
            b[0] = b[0].min(238);
        }
    }
    let x: Vec<f32> = (0..m * k)
        .map(|i| {
            let v = input.activations.get(i % input.activations.len().max(1)).copied().unwrap_or(0);
            f32::from(v) / 32768.0 - 1.0
        })
        .collect();
    let mut packed = vec![0u8; packed_size(format, n, k, 1).expect("shape")];
    pack(format, n, k, 1, &w, &mut packed).expect("pack");
    let mut deq = vec![0f32; n * k];
    dequantize(format, &w, &mut deq).expect("dequantize");
    let want = run(format, &packed, &x, m, n, k, Path::Scalar).expect("reference");
    for path in [Path::Amx, Path::Vnni, Path::Auto] {
        if !path.available() {
            continue;
        }
        let got = run(format, &packed, &x, m, n, k, path).expect("path");
        for r in 0..m {
            let xr = &x[r * k..(r + 1) * k];
            for c in 0..n {
                let (g, want) = (got[r * n + c], want[r * n + c]);
                let wr = &deq[c * k..(c + 1) * k];
                // The exact value, in f64: it is non-finite only when an operand is (an
                // f32 sum can also overflow on the way, in an order that depends on the
                // path, so the f32 reference alone cannot say).
                let exact: f64 =
                    wr.iter().zip(xr).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
                if !exact.is_finite() {
                    assert!(
                        !g.is_finite(),
                        "{format} {path:?} ({r},{c}): {g} where the exact value is {exact}"
                    );
                    continue;
                }
                // Every partial sum of any path is at most the sum of the magnitudes (with
                // each activation at most its block's max, which int8 rounding can reach):
                // near the top of the f32 range any path may overflow on the way, or not,
                // depending on its summation order.
                let magnitude: f64 = wr
                    .iter()
                    .zip(xr)
                    .enumerate()
                    .map(|(i, (a, _))| {
                        let blk = &xr[i / 32 * 32..(i / 32 * 32 + 32).min(k)];
                        f64::from(a.abs()) * f64::from(blk.iter().fold(0f32, |m, v| m.max(v.abs())))
                    })
                    .sum();
                if !want.is_finite() || magnitude > 0.25 * f64::from(f32::MAX) {
                    continue;
                }
                let bound: f64 = wr
                    .iter()
                    .zip(xr)
                    .enumerate()
                    .map(|(i, (w, xv))| {
                        let blk = &xr[i / 32 * 32..(i / 32 * 32 + 32).min(k)];
                        let dx = blk.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
                        f64::from(w.abs()) * (f64::from(xv.abs()) / 128.0 + f64::from(dx))
                    })
                    .sum::<f64>()
                    + 1e-30;
                // f32 rounding of the affine terms: a few roundings per sub-block (16 or
                // more values) and one per sub-block sum added to the row's total.
                // Per 32 activations (one activation block, inside one weight block).
                let (bv, bb) = (format.block_values(), format.block_bytes());
                let affine: f64 = if bv == 1 {
                    0.0
                } else {
                    xr.chunks(32)
                        .enumerate()
                        .map(|(j, blk)| {
                            let b = c * row_bytes + j * 32 / bv * bb;
                            let xmax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
                            affine_bound(format, &w[b..b + bb]) * f64::from(xmax) * blk.len() as f64
                        })
                        .sum()
                };
                let bound = bound + (k / 16 + 8) as f64 * f64::from(f32::EPSILON) * affine;
                let err = (f64::from(g) - f64::from(want)).abs();
                assert!(
                    err <= bound,
                    "{format} {path:?} m={m} n={n} k={k} ({r},{c}): {g} vs {want}, error {err} > {bound}"
                );
            }
        }
    }
});
