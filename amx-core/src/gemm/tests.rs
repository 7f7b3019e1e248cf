//! Contract edges of the GEMM entry points: K = 0, the error values and their messages,
//! and each path's behaviour at the extremes of f32 (what the module docs promise).

extern crate std;

use std::string::ToString;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::formats;
use crate::pack;
use crate::test_util;

/// Packs `n x k` test weights of `format` into one buffer.
fn packed(format: Format, seed: u64, n: usize, k: usize) -> (Vec<u8>, Vec<u8>) {
    let raw = test_util::weights(format, seed, n, k);
    let mut out = vec![0u8; pack::packed_size(format, n, k, 1).expect("size")];
    pack::pack(format, n, k, 1, &raw, &mut out).expect("pack");
    (raw, out)
}

/// `y = x * W^T` on `path` with a workspace of exactly [`workspace_bytes`].
fn run(
    format: Format,
    w: &[u8],
    x: &[f32],
    (m, n, k): (usize, usize, usize),
    path: Path,
) -> Vec<f32> {
    let mut y = vec![f32::NAN; m * n];
    let mut ws = vec![0u8; workspace_bytes(format, m, k, path).expect("ws")];
    let xr = MatRef::new(x, m, k, k).expect("x");
    let mut ym = MatMut::new(&mut y, m, n, n).expect("y");
    gemm(w, format, &xr, &mut ym, path, &mut ws).expect("gemm");
    y
}

/// Whether `path` runs here (prints a notice when it does not).
fn runs(path: Path) -> bool {
    let ok = path.available();
    if !ok {
        let need = match path {
            Path::Amx => crate::test_util::Need::Amx,
            Path::Vnni => crate::test_util::Need::Vnni,
            Path::Auto | Path::Scalar => panic!("the {} path is always available", path.name()),
        };
        let why = std::format!("the {} path is not available on this machine", path.name());
        crate::test_util::skip(need, &why);
    }
    ok
}

/// `x * W^T` in f64 from the dequantized weights.
fn reference(format: Format, raw: &[u8], x: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f64> {
    let mut w = vec![0f32; n * k];
    formats::dequantize(format, raw, &mut w).expect("dequantize");
    let mut y = vec![0f64; m * n];
    for i in 0..m {
        for c in 0..n {
            y[i * n + c] = (0..k).map(|j| f64::from(x[i * k + j]) * f64::from(w[c * k + j])).sum();
        }
    }
    y
}

fn nmse(got: &[f32], want: &[f64]) -> f64 {
    let err: f64 = got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).powi(2)).sum();
    err / want.iter().map(|w| w * w).sum::<f64>()
}

/// K = 0 is refused with `ZeroK` by every entry point that takes a K, on every path and
/// format, whatever M (preparing used to panic: `chunks_exact_mut(0)` on the int8 path, a
/// division by zero on the AMX path).
#[test]
fn zero_k_is_refused_everywhere() {
    for format in Format::ALL {
        for path in Path::ALL {
            for m in [0, 1, 40] {
                let z = Some(GemmError::ZeroK);
                let new = Preparation::new(format, m, 0, path);
                assert_eq!(new.err(), z, "{format} {path:?} m={m}");
                assert_eq!(prepared_bytes(format, m, 0, path).err(), z, "{format} {path:?}");
                assert_eq!(workspace_bytes(format, m, 0, path).err(), z, "{format} {path:?}");
                let x = MatRef::new(&[], m, 0, 0).expect("x");
                let mut ws = [0u8; 256];
                let got = prepare(format, &x, path, &mut ws).map(|p| p.path());
                assert_eq!(got.err(), z, "{format} {path:?} m={m}");
            }
            assert_eq!(scratch_bytes(format, 0, path), Err(GemmError::ZeroK));
        }
    }
    // The whole matmul: packed weights fix K >= 1, so the activations' width is wrong.
    let (_, w) = packed(Format::Q4_0, 1, 16, 32);
    let x = MatRef::new(&[], 3, 0, 0).expect("x");
    let mut yv = [0f32; 48];
    let mut y = MatMut::new(&mut yv, 3, 16, 16).expect("y");
    let got = gemm(&w, Format::Q4_0, &x, &mut y, Path::Auto, &mut [0u8; 64]);
    assert_eq!(got, Err(GemmError::ActivationWidth { x_cols: 0, k: 32 }));
    assert!(GemmError::ZeroK.to_string().contains("k = 0"));
}

/// A workspace one byte short names the caller's length and the whole size needed (it
/// used to report the scratch tail's numbers on the AMX path).
#[test]
fn short_workspace_reports_the_callers_numbers() {
    let (m, n, k) = (40, 16, 64);
    let (_, w) = packed(Format::Q4_0, 2, n, k);
    let xv = vec![0.25f32; m * k];
    let x = MatRef::new(&xv, m, k, k).expect("x");
    let mut yv = vec![0f32; m * n];
    for path in Path::ALL {
        if !runs(path) {
            continue;
        }
        let needed = workspace_bytes(Format::Q4_0, m, k, path).expect("ws");
        let mut ws = vec![0u8; needed - 1];
        let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
        let got = gemm(&w, Format::Q4_0, &x, &mut y, path, &mut ws).unwrap_err();
        assert_eq!(got, GemmError::WorkspaceTooSmall { needed, actual: needed - 1 }, "{path:?}");
        let text = got.to_string();
        assert!(text.contains(&std::format!("workspace is {} bytes, {needed}", needed - 1)));
    }
}

