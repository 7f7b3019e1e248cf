use std::sync::Arc;

use amx_core::formats::Format;

use super::attention::AttentionJob;
use super::*;
use crate::buffer::host::host;
use crate::op::Operand;
use crate::tensor::{f32_from_bytes, i32_from_bytes, i32_to_bytes};

fn t(name: &str, dtype: DType, dims: &[usize]) -> TensorDesc {
    TensorDesc::new(name, dtype, dims).unwrap()
}

fn desc(op: Op, srcs: &[TensorDesc]) -> OpDesc {
    let refs: Vec<&TensorDesc> = srcs.iter().collect();
    let dst = op.infer(&Arc::from("out"), &refs).unwrap();
    let srcs =
        srcs.iter().map(|d| Operand { desc: d.clone(), buft: host(), contiguous: true }).collect();
    OpDesc { op, srcs, dst }
}

fn run_f32(op: Op, srcs: &[(TensorDesc, Vec<u8>)]) -> Vec<f32> {
    let descs: Vec<TensorDesc> = srcs.iter().map(|s| s.0.clone()).collect();
    let bytes: Vec<&[u8]> = srcs.iter().map(|s| &s.1[..]).collect();
    f32_from_bytes(&compute(&desc(op, &descs), &bytes).unwrap())
}

fn f(name: &str, dims: &[usize], v: &[f32]) -> (TensorDesc, Vec<u8>) {
    (t(name, DType::F32, dims), f32_to_bytes(v))
}

fn ids(name: &str, dims: &[usize], v: &[i32]) -> (TensorDesc, Vec<u8>) {
    (t(name, DType::I32, dims), i32_to_bytes(v))
}

