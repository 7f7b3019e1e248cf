//! The graph of one step: T tokens at consecutive positions, through every layer, to
//! the logits of the rows asked for.
//!
//! Every graph of a model declares the same weights in the same order first, so their
//! ids are the same in all of them and one set of loaded weights serves every step
//! shape (prefill, decode); then the inputs and the KV cache's state tensors, then the
//! ops.

use amx_core::formats::Format;
use amx_gguf::GgufFile;
use amx_runtime::graph::Graph;
use amx_runtime::op::Op;
use amx_runtime::tensor::{DType, TensorId};

use super::error::EngineError;
use super::hparams::{Arch, Hparams};

/// The weights of one layer.
#[derive(Clone, Debug)]
struct Layer {
    attn_norm: TensorId,
    wq: TensorId,
    wk: TensorId,
    wv: TensorId,
    wo: TensorId,
    bias: [Option<TensorId>; 3],
    q_norm: Option<TensorId>,
    k_norm: Option<TensorId>,
    post_attn_norm: Option<TensorId>,
    ffn_norm: TensorId,
    post_ffn_norm: Option<TensorId>,
    ffn: Ffn,
}

#[derive(Clone, Debug)]
enum Ffn {
    Dense { gate: TensorId, up: TensorId, down: TensorId },
    Moe { router: TensorId, gate: TensorId, up: TensorId, down: TensorId },
}

/// A weight of the graph and the file tensor whose bytes it takes.
#[derive(Clone, Debug)]
pub struct WeightSource {
    /// The graph's weight.
    pub id: TensorId,
    /// The file's tensor (`token_embd.weight` for a tied output).
    pub file_name: String,
    /// The layer it belongs to (`None`: embeddings, output).
    pub layer: Option<usize>,
}

/// A built step graph and the ids the engine reads and writes.
#[derive(Debug)]
pub struct StepGraph {
    /// The graph.
    pub graph: Graph,
    /// Every weight, in graph order.
    pub weights: Vec<WeightSource>,
    /// Token ids, I32 `[T]`.
    pub tokens: TensorId,
    /// Positions, I32 `[T]`.
    pub pos: TensorId,
    /// Rows of the logits wanted, I32 `[R]`.
    pub out_rows: TensorId,
    /// Per layer: the k and v cache state tensors.
    pub cache: Vec<(TensorId, TensorId)>,
    /// Per layer: this step's keys (after RoPE) and values, to append to the cache.
    pub new_kv: Vec<(TensorId, TensorId)>,
    /// The logits, `[n_vocab, R]`.
    pub logits: TensorId,
}

/// The graph element type of a file tensor.
fn dtype_of(file: &GgufFile, name: &str) -> Result<(DType, Vec<usize>), EngineError> {
    let t = file.tensor(name)?;
    let dtype = match t.ggml_type {
        0 => DType::F32,
        g => DType::Block(Format::from_ggml_type(g).map_err(|_| {
            EngineError::UnsupportedTensor { tensor: name.to_owned(), ggml_type: g }
        })?),
    };
    let dims = t.ne[..t.n_dims.max(1) as usize]
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| EngineError::BadModel { what: format!("tensor {name} is too large") })?;
    Ok((dtype, dims))
}

struct Builder<'f> {
    file: &'f GgufFile,
    g: Graph,
    weights: Vec<WeightSource>,
}

impl Builder<'_> {
    /// Declares file tensor `name` as a weight, checking its shape.
    fn weight(
        &mut self,
        name: &str,
        want: &[usize],
        layer: Option<usize>,
    ) -> Result<TensorId, EngineError> {
        self.weight_from(name, name, want, layer)
    }

    fn weight_from(
        &mut self,
        graph_name: &str,
        file_name: &str,
        want: &[usize],
        layer: Option<usize>,
    ) -> Result<TensorId, EngineError> {
        let (dtype, dims) = dtype_of(self.file, file_name)?;
        if dims != want {
            return Err(EngineError::BadModel {
                what: format!("tensor {file_name} is {dims:?}, expected {want:?}"),
            });
        }
        let id = self.g.weight(graph_name, dtype, &dims)?;
        self.weights.push(WeightSource { id, file_name: file_name.to_owned(), layer });
        Ok(id)
    }

    fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_ok()
    }

    fn op(&mut self, name: String, op: Op, srcs: &[TensorId]) -> Result<TensorId, EngineError> {
        Ok(self.g.op(&name, op, srcs)?)
    }

    fn norm(
        &mut self,
        name: String,
        x: TensorId,
        w: TensorId,
        eps: f32,
    ) -> Result<TensorId, EngineError> {
        let n = self.op(format!("{name}_raw"), Op::RmsNorm { eps }, &[x])?;
        self.op(name, Op::Mul, &[n, w])
    }
}

