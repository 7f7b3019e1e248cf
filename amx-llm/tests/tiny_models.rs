//! Tiny models of every architecture, written here as GGUF files (amx-gguf's `writer`),
//! run by the engine and checked against a plain f64 forward pass written independently
//! below. No model file needed.
//!
//! Each model runs 32 tokens: as one prefill step (all logits) and token by token
//! through the KV cache, on the scalar path (f32, close to the f64 reference) and with
//! dispatch (AMX at 32 rows, VNNI for decode: activations rounded, looser).

mod tiny;

use amx_core::gemm::Path;
use amx_gguf::writer::Writer;
use amx_gguf::{GgufFile, Value};
use amx_llm::engine::{Engine, Options};
use tiny::{BASE, Spec, Tiny, build};

const T: usize = 32;

fn rms_norm(x: &[f64], w: &[f64]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + 1e-5).sqrt();
    x.iter().zip(w).map(|(v, g)| v * s * g).collect()
}

/// `W x` for W `[k, n]` (n rows of k) stored row-major.
fn matvec(w: &[f64], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len()).map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

fn rope(v: &mut [f64], pos: usize, dims: usize, base: f64, neox: bool) {
    for i in 0..dims / 2 {
        let th = pos as f64 * base.powf(-2.0 * i as f64 / dims as f64);
        let (a, b) = if neox { (i, i + dims / 2) } else { (2 * i, 2 * i + 1) };
        let (x0, x1) = (v[a], v[b]);
        v[a] = x0 * th.cos() - x1 * th.sin();
        v[b] = x0 * th.sin() + x1 * th.cos();
    }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

fn softmax(v: &[f64]) -> Vec<f64> {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|x| x / z).collect()
}

