use amx_core::formats::Format;

use super::*;
use crate::backend::gpu_like::GpuLikeBackend;
use crate::error::{ExecError, GraphError};
use crate::op::{Op, OpDesc};
use crate::tensor::{DType, f32_to_bytes};
use crate::test_util::{op_in, q8_0, t, values};

#[test]
fn accepts_host_and_its_own_amx_buffer_type_only() {
    let cpu = CpuBackend::new();
    let amx = cpu.extra_bufts()[0].clone();
    assert!(!amx.is_host());
    assert!(cpu.supports_buft(&*host()));
    assert!(cpu.supports_buft(&*amx));
    let foreign = AmxBufferType::new();
    assert!(!cpu.supports_buft(&foreign));
    assert!(!cpu.supports_buft(&*GpuLikeBackend::new().device_buft()));
    let bugged = CpuBackend::without_is_host_override(vec![amx.clone()]);
    assert!(bugged.supports_buft(&*host()));
    assert!(!bugged.supports_buft(&*amx));
}

#[test]
fn supports_op_is_the_buffer_types_answer_for_packed_sources() {
    let cpu = CpuBackend::new();
    let (amx, h) = (cpu.extra_bufts()[0].clone(), host());
    let device = GpuLikeBackend::new().device_buft();
    let w = t("w", DType::Block(Format::Q4_K), &[256, 32]);
    let x = t("x", DType::F32, &[256, 3]);
    assert!(cpu.supports_op(&op_in(Op::MulMat, &[(&w, &amx), (&x, &h)])));
    // src1 outside host memory: AMX says no, so the CPU says no.
    assert!(!cpu.supports_op(&op_in(Op::MulMat, &[(&w, &amx), (&x, &device)])));
    let stack = t("exps", DType::Block(Format::Q4_K), &[256, 32, 4]);
    let xs = t("x", DType::F32, &[256, 1, 3]);
    let ids = t("ids", DType::I32, &[2, 3]);
    assert!(cpu.supports_op(&op_in(Op::MulMatId, &[(&stack, &amx), (&xs, &h), (&ids, &h)])));
    // The expert ids outside host memory: AMX says no, so the CPU says no.
    let e = op_in(Op::MulMatId, &[(&stack, &amx), (&xs, &h), (&ids, &device)]);
    assert!(!cpu.supports_op(&e));
    // The same ops on host memory run the reference.
    assert!(cpu.supports_op(&op_in(Op::MulMat, &[(&w, &h), (&x, &h)])));
    assert!(cpu.supports_op(&op_in(Op::MulMatId, &[(&stack, &h), (&xs, &h), (&ids, &h)])));
}

#[test]
fn runs_packed_weights_through_their_buffer_type_and_plain_ones_on_the_reference() {
    let cpu = CpuBackend::new();
    let (amx, h) = (cpu.extra_bufts()[0].clone(), host());
    let wd = t("w", DType::Block(Format::Q8_0), &[64, 16]);
    let xd = t("x", DType::F32, &[64, 20]);
    let wdata = q8_0(16, 64, 5);
    let x = Buffer::upload(&h, xd.clone(), &f32_to_bytes(&values(64 * 20, 6))).unwrap();
    let wp = Buffer::upload(&amx, wd.clone(), &wdata).unwrap();
    let wh = Buffer::upload(&h, wd.clone(), &wdata).unwrap();
    let packed = cpu.compute(&op_in(Op::MulMat, &[(&wd, &amx), (&xd, &h)]), &[&wp, &x]).unwrap();
    assert!(matches!(packed.kernel, Kernel::Packed { .. }), "{:?}", packed.kernel);
    assert!(packed.output.buft().is_host());
    let plain = cpu.compute(&op_in(Op::MulMat, &[(&wd, &h), (&xd, &h)]), &[&wh, &x]).unwrap();
    assert_eq!(plain.kernel, Kernel::Reference);
    // Without the override the packed weight is refused, not read.
    let bugged = CpuBackend::without_is_host_override(vec![amx.clone()]);
    let e = bugged.compute(&op_in(Op::MulMat, &[(&wd, &amx), (&xd, &h)]), &[&wp, &x]).unwrap_err();
    assert!(matches!(e, ExecError::BufferNotAccepted { .. }), "{e}");
    assert_eq!(wp.refused_reads(), 0);
    // Buffers that are not the op's sources are refused.
    let e = cpu.compute(&op_in(Op::MulMat, &[(&wd, &h), (&xd, &h)]), &[&wp, &x]).unwrap_err();
    assert!(matches!(e, ExecError::Sources { .. }), "{e}");
}

