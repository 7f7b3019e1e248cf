//! Tokenizers from GGUF metadata, with ids identical to llama.cpp's.