#[test]
fn mul_mat_is_x_times_w_transposed() {
    // W: 3 rows of K = 2: (1,2), (3,4), (5,6); X: 2 rows: (1,1), (0,2).
    let w = f("w", &[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let x = f("x", &[2, 2], &[1., 1., 0., 2.]);
    assert_eq!(run_f32(Op::MulMat, &[w.clone(), x]), [3., 7., 11., 4., 8., 12.]);
    // src0 broadcast over two batches of src1.
    let xb = f("x", &[2, 1, 2], &[1., 0., 0., 1.]);
    assert_eq!(run_f32(Op::MulMat, &[w, xb]), [1., 3., 5., 2., 4., 6.]);
}

#[test]
fn mul_mat_id_picks_experts_per_token() {
    // Two experts of one row, K = 2: e0 = (1, 0), e1 = (0, 1).
    let stack = f("exps", &[2, 1, 2], &[1., 0., 0., 1.]);
    let x = f("x", &[2, 1, 2], &[5., 7., 2., 3.]);
    let sel = ids("ids", &[2, 2], &[1, 0, 0, 0]);
    assert_eq!(run_f32(Op::MulMatId, &[stack.clone(), x.clone(), sel]), [7., 5., 2., 2.]);
    let bad = ids("ids", &[2, 2], &[1, 2, 0, 0]);
    let descs = [stack.0.clone(), x.0.clone(), bad.0.clone()];
    let e = compute(&desc(Op::MulMatId, &descs), &[&stack.1, &x.1, &bad.1]).unwrap_err();
    assert!(matches!(e, ExecError::IndexOutOfRange { index: 2, len: 2, .. }), "{e}");
}

#[test]
fn elementwise_ops_broadcast() {
    let a = f("a", &[2, 2], &[1., 2., 3., 4.]);
    assert_eq!(run_f32(Op::Add, &[a.clone(), f("b", &[2], &[10., 20.])]), [11., 22., 13., 24.]);
    assert_eq!(run_f32(Op::Mul, &[a.clone(), f("s", &[1], &[0.5])]), [0.5, 1., 1.5, 2.]);
    assert_eq!(run_f32(Op::Div, &[a, f("d", &[1, 2], &[1., 2.])]), [1., 2., 1.5, 2.]);
    // b broadcast over one of two dimensions (the general row index).
    let a3 = f("a", &[1, 2, 2], &[1., 2., 3., 4.]);
    let b1 = f("b", &[1, 2, 1], &[10., 20.]);
    assert_eq!(run_f32(Op::Add, &[a3.clone(), b1]), [11., 22., 13., 24.]);
    let b2 = f("b", &[1, 1, 2], &[10., 20.]);
    assert_eq!(run_f32(Op::Add, &[a3, b2]), [11., 12., 23., 24.]);
}

#[test]
fn get_rows_dequantizes_block_rows() {
    // Q8_0 table of 2 rows: d = 1.0 (f16 0x3C00), values 0..32 and -(0..32).
    let mut table = Vec::new();
    for sign in [1i8, -1] {
        table.extend_from_slice(&0x3C00u16.to_le_bytes());
        table.extend((0..32i8).map(|q| (sign * q) as u8));
    }
    let tab = (t("emb", DType::Block(Format::Q8_0), &[32, 2]), table);
    let out = run_f32(Op::GetRows, &[tab, ids("tok", &[3], &[1, 0, 1])]);
    assert_eq!(out.len(), 96);
    assert_eq!(out[5], -5.0);
    assert_eq!(out[32 + 7], 7.0);
    assert_eq!(out[64 + 31], -31.0);
}

#[test]
fn row_ops() {
    let a = f("a", &[2, 2], &[0., 3f32.ln(), 1., 1.]);
    let s = run_f32(Op::SoftMax, std::slice::from_ref(&a));
    for (got, want) in s.iter().zip([0.25, 0.75, 0.5, 0.5]) {
        assert!((got - want).abs() < 1e-6, "{s:?}");
    }
    assert_eq!(run_f32(Op::SumRows, &[a]), [3f32.ln(), 2.]);
    let n = run_f32(Op::RmsNorm { eps: 0.0 }, &[f("n", &[2], &[3., 4.])]);
    let r = (12.5f32).sqrt();
    assert_eq!(n, [3. / r, 4. / r]);
    let tr = run_f32(Op::Transpose, &[f("m", &[3, 2], &[1., 2., 3., 4., 5., 6.])]);
    assert_eq!(tr, [1., 4., 2., 5., 3., 6.]);
    let si = run_f32(Op::Silu, &[f("s", &[2], &[0., 100.])]);
    assert_eq!(si, [0., 100.]);
}

#[test]
fn top_k_orders_largest_first_ties_to_lower_index() {
    let (d, b) = f("p", &[4, 2], &[0.1, 0.4, 0.4, 0.1, 1., f32::NAN, -1., 2.]);
    let op = desc(Op::TopK { k: 2 }, &[d]);
    let out = i32_from_bytes(&compute(&op, &[&b]).unwrap());
    assert_eq!(out, [1, 2, 1, 3]);
}

#[test]
fn mismatched_sources_are_errors() {
    let (d, b) = f("a", &[4], &[1., 2., 3., 4.]);
    let op = desc(Op::SoftMax, &[d]);
    assert!(matches!(compute(&op, &[&b[..12]]), Err(ExecError::Sources { .. })));
    assert!(matches!(compute(&op, &[]), Err(ExecError::Sources { .. })));
    let mut wrong = op.clone();
    wrong.dst.ne = [2, 2, 1, 1];
    assert!(!supports(&wrong));
    assert!(matches!(compute(&wrong, &[&b]), Err(ExecError::Sources { .. })));
}

#[test]
fn gelu_and_scale() {
    let g = run_f32(Op::Gelu, &[f("g", &[3], &[0., 1., -1.])]);
    assert_eq!(g[0], 0.0);
    assert!((g[1] - 0.841_192).abs() < 1e-5, "{g:?}");
    assert!((g[2] + 0.158_808).abs() < 1e-5, "{g:?}");
    assert_eq!(run_f32(Op::Scale { s: 0.5 }, &[f("s", &[2], &[2., -4.])]), [1., -2.]);
}

#[test]
fn rope_rotates_the_pairs_of_its_mode() {
    use crate::op::RopeMode;
    // One head of 6 values, n_dims 4 (the last two pass through), positions 0 and 1.
    let x: Vec<f32> = (1..=12).map(|v| v as f32).collect();
    let pos = ids("pos", &[2], &[0, 1]);
    for mode in [RopeMode::Normal, RopeMode::Neox] {
        let op = Op::Rope { mode, n_dims: 4, freq_base: 100.0, freq_scale: 1.0 };
        let y = run_f32(op, &[f("x", &[6, 1, 2], &x), pos.clone()]);
        assert_eq!(&y[..6], &x[..6], "position 0 is the identity");
        assert_eq!(&y[10..], &x[10..], "values past n_dims pass through");
        let pairs = match mode {
            RopeMode::Normal => [(6, 7), (8, 9)],
            RopeMode::Neox => [(6, 8), (7, 9)],
        };
        // Pair i turns by base^(-2i/4): 1 and 0.1 radians.
        for ((a, b), theta) in pairs.into_iter().zip([1.0f32, 0.1]) {
            let (c, s) = (theta.cos(), theta.sin());
            assert!((y[a] - (x[a] * c - x[b] * s)).abs() < 1e-5, "{mode:?} {y:?}");
            assert!((y[b] - (x[a] * s + x[b] * c)).abs() < 1e-5, "{mode:?} {y:?}");
        }
    }
}

/// Plain attention over all positions of one step (no cache), in f64.
#[allow(clippy::too_many_arguments)] // the shape of a test oracle, spelled out
fn attention_f64(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    h: usize,
    hkv: usize,
    t: usize,
    window: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; d * h * t];
    for ti in 0..t {
        for hi in 0..h {
            let g = hi / (h / hkv);
            let lo = if window > 0 { (ti + 1).saturating_sub(window) } else { 0 };
            let s: Vec<f64> = (lo..=ti)
                .map(|j| {
                    (0..d)
                        .map(|i| {
                            f64::from(q[(ti * h + hi) * d + i])
                                * f64::from(k[(j * hkv + g) * d + i])
                        })
                        .sum::<f64>()
                        * 0.5
                })
                .collect();
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for (j, w) in (lo..=ti).zip(&e) {
                for i in 0..d {
                    out[(ti * h + hi) * d + i] += w / z * f64::from(v[(j * hkv + g) * d + i]);
                }
            }
        }
    }
    out
}

#[test]
fn attention_with_and_without_a_cache() {
    let (d, h, hkv, t, cap) = (4, 4, 2, 5, 8);
    let r = |seed: u64, n: usize| amx_testdata::random::pseudo_random_values(seed, n);
    let (q, k, v) = (r(1, d * h * t), r(2, d * hkv * t), r(3, d * hkv * t));
    for window in [0, 2] {
        let want = attention_f64(&q, &k, &v, d, h, hkv, t, window);
        let op = Op::Attention { scale: 0.5, window };
        // All five tokens in one step, empty cache.
        let empty = vec![0.0; d * hkv * cap];
        let all = run_f32(
            op,
            &[
                f("q", &[d, h, t], &q),
                f("k", &[d, hkv, t], &k),
                f("v", &[d, hkv, t], &v),
                f("kc", &[d, hkv, cap], &empty),
                f("vc", &[d, hkv, cap], &empty),
                ids("pos", &[t], &[0, 1, 2, 3, 4]),
            ],
        );
        // Three tokens in the cache, the last two as a step at positions 3 and 4.
        let mut kc = k[..3 * d * hkv].to_vec();
        kc.resize(d * hkv * cap, 0.0);
        let mut vc = v[..3 * d * hkv].to_vec();
        vc.resize(d * hkv * cap, 0.0);
        let tail = run_f32(
            op,
            &[
                f("q", &[d, h, 2], &q[3 * d * h..]),
                f("k", &[d, hkv, 2], &k[3 * d * hkv..]),
                f("v", &[d, hkv, 2], &v[3 * d * hkv..]),
                f("kc", &[d, hkv, cap], &kc),
                f("vc", &[d, hkv, cap], &vc),
                ids("pos", &[2], &[3, 4]),
            ],
        );
        for (a, b) in all.iter().zip(&want) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "window {window}: {a} vs {b}");
        }
        for (a, b) in tail.iter().zip(&want[3 * d * h..]) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "window {window}: {a} vs {b}");
        }
    }
}

