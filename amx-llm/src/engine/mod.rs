//! The model: hyper-parameters from GGUF metadata, weights placed by the runtime, the forward pass.
