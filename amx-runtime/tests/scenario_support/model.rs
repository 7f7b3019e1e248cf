//! A small transformer-shaped graph with two MoE layers, weights cut from the GGUF test
//! vectors (real ggml block bytes of every format).
//!
//! Per layer `l`: RMS norm, attention (Q, K, V, output projections, one head of `D`,
//! softmax over the tokens), residual; then either a dense SiLU FFN (up, gate, down) or
//! an MoE block as llama.cpp builds it: F32 router -> softmax -> top-k -> the selected
//! probabilities -> their sum (`ffn_moe_weights_sum`, where the user's NaN showed) ->
//! normalised weights -> expert matmuls (MUL_MAT_ID) -> weighted sum; residual. Then the
//! output norm and the output head.

use std::collections::HashMap;

use amx_core::formats::{Format, dequantize};
use amx_runtime::graph::Graph;
use amx_runtime::op::Op;
use amx_runtime::tensor::{DType, TensorId, f32_to_bytes, i32_to_bytes};
use amx_testdata::random::pseudo_random_values;

/// Model width (values per token).
pub const D: usize = 256;
/// Tokens per run (at least `amx_min_rows` of every block format: 20-28).
pub const M: usize = 32;
/// Layers.
pub const LAYERS: usize = 12;
/// The layers whose FFN is an MoE block.
pub const MOE_LAYERS: [usize; 2] = [1, LAYERS - 1];
/// Experts per MoE layer, and how many each token uses.
pub const EXPERTS: usize = 4;
/// Experts used per token.
pub const TOP_K: usize = 2;
/// FFN width.
pub const F: usize = 256;
/// Vocabulary.
pub const VOCAB: usize = 64;

/// The weight formats, rotated over the layers so that every format is packed somewhere.
/// The order also decides the random weights each layer gets; `scenario_moe` checks that
/// the tokens of every MoE layer spread over more than `TOP_K` experts, which some orders
/// miss (a property of the data, not of the kernels): a new format goes where that holds.
const FORMATS: [Format; 13] = [
    Format::Q4_0,
    Format::MXFP4,
    Format::Q5_0,
    Format::Q8_0,
    Format::Q4_K,
    Format::Q6_K,
    Format::Q4_1,
    Format::Q5_1,
    Format::Q5_K,
    Format::IQ4_XS,
    Format::IQ4_NL,
    Format::F16,
    Format::BF16,
];

/// The graph, the plain bytes of every weight and input, and the ids tests look at.
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// Plain (ggml) bytes of every weight and of the token input.
    pub data: HashMap<TensorId, Vec<u8>>,
    /// The graph inputs (token ids, causal mask), whose bytes are in `data`.
    pub inputs: Vec<TensorId>,
    /// The logits.
    pub output: TensorId,
}

/// 256-value rows of each format, cut from the "plain" vectors.
struct Rows(HashMap<Format, Vec<Vec<u8>>>);

impl Rows {
    fn load() -> Rows {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors");
        let mut rows: HashMap<Format, Vec<Vec<u8>>> = HashMap::new();
        for v in amx_testdata::vectors::load_dir(dir).expect("test vectors") {
            if v.flavour != "plain" {
                continue;
            }
            let chunk = v.format.row_bytes(D).expect("256-value rows");
            rows.entry(v.format).or_default().extend(v.w.chunks_exact(chunk).map(<[u8]>::to_vec));
        }
        for f in FORMATS {
            assert!(rows.get(&f).is_some_and(|r| r.len() >= 64), "too few {f} rows");
        }
        Rows(rows)
    }

    /// `n` rows of `format`, a different selection for each `salt`.
    fn take(&self, format: Format, n: usize, salt: usize) -> Vec<u8> {
        let pool = &self.0[&format];
        let start = salt * 97;
        (0..n).flat_map(|i| pool[(start + i * 13) % pool.len()].iter().copied()).collect()
    }
}