/// Declares every weight of the model, in a fixed order.
fn declare_weights(
    b: &mut Builder<'_>,
    hp: &Hparams,
) -> Result<(TensorId, Vec<Layer>, TensorId, TensorId), EngineError> {
    let (e, v) = (hp.n_embd, hp.n_vocab);
    let embd = b.weight("token_embd.weight", &[e, v], None)?;
    let mut layers = Vec::with_capacity(hp.n_layer);
    for l in 0..hp.n_layer {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        let at = Some(l);
        let (qd, kd, vd) =
            (hp.head_k * hp.n_head, hp.head_k * hp.n_head_kv, hp.head_v * hp.n_head_kv);
        let attn_norm = b.weight(&n("attn_norm"), &[e], at)?;
        let wq = b.weight(&n("attn_q"), &[e, qd], at)?;
        let wk = b.weight(&n("attn_k"), &[e, kd], at)?;
        let wv = b.weight(&n("attn_v"), &[e, vd], at)?;
        let wo = b.weight(&n("attn_output"), &[hp.head_v * hp.n_head, e], at)?;
        let bias = [("attn_q", qd), ("attn_k", kd), ("attn_v", vd)].map(|(w, d)| {
            let name = format!("blk.{l}.{w}.bias");
            if b.has(&name) { b.weight(&name, &[d], at).map(Some) } else { Ok(None) }
        });
        let [bq, bk, bv] = bias;
        let bias = [bq?, bk?, bv?];
        let gemma = hp.arch == Arch::Gemma3;
        let opt = |b: &mut Builder<'_>,
                   s: &str,
                   dims: &[usize]|
         -> Result<Option<TensorId>, EngineError> {
            if gemma || b.has(&n(s)) { b.weight(&n(s), dims, at).map(Some) } else { Ok(None) }
        };
        let q_norm = opt(b, "attn_q_norm", &[hp.head_k])?;
        let k_norm = opt(b, "attn_k_norm", &[hp.head_k])?;
        let post_attn_norm = if gemma { opt(b, "post_attention_norm", &[e])? } else { None };
        let ffn_norm = b.weight(&n("ffn_norm"), &[e], at)?;
        let post_ffn_norm = if gemma { opt(b, "post_ffw_norm", &[e])? } else { None };
        let f = hp.n_ff;
        let ffn = if hp.n_expert > 0 {
            let x = hp.n_expert;
            Ffn::Moe {
                router: b.weight(&n("ffn_gate_inp"), &[e, x], at)?,
                gate: b.weight(&n("ffn_gate_exps"), &[e, f, x], at)?,
                up: b.weight(&n("ffn_up_exps"), &[e, f, x], at)?,
                down: b.weight(&n("ffn_down_exps"), &[f, e, x], at)?,
            }
        } else {
            Ffn::Dense {
                gate: b.weight(&n("ffn_gate"), &[e, f], at)?,
                up: b.weight(&n("ffn_up"), &[e, f], at)?,
                down: b.weight(&n("ffn_down"), &[f, e], at)?,
            }
        };
        layers.push(Layer {
            attn_norm,
            wq,
            wk,
            wv,
            wo,
            bias,
            q_norm,
            k_norm,
            post_attn_norm,
            ffn_norm,
            post_ffn_norm,
            ffn,
        });
    }
    let out_norm = b.weight("output_norm.weight", &[e], None)?;
    // A tied output reads the embedding's bytes under its own graph name, so that the
    // matmul copy can be packed while the lookup table stays in host memory.
    let output = if b.has("output.weight") {
        b.weight("output.weight", &[e, v], None)?
    } else {
        b.weight_from("output.weight", "token_embd.weight", &[e, v], None)?
    };
    Ok((embd, layers, out_norm, output))
}

