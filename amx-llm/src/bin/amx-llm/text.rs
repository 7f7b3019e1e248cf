//! Text to ids and back with the model's own tokenizer ([`amx_llm::tokenizer`]), with
//! llama.cpp's settings per command: prompts of `generate` parse special tokens (as
//! llama.cpp's generation examples do, so chat markup becomes its control tokens);
//! `tokenize` and `perplexity` do not (as `llama-tokenize` and `llama-perplexity`).

use amx_gguf::GgufFile;
use amx_llm::tokenizer::Tokenizer;

/// The model's tokenizer, or one error line naming the file.
pub fn tokenizer(file: &GgufFile, model: &str) -> Result<Tokenizer, String> {
    Tokenizer::from_gguf(file).map_err(|e| format!("{model}: {e}"))
}

/// The tokenizer, required unless the caller gives ids (`ids_given`): then a file
/// without a vocabulary gives `None` instead of an error.
pub fn tokenizer_unless_ids(
    file: &GgufFile,
    model: &str,
    ids_given: bool,
) -> Result<Option<Tokenizer>, String> {
    match ids_given {
        true => Ok(tokenizer(file, model).ok()),
        false => tokenizer(file, model).map(Some),
    }
}

/// The ids of `text`, BOS (and EOS) added as the model's metadata says.
pub fn encode(tok: &Tokenizer, text: &str, parse_special: bool) -> Vec<u32> {
    tok.encode(text, true, parse_special)
}

/// The text of `ids` (invalid UTF-8 replaced).
pub fn decode(tok: &Tokenizer, ids: &[u32]) -> String {
    String::from_utf8_lossy(&tok.decode(ids)).into_owned()
}

/// BOS, when the model adds it: llama-perplexity puts it first in every chunk.
pub fn bos(tok: &Tokenizer) -> Option<u32> {
    if tok.add_bos() { tok.bos() } else { None }
}