fn rms_of(format: Format, bytes: &[u8]) -> f32 {
    let mut v = vec![0.0; bytes.len() / format.block_bytes() * format.block_values()];
    dequantize(format, bytes, &mut v).expect("dequantize");
    (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt()
}

/// A scale for an FFN branch output of unit size, from the RMS of its up, gate and down
/// weights (each matmul multiplies the size by about `rms * sqrt(256)`).
fn ffn_scale([up, gate, down]: [f32; 3]) -> f32 {
    let s = (D as f32).sqrt();
    1.0 / (up * s * gate * s * down * s)
}

struct Builder {
    g: Graph,
    data: HashMap<TensorId, Vec<u8>>,
    rows: Rows,
    salt: usize,
}

impl Builder {
    fn block(&mut self, name: &str, format: Format, dims: &[usize]) -> TensorId {
        let id = self.g.weight(name, DType::Block(format), dims).expect(name);
        self.salt += 1;
        let n = dims[1..].iter().product();
        self.data.insert(id, self.rows.take(format, n, self.salt));
        id
    }

    fn f32(&mut self, name: &str, dims: &[usize], v: Vec<f32>) -> TensorId {
        let id = self.g.weight(name, DType::F32, dims).expect(name);
        self.data.insert(id, f32_to_bytes(&v));
        id
    }

    fn norm(&mut self, name: &str, seed: u64) -> TensorId {
        let v = pseudo_random_values(seed, D).into_iter().map(|x| 1.0 + 0.25 * x).collect();
        self.f32(name, &[D], v)
    }

    /// RMS of the dequantized values of block weight `id` of `format`.
    fn rms(&self, id: TensorId, format: Format) -> f32 {
        rms_of(format, &self.data[&id])
    }

    /// Scales branch output `x` by `scale`, a per-layer F32 weight named `name`.
    fn scaled(&mut self, node: &str, x: TensorId, name: &str, scale: f32) -> TensorId {
        let s = self.f32(name, &[1], vec![scale]);
        self.op(node, Op::Mul, &[x, s])
    }

    fn op(&mut self, name: &str, op: Op, srcs: &[TensorId]) -> TensorId {
        self.g.op(name, op, srcs).expect(name)
    }

    fn rms_norm(&mut self, name: &str, x: TensorId, w: TensorId) -> TensorId {
        let n = self.op(&format!("{name}_raw"), Op::RmsNorm { eps: 1e-6 }, &[x]);
        self.op(name, Op::Mul, &[n, w])
    }

    fn attention(&mut self, l: usize, x: TensorId, mask: TensorId) -> TensorId {
        let fmt = |i: usize| FORMATS[(l + i) % FORMATS.len()];
        let norm = self.norm(&format!("blk.{l}.attn_norm.weight"), 100 + l as u64);
        let h = self.rms_norm(&format!("attn_norm-{l}"), x, norm);
        let wq = self.block(&format!("blk.{l}.attn_q.weight"), fmt(0), &[D, D]);
        let wk = self.block(&format!("blk.{l}.attn_k.weight"), fmt(1), &[D, D]);
        let wv = self.block(&format!("blk.{l}.attn_v.weight"), fmt(2), &[D, D]);
        let wo = self.block(&format!("blk.{l}.attn_output.weight"), fmt(3), &[D, D]);
        // Scores of unit size whatever the formats' magnitudes: q and k have RMS about
        // rms(W) * sqrt(D), their dot product sqrt(D) times the product of those.
        let (rq, rk) = (self.rms(wq, fmt(0)), self.rms(wk, fmt(1)));
        let (rv, ro) = (self.rms(wv, fmt(2)), self.rms(wo, fmt(3)));
        let df = D as f32;
        let scale = 1.0 / (rq * df.sqrt() * rk * df.sqrt() * df.sqrt());
        let kq_scale = self.f32(&format!("blk.{l}.kq_scale"), &[1], vec![scale]);
        let q = self.op(&format!("Qcur-{l}"), Op::MulMat, &[wq, h]);
        let k = self.op(&format!("Kcur-{l}"), Op::MulMat, &[wk, h]);
        let v = self.op(&format!("Vcur-{l}"), Op::MulMat, &[wv, h]);
        let kq = self.op(&format!("kq-{l}"), Op::MulMat, &[k, q]);
        let kq = self.op(&format!("kq_scaled-{l}"), Op::Mul, &[kq, kq_scale]);
        let kq = self.op(&format!("kq_masked-{l}"), Op::Add, &[kq, mask]);
        let kq = self.op(&format!("kq_soft_max-{l}"), Op::SoftMax, &[kq]);
        let vt = self.op(&format!("v_t-{l}"), Op::Transpose, &[v]);
        let kqv = self.op(&format!("kqv-{l}"), Op::MulMat, &[vt, kq]);
        let out = self.op(&format!("attn_out-{l}"), Op::MulMat, &[wo, kqv]);
        let s = 1.0 / (rv * df.sqrt() * ro * df.sqrt());
        let out = self.scaled(
            &format!("attn_out_scaled-{l}"),
            out,
            &format!("blk.{l}.attn_out_scale"),
            s,
        );
        self.op(&format!("ffn_inp-{l}"), Op::Add, &[out, x])
    }

    fn dense_ffn(&mut self, l: usize, h: TensorId) -> TensorId {
        let fmt = |i: usize| FORMATS[(l + i) % FORMATS.len()];
        let up = self.block(&format!("blk.{l}.ffn_up.weight"), fmt(4), &[D, F]);
        let gate = self.block(&format!("blk.{l}.ffn_gate.weight"), fmt(5), &[D, F]);
        let down = self.block(&format!("blk.{l}.ffn_down.weight"), fmt(6), &[F, D]);
        let u = self.op(&format!("ffn_up-{l}"), Op::MulMat, &[up, h]);
        let g = self.op(&format!("ffn_gate-{l}"), Op::MulMat, &[gate, h]);
        let g = self.op(&format!("ffn_silu-{l}"), Op::Silu, &[g]);
        let p = self.op(&format!("ffn_gate_par-{l}"), Op::Mul, &[g, u]);
        let out = self.op(&format!("ffn_out-{l}"), Op::MulMat, &[down, p]);
        let s = ffn_scale([self.rms(up, fmt(4)), self.rms(gate, fmt(5)), self.rms(down, fmt(6))]);
        self.scaled(&format!("ffn_out_scaled-{l}"), out, &format!("blk.{l}.ffn_out_scale"), s)
    }

    fn moe_ffn(&mut self, l: usize, h: TensorId) -> TensorId {
        let fmt = |i: usize| FORMATS[(l + i) % FORMATS.len()];
        // Router logits with a standard deviation of about 2.
        let router = pseudo_random_values(200 + l as u64, D * EXPERTS)
            .into_iter()
            .map(|x| x * 0.2)
            .collect();
        let router = self.f32(&format!("blk.{l}.ffn_gate_inp.weight"), &[D, EXPERTS], router);
        let up = self.block(&format!("blk.{l}.ffn_up_exps.weight"), fmt(7), &[D, F, EXPERTS]);
        let gate = self.block(&format!("blk.{l}.ffn_gate_exps.weight"), fmt(8), &[D, F, EXPERTS]);
        let down = self.block(&format!("blk.{l}.ffn_down_exps.weight"), fmt(0), &[F, D, EXPERTS]);
        let r = |s: &str| format!("ffn_moe_{s}-{l}");
        let logits = self.op(&r("logits"), Op::MulMat, &[router, h]);
        let probs = self.op(&r("probs"), Op::SoftMax, &[logits]);
        let top = self.op(&r("topk"), Op::TopK { k: TOP_K }, &[probs]);
        let probs3 = self.op(&r("probs_3d"), Op::Reshape { ne: [1, EXPERTS, M, 1] }, &[probs]);
        let w = self.op(&r("weights"), Op::GetRows, &[probs3, top]);
        let w = self.op(&r("weights_2d"), Op::Reshape { ne: [TOP_K, M, 1, 1] }, &[w]);
        let sum = self.op(&r("weights_sum"), Op::SumRows, &[w]);
        let w = self.op(&r("weights_norm"), Op::Div, &[w, sum]);
        let w = self.op(&r("weights_3d"), Op::Reshape { ne: [1, TOP_K, M, 1] }, &[w]);
        let x = self.op(&r("input_3d"), Op::Reshape { ne: [D, 1, M, 1] }, &[h]);
        let u = self.op(&r("up"), Op::MulMatId, &[up, x, top]);
        let g = self.op(&r("gate"), Op::MulMatId, &[gate, x, top]);
        let g = self.op(&r("silu"), Op::Silu, &[g]);
        let p = self.op(&r("gate_par"), Op::Mul, &[g, u]);
        let d = self.op(&r("down"), Op::MulMatId, &[down, p, top]);
        let d = self.op(&r("weighted"), Op::Mul, &[d, w]);
        let d = self.op(&r("weighted_t"), Op::Transpose, &[d]);
        let d = self.op(&r("sum"), Op::SumRows, &[d]);
        let out = self.op(&r("out"), Op::Reshape { ne: [D, M, 1, 1] }, &[d]);
        let s = ffn_scale([self.rms(up, fmt(7)), self.rms(gate, fmt(8)), self.rms(down, fmt(0))]);
        self.scaled(&format!("ffn_out_scaled-{l}"), out, &format!("blk.{l}.ffn_out_scale"), s)
    }
}

/// Builds the model.
pub fn build() -> Model {
    let mut b = Builder { g: Graph::new(), data: HashMap::new(), rows: Rows::load(), salt: 0 };
    let tokens = b.g.input("tokens", DType::I32, &[M]).expect("tokens");
    let ids: Vec<i32> = (0..M).map(|i| ((i * 7 + 3) % VOCAB) as i32).collect();
    b.data.insert(tokens, i32_to_bytes(&ids));
    // The causal mask, as llama.cpp's KQ_mask: scores are [keys, queries].
    let mask = b.g.input("kq_mask", DType::F32, &[M, M]).expect("mask");
    let causal: Vec<f32> =
        (0..M * M).map(|i| if i % M <= i / M { 0.0 } else { f32::NEG_INFINITY }).collect();
    b.data.insert(mask, f32_to_bytes(&causal));
    let embd = b.block("token_embd.weight", Format::Q4_K, &[D, VOCAB]);
    let mut x = b.op("inp_embd", Op::GetRows, &[embd, tokens]);
    for l in 0..LAYERS {
        let inp = b.attention(l, x, mask);
        let norm = b.norm(&format!("blk.{l}.ffn_norm.weight"), 300 + l as u64);
        let h = b.rms_norm(&format!("ffn_norm-{l}"), inp, norm);
        let out = if MOE_LAYERS.contains(&l) { b.moe_ffn(l, h) } else { b.dense_ffn(l, h) };
        x = b.op(&format!("l_out-{l}"), Op::Add, &[out, inp]);
    }
    let norm = b.norm("output_norm.weight", 400);
    let h = b.rms_norm("result_norm", x, norm);
    let head = b.block("output.weight", Format::Q6_K, &[D, VOCAB]);
    let output = b.op("result_output", Op::MulMat, &[head, h]);
    Model { graph: b.g, data: b.data, inputs: vec![tokens, mask], output }
}

/// The layer of a `blk.N.` weight, `None` for the others.
pub fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The role of a `blk.N.ROLE.weight` weight (`attn_q`, `ffn_up_exps`, ...).
pub fn role_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("blk.")?;
    let (_, role) = rest.split_once('.')?;
    Some(role.strip_suffix(".weight").unwrap_or(role))
}
