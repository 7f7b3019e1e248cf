//! Every available path against the scalar reference on awkward shapes (M, N and K around
//! tile and block edges), on splits of the work range, and at the edges of the contract
//! (M = 0, row strides, NaN and infinity, bad input).

use amx_core::formats::{Format, dequantize};
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path};
use amx_core::pack::{self, PackedRef};
use amx_testdata::vectors::nmse;
use amx_tests::{available_paths, random_activations, random_weights, run_gemm};

const MS: [usize; 36] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 64, 128, 47,
];
const NS: [usize; 7] = [1, 15, 16, 17, 31, 33, 100];

fn ks(format: Format) -> [usize; 3] {
    match format.block_values() {
        1 => [32, 33, 96],
        b => [b, 2 * b, 3 * b],
    }
}

/// NMSE bound of a path against the f32 reference on random data: int8 activations
/// cost about 3e-5, BF16 about 5e-6; 5e-4 is the vectors' bound.
const BOUND: f64 = 5e-4;

/// The sum of squares of `v`, in f64.
fn squares(v: &[f32]) -> f64 {
    v.iter().map(|&a| f64::from(a) * f64::from(a)).sum()
}

/// The sum over all outputs of the squares of the products each output adds up: the
/// expected sum of squares of the outputs of random zero-mean data. An output whose
/// products cancel is small, and with few outputs (m = n = 1) its NMSE is then a noisy
/// sample of the error, which this measure of the size is not.
fn product_squares(format: Format, w: &[u8], x: &[f32], m: usize, n: usize, k: usize) -> f64 {
    let mut deq = vec![0f32; n * k];
    dequantize(format, w, &mut deq).expect("whole blocks");
    let mut sum = 0.0;
    for xr in x.chunks_exact(k).take(m) {
        for wr in deq.chunks_exact(k) {
            sum += wr
                .iter()
                .zip(xr)
                .map(|(&a, &b)| (f64::from(a) * f64::from(b)).powi(2))
                .sum::<f64>();
        }
    }
    sum
}

