//! Tokenizers from GGUF metadata, with ids identical to llama.cpp's.
//!
//! [`Tokenizer::from_gguf`] reads `tokenizer.ggml.*` and builds one of:
//! - byte-level BPE (`tokenizer.ggml.model = "gpt2"`: SmolLM, Llama 3, Qwen2, ...), with
//!   the pre-tokenizer `tokenizer.ggml.pre` names;
//! - SentencePiece-style merging by score with byte fallback (`"llama"`: Llama 2, Gemma).
//!
//! [`Tokenizer::encode`] is llama.cpp's `llama_tokenize(text, add_special, parse_special)`:
//! special-token strings are split out first, then each stretch of text is tokenized.
//!
//! ```no_run
//! use amx_gguf::GgufFile;
//! use amx_llm::tokenizer::Tokenizer;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let tok = Tokenizer::from_gguf(&file)?;
//! // llama.cpp's ids for this prompt (SmolLM2 adds no BOS).
//! let ids = tok.encode("The capital of France is", true, true);
//! assert_eq!(ids, [504, 3575, 282, 4649, 314]);
//! assert_eq!(String::from_utf8_lossy(&tok.decode(&ids)), "The capital of France is");
//! let stop = |id: u32| tok.is_eog(id); // <|im_end|>, <|endoftext|>, ...
//! # let _ = stop;
//! # Ok(())
//! # }
//! ```

mod bpe;
mod cxx_map;
mod cxx_sort;
mod error;
mod pretokenize;
mod special;
mod split;
mod spm;
mod symbols;
#[cfg(test)]
mod tests;
mod unicode;
mod unicode_data;
mod vocab;

use std::collections::BTreeSet;

use amx_gguf::GgufFile;

pub use error::TokenizerError;

use bpe::Merges;
use pretokenize::PreTokenizer;
use special::{Fragment, SpecialIds};
use vocab::{Vocab, attr};

/// The merging algorithm and what it needs.
#[derive(Debug)]
enum Model {
    /// Byte-level BPE.
    Bpe { pre: PreTokenizer, merges: Merges, ignore_merges: bool },
    /// SentencePiece-style.
    Spm { add_space_prefix: bool },
}

/// A tokenizer built from a GGUF file's metadata; see the [module docs](self).
#[derive(Debug)]
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    eog: BTreeSet<u32>,
    /// Control, user-defined and unknown tokens, longest string first.
    specials: Vec<u32>,
    /// `token_bytes` of every id.
    pieces: Vec<Vec<u8>>,
}

impl Tokenizer {
    /// Builds the tokenizer of `file` from its `tokenizer.ggml.*` metadata, with
    /// llama.cpp's defaults for absent keys.
    ///
    /// Errors: [`TokenizerError::UnsupportedModel`] for a `tokenizer.ggml.model` other than
    /// `gpt2` or `llama`; [`TokenizerError::UnsupportedPre`] for a BPE pre-tokenizer not
    /// implemented here; [`TokenizerError::Metadata`] for a missing token list or merges,
    /// or a key of the wrong type; [`TokenizerError::Malformed`] for a vocabulary that
    /// contradicts itself.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let model_name = file
            .get_str(vocab::MODEL)
            .map_err(|source| TokenizerError::Metadata { key: vocab::MODEL.to_owned(), source })?;
        let pre_name = vocab::opt_str(file, vocab::PRE)?;
        let tokens = vocab::str_array(file, vocab::TOKENS)?;
        let scores = vocab::scores(file)?;
        let types = vocab::token_types(file)?;
        let mut vocab = Vocab::new(tokens, scores.as_deref(), types)?;

