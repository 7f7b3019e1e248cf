//! The engine's error type.

use std::fmt;

use amx_gguf::GgufError;
use amx_runtime::error::{ExecError, GraphError, PlaceError, SchedError};

/// What went wrong loading or running a model.
#[non_exhaustive]
#[derive(Debug)]
pub enum EngineError {
    /// The GGUF file could not be read, or a key or tensor is missing or mistyped.
    Gguf(GgufError),
    /// The file's `general.architecture` is not one this engine runs.
    UnsupportedArch {
        /// The architecture named by the file.
        arch: String,
    },
    /// A tensor's ggml type is not one the runtime reads.
    UnsupportedTensor {
        /// The tensor.
        tensor: String,
        /// Its ggml type id.
        ggml_type: u32,
    },
    /// A hyper-parameter or tensor shape the engine cannot use, or options it cannot
    /// run with (no context, a thread count the pool refuses).
    BadModel {
        /// What is wrong.
        what: String,
    },
    /// A step asked for more positions than the KV cache holds, or no token at all.
    Context {
        /// Positions already in the cache.
        past: usize,
        /// Tokens in the step.
        tokens: usize,
        /// The cache's capacity.
        capacity: usize,
    },
    /// A token id outside the vocabulary.
    Token {
        /// The id.
        id: u32,
        /// The vocabulary's size.
        vocab: usize,
    },
    /// Building the step's graph failed.
    Graph(GraphError),
    /// Placing or loading the weights failed.
    Place(PlaceError),
    /// Scheduling the step failed.
    Sched(SchedError),
    /// Running the step failed.
    Exec(ExecError),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Gguf(e) => write!(f, "model file: {e}"),
            EngineError::UnsupportedArch { arch } => {
                write!(
                    f,
                    "unsupported architecture {arch:?} (runs: llama, qwen2, qwen3, qwen3moe, gemma3)"
                )
            }
            EngineError::UnsupportedTensor { tensor, ggml_type } => {
                write!(f, "tensor {tensor}: unsupported ggml type {ggml_type}")
            }
            EngineError::BadModel { what } => write!(f, "model: {what}"),
            EngineError::Context { past, tokens, capacity } => write!(
                f,
                "{tokens} tokens after {past} do not fit a context of {capacity} (at least one token per step)"
            ),
            EngineError::Token { id, vocab } => {
                write!(f, "token id {id} is outside the vocabulary of {vocab}")
            }
            EngineError::Graph(e) => write!(f, "graph: {e}"),
            EngineError::Place(e) => write!(f, "placement: {e}"),
            EngineError::Sched(e) => write!(f, "schedule: {e}"),
            EngineError::Exec(e) => write!(f, "run: {e}"),
        }
    }
}

impl core::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EngineError::Gguf(e) => Some(e),
            EngineError::Graph(e) => Some(e),
            EngineError::Place(e) => Some(e),
            EngineError::Sched(e) => Some(e),
            EngineError::Exec(e) => Some(e),
            EngineError::UnsupportedArch { .. }
            | EngineError::UnsupportedTensor { .. }
            | EngineError::BadModel { .. }
            | EngineError::Context { .. }
            | EngineError::Token { .. } => None,
        }
    }
}

macro_rules! from {
    ($t:ty, $v:ident) => {
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::$v(e)
            }
        }
    };
}
from!(GgufError, Gguf);
from!(GraphError, Graph);
from!(PlaceError, Place);
from!(SchedError, Sched);
from!(ExecError, Exec);