/// Builds the graph of a step of `t` tokens reading a KV cache of `capacity` positions,
/// with logits for `rows` rows (the step's last `rows` tokens).
///
/// Errors: [`EngineError::Gguf`] for a missing tensor, [`EngineError::BadModel`] for a
/// tensor of the wrong shape, [`EngineError::UnsupportedTensor`].
pub fn build(
    file: &GgufFile,
    hp: &Hparams,
    t: usize,
    capacity: usize,
    rows: usize,
) -> Result<StepGraph, EngineError> {
    let mut b = Builder { file, g: Graph::new(), weights: Vec::new() };
    let (embd, layers, out_norm, output) = declare_weights(&mut b, hp)?;
    let tokens = b.g.input("tokens", DType::I32, &[t])?;
    let pos = b.g.input("positions", DType::I32, &[t])?;
    let out_rows = b.g.input("out_rows", DType::I32, &[rows])?;
    let (hk, hv, nh, nkv) = (hp.head_k, hp.head_v, hp.n_head, hp.n_head_kv);
    let mut cache = Vec::with_capacity(hp.n_layer);
    for l in 0..hp.n_layer {
        let k = b.g.state(&format!("cache_k-{l}"), DType::F32, &[hk, nkv, capacity])?;
        let v = b.g.state(&format!("cache_v-{l}"), DType::F32, &[hv, nkv, capacity])?;
        cache.push((k, v));
    }
    let e = hp.n_embd;
    let mut x = b.op("inp_embd".into(), Op::GetRows, &[embd, tokens])?;
    if hp.arch == Arch::Gemma3 {
        x = b.op("inp_scaled".into(), Op::Scale { s: (e as f32).sqrt() }, &[x])?;
    }
    let mut new_kv = Vec::with_capacity(hp.n_layer);
    for (l, w) in layers.iter().enumerate() {
        let h = b.norm(format!("attn_norm-{l}"), x, w.attn_norm, hp.eps)?;
        let mut qkv = [(w.wq, "q"), (w.wk, "k"), (w.wv, "v")]
            .map(|(wt, n)| b.op(format!("{n}-{l}"), Op::MulMat, &[wt, h]));
        for ((r, bias), n) in qkv.iter_mut().zip(w.bias).zip(["q", "k", "v"]) {
            if let (Ok(x), Some(bias)) = (&*r, bias) {
                *r = b.op(format!("{n}_biased-{l}"), Op::Add, &[*x, bias]);
            }
        }
        let [q, k, v] = qkv;
        let (q, k, v) = (q?, k?, v?);
        let mut q = b.op(format!("q3-{l}"), Op::Reshape { ne: [hk, nh, t, 1] }, &[q])?;
        let mut k = b.op(format!("k3-{l}"), Op::Reshape { ne: [hk, nkv, t, 1] }, &[k])?;
        let v = b.op(format!("Vcur-{l}"), Op::Reshape { ne: [hv, nkv, t, 1] }, &[v])?;
        if let Some(qn) = w.q_norm {
            q = b.norm(format!("q_normed-{l}"), q, qn, hp.eps)?;
        }
        if let Some(kn) = w.k_norm {
            k = b.norm(format!("k_normed-{l}"), k, kn, hp.eps)?;
        }
        let swa = hp.is_swa(l);
        let base = if swa { hp.rope_base_swa } else { hp.rope_base };
        let rope = Op::Rope {
            mode: hp.rope_mode,
            n_dims: hp.rope_dims,
            freq_base: base,
            freq_scale: hp.rope_scale,
        };
        let q = b.op(format!("Qcur-{l}"), rope, &[q, pos])?;
        let k = b.op(format!("Kcur-{l}"), rope, &[k, pos])?;
        new_kv.push((k, v));
        let att = Op::Attention { scale: hp.attn_scale, window: if swa { hp.swa } else { 0 } };
        let (kc, vc) = cache[l];
        let a = b.op(format!("kqv-{l}"), att, &[q, k, v, kc, vc, pos])?;
        let mut o = b.op(format!("attn_out-{l}"), Op::MulMat, &[w.wo, a])?;
        if let Some(pn) = w.post_attn_norm {
            o = b.norm(format!("attn_post_norm-{l}"), o, pn, hp.eps)?;
        }
        let inp = b.op(format!("ffn_inp-{l}"), Op::Add, &[o, x])?;
        let h = b.norm(format!("ffn_norm-{l}"), inp, w.ffn_norm, hp.eps)?;
        let mut f = match w.ffn {
            Ffn::Dense { gate, up, down } => {
                let g = b.op(format!("ffn_gate-{l}"), Op::MulMat, &[gate, h])?;
                let u = b.op(format!("ffn_up-{l}"), Op::MulMat, &[up, h])?;
                let act = if hp.arch == Arch::Gemma3 { Op::Gelu } else { Op::Silu };
                let g = b.op(format!("ffn_act-{l}"), act, &[g])?;
                let p = b.op(format!("ffn_gate_par-{l}"), Op::Mul, &[g, u])?;
                b.op(format!("ffn_out-{l}"), Op::MulMat, &[down, p])?
            }
            Ffn::Moe { router, gate, up, down } => {
                moe(&mut b, hp, l, h, t, [router, gate, up, down])?
            }
        };
        if let Some(pn) = w.post_ffn_norm {
            f = b.norm(format!("ffn_post_norm-{l}"), f, pn, hp.eps)?;
        }
        x = b.op(format!("l_out-{l}"), Op::Add, &[f, inp])?;
    }
    let x = b.op("result_rows".into(), Op::GetRows, &[x, out_rows])?;
    let h = b.norm("result_norm".into(), x, out_norm, hp.eps)?;
    let logits = b.op("result_output".into(), Op::MulMat, &[output, h])?;
    Ok(StepGraph { graph: b.g, weights: b.weights, tokens, pos, out_rows, cache, new_kv, logits })
}