        // llama.cpp's defaults per model, before the metadata overrides them.
        let mut ids = SpecialIds::default();
        let (model, mut add_bos) = match model_name {
            "gpt2" => {
                let (pre, opts) = PreTokenizer::for_pre(pre_name)?;
                let merges = Merges::new(vocab::str_array(file, vocab::MERGES)?);
                ids.bos = if opts.no_default_bos { None } else { Some(11) };
                ids.eos = Some(11);
                (Model::Bpe { pre, merges, ignore_merges: opts.ignore_merges }, opts.add_bos)
            }
            "llama" => {
                let add_space_prefix =
                    vocab::opt_bool(file, "tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
                (ids.bos, ids.eos, ids.unk) = (Some(1), Some(2), Some(0));
                (Model::Spm { add_space_prefix }, true)
            }
            other => return Err(TokenizerError::UnsupportedModel { model: other.to_owned() }),
        };
        ids.read(file, vocab.len())?;
        add_bos = vocab::opt_bool(file, "tokenizer.ggml.add_bos_token")?.unwrap_or(add_bos);
        let add_eos = vocab::opt_bool(file, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let eog = special::detect(&mut vocab, &mut ids);
        let specials = special::special_candidates(&vocab);
        let mut tokenizer = Tokenizer {
            vocab,
            model,
            bos: ids.bos,
            eos: ids.eos,
            unk: ids.unk,
            add_bos,
            add_eos,
            eog,
            specials,
            pieces: Vec::new(),
        };
        tokenizer.pieces =
            (0..tokenizer.vocab.len() as u32).map(|id| tokenizer.piece(id)).collect();
        let name = vocab::opt_str(file, "general.name")?.unwrap_or("");
        let arch = vocab::opt_str(file, "general.architecture")?.unwrap_or("");
        special::strip_attributes(
            &mut tokenizer.vocab,
            &tokenizer.specials,
            name,
            pre_name.unwrap_or(""),
            arch,
        );
        Ok(tokenizer)
    }

    /// The ids of `text`, as llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    ///
    /// With `add_special`, BOS is prepended when the model adds one ([`Tokenizer::add_bos`])
    /// and EOS appended when `tokenizer.ggml.add_eos_token` says so. With `parse_special`,
    /// control tokens written in the text (`<|im_start|>`, `<start_of_turn>`, ...) become
    /// their ids; user-defined tokens always do. Empty text gives no ids (BOS alone with
    /// `add_special`).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let fragments = special::partition(text, &self.vocab, &self.specials, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match &self.model {
            Model::Bpe { pre, merges, ignore_merges } => {
                for f in fragments {
                    match f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text { start, end } => {
                            for word in pre.split(&text[start..end]) {
                                bpe::encode_word(
                                    &word,
                                    &self.vocab,
                                    merges,
                                    *ignore_merges,
                                    &mut out,
                                );
                            }
                        }
                    }
                }
            }
            Model::Spm { add_space_prefix } => {
                // A space goes before text at the start and after a special token.
                let mut prev_special = true;
                for f in fragments {
                    match f {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text { start, end } => {
                            let mut s = String::with_capacity(end - start + 3);
                            if *add_space_prefix && prev_special {
                                s.push('▁');
                            }
                            for c in text[start..end].chars() {
                                s.push(if c == ' ' { '▁' } else { c });
                            }
                            spm::encode(&s, &self.vocab, self.unk, &mut out);
                            prev_special = false;
                        }
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// The bytes of token `id` as llama.cpp's `token_to_piece` with special tokens
    /// rendered: control, user-defined and unknown tokens as their strings, byte tokens as
    /// their byte, normal tokens decoded (`▁` as a space, or GPT-2's byte mapping undone).
    /// Unused tokens and ids past the vocabulary give no bytes.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        self.pieces.get(id as usize).cloned().unwrap_or_default()
    }

    /// The bytes of `ids`, joined (no clean-up of spaces; the caller decodes UTF-8 lossily).
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &id in ids {
            if let Some(p) = self.pieces.get(id as usize) {
                out.extend_from_slice(p);
            }
        }
        out
    }

    /// The beginning-of-sequence id, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id, if the model has one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether [`Tokenizer::encode`] with `add_special` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Whether `id` ends generation: EOS, EOT, EOM and the tokens llama.cpp recognises by
    /// their strings (`<|im_end|>`, `<end_of_turn>`, `<|endoftext|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// llama.cpp's `token_to_piece(id, special = true)`.
    fn piece(&self, id: u32) -> Vec<u8> {
        let a = self.vocab.attr(id);
        let Some(text) = self.vocab.texts.get(id as usize) else { return Vec::new() };
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            return text.as_bytes().to_vec();
        }
        if a & attr::NORMAL != 0 {
            return match self.model {
                Model::Spm { .. } => text.replace('▁', " ").into_bytes(),
                Model::Bpe { .. } => gpt2_decode(text),
            };
        }
        if a & attr::BYTE != 0 {
            return vec![byte_of_token(text)];
        }
        Vec::new()
    }
}

/// Undoes GPT-2's byte mapping; a code point outside it is written as llama.cpp does
/// (`[UNK_BYTE_0x..<token>]`).
fn gpt2_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

/// The byte of a byte token `<0xXX>`: the hex digits at 3..5, read as C's `strtol` reads
/// them (as many hex digits as there are, 0 if none).
fn byte_of_token(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..5.min(text.len())).unwrap_or_default();
    let mut v = 0u8;
    for &d in digits {
        match char::from(d).to_digit(16) {
            Some(x) => v = v.wrapping_mul(16).wrapping_add(x as u8),
            None => break,
        }
    }
    v
}
