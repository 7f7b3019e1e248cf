//! The pool and the `Part` API against the single-threaded `amx_core::gemm::gemm`:
//! bit-identical outputs for 1, 2 and 3 threads, every format, every available path,
//! shapes around the tile edges, row strides with padding that must stay untouched.

use amx_core::formats::Format;
use amx_core::gemm::{self, MatMut, MatRef, Path};
use amx_core::pack;
use amx_runtime::pool::{Matmul, Pool, PreparedActivations};
use amx_runtime::test_support;

const SENTINEL: f32 = -7.25;

fn packed(format: Format, n: usize, k: usize, seed: u64) -> Vec<u8> {
    let raw = amx_testdata::weights::bench_weights(format, seed, n, k).expect("weights");
    let mut out = vec![0u8; pack::packed_size(format, n, k, 1).expect("size")];
    pack::pack(format, n, k, 1, &raw, &mut out).expect("pack");
    out
}

fn activations(m: usize, stride: usize, seed: usize) -> Vec<f32> {
    (0..m.max(1) * stride).map(|i| ((i * 31 + seed * 17) % 41) as f32 / 16.0 - 1.25).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// `gemm::gemm` on one thread: the reference every split must reproduce bit for bit.
fn reference(
    w: &[u8],
    format: Format,
    x: &MatRef<'_>,
    n: usize,
    ys: usize,
    path: Path,
) -> Vec<f32> {
    let m = x.rows();
    let mut y = vec![SENTINEL; m.max(1) * ys];
    let mut ws = vec![0u8; gemm::workspace_bytes(format, m, x.cols(), path).expect("ws")];
    let mut ym = MatMut::new(&mut y, m, n, ys).expect("y");
    gemm::gemm(w, format, x, &mut ym, path, &mut ws).expect("gemm");
    y
}

fn paths() -> Vec<Path> {
    let all = [Path::Auto, Path::Amx, Path::Vnni, Path::Scalar];
    let (on, off): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.available());
    off.into_iter().for_each(test_support::skip_path);
    on
}