/// A MUL_MAT whose `dst` is not the `[N, M]` its sources give: the AMX buffer type used
/// to accept it (its check ignored `dst`) and the GEMM left half of a `[N, 2M]` result
/// unwritten; now every buffer type and backend refuses it, and running it is an error.
#[test]
fn a_dst_the_sources_do_not_give_is_refused_everywhere() {
    let cpu = CpuBackend::new();
    let gpu = GpuLikeBackend::new();
    let (amx, h, device) = (cpu.extra_bufts()[0].clone(), host(), gpu.device_buft());
    let wd = t("w", DType::Block(Format::Q8_0), &[64, 16]);
    let xd = t("x", DType::F32, &[64, 5]);
    let wdata = q8_0(16, 64, 5);
    let x = Buffer::upload(&h, xd.clone(), &f32_to_bytes(&values(64 * 5, 6))).unwrap();
    let wp = Buffer::upload(&amx, wd.clone(), &wdata).unwrap();
    let wh = Buffer::upload(&h, wd.clone(), &wdata).unwrap();
    let good = op_in(Op::MulMat, &[(&wd, &amx), (&xd, &h)]);
    assert!(amx.supports_op(&good) && cpu.supports_op(&good));
    for dims in [&[16, 10][..], &[16, 5, 2], &[32, 5], &[16]] {
        let bad = OpDesc { dst: t("out", DType::F32, dims), ..good.clone() };
        assert!(!amx.supports_op(&bad), "AMX accepts dst {dims:?}");
        assert!(!cpu.supports_op(&bad), "CPU accepts dst {dims:?}");
        let e = cpu.compute(&bad, &[&wp, &x]).unwrap_err();
        assert!(matches!(e, ExecError::Op(GraphError::Dst { .. })), "{e}");
        let mut out = vec![f32::NAN; bad.dst.elements()];
        let e = amx.compute_forward(&bad, &[&wp, &x], &mut out).unwrap_err();
        assert!(matches!(e, ExecError::Unsupported { .. }), "{e}");
        assert!(out.iter().all(|v| v.is_nan()), "nothing is written");
        // The same op on plain sources: the host buffer type and both backends refuse.
        let plain = OpDesc { dst: bad.dst.clone(), ..op_in(Op::MulMat, &[(&wd, &h), (&xd, &h)]) };
        assert!(!h.supports_op(&plain) && !cpu.supports_op(&plain));
        assert!(matches!(cpu.compute(&plain, &[&wh, &x]), Err(ExecError::Op(_))));
        let on_device = op_in(Op::MulMat, &[(&wd, &device), (&xd, &device)]);
        let on_device = OpDesc { dst: bad.dst.clone(), ..on_device };
        assert!(!device.supports_op(&on_device) && !gpu.supports_op(&on_device));
        assert!(matches!(gpu.compute(&plain, &[&wh, &x]), Err(ExecError::Op(_))));
    }
    // A right op with an output slice of another length is refused before any write.
    let mut long = vec![f32::NAN; good.dst.elements() * 2];
    let e = amx.compute_forward(&good, &[&wp, &x], &mut long).unwrap_err();
    assert!(matches!(e, ExecError::Sources { .. }), "{e}");
    assert!(long.iter().all(|v| v.is_nan()));
}

/// The GEMM form of a prefill step's ATTENTION against the reference op: a cache of 5
/// positions, 20 new ones, grouped heads, with and without a window; BF16 rounding only.
#[test]
fn fused_attention_matches_the_reference() {
    use crate::tensor::{f32_from_bytes, i32_to_bytes};
    let (dk, h, hkv, tokens, cap) = (64, 6, 2, 20, 32);
    let t = crate::test_util::t;
    let r = |seed: u64, n: usize| amx_testdata::random::pseudo_random_values(seed, n);
    let f = |name: &str, dims: &[usize], v: &[f32]| {
        let desc = t(name, DType::F32, dims);
        Buffer::upload(&host(), desc, &f32_to_bytes(v)).unwrap()
    };
    let pos: Vec<i32> = (5..5 + tokens as i32).collect();
    let srcs = [
        f("q", &[dk, h, tokens], &r(1, dk * h * tokens)),
        f("k", &[dk, hkv, tokens], &r(2, dk * hkv * tokens)),
        f("v", &[dk, hkv, tokens], &r(3, dk * hkv * tokens)),
        f("kc", &[dk, hkv, cap], &r(4, dk * hkv * cap)),
        f("vc", &[dk, hkv, cap], &r(5, dk * hkv * cap)),
        Buffer::upload(&host(), t("pos", DType::I32, &[tokens]), &i32_to_bytes(&pos)).unwrap(),
    ];
    let refs: Vec<&Buffer> = srcs.iter().collect();
    for window in [0, 7] {
        let op = Op::Attention { scale: 0.125, window };
        let descs: Vec<&crate::tensor::TensorDesc> = refs.iter().map(|b| b.desc()).collect();
        let dst = op.infer(&"out".into(), &descs).unwrap();
        let desc = OpDesc {
            op,
            srcs: refs
                .iter()
                .map(|b| crate::op::Operand {
                    desc: b.desc().clone(),
                    buft: host(),
                    contiguous: true,
                })
                .collect(),
            dst,
        };
        let plain = CpuBackend::new().compute(&desc, &refs).unwrap();
        let pool = Arc::new(Pool::new(2));
        let fused = CpuBackend::new().with_attention_pool(pool, Path::Auto);
        let got = fused.compute(&desc, &refs).unwrap();
        assert!(matches!(got.kernel, Kernel::Fused { .. }), "{:?}", got.kernel);
        let (a, b) = (
            f32_from_bytes(&got.output.download().unwrap()),
            f32_from_bytes(&plain.output.download().unwrap()),
        );
        let err: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let norm: f32 = b.iter().map(|y| y * y).sum();
        assert!(err / norm < 1e-4, "window {window}: NMSE {}", err / norm);
        // Decode-sized steps keep the reference op.
        let mut short = desc.clone();
        short.srcs[0].desc.ne[2] = 1;
        assert!(!attention::applies(&short));
    }
}
