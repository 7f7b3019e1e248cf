//! Shared helpers of the model tests: model files from `AMX_LLM_MODELS`, reference data
//! from `../shared/reference` (or `AMX_LLM_REFERENCE`).

#![allow(dead_code)]

use std::path::PathBuf;

/// The model file `name` in `AMX_LLM_MODELS`, or `None` (with a printed notice).
pub fn model(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("AMX_LLM_MODELS") else {
        eprintln!("skipped: AMX_LLM_MODELS is not set");
        return None;
    };
    let p = PathBuf::from(dir).join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped: {} is missing", p.display());
        None
    }
}

/// The reference directory, or `None` (with a printed notice).
pub fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AMX_LLM_REFERENCE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference"))
    });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: reference data {} is missing", dir.display());
        None
    }
}

/// A JSON file of the reference data.
pub fn json(rel: &str) -> Option<serde_json::Value> {
    let p = reference_dir()?.join(rel);
    let text = std::fs::read_to_string(&p).ok().or_else(|| {
        eprintln!("skipped: {} is missing", p.display());
        None
    })?;
    Some(serde_json::from_str(&text).expect("reference JSON"))
}

/// The `ids` array of a reference file.
pub fn ids(v: &serde_json::Value, key: &str) -> Vec<u32> {
    v[key].as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// llama.cpp's perplexity for `model` with AMX on or off.
pub fn reference_ppl(model: &str, config: &str) -> Option<f64> {
    let all = json("ppl/ppl_gpl3.json")?;
    all.as_array()?
        .iter()
        .find(|r| r["model"] == model && r["config"] == config)
        .and_then(|r| r["ppl"].as_f64())
}

/// The tokenizer of model file `name` in `AMX_LLM_MODELS`, or `None` (with a printed
/// notice, as [`model`]).
pub fn tokenizer(name: &str) -> Option<amx_llm::tokenizer::Tokenizer> {
    let gguf = amx_gguf::GgufFile::open(model(name)?).expect("model file opens");
    Some(amx_llm::tokenizer::Tokenizer::from_gguf(&gguf).expect("tokenizer loads"))
}
