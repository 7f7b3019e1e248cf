//! [`TokenizerError`]: what was wrong with a GGUF file's tokenizer metadata.

use core::fmt;

/// Why a [`super::Tokenizer`] could not be built from a GGUF file's metadata.
///
/// Every variant names the metadata key or value at fault.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizerError {
    /// A required metadata key is missing, or a key has the wrong type.
    Metadata {
        /// The metadata key.
        key: String,
        /// The reader's error.
        source: amx_gguf::GgufError,
    },
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    UnsupportedModel {
        /// The value of `tokenizer.ggml.model`.
        model: String,
    },
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not implement.
    UnsupportedPre {
        /// The value of `tokenizer.ggml.pre`.
        pre: String,
    },
    /// The vocabulary is malformed (a token string listed twice, fewer scores or token
    /// types than tokens, more tokens than `u32` ids).
    Malformed {
        /// The metadata key whose value is wrong.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Metadata { key, source } => write!(f, "tokenizer metadata `{key}`: {source}"),
            Self::UnsupportedModel { model } => {
                write!(f, "unsupported tokenizer.ggml.model `{model}` (supported: gpt2, llama)")
            }
            Self::UnsupportedPre { pre } => {
                write!(f, "unsupported tokenizer.ggml.pre `{pre}` for a gpt2 (BPE) tokenizer")
            }
            Self::Malformed { key, reason } => {
                write!(f, "malformed tokenizer metadata `{key}`: {reason}")
            }
        }
    }
}

impl core::error::Error for TokenizerError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Metadata { source, .. } => Some(source),
            _ => None,
        }
    }
}
