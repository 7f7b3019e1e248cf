use std::sync::Arc;

use amx_core::formats::Format;
use amx_core::gemm::Path;
use amx_core::pack::packed_size;

use super::*;
use crate::buffer::Buft;
use crate::buffer::host::host;
use crate::op::Op;
use crate::reference;
use crate::tensor::{f32_from_bytes, f32_to_bytes};
use crate::test_util::{bytes, nmse, op_in, q8_0, t, values};

fn amx() -> Buft {
    Arc::new(AmxBufferType::new())
}

#[test]
fn set_tensor_packs_and_get_tensor_gives_the_bytes_back() {
    let a = amx();
    for (i, format) in Format::ALL.into_iter().enumerate() {
        for (dims, matrices) in [(&[256, 20][..], 1), (&[256, 17, 3][..], 3)] {
            let desc = t("w", DType::Block(format), dims);
            let data = bytes(desc.nbytes().unwrap(), i as u64);
            let size = packed_size(format, dims[1], 256, matrices).unwrap();
            assert_eq!(a.alloc_size(&desc), Ok(size), "{format}");
            let buf = Buffer::upload(&a, desc, &data).unwrap();
            assert!(buf.is_aligned(a.alignment()));
            assert_ne!(buf.owned_bytes(&*a).unwrap()[..8], data[..8], "{format}: not packed");
            assert_eq!(buf.download().unwrap(), data, "{format}");
            // Plain reads are refused and counted.
            let e = buf.host_bytes().unwrap_err();
            assert!(matches!(e, BufferError::NotHost { .. }), "{e}");
            assert_eq!(buf.refused_reads(), 1);
        }
    }
}

#[test]
fn holds_block_formats_only() {
    let a = amx();
    for dtype in [DType::F32, DType::I32] {
        let e = a.alloc_size(&t("n", dtype, &[256])).unwrap_err();
        assert!(matches!(e, BufferError::Unsupported { .. }), "{e}");
    }
    let desc = t("w", DType::Block(Format::Q8_0), &[32, 2]);
    let e = Buffer::upload(&a, desc, &[0; 67]).unwrap_err();
    assert_eq!(e, BufferError::Length { tensor: "w".into(), expected: 68, actual: 67 });
}

#[test]
fn supports_mul_mat_on_its_weights_with_f32_host_src1_only() {
    let (a, h) = (amx(), host());
    let other = amx();
    let w = t("w", DType::Block(Format::Q4_0), &[256, 64]);
    let x = t("x", DType::F32, &[256, 7]);
    assert!(a.supports_op(&op_in(Op::MulMat, &[(&w, &a), (&x, &h)])));
    // Weight elsewhere, src1 not host, src1 strided, src1 batched, F32 weight.
    assert!(!a.supports_op(&op_in(Op::MulMat, &[(&w, &other), (&x, &h)])));
    assert!(!a.supports_op(&op_in(Op::MulMat, &[(&w, &a), (&x, &other)])));
    let mut strided = op_in(Op::MulMat, &[(&w, &a), (&x, &h)]);
    strided.srcs[1].contiguous = false;
    assert!(!a.supports_op(&strided));
    let x3 = t("x", DType::F32, &[256, 7, 2]);
    assert!(!a.supports_op(&op_in(Op::MulMat, &[(&w, &a), (&x3, &h)])));
    let wf = t("router", DType::F32, &[256, 8]);
    assert!(!a.supports_op(&op_in(Op::MulMat, &[(&wf, &a), (&x, &h)])));
    // A stacked weight is not a MUL_MAT weight (its MUL_MAT_ID: see `moe`); nor is a
    // GET_ROWS table.
    let stack = t("exps", DType::Block(Format::Q4_0), &[256, 64, 4]);
    let x4 = t("x", DType::F32, &[256, 7, 4]);
    assert!(!a.supports_op(&op_in(Op::MulMat, &[(&stack, &a), (&x4, &h)])));
    let tok = t("tok", DType::I32, &[7]);
    assert!(!a.supports_op(&op_in(Op::GetRows, &[(&w, &a), (&tok, &h)])));
}