#[test]
fn bit_identical_for_any_thread_count_format_and_shape() {
    let pools: Vec<Pool> = (1..=3).map(Pool::new).collect();
    let k = 256;
    let mut cases = 0;
    for format in Format::ALL {
        for (n, m) in [(40, 1), (16, 16), (100, 17), (40, 32), (100, 33), (24, 70)] {
            let w = packed(format, n, k, 9);
            let (xs, ys) = (k + 3, n + 5);
            let xv = activations(m, xs, n);
            let x = MatRef::new(&xv, m, k, xs).expect("x");
            for path in paths() {
                if path == Path::Scalar && m > 17 {
                    continue; // the reference path is slow; small M covers it
                }
                let want = reference(&w, format, &x, n, ys, path);
                for pool in &pools {
                    let mut got = vec![SENTINEL; m * ys];
                    let mut y = MatMut::new(&mut got, m, n, ys).expect("y");
                    let taken = pool.matmul_on(&w, format, &x, &mut y, path).expect("pool");
                    assert_eq!(taken, path.resolve(format, m).expect("resolve"));
                    let t = pool.threads();
                    assert_eq!(bits(&got), bits(&want), "{format} m={m} n={n} {path:?} t={t}");
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} pool matmuls bit-identical to gemm::gemm");
}

#[test]
fn prepared_x_is_shared_by_three_weights() {
    let (m, k) = (33, 512);
    let pool = Pool::new(2);
    for format in [Format::Q4_0, Format::Q4_K, Format::Q8_0, Format::BF16] {
        // Q, K and V: same K, different N (N not a multiple of 16 for V).
        let ws: Vec<(usize, Vec<u8>)> =
            [(64, 1), (32, 2), (40, 3)].map(|(n, s)| (n, packed(format, n, k, s))).into();
        let mut buf = Vec::new();
        for step in 0..3 {
            let xv = activations(m, k, step);
            let x = MatRef::new(&xv, m, k, k).expect("x");
            let acts = pool.prepare_in(buf, format, &x, Path::Auto).expect("prepare");
            assert_eq!((acts.rows(), acts.cols()), (m, k));
            for (n, w) in &ws {
                let want = reference(w, format, &x, *n, *n, acts.path());
                let mut got = vec![SENTINEL; m * n];
                let mut y = MatMut::new(&mut got, m, *n, *n).expect("y");
                let taken = pool.matmul_prepared(&acts, w, format, &mut y).expect("matmul");
                assert_eq!(taken, acts.path());
                assert_eq!(bits(&got), bits(&want), "{format} n={n} step={step}");
            }
            buf = acts.into_buffer();
        }
    }
}

#[test]
fn parts_run_on_scoped_threads_match_gemm() {
    let (k, format) = (256, Format::Q4_K);
    for (m, n) in [(1, 40), (17, 100), (64, 24), (70, 200)] {
        let w = packed(format, n, k, 4);
        let xv = activations(m, k, 1);
        let x = MatRef::new(&xv, m, k, k).expect("x");
        for path in paths() {
            let want = reference(&w, format, &x, n, n, path);
            let acts = PreparedActivations::prepare(format, &x, path).expect("prepare");
            for parts in [1, 2, 3, 5] {
                let mut got = vec![SENTINEL; m * n];
                let mut y = MatMut::new(&mut got, m, n, n).expect("y");
                let plan = Matmul::new(&w, format, acts.prepared().expect("p"), &mut y, parts)
                    .expect("plan");
                assert!(!plan.is_empty() && plan.len() <= parts);
                let scratch = plan.scratch_bytes();
                std::thread::scope(|s| {
                    let handles: Vec<_> = plan
                        .parts()
                        .enumerate()
                        .map(|(i, part)| {
                            assert_eq!(part.scratch_bytes(), scratch);
                            s.spawn(move || {
                                // Half of the parts bring their own scratch.
                                if i % 2 == 0 {
                                    part.run_local()
                                } else {
                                    part.run(&mut vec![0u8; scratch])
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().expect("part thread").expect("part");
                    }
                });
                assert_eq!(bits(&got), bits(&want), "m={m} n={n} {path:?} parts={parts}");
            }
        }
    }
}

#[test]
fn part_errors_on_small_scratch_and_plan_checks_operands() {
    let (m, n, k, format) = (32, 48, 256, Format::Q4_0);
    if !Path::Amx.available() {
        // The AMX path is the only one with scratch.
        test_support::skip_path(Path::Amx);
        return;
    }
    let w = packed(format, n, k, 2);
    let xv = activations(m, k, 0);
    let x = MatRef::new(&xv, m, k, k).expect("x");
    let acts = PreparedActivations::prepare(format, &x, Path::Amx).expect("prepare");
    let mut yv = vec![0f32; m * n];
    let mut y = MatMut::new(&mut yv, m, n, n).expect("y");
    let plan = Matmul::new(&w, format, acts.prepared().expect("p"), &mut y, 2).expect("plan");
    let need = plan.scratch_bytes();
    assert!(need > 0);
    for part in plan.parts() {
        let got = part.run(&mut vec![0u8; need - 1]);
        assert_eq!(got, Err(gemm::GemmError::WorkspaceTooSmall { needed: need, actual: need - 1 }));
    }
    let mut y = MatMut::new(&mut yv, m, n - 16, n - 16).expect("y");
    let got = Matmul::new(&w, format, acts.prepared().expect("p"), &mut y, 2).map(|p| p.len());
    assert_eq!(got, Err(gemm::GemmError::ShapeMismatch { dim: "n", expected: n, found: n - 16 }));
}

#[test]
fn concurrent_callers_share_one_pool() {
    let pool = Pool::new(2);
    let k = 256;
    let cases = [(Format::Q4_0, 33, 40), (Format::Q6_K, 1, 100), (Format::BF16, 20, 24)];
    let inputs: Vec<_> = cases
        .iter()
        .map(|&(format, m, n)| {
            let w = packed(format, n, k, 6);
            let xv = activations(m, k, m);
            let x = MatRef::new(&xv, m, k, k).expect("x");
            let want = reference(&w, format, &x, n, n, Path::Auto);
            (format, m, n, w, xv, want)
        })
        .collect();
    std::thread::scope(|s| {
        for (format, m, n, w, xv, want) in &inputs {
            let pool = &pool;
            s.spawn(move || {
                let x = MatRef::new(xv, *m, k, k).expect("x");
                for _ in 0..30 {
                    let mut got = vec![SENTINEL; m * n];
                    let mut y = MatMut::new(&mut got, *m, *n, *n).expect("y");
                    pool.matmul(w, *format, &x, &mut y).expect("matmul");
                    assert_eq!(bits(&got), bits(want), "{format} m={m}");
                }
            });
        }
    });
}

#[test]
fn empty_output_has_no_parts() {
    let (k, n, format) = (64, 32, Format::Q8_0);
    let w = packed(format, n, k, 1);
    let x = MatRef::new(&[], 0, k, k).expect("x");
    let acts = PreparedActivations::prepare(format, &x, Path::Auto).expect("prepare");
    let mut y = MatMut::new(&mut [], 0, n, n).expect("y");
    let plan = Matmul::new(&w, format, acts.prepared().expect("p"), &mut y, 4).expect("plan");
    assert!(plan.is_empty());
    assert_eq!(plan.parts().count(), 0);
}

/// `Pool::linear` and `Pool::linear_many` on every format: the bits of `gemm::gemm` on the
/// path they report, on 1, 2 and 3 threads splitting every job, and on 2 threads with the
/// default threshold (which keeps the small cases on the calling thread).
#[test]
fn linear_calls_are_bit_identical_for_any_thread_count_and_format() {
    let mut pools: Vec<Pool> = (1..=3).map(|t| Pool::new(t).with_min_share_macs(0)).collect();
    pools.push(Pool::new(2));
    let k = 256;
    for format in Format::ALL {
        let (n1, n2) = (40, 24);
        let (w1, w2) = (packed(format, n1, k, 4), packed(format, n2, k, 5));
        let r1 = pack::PackedRef::parse(&w1).expect("w1");
        let r2 = pack::PackedRef::parse(&w2).expect("w2");
        for m in [1, 17, 40] {
            let xv = activations(m, k, m);
            let x = MatRef::new(&xv, m, k, k).expect("x");
            for pool in &pools {
                let t = pool.threads();
                let mut y = vec![SENTINEL; m * n1];
                let path = pool.linear(&r1, &xv, &mut y).expect("linear");
                let want1 = reference(&w1, format, &x, n1, n1, path);
                assert_eq!(bits(&y), bits(&want1), "{format} m={m} t={t} linear");
                let (mut a, mut b) = (vec![SENTINEL; m * n1], vec![SENTINEL; m * n2]);
                let path =
                    pool.linear_many(&xv, &mut [(&r1, &mut a), (&r2, &mut b)]).expect("many");
                assert_eq!(
                    bits(&a),
                    bits(&reference(&w1, format, &x, n1, n1, path)),
                    "{format} m={m} t={t}"
                );
                assert_eq!(
                    bits(&b),
                    bits(&reference(&w2, format, &x, n2, n2, path)),
                    "{format} m={m} t={t}"
                );
            }
        }
    }
}