#[test]
fn attention_refuses_positions_past_the_cache_or_not_consecutive() {
    let op = Op::Attention { scale: 1.0, window: 0 };
    let z = |n: usize| vec![0.0; n];
    let srcs = |pos: &[i32]| {
        vec![
            f("q", &[2, 1, 2], &z(4)),
            f("k", &[2, 1, 2], &z(4)),
            f("v", &[2, 1, 2], &z(4)),
            f("kc", &[2, 1, 4], &z(8)),
            f("vc", &[2, 1, 4], &z(8)),
            ids("pos", &[2], pos),
        ]
    };
    for pos in [[5, 6], [1, 3], [-1, 0]] {
        let s = srcs(&pos);
        let descs: Vec<TensorDesc> = s.iter().map(|s| s.0.clone()).collect();
        let bytes: Vec<&[u8]> = s.iter().map(|s| &s.1[..]).collect();
        assert!(compute(&desc(op, &descs), &bytes).is_err(), "{pos:?}");
    }
}

/// The AVX2 build of the attention loop gives the bits of the plain one.
#[cfg(target_arch = "x86_64")]
#[test]
fn attention_avx2_gives_the_same_bits() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        eprintln!("skipped: no AVX2");
        return;
    }
    let (d, h, hkv, t, p0) = (40, 4, 2, 3, 5);
    let r = |seed: u64, n: usize| amx_testdata::random::pseudo_random_values(seed, n);
    let (q, k, v, kc, vc) = (
        r(1, d * h * t),
        r(2, d * hkv * t),
        r(3, d * hkv * t),
        r(4, d * hkv * 8),
        r(5, d * hkv * 8),
    );
    let att = Attention { scale: 0.3, window: 4 };
    let run = |avx2: bool| {
        let (mut out, mut scores) = (vec![0f32; d * h * t], vec![0f32; p0 + t]);
        let job = AttentionJob {
            q: &q,
            k: &k,
            vv: &v,
            kc: &kc,
            vc: &vc,
            dims: [d, d, h, hkv, t, p0],
            out: &mut out,
            scores: &mut scores,
        };
        if avx2 {
            // SAFETY: AVX2 was detected above.
            unsafe { att.heads_avx2(job) }
        } else {
            att.heads(job)
        }
        out.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
    };
    assert_eq!(run(true), run(false));
}

