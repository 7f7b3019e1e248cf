//! Perplexity against llama.cpp's (its own token ids of GPL-3), full run, for every
//! model of the reference data (`AMX_LLM_CHUNKS=N` runs the first N chunks only).

mod support;

use amx_llm::engine::perplexity::perplexity;
use amx_llm::engine::{Engine, Options};

fn full_run(model: &str, ids_file: &str, bos: Option<u32>) {
    let Some(path) = support::model(model) else { return };
    let Some(ids) = support::json(ids_file) else { return };
    let ids = support::ids(&ids, "ids");
    let mut engine = Engine::open(&path, Options { context: 256, ..Options::default() }).unwrap();
    let max = std::env::var("AMX_LLM_CHUNKS").ok().and_then(|s| s.parse().ok());
    let p = perplexity(&mut engine, &ids, 256, bos, max, |c, n, ppl| {
        eprintln!("[{c}/{n}] ppl {ppl:.4}")
    })
    .unwrap();
    let on = support::reference_ppl(model, "amx_on").unwrap();
    let off = support::reference_ppl(model, "amx_off").unwrap();
    eprintln!("{model}: ppl {:.4} over {} chunks (llama.cpp {on} / {off})", p.ppl, p.chunks);
    assert!(!p.saw_nan);
    if p.chunks == 29 {
        assert!((p.ppl / on - 1.0).abs() < 0.01, "{} vs {on}", p.ppl);
    }
}

#[test]
fn smollm2_q4_1() {
    full_run("SmolLM2-135M-Instruct.Q4_1.gguf", "ppl/smollm2__gpl3.json", None);
}

#[test]
fn smollm2_moe8() {
    full_run("smollm2-moe8.gguf", "ppl/smollm2__gpl3.json", None);
}

#[test]
fn smollm2_moe8_q41() {
    full_run("smollm2-moe8-q41.gguf", "ppl/smollm2__gpl3.json", None);
}

#[test]
fn gemma3_q4_k_m() {
    // gemma3 adds BOS (id 2): each chunk starts with it, as in llama-perplexity.
    full_run("gemma-3-270m-q4_k_m.gguf", "ppl/gemma3__gpl3.json", Some(2));
}
