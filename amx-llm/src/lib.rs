//! # amx-llm
//!
//! A reference engine: real GGUF models end to end on amx-runtime (placement, the
//! scheduler, the AMX buffer type), checked against llama.cpp.

pub mod engine;
pub mod tokenizer;
