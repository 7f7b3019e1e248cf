//! The adapter against candle-core's own `QMatMul` and an f32 reference, on the same
//! ggml bytes.

use amx_core::formats::{self, Format};
use amx_testdata::random::pseudo_random_values;
use amx_testdata::vectors::nmse;
use amx_testdata::weights::bench_weights;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use super::*;
use crate::{dtype_of, qtensor_from_ggml};

/// Bound against the f32 reference, the one amx-rs's own tests hold every path to (and
/// the GGUF vectors' `amx.test.nmse_max`): int8 activations cost about 3e-5, BF16 about
/// 5e-6. candle quantizes its activations too (Q8_0, Q8_1 or Q8K rows), so it is held
/// to the same bound.
const BOUND_REFERENCE: f64 = 5e-4;

/// Bound between the two implementations: each is within `BOUND_REFERENCE` of the
/// reference, so by the triangle inequality on the root of the error their NMSE is at
/// most `(2 sqrt(5e-4))^2 = 2e-3`.
const BOUND_BETWEEN: f64 = 4.0 * BOUND_REFERENCE;

/// candle's `QMatMul::forward` on a thread of its own. candle-core 0.11.1's AMX kernel
/// (Q4_K, M >= 32) loads its tile configuration once per thread and remembers that in a
/// thread-local flag: after amx-rs (or anything else) loads another configuration on the
/// same thread, candle computes with the wrong tile shapes, and after a `tilerelease`
/// (amx-runtime's pool runs one on the calling thread) it faults. A fresh thread keeps
/// candle's own state intact.
fn candle_forward(qmm: &QMatMul, xs: &Tensor) -> Tensor {
    std::thread::scope(|s| s.spawn(|| qmm.forward(xs)).join())
        .expect("candle thread")
        .expect("candle forward")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("f32 values")
}

struct Case {
    ours: AmxMatMul,
    candle: QMatMul,
    qtensor_dequantized: Tensor,
}

fn case(format: Format, seed: u64, n: usize, k: usize) -> Case {
    let bytes = bench_weights(format, seed, n, k).expect("weights");
    let ours = AmxMatMul::from_ggml_bytes(format, n, k, &bytes).expect("pack");
    let qt = qtensor_from_ggml(format, n, k, &bytes).expect("qtensor");
    let qtensor_dequantized = qt.dequantize(&Device::Cpu).expect("dequantize");
    // Both sides read the same ggml bytes the same way: candle's dequantization equals
    // amx-rs's reference dequantizer bit for bit.
    let mut deq = vec![0f32; n * k];
    formats::dequantize(format, &bytes, &mut deq).expect("amx-rs dequantize");
    let theirs = values(&qtensor_dequantized);
    assert!(deq.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits()), "{format}");
    let candle = QMatMul::from_qtensor(qt).expect("qmatmul");
    Case { ours, candle, qtensor_dequantized }
}

/// Checks ours, candle's and the f32 reference on inputs of shapes `inputs` against a
/// random `n x k` weight of `format`; failures go to `report`.
fn check_format(
    format: Format,
    seed: u64,
    n: usize,
    k: usize,
    inputs: &[&[usize]],
    report: &mut Vec<String>,
) {
    let c = case(format, seed, n, k);
    for (mi, dims) in inputs.iter().enumerate() {
        let x = pseudo_random_values(seed * 10 + mi as u64, dims.iter().product());
        let xs = Tensor::from_vec(x, *dims, &Device::Cpu).expect("input");
        let ours = c.ours.forward(&xs).expect("ours");
        let theirs = candle_forward(&c.candle, &xs);
        let reference = xs.broadcast_matmul(&c.qtensor_dequantized.t().expect("t")).expect("ref");
        let mut want_dims = dims.to_vec();
        *want_dims.last_mut().expect("rank") = n;
        assert_eq!(ours.dims(), want_dims.as_slice());
        assert_eq!(ours.dims(), theirs.dims());
        let (ours, theirs, reference) = (values(&ours), values(&theirs), values(&reference));
        let e_ours = nmse(&ours, &reference);
        let e_candle = nmse(&theirs, &reference);
        let e_between = nmse(&ours, &theirs);
        println!(
            "{format} {dims:?}: ours {e_ours:.2e}, candle {e_candle:.2e}, between {e_between:.2e}"
        );
        let ok =
            e_ours <= BOUND_REFERENCE && e_candle <= BOUND_REFERENCE && e_between <= BOUND_BETWEEN;
        if !ok {
            report.push(format!("{format} {dims:?}: {e_ours:.2e} {e_candle:.2e} {e_between:.2e}"));
        }
    }
}