#[test]
fn every_path_matches_the_reference_on_awkward_shapes() {
    let paths = available_paths();
    let mut failures = Vec::new();
    for format in Format::ALL {
        for (i, &m) in MS.iter().enumerate() {
            let n = NS[i % NS.len()];
            let k = ks(format)[i % 3];
            // Seeded by the ggml id, not the place in `Format::ALL`, so that adding a
            // format leaves the others' data as they were.
            let seed = u64::from(format.ggml_type()) * 1000 + i as u64;
            let w = random_weights(format, seed, n, k);
            let x = random_activations(seed + 1, m * k);
            let want = run_gemm(format, &w, &x, m, n, k, Path::Scalar).expect("reference");
            let products = product_squares(format, &w, &x, m, n, k);
            for &path in paths.iter().filter(|p| **p != Path::Scalar) {
                let got = run_gemm(format, &w, &x, m, n, k, path).expect("path runs");
                let e = nmse(&got, &want);
                // false for NaN
                let within = e <= BOUND || e * squares(&want) / products <= BOUND;
                if !within {
                    failures
                        .push(format!("{format} {} m={m} n={n} k={k}: nmse {e:.3e}", path.name()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_n_on_every_path() {
    for format in [Format::Q4_0, Format::Q6_K, Format::BF16] {
        for &n in &NS {
            let (m, k) = (20, ks(format)[1]);
            let w = random_weights(format, n as u64, n, k);
            let x = random_activations(7, m * k);
            let want = run_gemm(format, &w, &x, m, n, k, Path::Scalar).expect("reference");
            for path in available_paths() {
                let got = run_gemm(format, &w, &x, m, n, k, path).expect("path runs");
                assert!(nmse(&got, &want) <= BOUND, "{format} {} n={n}", path.name());
            }
        }
    }
}

/// Computes the output in the given (rows, panels) pieces with `gemm_range`.
fn run_split(
    format: Format,
    packed: &[u8],
    x: &[f32],
    (m, n, k): (usize, usize, usize),
    path: Path,
    pieces: &[(std::ops::Range<usize>, std::ops::Range<usize>)],
) -> Vec<f32> {
    let weights = PackedRef::parse_expecting(packed, format, n, k, 1).unwrap();
    let xr = MatRef::new(x, m, k, k).unwrap();
    let mut ws = vec![0u8; gemm::prepared_bytes(format, m, k, path).unwrap()];
    let prepared = gemm::prepare(format, &xr, path, &mut ws).unwrap();
    let mut scratch = vec![0u8; gemm::scratch_bytes(format, k, prepared.path()).unwrap()];
    let mut y = vec![f32::NAN; m * n];
    let mut ym = MatMut::new(&mut y, m, n, n).unwrap();
    for (rows, panels) in pieces {
        gemm::gemm_range(&weights, &prepared, &mut ym, panels.clone(), rows.clone(), &mut scratch)
            .unwrap();
    }
    y
}

#[test]
fn splits_give_bit_identical_results() {
    let (m, n, k): (usize, usize, usize) = (45, 83, 512);
    let panels = n.div_ceil(16);
    for format in Format::ALL {
        let w = random_weights(format, 3, n, k);
        let x = random_activations(4, m * k);
        let mut packed = vec![0u8; pack::packed_size(format, n, k, 1).unwrap()];
        pack::pack(format, n, k, 1, &w, &mut packed).unwrap();
        for path in available_paths() {
            let whole = run_split(format, &packed, &x, (m, n, k), path, &[(0..m, 0..panels)]);
            let splits = [
                vec![(0..m, 0..1), (0..m, 1..panels)],
                vec![(0..7, 0..panels), (7..33, 0..panels), (33..m, 0..panels)],
                vec![(0..10, 0..3), (10..m, 0..3), (0..10, 3..panels), (10..m, 3..panels)],
                (0..m).map(|r| (r..r + 1, 0..panels)).collect(),
            ];
            for pieces in &splits {
                let got = run_split(format, &packed, &x, (m, n, k), path, pieces);
                let same = got.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{format} {}: split {pieces:?} differs", path.name());
            }
        }
    }
}

#[test]
fn row_strides_and_untouched_padding() {
    let (m, n, k) = (19, 37, 256);
    for format in [Format::Q4_K, Format::Q8_0, Format::F16] {
        let w = random_weights(format, 5, n, k);
        let x = random_activations(6, m * k);
        let want = run_gemm(format, &w, &x, m, n, k, Path::Scalar).unwrap();
        let mut packed = vec![0u8; pack::packed_size(format, n, k, 1).unwrap()];
        pack::pack(format, n, k, 1, &w, &mut packed).unwrap();
        let (xs, ys) = (k + 9, n + 5);
        let mut xpad = vec![f32::NAN; m * xs];
        for r in 0..m {
            xpad[r * xs..r * xs + k].copy_from_slice(&x[r * k..r * k + k]);
        }
        for path in available_paths() {
            let mut y = vec![-7.0f32; m * ys];
            let mut ws = vec![0u8; gemm::workspace_bytes(format, m, k, path).unwrap()];
            let xr = MatRef::new(&xpad, m, k, xs).unwrap();
            let mut ym = MatMut::new(&mut y, m, n, ys).unwrap();
            gemm::gemm(&packed, format, &xr, &mut ym, path, &mut ws).unwrap();
            let mut dense = Vec::new();
            for r in 0..m {
                dense.extend_from_slice(&y[r * ys..r * ys + n]);
                assert!(
                    y[r * ys + n..(r + 1) * ys].iter().all(|&v| v == -7.0),
                    "wrote between rows"
                );
            }
            assert!(nmse(&dense, &want) <= BOUND, "{format} {}", path.name());
        }
    }
}

#[test]
fn m_zero_is_a_no_op_and_non_finite_inputs_stay_in_their_row_and_column() {
    let (m, n, k) = (18, 40, 256);
    for format in [Format::Q4_0, Format::IQ4_XS, Format::BF16] {
        for path in available_paths() {
            let y = run_gemm(format, &random_weights(format, 1, n, k), &[], 0, n, k, path).unwrap();
            assert!(y.is_empty());
            let mut w = random_weights(format, 2, n, k);
            // Column 5 gets a NaN weight (scale for block formats, a value for floats).
            let rb = format.row_bytes(k).unwrap();
            match format {
                Format::BF16 => w[5 * rb..5 * rb + 2].copy_from_slice(&0x7fc0u16.to_le_bytes()),
                _ => w[5 * rb..5 * rb + 2].copy_from_slice(&0x7e00u16.to_le_bytes()),
            }
            let mut x = random_activations(3, m * k);
            x[3 * k + 17] = f32::NAN;
            x[9 * k + 1] = f32::INFINITY;
            let y = run_gemm(format, &w, &x, m, n, k, path).unwrap();
            for r in 0..m {
                for c in 0..n {
                    let v = y[r * n + c];
                    let tainted = r == 3 || r == 9 || c == 5;
                    assert!(tainted || v.is_finite(), "{format} {}: ({r},{c}) = {v}", path.name());
                    if r == 3 || c == 5 {
                        assert!(
                            v.is_nan(),
                            "{format} {}: ({r},{c}) = {v} should be NaN",
                            path.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (m, n, k) = (4, 20, 64);
    let format = Format::Q8_0;
    let w = random_weights(format, 1, n, k);
    let mut packed = vec![0u8; pack::packed_size(format, n, k, 1).unwrap()];
    pack::pack(format, n, k, 1, &w, &mut packed).unwrap();
    let x = random_activations(2, m * k);
    let mut y = vec![0f32; m * n];
    let xr = MatRef::new(&x, m, k, k).unwrap();
    let mut ym = MatMut::new(&mut y, m, n, n).unwrap();
    let mut ws = vec![0u8; gemm::workspace_bytes(format, m, k, Path::Auto).unwrap()];
    // Wrong format for these bytes.
    let e = gemm::gemm(&packed, Format::Q4_0, &xr, &mut ym, Path::Auto, &mut ws).unwrap_err();
    assert!(matches!(e, GemmError::Weights(_)), "{e}");
    // K of the activations differs from the weights'.
    let x2 = MatRef::new(&x, m, 32, 64).unwrap();
    assert_eq!(
        gemm::gemm(&packed, format, &x2, &mut ym, Path::Auto, &mut ws),
        Err(GemmError::ActivationWidth { x_cols: 32, k })
    );
    // Output of the wrong width.
    let mut y3 = vec![0f32; m * 16];
    let mut ym3 = MatMut::new(&mut y3, m, 16, 16).unwrap();
    assert_eq!(
        gemm::gemm(&packed, format, &xr, &mut ym3, Path::Scalar, &mut ws),
        Err(GemmError::ShapeMismatch { dim: "n", expected: 20, found: 16 })
    );
    // Workspace too small.
    let mut tiny = vec![0u8; 3];
    assert!(matches!(
        gemm::gemm(
            &packed,
            format,
            &xr,
            &mut ym,
            Path::Vnni.resolve(format, m).map(|_| Path::Vnni).unwrap_or(Path::Scalar),
            &mut tiny
        ),
        Err(GemmError::WorkspaceTooSmall { .. }) | Ok(_)
    ));
    // Views that do not fit their slices.
    assert_eq!(
        MatRef::new(&x, m, k, k + 1).unwrap_err(),
        GemmError::MatrixTooShort {
            rows: m,
            cols: k,
            stride: k + 1,
            needed: 3 * (k + 1) + k,
            actual: m * k
        }
    );
    assert_eq!(
        MatRef::new(&x, m, k, k - 1).unwrap_err(),
        GemmError::StrideTooSmall { cols: k, stride: k - 1 }
    );
    // Ranges past the end.
    let weights = PackedRef::parse(&packed).unwrap();
    let mut ws2 = vec![0u8; gemm::prepared_bytes(format, m, k, Path::Scalar).unwrap()];
    let prepared = gemm::prepare(format, &xr, Path::Scalar, &mut ws2).unwrap();
    assert_eq!(
        gemm::gemm_range(&weights, &prepared, &mut ym, 0..3, 0..m, &mut []),
        Err(GemmError::Range { what: "panels", start: 0, end: 3, len: 2 })
    );
    assert_eq!(
        gemm::gemm_range(&weights, &prepared, &mut ym, 0..2, 2..5, &mut []),
        Err(GemmError::Range { what: "rows", start: 2, end: 5, len: m })
    );
    // A path this machine lacks is an error, not a silent fallback.
    for p in [Path::Amx, Path::Vnni] {
        if !p.available() {
            assert_eq!(p.resolve(format, m), Err(GemmError::PathUnavailable { path: p }));
        }
    }
}

#[test]
fn preparing_in_row_blocks_equals_preparing_at_once() {
    let (m, n, k) = (50, 33, 256);
    for format in [Format::Q4_1, Format::Q6_K, Format::F16] {
        let w = random_weights(format, 8, n, k);
        let mut packed = vec![0u8; pack::packed_size(format, n, k, 1).unwrap()];
        pack::pack(format, n, k, 1, &w, &mut packed).unwrap();
        let weights = PackedRef::parse(&packed).unwrap();
        let x = random_activations(9, m * k);
        let xr = MatRef::new(&x, m, k, k).unwrap();
        for path in available_paths() {
            let prep = gemm::Preparation::new(format, m, k, path).unwrap();
            let mut whole_ws = vec![0u8; gemm::prepared_bytes(format, m, k, path).unwrap()];
            let whole = gemm::prepare(format, &xr, path, &mut whole_ws).unwrap();
            let mut ws = vec![0xAAu8; gemm::prepared_bytes(format, m, k, path).unwrap()];
            let body = prep.body(&mut ws).unwrap();
            let a = prep.row_align();
            let cut = (17 / a).max(1) * a;
            let (r1, r2) = (0..cut, cut..m);
            let b1 = prep.byte_range(r1.clone()).unwrap();
            let (p1, p2) = body.split_at_mut(b1.len());
            prep.prepare_rows(&xr, r2.clone(), p2).unwrap();
            prep.prepare_rows(&xr, r1, p1).unwrap();
            let parts = prep.finish(&xr, body).unwrap();
            let mut scratch = vec![0u8; gemm::scratch_bytes(format, k, path).unwrap()];
            let (mut y1, mut y2) = (vec![0f32; m * n], vec![0f32; m * n]);
            let panels = weights.layout().panels();
            gemm::gemm_range(
                &weights,
                &whole,
                &mut MatMut::new(&mut y1, m, n, n).unwrap(),
                0..panels,
                0..m,
                &mut scratch,
            )
            .unwrap();
            gemm::gemm_range(
                &weights,
                &parts,
                &mut MatMut::new(&mut y2, m, n, n).unwrap(),
                0..panels,
                0..m,
                &mut scratch,
            )
            .unwrap();
            assert!(
                y1.iter().zip(&y2).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{format} {}",
                path.name()
            );
            if a > 1 {
                assert!(matches!(prep.byte_range(1..m), Err(GemmError::Misaligned { .. })));
            }
        }
    }
}