/// The f64 forward pass: logits of every position.
fn reference(m: &Tiny, tokens: &[u32]) -> Vec<Vec<f64>> {
    let s = m.spec;
    let w = |n: &str| &m.w[n][..];
    let (e, hd) = (s.n_embd, s.head);
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| {
            let row = &w("token_embd.weight")[t as usize * e..][..e];
            let k = if s.gemma() { (e as f64).sqrt() } else { 1.0 };
            row.iter().map(|v| v * k).collect()
        })
        .collect();
    for l in 0..s.layers {
        let n = |r: &str| format!("blk.{l}.{r}.weight");
        let base = if s.gemma() && s.swa(l) { 10000.0 } else { 5000.0 };
        let mut qs = vec![];
        let mut ks = vec![];
        let mut vs = vec![];
        for (p, x) in xs.iter().enumerate() {
            let h = rms_norm(x, w(&n("attn_norm")));
            let proj = |wn: &str, bias: &str, heads: usize, norm: &str| {
                let mut v = matvec(w(&n(wn)), &h);
                if s.bias() {
                    for (a, b) in v.iter_mut().zip(w(&format!("blk.{l}.{bias}.bias"))) {
                        *a += b;
                    }
                }
                let mut out = vec![];
                for hv in v.chunks(hd) {
                    let mut hv = hv.to_vec();
                    if !norm.is_empty() {
                        if s.qk_norm() {
                            hv = rms_norm(&hv, w(&n(norm)));
                        }
                        rope(&mut hv, p, s.rope_dims, base, s.neox());
                    }
                    out.push(hv);
                }
                assert_eq!(out.len(), heads);
                out
            };
            qs.push(proj("attn_q", "attn_q", s.n_head, "attn_q_norm"));
            ks.push(proj("attn_k", "attn_k", s.n_kv, "attn_k_norm"));
            vs.push(proj("attn_v", "attn_v", s.n_kv, ""));
        }
        for (p, x) in xs.iter_mut().enumerate() {
            let mut att = vec![];
            for (hq, qh) in qs[p].iter().enumerate() {
                let g = hq / (s.n_head / s.n_kv);
                let lo = if s.gemma() && s.swa(l) { (p + 1).saturating_sub(s.window) } else { 0 };
                let sc: Vec<f64> = (lo..=p)
                    .map(|j| {
                        qh.iter().zip(&ks[j][g]).map(|(a, b)| a * b).sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let pr = softmax(&sc);
                let mut o = vec![0.0; hd];
                for (j, pj) in (lo..=p).zip(&pr) {
                    for (oi, vi) in o.iter_mut().zip(&vs[j][g]) {
                        *oi += pj * vi;
                    }
                }
                att.extend(o);
            }
            let mut o = matvec(w(&n("attn_output")), &att);
            if s.gemma() {
                o = rms_norm(&o, w(&n("post_attention_norm")));
            }
            let x1: Vec<f64> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
            let h = rms_norm(&x1, w(&n("ffn_norm")));
            let ffn = |gate: &[f64], up: &[f64], down: &[f64]| {
                let g = matvec(gate, &h);
                let u = matvec(up, &h);
                let act: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(g, u)| if s.gemma() { gelu(*g) } else { silu(*g) } * u)
                    .collect();
                matvec(down, &act)
            };
            let mut f = if s.experts > 0 {
                let probs = softmax(&matvec(w(&n("ffn_gate_inp")), &h));
                let mut idx: Vec<usize> = (0..s.experts).collect();
                idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
                let top = &idx[..s.used];
                let z: f64 = top.iter().map(|&i| probs[i]).sum();
                let (ef, ee) = (s.n_ff, e);
                let mut out = vec![0.0; e];
                for &i in top {
                    let sl = |name: &str, a: usize, b: usize| &m.w[&n(name)][i * a * b..][..a * b];
                    let y = ffn(
                        sl("ffn_gate_exps", ee, ef),
                        sl("ffn_up_exps", ee, ef),
                        sl("ffn_down_exps", ef, ee),
                    );
                    for (o, v) in out.iter_mut().zip(y) {
                        *o += probs[i] / z * v;
                    }
                }
                out
            } else {
                ffn(w(&n("ffn_gate")), w(&n("ffn_up")), w(&n("ffn_down")))
            };
            if s.gemma() {
                f = rms_norm(&f, w(&n("post_ffw_norm")));
            }
            *x = x1.iter().zip(&f).map(|(a, b)| a + b).collect();
        }
    }
    xs.iter()
        .map(|x| matvec(w("token_embd.weight"), &rms_norm(x, w("output_norm.weight"))))
        .collect()
}

/// Relative L2 distance of `got` from `want`.
fn rel(got: &[f32], want: &[f64]) -> f64 {
    let d: f64 = got.iter().zip(want).map(|(a, b)| (f64::from(*a) - b).powi(2)).sum();
    let n: f64 = want.iter().map(|b| b * b).sum();
    (d / n).sqrt()
}

