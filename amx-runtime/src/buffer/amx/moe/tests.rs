use std::sync::Arc;

use amx_core::formats::Format;
use amx_core::gemm::Path;

use crate::buffer::amx::AmxBufferType;
use crate::buffer::host::host;
use crate::buffer::{Buffer, Buft, Kernel};
use crate::error::ExecError;
use crate::op::{Op, OpDesc};
use crate::pool::Pool;
use crate::reference;
use crate::tensor::{DType, f32_from_bytes, f32_to_bytes, i32_to_bytes};
use crate::test_util::{nmse, op_in, q8_0, t, values};

fn amx() -> Buft {
    Arc::new(AmxBufferType::new())
}

/// MUL_MAT_ID of a Q4_0 stack `[256, 64, 4]` on 7 tokens with 2 experts each, x `[256, b, 7]`.
fn expert_op(a: &Buft, b: usize, x_buft: &Buft, ids_buft: &Buft) -> OpDesc {
    let stack = t("exps", DType::Block(Format::Q4_0), &[256, 64, 4]);
    let x = t("x", DType::F32, &[256, b, 7]);
    let ids = t("ids", DType::I32, &[2, 7]);
    op_in(Op::MulMatId, &[(&stack, a), (&x, x_buft), (&ids, ids_buft)])
}

#[test]
fn accepts_stacked_packed_experts_with_f32_host_activations() {
    let (a, h) = (amx(), host());
    // One activation per token (up, gate) or one per selected expert (down).
    for b in [1, 2] {
        assert!(a.supports_op(&expert_op(&a, b, &h, &h)), "src1 ne[1] = {b}");
    }
    let formats = [
        Format::Q5_0,
        Format::Q5_1,
        Format::Q8_0,
        Format::Q4_K,
        Format::IQ2_XXS,
        Format::IQ2_XS,
        Format::IQ2_S,
        Format::IQ4_NL,
        Format::IQ4_XS,
        Format::MXFP4,
        Format::TQ1_0,
        Format::IQ3_XXS,
        Format::IQ3_S,
        Format::IQ1_S,
        Format::IQ1_M,
        Format::TQ2_0,
        Format::NVFP4,
        Format::F16,
        Format::BF16,
    ];
    for format in formats {
        let stack = t("exps", DType::Block(format), &[256, 32, 8]);
        let x = t("x", DType::F32, &[256, 1, 3]);
        let ids = t("ids", DType::I32, &[4, 3]);
        let op = op_in(Op::MulMatId, &[(&stack, &a), (&x, &h), (&ids, &h)]);
        assert!(a.supports_op(&op), "{format}");
    }
}

#[test]
fn refuses_other_operands_and_shapes() {
    let (a, h, other) = (amx(), host(), amx());
    // The stack in another buffer type (another AMX instance, host memory).
    assert!(!a.supports_op(&expert_op(&other, 1, &h, &h)));
    assert!(!a.supports_op(&expert_op(&h, 1, &h, &h)));
    // Activations or ids outside host memory, or strided.
    assert!(!a.supports_op(&expert_op(&a, 1, &other, &h)));
    assert!(!a.supports_op(&expert_op(&a, 1, &h, &other)));
    for i in [0, 1, 2] {
        let mut op = expert_op(&a, 1, &h, &h);
        op.srcs[i].contiguous = false;
        assert!(!a.supports_op(&op), "source {i} strided");
    }
    // F32 experts: nothing to pack.
    let f32_stack = t("exps", DType::F32, &[256, 64, 4]);
    let x = t("x", DType::F32, &[256, 1, 7]);
    let ids = t("ids", DType::I32, &[2, 7]);
    assert!(!a.supports_op(&op_in(Op::MulMatId, &[(&f32_stack, &a), (&x, &h), (&ids, &h)])));
    // A K that the format's blocks do not divide (Q4_0 blocks are 32 values), which
    // `TensorDesc::new` would not even describe.
    let mut odd = expert_op(&a, 1, &h, &h);
    odd.srcs[0].desc.ne[0] = 80;
    odd.srcs[1].desc.ne[0] = 80;
    assert!(!a.supports_op(&odd));
    // Shapes that break ggml's rules, or a result other than the op's.
    let broken: [fn(&mut OpDesc); 6] = [
        |op| op.srcs[0].desc.ne = [256, 64, 2, 2],
        |op| op.srcs[1].desc.ne = [256, 3, 7, 1],
        |op| op.srcs[1].desc.ne = [128, 1, 7, 1],
        |op| op.srcs[2].desc.ne = [2, 6, 1, 1],
        |op| op.srcs[2].desc.dtype = DType::F32,
        |op| op.dst.ne = [64, 7, 2, 1],
    ];
    for (i, f) in broken.iter().enumerate() {
        let mut op = expert_op(&a, 1, &h, &h);
        f(&mut op);
        assert!(!a.supports_op(&op), "case {i}");
    }
    // The buffer type's MUL_MAT arm does not take the stack's op either.
    let mut as_mul_mat = expert_op(&a, 1, &h, &h);
    as_mul_mat.op = Op::MulMat;
    assert!(!a.supports_op(&as_mul_mat));
}

