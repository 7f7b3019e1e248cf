//! Text to ids and back. The tokenizer (`amx_llm::tokenizer`) is written on another
//! branch; until it is merged, text commands say so and ids can be given directly
//! (`--ids`, `--prompt-ids`). BOS and end-of-generation come from the metadata.

use amx_gguf::{GgufFile, Value};

const NO_TOKENIZER: &str = "this build has no tokenizer yet (amx_llm::tokenizer arrives with the \
     tokenizer branch); pass token ids with --ids / --prompt-ids";

/// The ids of `text`.
pub fn encode(_file: &GgufFile, _text: &str, _add_special: bool) -> Result<Vec<u32>, String> {
    Err(NO_TOKENIZER.into())
}

/// The text of `ids` (empty without a tokenizer).
pub fn decode(_file: &GgufFile, _ids: &[u32]) -> String {
    String::new()
}

fn id(file: &GgufFile, key: &str) -> Option<u32> {
    match file.get(key)? {
        Value::U32(v) => Some(*v),
        Value::I32(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// BOS, when the model adds it (`tokenizer.ggml.add_bos_token`; llama.cpp's default is
/// true for SentencePiece vocabularies, false for gpt2 ones).
pub fn bos(file: &GgufFile) -> Option<u32> {
    let spm = matches!(file.get("tokenizer.ggml.model"), Some(Value::String(s)) if s == "llama");
    let add = match file.get("tokenizer.ggml.add_bos_token") {
        Some(Value::Bool(b)) => *b,
        _ => spm,
    };
    if add { id(file, "tokenizer.ggml.bos_token_id") } else { None }
}

/// Whether `tok` ends generation (EOS or EOT of the metadata).
pub fn is_eog(file: &GgufFile, tok: u32) -> bool {
    ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .any(|k| id(file, k) == Some(tok))
}