/// M = 0 still checks `y`'s shape (the pool refuses the same call): 0 x N is the only
/// output that fits.
#[test]
fn zero_rows_still_check_the_output_shape() {
    let (n, k) = (16, 32);
    let (_, w) = packed(Format::Q8_0, 3, n, k);
    let x = MatRef::new(&[], 0, k, k).expect("x");
    let mut yv = vec![0f32; 64];
    let mut ws = [0u8; 0];
    for (rows, cols, dim, expected, found) in [(2, n, "m", 0, 2), (0, n + 1, "n", n, n + 1)] {
        let mut y = MatMut::new(&mut yv, rows, cols, cols).expect("y");
        let got = gemm(&w, Format::Q8_0, &x, &mut y, Path::Scalar, &mut ws);
        assert_eq!(got, Err(GemmError::ShapeMismatch { dim, expected, found }), "{rows}x{cols}");
    }
    let mut y = MatMut::new(&mut yv, 0, n, n).expect("y");
    assert_eq!(gemm(&w, Format::Q8_0, &x, &mut y, Path::Scalar, &mut ws), Ok(Path::Scalar));
}

/// A row range that splits a 16-row BF16 tile says so, with the alignment rule (it used
/// to say the range was outside 0..M).
#[test]
fn misaligned_rows_name_the_alignment() {
    if !runs(Path::Amx) {
        return;
    }
    let p = Preparation::new(Format::Q4_0, 40, 64, Path::Amx).expect("prep");
    let e = p.byte_range(3..16).unwrap_err();
    assert_eq!(e, GemmError::Misaligned { what: "rows", start: 3, end: 16, align: 16, len: 40 });
    let text = e.to_string();
    assert!(text.contains("3..16 is not aligned") && text.contains("multiple of 16"), "{text}");
    assert!(text.contains("or at 40"), "{text}");
    assert!(!text.contains("outside"), "{text}");
    assert!(matches!(p.byte_range(0..17), Err(GemmError::Misaligned { .. })));
    // Rows 32..40 are the last (even) pair of row tiles, 2 value tiles each.
    assert_eq!(p.byte_range(32..40).map(|r| r.len()), Ok(4 * 1024));
    // Out of bounds stays a range error.
    assert_eq!(
        p.byte_range(32..48),
        Err(GemmError::Range { what: "rows", start: 32, end: 48, len: 40 })
    );
}

/// Activations of the wrong width name the activations and both widths (they used to be
/// reported as a packed-weights shape mismatch), in `gemm` and in `gemm_range`.
#[test]
fn wrong_width_names_the_activations() {
    let (m, n, k) = (2, 16, 64);
    let (_, w) = packed(Format::Q8_0, 4, n, k);
    let xv = vec![0.5f32; m * 32];
    let x = MatRef::new(&xv, m, 32, 32).expect("x");
    let mut yv = vec![0f32; m * n];
    let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
    let mut ws = vec![0u8; 1 << 14];
    let e = gemm(&w, Format::Q8_0, &x, &mut y, Path::Scalar, &mut ws).unwrap_err();
    assert_eq!(e, GemmError::ActivationWidth { x_cols: 32, k: 64 });
    let text = e.to_string();
    assert!(text.contains("activations have 32 values per row") && text.contains("k = 64"));
    let weights = PackedRef::parse(&w).expect("parse");
    let prepared = prepare(Format::Q8_0, &x, Path::Scalar, &mut ws).expect("prepare");
    let got = gemm_range(&weights, &prepared, &mut y, 0..1, 0..m, &mut []);
    assert_eq!(got, Err(GemmError::ActivationWidth { x_cols: 32, k: 64 }));
}

/// Sizes that do not fit `usize` are `Overflow`, not a panic or a wrapped size.
#[test]
fn huge_k_overflows_cleanly() {
    let k = usize::MAX / 32 * 32;
    for format in Format::ALL {
        for path in [Path::Vnni, Path::Amx] {
            if !path.available() {
                continue;
            }
            // F16/BF16 on the VNNI path read the f32 rows in place: nothing to size.
            let in_place = path == Path::Vnni && is_float(format);
            let want = if in_place { Ok(()) } else { Err(GemmError::Overflow) };
            assert_eq!(Preparation::new(format, 2, k, path).map(|_| ()), want, "{format}");
            let got = workspace_bytes(format, 1 << 33, 1 << 33, path);
            assert_eq!(got.map(|_| ()), want, "{format} {path:?}");
        }
    }
    assert_eq!(Preparation::new(Format::Q4_0, 1, usize::MAX, Path::Vnni).err(), {
        if Path::Vnni.available() {
            Some(GemmError::Overflow)
        } else {
            Some(GemmError::PathUnavailable { path: Path::Vnni })
        }
    });
}

