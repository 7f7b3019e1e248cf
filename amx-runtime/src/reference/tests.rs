use std::sync::Arc;

use amx_core::formats::Format;

use super::*;
use crate::buffer::host::host;
use crate::op::Operand;

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
