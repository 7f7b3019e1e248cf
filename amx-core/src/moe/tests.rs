extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::formats::dequantize;
use crate::pack::{pack, packed_size};

use crate::test_util::{bytes, weights};

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut e, mut s) = (0f64, 0f64);
    for (g, w) in got.iter().zip(want) {
        e += (f64::from(*g) - f64::from(*w)).powi(2);
        s += f64::from(*w).powi(2);
    }
    e / s.max(1e-30)
}

/// Grouped result against per-expert dequantization and an f64 matmul.
fn check(
    format: Format,
    (experts, n, k): (usize, usize, usize),
    tokens: usize,
    ids: &[u32],
    top_k: usize,
    path: Path,
) {
    let src = weights(format, 5, experts * n, k);
    let mut packed = vec![0u8; packed_size(format, n, k, experts).unwrap()];
    pack(format, n, k, experts, &src, &mut packed).unwrap();
    let mut deq = vec![0f32; experts * n * k];
    dequantize(format, &src, &mut deq).unwrap();
    let x: Vec<f32> = bytes(9, tokens * k).iter().map(|&b| f32::from(b) / 128.0 - 1.0).collect();
    let shape = MoeShape { experts, n, k, tokens, top_k };
    let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, path).unwrap()];
    let mut y = vec![f32::NAN; tokens * top_k * n];
    let xr = MatRef::new(&x, tokens, k, k).unwrap();
    let mut ym = MatMut::new(&mut y, tokens * top_k, n, n).unwrap();
    grouped_gemm(&packed, format, &xr, (ids, top_k), &mut ym, path, &mut ws).unwrap();
    let mut want = vec![0f32; tokens * top_k * n];
    for t in 0..tokens {
        for s in 0..top_k {
            let e = ids[t * top_k + s] as usize;
            for c in 0..n {
                let w = &deq[(e * n + c) * k..(e * n + c + 1) * k];
                let dot: f64 = w
                    .iter()
                    .zip(&x[t * k..(t + 1) * k])
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                want[(t * top_k + s) * n + c] = dot as f32;
            }
        }
    }
    let e = nmse(&y, &want);
    assert!(e <= 5e-4, "{format} {path:?} E={experts} T={tokens} top_k={top_k}: nmse {e}");
}

fn paths() -> Vec<Path> {
    [Path::Auto, Path::Amx, Path::Vnni, Path::Scalar]
        .into_iter()
        .filter(|p| p.available())
        // Under Miri every path but the scalar one is unavailable, and `Auto` is scalar.
        .filter(|p| !(cfg!(miri) && *p == Path::Auto))
        .collect()
}

#[test]
fn skewed_routing_matches_the_reference() {
    let (experts, n, k) = (6, 40, 256);
    // Smaller under Miri (thousands of times slower): Q4_0 only, with a partial panel.
    let (n, k) = if cfg!(miri) { (17, 32) } else { (n, k) };
    for path in paths() {
        for format in [Format::Q4_0, Format::Q4K, Format::Q6K, Format::BF16] {
            if cfg!(miri) && format != Format::Q4_0 {
                continue;
            }
            // One hot expert (every token, top_k = 1), others empty.
            let tokens = if cfg!(miri) { 5 } else { 37 };
            check(format, (experts, n, k), tokens, &vec![3; tokens], 1, path);
            // top_k = 2 over a skewed mix, expert 5 never used.
            let ids: Vec<u32> =
                (0..tokens * 2).map(|i| if i % 2 == 0 { 0 } else { (i % 5) as u32 }).collect();
            check(format, (experts, n, k), tokens, &ids, 2, path);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "minutes under Miri (every format at k = 256); skewed_routing runs")]
fn top_k_eight_and_every_format() {
    let (experts, n, k) = (8, 17, 256);
    for path in paths() {
        for format in Format::ALL {
            let tokens = 5;
            let ids: Vec<u32> = (0..tokens * 8).map(|i| ((i * 3 + i / 8) % 8) as u32).collect();
            check(format, (experts, n, k), tokens, &ids, 8, path);
        }
    }
}

#[test]
fn out_of_range_ids_and_bad_shapes_are_errors() {
    let (format, experts, n, k) = (Format::Q8_0, 3, 16, 64);
    let src = weights(format, 1, experts * n, k);
    let mut packed = vec![0u8; packed_size(format, n, k, experts).unwrap()];
    pack(format, n, k, experts, &src, &mut packed).unwrap();
    let x = vec![0.5f32; 2 * k];
    let xr = MatRef::new(&x, 2, k, k).unwrap();
    let shape = MoeShape { experts, n, k, tokens: 2, top_k: 2 };
    let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, Path::Auto).unwrap()];
    let mut y = vec![0f32; 4 * n];
    let mut ym = MatMut::new(&mut y, 4, n, n).unwrap();
    assert_eq!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 3, 2], 2), &mut ym, Path::Auto, &mut ws),
        Err(GemmError::ExpertOutOfRange { index: 2, id: 3, experts: 3 })
    );
    assert_eq!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 2], 2), &mut ym, Path::Auto, &mut ws),
        Err(GemmError::ShapeMismatch { dim: "ids", expected: 4, found: 3 })
    );
    let mut small = vec![0u8; 10];
    assert!(matches!(
        grouped_gemm(&packed, format, &xr, (&[0, 1, 2, 2], 2), &mut ym, Path::Auto, &mut small),
        Err(GemmError::WorkspaceTooSmall { .. })
    ));
}

#[test]
fn routing_sorts_each_expert_run_in_order() {
    let ids = [2u32, 0, 2, 1, 0, 2];
    let mut ws = vec![0u8; routing_bytes(3, 2, 4)];
    let r = Routing::new(&ids, 4, &mut ws).unwrap();
    assert_eq!((r.run(0), r.run(1), r.run(2), r.run(3)), (0..2, 2..3, 3..6, 6..6));
    let entries: Vec<usize> = (0..6).map(|i| r.entry(i)).collect();
    assert_eq!(entries, [1, 4, 3, 0, 2, 5]);
}