/// VNNI path, rows of subnormal and tiny activations: as accurate as normal rows (every
/// value used to quantize to +-127 when max |x| < ~3.7e-37, NMSE ~0.8).
#[test]
fn vnni_tiny_and_subnormal_rows_stay_accurate() {
    if !runs(Path::Vnni) {
        return;
    }
    let (m, n, k) = (4, 32, 256);
    for format in [Format::Q4_0, Format::Q8_0, Format::Q4_K, Format::Q6_K] {
        let (raw, w) = packed(format, 5, n, k);
        for amax in [1e-37f32, f32::MIN_POSITIVE, 1e-39] {
            let x: Vec<f32> =
                (0..m * k).map(|i| amax * ((i * 7919 % 255) as f32 - 127.0) / 127.0).collect();
            let want = reference(format, &raw, &x, (m, n, k));
            let e = nmse(&run(format, &w, &x, (m, n, k), Path::Vnni), &want);
            // As normal rows (1e-5 to 3e-5); before the fix, 1.1.
            assert!(e < 1e-4, "{format} max|x| {amax:e}: NMSE {e:e}");
        }
    }
}

/// Packed BF16 weights of `n x k` values in +-[0.5, 1): every product with a subnormal
/// activation is subnormal, and with BF16's largest finite value it stays finite.
fn below_one_bf16(seed: u64, n: usize, k: usize) -> Vec<u8> {
    let raw: Vec<u8> = test_util::bytes(seed, 2 * n * k)
        .chunks_exact(2)
        .flat_map(|b| {
            (0x3f00u16 | u16::from(b[0] & 0x7f) | (u16::from(b[1] & 0x80) << 8)).to_le_bytes()
        })
        .collect();
    let mut out = vec![0u8; pack::packed_size(Format::BF16, n, k, 1).expect("size")];
    pack::pack(Format::BF16, n, k, 1, &raw, &mut out).expect("pack");
    out
}

/// AMX path, the documented edge at the bottom: the tile unit flushes subnormal results
/// to zero, so rows of subnormal activations against weights below 1 give exactly zero,
/// and subnormals among normal values change nothing.
#[test]
fn amx_subnormal_products_flush_to_zero() {
    if !runs(Path::Amx) {
        return;
    }
    let (m, n, k) = (32, 16, 64);
    let w = below_one_bf16(6, n, k);
    let sub = |i: usize| f32::from_bits(1 + (i as u32 * 40_503) % 0x007f_ffff);
    // Rows 0..16 only subnormals (every sign); rows 16..32 normal values with every third
    // value a subnormal.
    let x: Vec<f32> = (0..m * k)
        .map(|i| match (i / k < 16, i % 3) {
            (true, r) => {
                if r == 0 {
                    -sub(i)
                } else {
                    sub(i)
                }
            }
            (false, 0) => -sub(i),
            _ => ((i % 17) as f32 - 8.0) * 0.125,
        })
        .collect();
    let zeroed: Vec<f32> = x.iter().map(|v| if v.is_subnormal() { 0.0 } else { *v }).collect();
    let got = run(Format::BF16, &w, &x, (m, n, k), Path::Amx);
    let want = run(Format::BF16, &w, &zeroed, (m, n, k), Path::Amx);
    assert!(got[..16 * n].iter().all(|v| *v == 0.0), "{:?}", &got[..16 * n]);
    assert!(got.iter().zip(&want).all(|(g, w)| g == w), "{got:?}\n{want:?}");
    assert!(want[16 * n..].iter().any(|v| *v != 0.0));
}

/// AMX path, the documented edge at the top: activations are rounded to BF16, so
/// |x| >= 0x7f7f8000 (~3.3961776e38, half way from BF16's largest finite value to 2^128;
/// f32::MAX among them) becomes infinite and its row's outputs +-infinity; just below,
/// x rounds to BF16's largest finite value and the row stays finite.
#[test]
fn amx_activations_past_the_bf16_range_become_infinite() {
    if !runs(Path::Amx) {
        return;
    }
    let (m, n, k) = (32, 16, 64);
    let w = below_one_bf16(7, n, k);
    let mut x = vec![0f32; m * k];
    x[0] = f32::MAX;
    x[k + 5] = -f32::from_bits(0x7f7f_8000);
    x[2 * k + 9] = f32::from_bits(0x7f7f_7fff);
    let y = run(Format::BF16, &w, &x, (m, n, k), Path::Amx);
    assert!(y[..2 * n].iter().all(|v| v.is_infinite()), "{:?}", &y[..2 * n]);
    assert!(y[2 * n..].iter().all(|v| v.is_finite()), "{:?}", &y[2 * n..3 * n]);
    let bf16_max = f32::from_bits(0x7f7f_0000);
    assert!(y[2 * n..3 * n].iter().all(|v| v.abs() >= bf16_max * 0.5), "{:?}", &y[2 * n..3 * n]);
}