/// Mixtral-style experts as llama.cpp's `build_moe_ffn` builds them for `llama`: F32
/// router, softmax, top-k, the selected probabilities renormalised to sum 1, SiLU
/// experts, weighted sum.
fn moe(
    b: &mut Builder<'_>,
    hp: &Hparams,
    l: usize,
    h: TensorId,
    t: usize,
    [router, gate, up, down]: [TensorId; 4],
) -> Result<TensorId, EngineError> {
    let (e, x, k) = (hp.n_embd, hp.n_expert, hp.n_expert_used);
    let r = |s: &str| format!("ffn_moe_{s}-{l}");
    let logits = b.op(r("logits"), Op::MulMat, &[router, h])?;
    let probs = b.op(r("probs"), Op::SoftMax, &[logits])?;
    let top = b.op(r("topk"), Op::TopK { k }, &[probs])?;
    let probs3 = b.op(r("probs_3d"), Op::Reshape { ne: [1, x, t, 1] }, &[probs])?;
    let w = b.op(r("weights"), Op::GetRows, &[probs3, top])?;
    let w = b.op(r("weights_2d"), Op::Reshape { ne: [k, t, 1, 1] }, &[w])?;
    let sum = b.op(r("weights_sum"), Op::SumRows, &[w])?;
    let w = b.op(r("weights_norm"), Op::Div, &[w, sum])?;
    let w = b.op(r("weights_3d"), Op::Reshape { ne: [1, k, t, 1] }, &[w])?;
    let x3 = b.op(r("input_3d"), Op::Reshape { ne: [e, 1, t, 1] }, &[h])?;
    let u = b.op(r("up"), Op::MulMatId, &[up, x3, top])?;
    let g = b.op(r("gate"), Op::MulMatId, &[gate, x3, top])?;
    let g = b.op(r("silu"), Op::Silu, &[g])?;
    let p = b.op(r("gate_par"), Op::Mul, &[g, u])?;
    let d = b.op(r("down"), Op::MulMatId, &[down, p, top])?;
    let d = b.op(r("weighted"), Op::Mul, &[d, w])?;
    let d = b.op(r("weighted_t"), Op::Transpose, &[d])?;
    let d = b.op(r("sum"), Op::SumRows, &[d])?;
    b.op(r("out"), Op::Reshape { ne: [e, t, 1, 1] }, &[d])
}
