//! The GGUF test vectors against the reader and the reference dequantizers:
//! - `amx_core::formats::dequantize` of `w` equals gguf-py's `w_deq` bit for bit;
//! - an f64 matmul of `w_deq` and `x` reproduces `y`, which proves the reader's shape
//!   conventions (ne0 = K fastest; Y = X * W^T, M rows of N).

use std::collections::BTreeMap;

use amx_core::formats::{Format, dequantize};
use amx_testdata::vectors::{self, Vector, nmse};

fn load() -> Vec<Vector> {
    let dir = amx_tests::vectors_dir();
    vectors::load_dir(&dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

#[test]
fn all_formats_and_shapes_present() {
    let vs = load();
    assert_eq!(vs.len(), 4 * Format::ALL.len(), "expected every format x 4 shapes");
    let mut per_format = BTreeMap::new();
    for v in &vs {
        *per_format.entry(v.format.name()).or_insert(0) += 1;
        // The file names say format and shape; they must agree with the metadata.
        let want = format!("{}_m{}_n{}_k{}_{}.gguf", v.format.name(), v.m, v.n, v.k, v.flavour);
        assert_eq!(v.file_name().to_lowercase(), want.to_lowercase());
        assert_eq!(v.w.len(), v.n * v.format.row_bytes(v.k).unwrap(), "{}", v.file_name());
        assert_eq!(v.x.len(), v.m * v.k);
        assert_eq!(v.y.len(), v.m * v.n);
        // The largest budget is TQ2_0's outlier vector's, 0.0125: four times the NMSE that
        // rounding its activations to int8 costs (ternary weights keep the outliers' share).
        assert!(v.nmse_max > 0.0 && v.nmse_max < 2e-2, "{}: {}", v.file_name(), v.nmse_max);
    }
    for f in Format::ALL {
        assert_eq!(per_format.get(f.name()), Some(&4), "format {}", f.name());
    }
    assert_eq!(per_format.len(), Format::ALL.len());
}

#[test]
fn dequantize_matches_w_deq_bit_exactly() {
    for v in load() {
        let want = v.w_deq.as_ref().unwrap_or_else(|| panic!("{}: no w_deq", v.file_name()));
        let mut got = vec![f32::NAN; v.n * v.k];
        dequantize(v.format, &v.w, &mut got)
            .unwrap_or_else(|e| panic!("{}: dequantize: {e}", v.file_name()));
        // Compare bits: NaN equals NaN of the same payload, and -0.0 differs from 0.0.
        let bad: Vec<usize> =
            (0..got.len()).filter(|&i| got[i].to_bits() != want[i].to_bits()).collect();
        if let Some(&i) = bad.first() {
            panic!(
                "{}: {} of {} values differ; first at row {} col {}: got {:e} ({:#010x}), \
                 w_deq {:e} ({:#010x})",
                v.file_name(),
                bad.len(),
                got.len(),
                i / v.k,
                i % v.k,
                got[i],
                got[i].to_bits(),
                want[i],
                want[i].to_bits()
            );
        }
    }
}

/// Y = X * W^T in f64, from `w_deq` (N rows of K) and `x` (M rows of K): M rows of N.
fn matmul_f64(v: &Vector, x: &[f32], w: &[f32]) -> Vec<f64> {
    let mut y = Vec::with_capacity(v.m * v.n);
    for xr in x.chunks_exact(v.k) {
        for wr in w.chunks_exact(v.k) {
            y.push(xr.iter().zip(wr).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum());
        }
    }
    y
}

/// `vectors::nmse` with an unrounded f64 result, so that the f32 rounding of `y` shows.
fn nmse_f64(got: &[f64], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut err, mut norm) = (0.0, 0.0);
    for (&g, &w) in got.iter().zip(want) {
        err += (g - f64::from(w)).powi(2);
        norm += f64::from(w).powi(2);
    }
    err / norm
}

/// The bound for the f64 matmul against the stored `y`.
///
/// `y` was computed in float64 from the same `w_deq` and `x`, then rounded to f32; the
/// rounding moves each value by at most 2^-24 relative, so NMSE <= 2^-48 ~ 3.6e-15
/// (about a third of that on average; measured over the 36 vectors: 3e-16 .. 1.1e-15).
/// Our f64 sum in another order adds ~K * 2^-53 relative per value, negligible. 1e-12
/// leaves a margin of ~280 over the worst case, while a transposed or misread tensor
/// gives NMSE of order 1 (checked below), and even a single output value off by 1e-5
/// of the norm of y gives more than the bound.
const MATMUL_NMSE_BOUND: f64 = 1e-12;

#[test]
fn f64_matmul_of_w_deq_reproduces_y() {
    for v in load() {
        let w = v.w_deq.as_ref().expect("w_deq");
        let e = nmse_f64(&matmul_f64(&v, &v.x, w), &v.y);
        assert!(e <= MATMUL_NMSE_BOUND, "{}: NMSE {e:e} > {MATMUL_NMSE_BOUND:e}", v.file_name());
        // Rounded to f32 the result is what the kernels are held to: far inside nmse_max.
        let rounded: Vec<f32> = matmul_f64(&v, &v.x, w).iter().map(|&y| y as f32).collect();
        assert!(nmse(&rounded, &v.y) <= f64::from(v.nmse_max) * 1e-6);
        // The same check with x read in the other order (element (row r, col c) at
        // c * M + r) fails, so the bound does discriminate.
        if v.m > 1 {
            let xt: Vec<f32> = (0..v.m)
                .flat_map(|r| (0..v.k).map(move |c| (r, c)))
                .map(|(r, c)| v.x[c * v.m + r])
                .collect();
            let e = nmse_f64(&matmul_f64(&v, &xt, w), &v.y);
            assert!(e > 1e-3, "{}: misread x gives NMSE {e:e}", v.file_name());
        }
    }
}