#[test]
fn matches_candle_and_the_f32_reference_in_every_format() {
    let mut report = Vec::new();
    for (fi, format) in crate::SHARED_FORMATS.into_iter().enumerate() {
        let seed = 100 + fi as u64;
        // M = 1 (decode), 5 (small batch), 40 (AMX on both sides for Q4_K), a rank-3
        // input of 2 x 20 rows; then M = 128 on rows of K = 4096.
        let small: [&[usize]; 4] = [&[1, 512], &[5, 512], &[40, 512], &[2, 20, 512]];
        check_format(format, seed, 64, 512, &small, &mut report);
        check_format(format, seed, 32, 4096, &[&[128, 4096]], &mut report);
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn from_qtensor_equals_from_bytes_and_refuses_other_dtypes() {
    let (n, k) = (32, 256);
    let bytes = bench_weights(Format::Q6_K, 9, n, k).expect("weights");
    let qt = qtensor_from_ggml(Format::Q6_K, n, k, &bytes).expect("qtensor");
    let op = AmxMatMul::from_qtensor(&qt).expect("from qtensor");
    let direct = AmxMatMul::from_ggml_bytes(Format::Q6_K, n, k, &bytes).expect("from bytes");
    assert_eq!(op.packed(), direct.packed());
    assert_eq!((op.format(), op.n(), op.k(), op.threads()), (Format::Q6_K, n, k, 1));

    let w = Tensor::zeros((n, k), DType::F32, &Device::Cpu).expect("zeros");
    let q8_1 = QTensor::quantize(&w, GgmlDType::Q8_1).expect("q8_1");
    let e = AmxMatMul::from_qtensor(&q8_1).expect_err("Q8_1");
    assert!(e.to_string().contains("Q8_1"), "{e}");
    let w3 = Tensor::zeros((2, n, k), DType::F32, &Device::Cpu).expect("zeros");
    let q3 = QTensor::quantize(&w3, GgmlDType::Q4_0).expect("rank 3");
    let e = AmxMatMul::from_qtensor(&q3).expect_err("rank 3");
    assert!(e.to_string().contains("rank 3"), "{e}");
    assert_eq!(dtype_of(Format::Q6_K), Ok(GgmlDType::Q6K));
    assert!(matches!(
        AmxMatMul::from_ggml_bytes(Format::Q6_K, n, k, &bytes[1..]),
        Err(AdapterError::WeightBytes { .. })
    ));
}

#[test]
fn a_pool_gives_the_single_threaded_bits() {
    let (n, k) = (80, 512);
    let bytes = bench_weights(Format::Q4_K, 3, n, k).expect("weights");
    let single = AmxMatMul::from_ggml_bytes(Format::Q4_K, n, k, &bytes).expect("pack");
    let pooled = AmxMatMul::from_ggml_bytes(Format::Q4_K, n, k, &bytes)
        .and_then(|op| op.with_threads(2))
        .expect("pool");
    assert_eq!(pooled.threads(), 2);
    for m in [1, 3, 40] {
        let xs = Tensor::from_vec(pseudo_random_values(m as u64, m * k), (m, k), &Device::Cpu)
            .expect("x");
        let a = values(&single.forward(&xs).expect("single"));
        let b = values(&pooled.forward(&xs).expect("pool"));
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "m={m}");
    }
}

#[test]
fn strided_and_offset_inputs_need_no_copy() {
    let (n, k) = (48, 256);
    let c = case(Format::Q8_0, 5, n, k);
    let wide =
        Tensor::from_vec(pseudo_random_values(1, 7 * 3 * k), (7, 3 * k), &Device::Cpu).expect("x");
    // Columns k..2k of every row (row stride 3k, offset k), then rows 2..6 of that.
    let narrow = wide.narrow(1, k, k).expect("narrow");
    let rows = narrow.narrow(0, 2, 4).expect("rows");
    for xs in [narrow, rows] {
        assert!(!xs.is_contiguous());
        let got = values(&c.ours.forward(&xs).expect("strided"));
        let want = values(&c.ours.forward(&xs.contiguous().expect("copy")).expect("contiguous"));
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (n, k) = (32, 256);
    let c = case(Format::Q4_0, 7, n, k);
    let dev = Device::Cpu;
    let transposed =
        Tensor::from_vec(pseudo_random_values(2, k * 4), (k, 4), &dev).and_then(|t| t.t());
    let e = c.ours.forward(&transposed.expect("t")).expect_err("transposed");
    assert!(e.to_string().contains("contiguous"), "{e}");
    let wrong_k = Tensor::from_vec(pseudo_random_values(3, 4 * 128), (4, 128), &dev).expect("x");
    let e = c.ours.forward(&wrong_k).expect_err("k");
    assert!(e.to_string().contains("128") && e.to_string().contains("256"), "{e}");
    let f16 = Tensor::zeros((2, k), DType::F16, &dev).expect("f16");
    assert!(c.ours.forward(&f16).expect_err("f16").to_string().contains("F16"));
    let scalar = Tensor::new(1f32, &dev).expect("scalar");
    assert!(c.ours.forward(&scalar).is_err());
    let one = Tensor::from_vec(pseudo_random_values(4, k), (1, k), &dev).expect("x");
    let broadcast = one.broadcast_as((3, k)).expect("broadcast");
    let e = c.ours.forward(&broadcast).expect_err("stride 0");
    assert!(e.to_string().starts_with("amx-rs gemm"), "{e}");
    // No rows: an empty output of the right shape.
    let empty = Tensor::zeros((0, k), DType::F32, &dev).expect("empty");
    assert_eq!(c.ours.forward(&empty).expect("m = 0").dims(), &[0, n]);
}

#[test]
fn iq4_xs_works_from_bytes_although_candle_cannot_hold_it() {
    let (n, k, m) = (48, 512, 20);
    let bytes = bench_weights(Format::IQ4_XS, 4, n, k).expect("weights");
    let op = AmxMatMul::from_ggml_bytes(Format::IQ4_XS, n, k, &bytes).expect("pack");
    let mut w = vec![0f32; n * k];
    formats::dequantize(Format::IQ4_XS, &bytes, &mut w).expect("dequantize");
    let w = Tensor::from_vec(w, (n, k), &Device::Cpu).expect("w");
    let xs = Tensor::from_vec(pseudo_random_values(8, m * k), (m, k), &Device::Cpu).expect("x");
    let got = values(&op.forward(&xs).expect("forward"));
    let want = values(&xs.matmul(&w.t().expect("t")).expect("reference"));
    assert!(nmse(&got, &want) <= BOUND_REFERENCE);
    assert!(qtensor_from_ggml(Format::IQ4_XS, n, k, &bytes).is_err());
}
