//! Tiny models of every architecture written as GGUF files (amx-gguf's `writer`).

#![allow(dead_code)]

use std::collections::HashMap;

use amx_core::formats::{Format, dequantize, half::f32_to_f16};
use amx_gguf::writer::Writer;
use amx_gguf::{Array, Value};
use amx_testdata::random::pseudo_random_values;

/// A tiny model's shape.
#[derive(Clone, Copy)]
pub struct Spec {
    pub arch: &'static str,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv: usize,
    pub head: usize,
    pub n_ff: usize,
    pub layers: usize,
    pub vocab: usize,
    pub experts: usize,
    pub used: usize,
    pub rope_dims: usize,
    pub window: usize,
}

impl Spec {
    pub fn gemma(&self) -> bool {
        self.arch == "gemma3"
    }
    pub fn neox(&self) -> bool {
        self.arch != "llama"
    }
    pub fn bias(&self) -> bool {
        self.arch == "qwen2"
    }
    pub fn qk_norm(&self) -> bool {
        matches!(self.arch, "qwen3" | "qwen3moe" | "gemma3")
    }
    pub fn swa(&self, l: usize) -> bool {
        self.window > 0 && !(l + 1).is_multiple_of(6)
    }
}

/// Q8_0 bytes of `v` (rows of a multiple of 32), as ggml quantizes.
fn q8_0(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in v.chunks_exact(32) {
        let amax = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f32_to_f16(d).to_le_bytes());
        out.extend(b.iter().map(|x| (x * id).round() as i8 as u8));
    }
    out
}

/// The model: the GGUF bytes and every weight's values as stored (dequantized).
pub struct Tiny {
    pub spec: Spec,
    pub file: Vec<u8>,
    pub w: HashMap<String, Vec<f64>>,
}

pub fn build(spec: Spec, seed: u64) -> Tiny {
    let a = spec.arch;
    let mut wr = Writer::new()
        .kv("general.architecture", Value::String(a.into()))
        .kv(&format!("{a}.embedding_length"), Value::U32(spec.n_embd as u32))
        .kv(&format!("{a}.block_count"), Value::U32(spec.layers as u32))
        .kv(&format!("{a}.attention.head_count"), Value::U32(spec.n_head as u32))
        .kv(&format!("{a}.attention.head_count_kv"), Value::U32(spec.n_kv as u32))
        .kv(&format!("{a}.attention.key_length"), Value::U32(spec.head as u32))
        .kv(&format!("{a}.attention.value_length"), Value::U32(spec.head as u32))
        .kv(&format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-5))
        .kv(&format!("{a}.rope.freq_base"), Value::F32(5000.0))
        .kv(&format!("{a}.rope.dimension_count"), Value::U32(spec.rope_dims as u32))
        .kv("tokenizer.ggml.model", Value::String("gpt2".into()))
        .kv("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; 4])));
    if spec.experts > 0 {
        wr = wr
            .kv(&format!("{a}.expert_count"), Value::U32(spec.experts as u32))
            .kv(&format!("{a}.expert_used_count"), Value::U32(spec.used as u32));
    }
    let ff_key = if a == "qwen3moe" { "expert_feed_forward_length" } else { "feed_forward_length" };
    wr = wr.kv(&format!("{a}.{ff_key}"), Value::U32(spec.n_ff as u32));
    if spec.window > 0 {
        wr = wr.kv(&format!("{a}.attention.sliding_window"), Value::U32(spec.window as u32));
    }
    let mut w = HashMap::new();
    let mut salt = seed;
    let mut mat = |wr: Writer, name: &str, dims: &[usize]| -> Writer {
        salt += 1;
        let n: usize = dims.iter().product();
        let scale = 1.5 / (dims[0] as f32).sqrt();
        let v: Vec<f32> = pseudo_random_values(salt, n).iter().map(|x| x * scale).collect();
        let bytes = q8_0(&v);
        let mut back = vec![0f32; n];
        dequantize(Format::Q8_0, &bytes, &mut back).unwrap();
        w.insert(name.to_owned(), back.iter().map(|&x| f64::from(x)).collect());
        let d: Vec<u64> = dims.iter().map(|&x| x as u64).collect();
        wr.tensor(name, &d, 8, bytes)
    };
    let (e, h, kv, hd, f, x) =
        (spec.n_embd, spec.n_head, spec.n_kv, spec.head, spec.n_ff, spec.experts);
    wr = mat(wr, "token_embd.weight", &[e, spec.vocab]);
    let mut vecs: Vec<(String, usize, f32)> = vec![("output_norm.weight".into(), e, 1.0)];
    for l in 0..spec.layers {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        wr = mat(wr, &n("attn_q"), &[e, h * hd]);
        wr = mat(wr, &n("attn_k"), &[e, kv * hd]);
        wr = mat(wr, &n("attn_v"), &[e, kv * hd]);
        wr = mat(wr, &n("attn_output"), &[h * hd, e]);
        if x > 0 {
            wr = mat(wr, &n("ffn_gate_exps"), &[e, f, x]);
            wr = mat(wr, &n("ffn_up_exps"), &[e, f, x]);
            wr = mat(wr, &n("ffn_down_exps"), &[f, e, x]);
            vecs.push((n("ffn_gate_inp"), e * x, 0.0));
        } else {
            wr = mat(wr, &n("ffn_gate"), &[e, f]);
            wr = mat(wr, &n("ffn_up"), &[e, f]);
            wr = mat(wr, &n("ffn_down"), &[f, e]);
        }
        vecs.push((n("attn_norm"), e, 1.0));
        vecs.push((n("ffn_norm"), e, 1.0));
        if spec.qk_norm() {
            vecs.push((n("attn_q_norm"), hd, 1.0));
            vecs.push((n("attn_k_norm"), hd, 1.0));
        }
        if spec.gemma() {
            vecs.push((n("post_attention_norm"), e, 1.0));
            vecs.push((n("post_ffw_norm"), e, 1.0));
        }
        if spec.bias() {
            for (b, d) in [("attn_q", h * hd), ("attn_k", kv * hd), ("attn_v", kv * hd)] {
                vecs.push((format!("blk.{l}.{b}.bias"), d, 0.0));
            }
        }
    }
    for (name, n, base) in vecs {
        salt += 1;
        // Norm weights near 1, biases and the router spread out.
        let spread = if base == 1.0 { 0.2 } else { 0.5 };
        let v: Vec<f32> = pseudo_random_values(salt, n).iter().map(|r| base + spread * r).collect();
        w.insert(name.clone(), v.iter().map(|&x| f64::from(x)).collect());
        let dims: Vec<u64> = if name.ends_with("ffn_gate_inp.weight") {
            vec![e as u64, x as u64]
        } else {
            vec![n as u64]
        };
        wr = wr.tensor(&name, &dims, 0, v.iter().flat_map(|x| x.to_le_bytes()).collect());
    }
    Tiny { spec, file: wr.build().0, w }
}

/// The llama shape the tests vary.
pub const BASE: Spec = Spec {
    arch: "llama",
    n_embd: 64,
    n_head: 4,
    n_kv: 2,
    head: 16,
    n_ff: 96,
    layers: 2,
    vocab: 40,
    experts: 0,
    used: 0,
    rope_dims: 16,
    window: 0,
};
