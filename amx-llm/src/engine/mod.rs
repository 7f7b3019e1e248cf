//! The model: hyper-parameters from GGUF metadata, weights placed by the runtime, the
//! forward pass as a graph of the runtime's ops, a KV cache across steps.

pub mod error;
pub mod hparams;
pub mod model;
pub mod perplexity;
pub mod session;

pub use error::EngineError;
pub use hparams::{Arch, Hparams};
pub use session::{Engine, Options};
