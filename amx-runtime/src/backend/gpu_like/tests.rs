use amx_core::formats::Format;

use super::*;
use crate::backend::cpu::CpuBackend;
use crate::buffer::host::host;
use crate::error::BufferError;
use crate::tensor::{DType, f32_to_bytes};
use crate::test_util::{op_in, q8_0, t, values};

#[test]
fn reads_its_own_memory_only() {
    let gpu = GpuLikeBackend::new();
    let cpu = CpuBackend::new();
    assert!(gpu.supports_buft(&*gpu.device_buft()));
    assert!(!gpu.supports_buft(&*host()));
    assert!(!gpu.supports_buft(&*cpu.extra_bufts()[0]));
    assert!(!gpu.supports_buft(&*GpuLikeBackend::new().device_buft()));
    let d = gpu.device_buft();
    let x = t("x", DType::F32, &[8, 2]);
    assert!(gpu.supports_op(&op_in(Op::SoftMax, &[(&x, &d)])));
    assert!(!gpu.supports_op(&op_in(Op::SoftMax, &[(&x, &host())])));
    assert!(!gpu.supports_op(&op_in(Op::TopK { k: 2 }, &[(&x, &d)])));
}

#[test]
fn copies_host_weights_up_and_keeps_results_on_the_device() {
    let gpu = GpuLikeBackend::new();
    let h = host();
    let wd = t("w", DType::Block(Format::Q8_0), &[64, 16]);
    let xd = t("x", DType::F32, &[64, 3]);
    let w = Buffer::upload(&h, wd.clone(), &q8_0(16, 64, 1)).unwrap();
    let x = Buffer::upload(&h, xd.clone(), &f32_to_bytes(&values(192, 2))).unwrap();
    let op = op_in(Op::MulMat, &[(&wd, &h), (&xd, &h)]);
    let out = gpu.compute(&op, &[&w, &x]).unwrap();
    assert_eq!(out.uploaded_bytes, w.len() + x.len());
    assert_eq!(out.output.buft().id(), gpu.device_buft().id());
    // Device memory is not host memory: a plain read is refused, a download is not.
    assert!(out.output.host_bytes().is_err());
    let cpu = CpuBackend::new().compute(&op, &[&w, &x]).unwrap();
    assert_eq!(out.output.download().unwrap(), cpu.output.download().unwrap());
}

#[test]
fn a_forced_read_of_packed_weights_is_refused_and_counted() {
    let gpu = GpuLikeBackend::new();
    let cpu = CpuBackend::new();
    let (amx, h) = (cpu.extra_bufts()[0].clone(), host());
    let wd = t("w", DType::Block(Format::Q8_0), &[64, 16]);
    let xd = t("x", DType::F32, &[64, 3]);
    let w = Buffer::upload(&amx, wd.clone(), &q8_0(16, 64, 1)).unwrap();
    let x = Buffer::upload(&h, xd.clone(), &f32_to_bytes(&values(192, 2))).unwrap();
    let e = gpu.compute(&op_in(Op::MulMat, &[(&wd, &amx), (&xd, &h)]), &[&w, &x]).unwrap_err();
    assert_eq!(
        e,
        ExecError::Buffer(BufferError::NotHost { tensor: "w".into(), buft: "AMX".into() })
    );
    assert_eq!(w.refused_reads(), 1);
}