/// Token t uses expert 0 and expert `1 + t % 3`: expert 0 is busy (AMX from `amx_min_rows`),
/// the others are not.
fn routing(tokens: usize) -> Vec<i32> {
    (0..tokens).flat_map(|t| [0, 1 + (t % 3) as i32]).collect()
}

/// The path the busiest expert takes, counted from the ids.
fn busiest_path(format: Format, ids: &[i32], experts: usize) -> Path {
    let rows = (0..experts).map(|e| ids.iter().filter(|&&i| i == e as i32).count()).max();
    Path::Auto.resolve(format, rows.unwrap_or(0)).unwrap()
}

#[test]
fn compute_forward_matches_the_reference_on_and_off_the_pool() {
    let h = host();
    let (k, n, experts, used, tokens) = (256, 48, 4, 2, 32);
    let format = Format::Q8_0;
    let wd = t("exps", DType::Block(format), &[k, n, experts]);
    let wdata = q8_0(n * experts, k, 11);
    let ids = routing(tokens);
    let idd = t("ids", DType::I32, &[used, tokens]);
    let ib = Buffer::upload(&h, idd.clone(), &i32_to_bytes(&ids)).unwrap();
    let pool = Arc::new(Pool::new(2));
    let bufts: [Buft; 2] =
        [Arc::new(AmxBufferType::new()), Arc::new(AmxBufferType::with_pool(pool))];
    for b in [1, used] {
        let xd = t("x", DType::F32, &[k, b, tokens]);
        let xdata = f32_to_bytes(&values(k * b * tokens, 12 + b as u64));
        let xb = Buffer::upload(&h, xd.clone(), &xdata).unwrap();
        let plain = op_in(Op::MulMatId, &[(&wd, &h), (&xd, &h), (&idd, &h)]);
        let want = reference::compute(&plain, &[&wdata, &xdata, &i32_to_bytes(&ids)]).unwrap();
        let want = f32_from_bytes(&want);
        let mut outs = Vec::new();
        for a in &bufts {
            let w = Buffer::upload(a, wd.clone(), &wdata).unwrap();
            let op = op_in(Op::MulMatId, &[(&wd, a), (&xd, &h), (&idd, &h)]);
            let mut y = vec![f32::NAN; n * used * tokens];
            let kernel = a.compute_forward(&op, &[&w, &xb, &ib], &mut y).unwrap();
            let path = busiest_path(format, &ids, experts);
            assert_eq!(kernel, Kernel::Packed { buft: "AMX".into(), path });
            let e = nmse(&y, &want);
            assert!(e <= 5e-4, "b = {b}: NMSE {e}");
            assert_eq!(w.refused_reads() + xb.refused_reads() + ib.refused_reads(), 0);
            outs.push(y);
        }
        // The pool's items compute the same values as the one-thread call.
        assert!(outs[0].iter().zip(&outs[1]).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}

#[test]
fn bad_expert_ids_and_wrong_buffers_are_errors() {
    let (a, h) = (amx(), host());
    let (k, n, experts, tokens) = (64, 16, 3, 5);
    let wd = t("exps", DType::Block(Format::Q8_0), &[k, n, experts]);
    let w = Buffer::upload(&a, wd.clone(), &q8_0(n * experts, k, 3)).unwrap();
    let xd = t("x", DType::F32, &[k, 1, tokens]);
    let x = Buffer::upload(&h, xd.clone(), &f32_to_bytes(&values(k * tokens, 4))).unwrap();
    let idd = t("ids", DType::I32, &[1, tokens]);
    let op = op_in(Op::MulMatId, &[(&wd, &a), (&xd, &h), (&idd, &h)]);
    let mut y = vec![0.0; n * tokens];
    for bad in [3, -1, i32::MAX] {
        let ids = Buffer::upload(&h, idd.clone(), &i32_to_bytes(&[0, 1, bad, 2, 0])).unwrap();
        let e = a.compute_forward(&op, &[&w, &x, &ids], &mut y).unwrap_err();
        let want = ExecError::IndexOutOfRange {
            op: "out".into(),
            tensor: "ids".into(),
            index: i64::from(bad),
            len: experts,
        };
        assert_eq!(e, want);
        assert!(e.to_string().contains("out: index"), "{e}");
    }
    let ids = Buffer::upload(&h, idd.clone(), &i32_to_bytes(&[0, 1, 2, 2, 0])).unwrap();
    assert!(a.compute_forward(&op, &[&w, &x, &ids], &mut y).is_ok());
    // Sources swapped or missing: refused before anything is read.
    let e = a.compute_forward(&op, &[&w, &ids, &x], &mut y).unwrap_err();
    assert!(matches!(e, ExecError::Sources { .. }), "{e}");
    let e = a.compute_forward(&op, &[&w, &x], &mut y).unwrap_err();
    assert!(matches!(e, ExecError::Sources { .. }), "{e}");
    assert_eq!(w.refused_reads() + x.refused_reads() + ids.refused_reads(), 0);
}