#[test]
fn compute_forward_matches_the_reference() {
    let (a, h) = (amx(), host());
    let (k, n, m) = (256, 40, 20);
    let wd = t("w", DType::Block(Format::Q8_0), &[k, n]);
    let xd = t("x", DType::F32, &[k, m]);
    let wdata = q8_0(n, k, 7);
    let xdata = f32_to_bytes(&values(k * m, 8));
    let w = Buffer::upload(&a, wd.clone(), &wdata).unwrap();
    let x = Buffer::upload(&h, xd.clone(), &xdata).unwrap();
    let op = op_in(Op::MulMat, &[(&wd, &a), (&xd, &h)]);
    let mut y = vec![f32::NAN; n * m];
    let kernel = a.compute_forward(&op, &[&w, &x], &mut y).unwrap();
    let want_path = Path::Auto.resolve(Format::Q8_0, m).unwrap();
    assert_eq!(kernel, Kernel::Packed { buft: "AMX".into(), path: want_path });
    let plain = op_in(Op::MulMat, &[(&wd, &h), (&xd, &h)]);
    let want = f32_from_bytes(&reference::compute(&plain, &[&wdata, &xdata]).unwrap());
    let e = nmse(&y, &want);
    assert!(e <= 5e-4, "NMSE {e}");
    assert_eq!(w.refused_reads() + x.refused_reads(), 0);
    // The weights and the activations swapped: refused before anything is read.
    let e = a.compute_forward(&op, &[&x, &w], &mut y).unwrap_err();
    assert!(matches!(e, ExecError::Sources { .. }), "{e}");
    let e = a.compute_forward(&plain, &[&w, &x], &mut y).unwrap_err();
    assert!(matches!(e, ExecError::Unsupported { .. }), "{e}");
}

/// An uploaded Q4_0 weight of 256 x 20 (8 blocks per row) and its ggml bytes.
fn uploaded_q4_0() -> (Buft, Buffer, Vec<u8>) {
    let a = amx();
    let desc = t("w", DType::Block(Format::Q4_0), &[256, 20]);
    let data = bytes(desc.nbytes().unwrap(), 77);
    let buf = Buffer::upload(&a, desc, &data).unwrap();
    (a, buf, data)
}

fn verify_upload(a: &Buft, buf: &Buffer) -> Result<(), BufferError> {
    let layout = layout_of(buf.desc()).unwrap();
    verify_packed(buf.desc(), &layout, buf.owned_bytes(&**a).unwrap())
}

#[test]
fn upload_verification_and_download_refuse_a_flipped_body_bit() {
    let (a, mut buf, _) = uploaded_q4_0();
    assert_eq!(verify_upload(&a, &buf), Ok(()));
    let last = buf.len() - 1;
    let bytes = buf.owned_bytes_mut(&*a).unwrap();
    bytes[1000] ^= 0x10;
    let body_error = |e: &BufferError| {
        matches!(e, BufferError::Pack { error: pack::PackError::BodyChecksum { .. }, .. })
    };
    let e = verify_upload(&a, &buf).unwrap_err();
    assert!(body_error(&e), "{e}");
    let e = buf.download().unwrap_err();
    assert!(body_error(&e), "{e}");
    // The padding at the very end is covered as well.
    let bytes = buf.owned_bytes_mut(&*a).unwrap();
    bytes[1000] ^= 0x10;
    bytes[last] ^= 1;
    assert!(body_error(&verify_upload(&a, &buf).unwrap_err()));
}

#[test]
fn upload_verification_refuses_a_nan_written_into_a_scale() {
    let (a, mut buf, data) = uploaded_q4_0();
    // Row 0's first scale: panel 0 (after the 64-byte header) starts with 8 groups of
    // 16 x 16 quad bytes, then the per-row region, row 0 first.
    let at = 64 + 8 * 16 * 16;
    let bytes = buf.owned_bytes_mut(&*a).unwrap();
    assert_eq!(bytes[at..at + 2], data[0..2], "not row 0's first scale");
    bytes[at..at + 2].copy_from_slice(&0x7E00u16.to_le_bytes());
    let e = verify_upload(&a, &buf).unwrap_err();
    assert!(
        matches!(e, BufferError::Pack { error: pack::PackError::BodyChecksum { .. }, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("tensor w: packed body checksum failed"), "{e}");
}
