use std::sync::Arc;

use amx_core::formats::Format;
use amx_core::formats::half::{bf16_to_f32, f32_to_bf16};
use amx_core::pack::{pack_f32_as_bf16, packed_size};

use super::*;
use crate::buffer::Buft;
use crate::buffer::host::host;
use crate::error::BufferError;
use crate::op::Op;
use crate::tensor::{DType, f32_to_bytes};
use crate::test_util::{op_in, t, values};

fn amx_f32() -> Buft {
    Arc::new(AmxBufferType::new().with_f32_as_bf16())
}

/// The values rounded to BF16, as the packed weight holds them.
fn rounded(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| bf16_to_f32(f32_to_bf16(x))).collect()
}

#[test]
fn f32_weights_only_when_asked_for() {
    let (plain, with) = (Arc::new(AmxBufferType::new()) as Buft, amx_f32());
    let h = host();
    let w = t("w", DType::F32, &[100, 37]);
    let x = t("x", DType::F32, &[100, 5]);
    let e = plain.alloc_size(&w).unwrap_err();
    assert_eq!(
        e,
        BufferError::Unsupported { tensor: "w".into(), buft: "AMX".into(), dtype: DType::F32 }
    );
    assert_eq!(e.to_string(), "buffer type AMX cannot hold tensor w of type F32");
    assert_eq!(with.alloc_size(&w), Ok(packed_size(Format::BF16, 37, 100, 1).unwrap()));
    assert!(!plain.supports_op(&op_in(Op::MulMat, &[(&w, &plain), (&x, &h)])));
    assert!(with.supports_op(&op_in(Op::MulMat, &[(&w, &with), (&x, &h)])));
    // I32 is never a weight; an F32 stack is one for MUL_MAT_ID only.
    assert!(with.alloc_size(&t("i", DType::I32, &[100, 4])).is_err());
    let stack = t("exps", DType::F32, &[64, 32, 4]);
    let xs = t("x", DType::F32, &[64, 1, 3]);
    let ids = t("ids", DType::I32, &[2, 3]);
    let moe = |b: &Buft| op_in(Op::MulMatId, &[(&stack, b), (&xs, &h), (&ids, &h)]);
    assert!(with.supports_op(&moe(&with)));
    assert!(!plain.supports_op(&moe(&plain)));
}

#[test]
fn an_f32_weight_is_its_bf16_rounding_packed() {
    // K not a multiple of 32, a partial last panel.
    let (k, n, m) = (100, 37, 5);
    let (a, plain, h) = (amx_f32(), Arc::new(AmxBufferType::new()) as Buft, host());
    let v = values(k * n, 3);
    let wd = t("w", DType::F32, &[k, n]);
    let w = Buffer::upload(&a, wd.clone(), &f32_to_bytes(&v)).unwrap();
    // The same values' BF16 bytes as a BF16 weight: the same packed bytes.
    let bf16: Vec<u8> = v.iter().flat_map(|&x| f32_to_bf16(x).to_le_bytes()).collect();
    let bd = t("w", DType::Block(Format::BF16), &[k, n]);
    let b = Buffer::upload(&plain, bd.clone(), &bf16).unwrap();
    assert!(w.owned_bytes(&*a).unwrap() == b.owned_bytes(&*plain).unwrap());
    // A download gives the rounded values.
    assert_eq!(w.download().unwrap(), f32_to_bytes(&rounded(&v)));
    // And the matmul is the BF16 weight's, bit for bit.
    let xd = t("x", DType::F32, &[k, m]);
    let x = Buffer::upload(&h, xd.clone(), &f32_to_bytes(&values(k * m, 4))).unwrap();
    let (mut y, mut z) = (vec![f32::NAN; n * m], vec![f32::NAN; n * m]);
    let ka = a.compute_forward(&op_in(Op::MulMat, &[(&wd, &a), (&xd, &h)]), &[&w, &x], &mut y);
    let kb =
        plain.compute_forward(&op_in(Op::MulMat, &[(&bd, &plain), (&xd, &h)]), &[&b, &x], &mut z);
    assert_eq!(ka.unwrap(), kb.unwrap());
    assert_eq!(
        y.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        z.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
    );
    // Wrong lengths are refused.
    let mut w2 = Buffer::alloc(&a, wd).unwrap();
    let e = a.set_tensor(&mut w2, &[0; 7]).unwrap_err();
    assert_eq!(e, BufferError::Length { tensor: "w".into(), expected: 4 * k * n, actual: 7 });
    let mut out = vec![0u8; 3];
    assert!(matches!(a.get_tensor(&w, &mut out), Err(BufferError::Length { .. })));
}

#[test]
fn set_tensor_from_rows_dequantizes_a_panel_at_a_time() {
    // A stack of 2 matrices of 20 rows: panels of rows 0..16, 16..20, 20..36, 36..40.
    let (k, n, e) = (64, 20, 2);
    let owner = Arc::new(AmxBufferType::new().with_f32_as_bf16());
    let a: Buft = owner.clone();
    let v = values(k * n * e, 9);
    let desc = t("exps", DType::F32, &[k, n, e]);
    let mut buf = Buffer::alloc(&a, desc.clone()).unwrap();
    let mut asked = Vec::new();
    // Another instance: only the owner may write the buffer.
    let other = AmxBufferType::new().with_f32_as_bf16();
    let err = other.set_tensor_from_rows(&mut buf, |_, _: &mut [f32]| Ok::<(), String>(()));
    assert!(matches!(err, Err(BufferError::NotOwner { .. })), "{err:?}");
    owner
        .set_tensor_from_rows(&mut buf, |rows, out: &mut [f32]| {
            asked.push(rows.clone());
            out.copy_from_slice(&v[rows.start * k..rows.end * k]);
            Ok::<(), String>(())
        })
        .unwrap();
    assert_eq!(asked, [0..16, 16..20, 20..36, 36..40]);
    let mut want = vec![0u8; packed_size(Format::BF16, n, k, e).unwrap()];
    pack_f32_as_bf16(n, k, e, &v, &mut want).unwrap();
    assert!(buf.owned_bytes(&*owner).unwrap() == &want[..]);
    assert_eq!(buf.download().unwrap(), f32_to_bytes(&rounded(&v)));
    // A failing dequantization names the tensor, the rows and the reason.
    let e = owner
        .set_tensor_from_rows(&mut buf, |rows, _: &mut [f32]| match rows.start {
            16 => Err("block 3: unknown ggml type IQ1_S"),
            _ => Ok(()),
        })
        .unwrap_err();
    assert_eq!(
        e,
        BufferError::Dequantize {
            tensor: "exps".into(),
            rows: 16..20,
            message: "block 3: unknown ggml type IQ1_S".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "tensor exps: dequantizing rows 16..20 failed: block 3: unknown ggml type IQ1_S"
    );
    // Only F32 tensors are uploaded from rows.
    let q = t("q", DType::Block(Format::Q8_0), &[64, 16]);
    let mut qb = Buffer::alloc(&a, q).unwrap();
    let e = owner.set_tensor_from_rows(&mut qb, |_, _: &mut [f32]| Ok::<(), String>(()));
    assert!(matches!(e, Err(BufferError::Unsupported { dtype: DType::Block(Format::Q8_0), .. })));
}
