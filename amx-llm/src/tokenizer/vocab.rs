//! The vocabulary from GGUF metadata: token strings, scores, attributes, and the typed
//! metadata getters the tokenizer needs (absent keys are `None`, wrong types are errors).

use std::collections::HashMap;

use amx_gguf::{GgufError, GgufFile, Value};

use super::error::TokenizerError;

/// Token attributes (llama.cpp's `llama_token_attr` bits).
pub(super) mod attr {
    pub(crate) const UNKNOWN: u16 = 1 << 0;
    pub(crate) const UNUSED: u16 = 1 << 1;
    pub(crate) const NORMAL: u16 = 1 << 2;
    pub(crate) const CONTROL: u16 = 1 << 3;
    pub(crate) const USER_DEFINED: u16 = 1 << 4;
    pub(crate) const BYTE: u16 = 1 << 5;
    pub(crate) const LSTRIP: u16 = 1 << 7;
    pub(crate) const RSTRIP: u16 = 1 << 8;
}

/// The attribute of a `tokenizer.ggml.token_type` value (llama.cpp's `llama_token_type`).
fn attr_of_type(token_type: i32) -> u16 {
    match token_type {
        1 => attr::NORMAL,
        2 => attr::UNKNOWN,
        3 => attr::CONTROL,
        4 => attr::USER_DEFINED,
        5 => attr::UNUSED,
        6 => attr::BYTE,
        _ => 0,
    }
}

/// Token strings with their scores and attributes, and the inverse map.
#[derive(Debug)]
pub(super) struct Vocab {
    pub(super) texts: Vec<String>,
    pub(super) scores: Vec<f32>,
    pub(super) attrs: Vec<u16>,
    ids: HashMap<String, u32>,
}

impl Vocab {
    /// Builds a vocabulary from token strings, scores (0 when absent) and llama.cpp token
    /// types (all normal when absent). An empty string becomes `[EMPTY_i]` as in llama.cpp.
    ///
    /// Errors: [`TokenizerError::Malformed`] for fewer scores or types than tokens, a
    /// string listed twice, or more than `u32::MAX` tokens.
    pub(super) fn new(
        tokens: &[String],
        scores: Option<&[f32]>,
        types: Option<&[i32]>,
    ) -> Result<Vocab, TokenizerError> {
        let malformed =
            |key: &str, reason: String| TokenizerError::Malformed { key: key.to_owned(), reason };
        let n = tokens.len();
        if u32::try_from(n).is_err() {
            return Err(malformed(TOKENS, format!("{n} tokens, more than u32 ids")));
        }
        if let Some(s) = scores.filter(|s| s.len() < n) {
            return Err(malformed(SCORES, format!("{} scores for {n} tokens", s.len())));
        }
        if let Some(t) = types.filter(|t| t.len() < n) {
            return Err(malformed(TOKEN_TYPE, format!("{} token types for {n} tokens", t.len())));
        }
        let mut ids = HashMap::with_capacity(n);
        let mut texts = Vec::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            let text = if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() };
            // `i` fits: checked above.
            if let Some(first) = ids.insert(text.clone(), i as u32) {
                return Err(malformed(TOKENS, format!("token {i} {text:?} repeats token {first}")));
            }
            texts.push(text);
        }
        Ok(Vocab {
            texts,
            scores: scores.map_or_else(|| vec![0.0; n], |s| s[..n].to_vec()),
            attrs: types.map_or_else(
                || vec![attr::NORMAL; n],
                |t| t[..n].iter().map(|&t| attr_of_type(t)).collect(),
            ),
            ids,
        })
    }

    /// The id of the token whose string is `text`.
    pub(super) fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// The number of tokens.
    pub(super) fn len(&self) -> usize {
        self.texts.len()
    }

    /// The attribute bits of `id` (0 past the vocabulary).
    pub(super) fn attr(&self, id: u32) -> u16 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }
}

pub(super) const MODEL: &str = "tokenizer.ggml.model";
pub(super) const PRE: &str = "tokenizer.ggml.pre";
pub(super) const TOKENS: &str = "tokenizer.ggml.tokens";
pub(super) const SCORES: &str = "tokenizer.ggml.scores";
pub(super) const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub(super) const MERGES: &str = "tokenizer.ggml.merges";

fn wrap(key: &str) -> impl FnOnce(GgufError) -> TokenizerError + '_ {
    move |source| TokenizerError::Metadata { key: key.to_owned(), source }
}

/// The string value of `key`, if present.
pub(super) fn opt_str<'a>(
    file: &'a GgufFile,
    key: &str,
) -> Result<Option<&'a str>, TokenizerError> {
    match file.get(key) {
        None => Ok(None),
        Some(_) => file.get_str(key).map(Some).map_err(wrap(key)),
    }
}

/// The bool value of `key`, if present.
pub(super) fn opt_bool(file: &GgufFile, key: &str) -> Result<Option<bool>, TokenizerError> {
    match file.get(key) {
        None => Ok(None),
        Some(_) => file.get_bool(key).map(Some).map_err(wrap(key)),
    }
}

/// The value of integer key `key` as a token id: `None` when absent, negative or past
/// `u32` (llama.cpp then keeps its default). Any integer type is read.
///
/// Errors: [`TokenizerError::Metadata`] for a value that is not an integer.
pub(super) fn opt_id(file: &GgufFile, key: &str) -> Result<Option<u32>, TokenizerError> {
    let Some(v) = file.get(key) else { return Ok(None) };
    let n: i128 = match *v {
        Value::U8(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::U64(x) => x.into(),
        Value::I64(x) => x.into(),
        _ => return file.get_u32(key).map(Some).map_err(wrap(key)),
    };
    Ok(u32::try_from(n).ok())
}

/// The string array `key`.
pub(super) fn str_array<'a>(file: &'a GgufFile, key: &str) -> Result<&'a [String], TokenizerError> {
    file.get_str_array(key).map_err(wrap(key))
}

/// The scores: a float32 array, or an int32 array read as floats (as llama.cpp accepts).
pub(super) fn scores(file: &GgufFile) -> Result<Option<Vec<f32>>, TokenizerError> {
    if file.get(SCORES).is_none() {
        return Ok(None);
    }
    if let Ok(s) = file.get_i32_array(SCORES) {
        return Ok(Some(s.iter().map(|&x| x as f32).collect()));
    }
    file.get_f32_array(SCORES).map(|s| Some(s.to_vec())).map_err(wrap(SCORES))
}

/// The token types (an int32 array), if present.
pub(super) fn token_types(file: &GgufFile) -> Result<Option<&[i32]>, TokenizerError> {
    match file.get(TOKEN_TYPE) {
        None => Ok(None),
        Some(_) => file.get_i32_array(TOKEN_TYPE).map(Some).map_err(wrap(TOKEN_TYPE)),
    }
}