/// The AVX-512 and AVX2 builds of the row ops give the bits of the plain one.
#[test]
fn row_ops_give_the_same_bits_on_every_build() {
    use crate::op::RopeMode;
    let (w, rows) = (45, 7);
    let r = |seed: u64, n: usize| amx_testdata::random::pseudo_random_values(seed, n);
    // Wide and extreme values too: exp's clamps, tanh's saturation, zeros.
    let mut x: Vec<f32> = r(1, w * rows).iter().map(|v| v * 8.0).collect();
    x[..6].copy_from_slice(&[0.0, -0.0, 100.0, -100.0, 1e-30, -90.0]);
    let xs = f("x", &[w, rows], &x);
    let pos = ids("pos", &[rows], &[0, 1, 2, 30, 400, 5_000, 60_000]);
    let rope = |mode, n_dims| Op::Rope { mode, n_dims, freq_base: 10_000.0, freq_scale: 0.5 };
    let cases = [
        (Op::Silu, vec![xs.clone()]),
        (Op::Gelu, vec![xs.clone()]),
        (Op::SoftMax, vec![xs.clone()]),
        (Op::RmsNorm { eps: 1e-6 }, vec![xs.clone()]),
        (Op::Scale { s: 0.3 }, vec![xs.clone()]),
        (Op::Add, vec![xs.clone(), f("b", &[w], &r(2, w))]),
        (Op::Mul, vec![xs.clone(), f("b", &[w, rows], &r(3, w * rows))]),
        (Op::Div, vec![xs.clone(), f("b", &[1, rows], &r(4, rows))]),
        (Op::Add, vec![f("x3", &[w, 2, rows], &r(7, 2 * w * rows)), f("b", &[w, 2], &r(8, 2 * w))]),
        (Op::SumRows, vec![xs]),
        (rope(RopeMode::Normal, 4), vec![f("q", &[5, 9, rows], &r(5, 45 * rows)), pos.clone()]),
        (rope(RopeMode::Neox, 4), vec![f("q", &[5, 9, rows], &r(6, 45 * rows)), pos]),
    ];
    for (op, srcs) in cases {
        let descs: Vec<TensorDesc> = srcs.iter().map(|s| s.0.clone()).collect();
        let bytes: Vec<&[u8]> = srcs.iter().map(|s| &s.1[..]).collect();
        let d = desc(op, &descs);
        let scratch = Bump::new();
        let job = RowJob::new(&d, &bytes, &scratch).unwrap().unwrap();
        let (mut fast, mut plain) = (vec![0f32; d.dst.elements()], vec![0f32; d.dst.elements()]);
        job.run(0, &mut fast).unwrap();
        job.run_plain(0, &mut plain).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&fast), bits(&plain), "{op:?}");
    }
}
