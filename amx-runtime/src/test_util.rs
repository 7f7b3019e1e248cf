//! Deterministic data and small fixtures for the unit tests.

use amx_core::formats::Format;
use amx_core::formats::half::f32_to_f16;

use crate::buffer::Buft;
use crate::graph::Graph;
use crate::op::{OpDesc, Operand};
use crate::tensor::{DType, TensorDesc, TensorId};

/// A small linear congruential generator: `next()` in `0..2^31`.
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Lcg {
        Lcg(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }

    pub(crate) fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    /// Uniform in [-1, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        self.next() as f32 / (1u32 << 30) as f32 - 1.0
    }
}

/// `n` values in [-1, 1).
pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Lcg::new(seed);
    (0..n).map(|_| r.unit()).collect()
}

/// `rows` rows of `k` Q8_0 values with finite scales.
pub(crate) fn q8_0(rows: usize, k: usize, seed: u64) -> Vec<u8> {
    let mut r = Lcg::new(seed);
    let mut out = Vec::new();
    for _ in 0..rows * k / 32 {
        let d = 0.01 + 0.02 * (r.unit() + 1.0);
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend((0..32).map(|_| (r.next() % 255) as u8 ^ 0x80));
    }
    out
}

/// Random bytes (any value: packing carries them as they are).
pub(crate) fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Lcg::new(seed);
    (0..n).map(|_| r.next() as u8).collect()
}

/// Normalised mean squared error of `got` against `want`.
pub(crate) fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut e, mut n) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        e += (f64::from(g) - f64::from(w)).powi(2);
        n += f64::from(w).powi(2);
    }
    e / n
}

/// `dims` with dtype as a tensor named `name`.
pub(crate) fn t(name: &str, dtype: DType, dims: &[usize]) -> TensorDesc {
    TensorDesc::new(name, dtype, dims).unwrap()
}

/// An op with its sources in the given buffer types (contiguous), result inferred.
pub(crate) fn op_in(op: crate::op::Op, srcs: &[(&TensorDesc, &Buft)]) -> OpDesc {
    let descs: Vec<&TensorDesc> = srcs.iter().map(|s| s.0).collect();
    let dst = op.infer(&"out".into(), &descs).unwrap();
    let srcs = srcs
        .iter()
        .map(|(d, b)| Operand { desc: (*d).clone(), buft: (*b).clone(), contiguous: true })
        .collect();
    OpDesc { op, srcs, dst }
}

/// The fixture graph: `y = w * x` (Q8_0 `[64, 32]`, x `[64, 20]`), `z = y * norm` (F32
/// `[32]`), `s = softmax(z)`, `top = top_k(s, 2)`, `e = get_rows(emb, top)` on a Q8_0
/// table reshaped per token.
pub(crate) struct Fixture {
    pub(crate) graph: Graph,
    pub(crate) w: TensorId,
    pub(crate) norm: TensorId,
    pub(crate) emb: TensorId,
    pub(crate) x: TensorId,
    pub(crate) y: TensorId,
    pub(crate) top: TensorId,
    pub(crate) out: TensorId,
}

pub(crate) fn fixture() -> Fixture {
    let mut g = Graph::new();
    let w = g.weight("w", DType::Block(Format::Q8_0), &[64, 32]).unwrap();
    let norm = g.weight("norm", DType::F32, &[32]).unwrap();
    let emb = g.weight("emb", DType::Block(Format::Q8_0), &[32, 32]).unwrap();
    let x = g.input("x", DType::F32, &[64, 20]).unwrap();
    let y = g.mul_mat("y", w, x).unwrap();
    let z = g.mul("z", y, norm).unwrap();
    let s = g.unary("s", crate::op::Op::SoftMax, z).unwrap();
    let top = g.unary("top", crate::op::Op::TopK { k: 2 }, s).unwrap();
    let flat = g.unary("flat", crate::op::Op::Reshape { ne: [40, 1, 1, 1] }, top).unwrap();
    let out = g.get_rows("out", emb, flat).unwrap();
    Fixture { graph: g, w, norm, emb, x, y, top, out }
}

/// The fixture's weight bytes and input, by id.
pub(crate) fn fixture_data(f: &Fixture) -> Vec<(TensorId, Vec<u8>)> {
    vec![
        (f.w, q8_0(32, 64, 1)),
        (f.norm, crate::tensor::f32_to_bytes(&values(32, 2))),
        (f.emb, q8_0(32, 32, 3)),
        (f.x, crate::tensor::f32_to_bytes(&values(64 * 20, 4))),
    ]
}