fn check(spec: Spec) {
    let m = build(spec, 7);
    let tokens: Vec<u32> = (0..T).map(|i| ((i * 7 + 3) % spec.vocab) as u32).collect();
    let want = reference(&m, &tokens);
    assert!(want.iter().flatten().all(|v| v.is_finite()));
    let v = spec.vocab;
    // Dispatch rounds activations (BF16 on AMX, int8 on VNNI): 1-2 % here, up to 4.2 %
    // for gemma3 on a CPU without AMX (every matmul on int8 activations), more where a
    // rounded router picks another expert at a near-tie.
    let auto_tol = if spec.experts > 0 { 0.1 } else { 0.05 };
    for (path, tol) in [(Path::Scalar, 1e-5), (Path::Auto, auto_tol)] {
        let file = GgufFile::parse(m.file.clone()).unwrap();
        let o = Options { threads: 2, path, gpu_layers: 0, context: T };
        let mut engine = Engine::from_file(file, o).unwrap();
        let all = engine.step(&tokens, T).unwrap();
        let worst =
            want.iter().enumerate().map(|(p, w)| rel(&all[p * v..][..v], w)).fold(0.0, f64::max);
        eprintln!("{} {path:?}: worst prefill relative error {worst:.2e}", spec.arch);
        for (p, w) in want.iter().enumerate() {
            let r = rel(&all[p * v..][..v], w);
            assert!(r < tol, "{} {path:?} prefill position {p}: relative error {r}", spec.arch);
        }
        engine.reset();
        for (p, &t) in tokens.iter().enumerate() {
            let got = engine.step(&[t], 1).unwrap();
            let r = rel(&got, &want[p]);
            assert!(r < tol, "{} {path:?} decode position {p}: relative error {r}", spec.arch);
        }
    }
    // Layers on the GPU-like backend: the same logits as on the CPU, scalar path.
    let file = GgufFile::parse(m.file.clone()).unwrap();
    let o = Options { threads: 1, path: Path::Scalar, gpu_layers: 1, context: T };
    let mut engine = Engine::from_file(file, o).unwrap();
    let all = engine.step(&tokens, T).unwrap();
    let r = rel(&all[(T - 1) * v..], &want[T - 1]);
    assert!(r < 1e-5, "{} gpu-layers 1: relative error {r}", spec.arch);
}

#[test]
fn llama() {
    // RoPE on part of each head (n_dims 8 of 16).
    check(Spec { rope_dims: 8, ..BASE });
}

#[test]
fn llama_moe() {
    check(Spec { experts: 4, used: 2, ..BASE });
}

#[test]
fn qwen2() {
    check(Spec { arch: "qwen2", ..BASE });
}

#[test]
fn qwen3() {
    check(Spec { arch: "qwen3", n_head: 4, n_kv: 1, head: 32, ..BASE });
}

#[test]
fn qwen3moe() {
    check(Spec {
        arch: "qwen3moe",
        head: 32,
        rope_dims: 32,
        experts: 4,
        used: 2,
        n_ff: 64,
        ..BASE
    });
}

#[test]
fn gemma3() {
    // Six layers: five with a sliding window of 5 positions, the last global.
    check(Spec { arch: "gemma3", n_kv: 1, head: 32, rope_dims: 32, layers: 6, window: 5, ..BASE });
}

#[test]
fn unsupported_arch_and_missing_tensor_are_clear_errors() {
    let file = Writer::new().kv("general.architecture", Value::String("mamba".into())).build().0;
    let e = Engine::from_file(GgufFile::parse(file).unwrap(), Options::default()).unwrap_err();
    assert!(e.to_string().contains("unsupported architecture \"mamba\""), "{e}");
    let mut m = build(BASE, 1);
    m.file = {
        let f = GgufFile::parse(m.file).unwrap();
        let mut wr = Writer::new();
        for (k, v) in f.metadata() {
            wr = wr.kv(k, v.clone());
        }
        for t in f.tensors().iter().filter(|t| t.name != "blk.1.attn_k.weight") {
            let d: Vec<u64> = t.ne[..t.n_dims as usize].to_vec();
            wr = wr.tensor(&t.name, &d, t.ggml_type, f.tensor_bytes(&t.name).unwrap().to_vec());
        }
        wr.build().0
    };
    let e = Engine::from_file(GgufFile::parse(m.file).unwrap(), Options::default()).unwrap_err();
    assert!(e.to_string().contains("blk.1.attn_k.weight"), "{e}");
    // A layer count no file could hold is refused before anything is sized by it.
    let mut wr = Writer::new().kv("llama.vocab_size", Value::U32(40));
    let f = GgufFile::parse(build(BASE, 2).file).unwrap();
    for (k, v) in f.metadata() {
        let v = if k == "llama.block_count" { Value::U64(1 << 60) } else { v.clone() };
        wr = wr.kv(k, v);
    }
    let e =
        Engine::from_file(GgufFile::parse(wr.build().0).unwrap(), Options::default()).unwrap_err();
    assert!(e.to_string().contains("layers with"), "{e}");
}
