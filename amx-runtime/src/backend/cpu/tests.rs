use amx_core::formats::Format;

use super::*;
use crate::backend::gpu_like::GpuLikeBackend;
use crate::error::ExecError;
use crate::op::Op;
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
    let w = t("w", DType::Block(Format::Q4K), &[256, 32]);
    let x = t("x", DType::F32, &[256, 3]);
    assert!(cpu.supports_op(&op_in(Op::MulMat, &[(&w, &amx), (&x, &h)])));
    // src1 outside host memory: AMX says no, so the CPU says no.
    assert!(!cpu.supports_op(&op_in(Op::MulMat, &[(&w, &amx), (&x, &device)])));
    let stack = t("exps", DType::Block(Format::Q4K), &[256, 32, 4]);
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
