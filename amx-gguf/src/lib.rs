//! # amx-gguf
//!
//! A GGUF reader (versions 2 and 3, little-endian) for inference engines: typed metadata
//! getters, tensor infos in ggml's dims and type ids, and zero-copy tensor bytes from a
//! memory map of the file.
//!
//! ```
//! use amx_gguf::GgufFile;
//! # fn main() -> Result<(), amx_gguf::GgufError> {
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/q8_0_m1_n64_k256_plain.gguf");
//! let file = GgufFile::open(path)?; // memory-mapped: see "The file must not change" below
//! assert_eq!(file.get_str("amx.test.type")?, "Q8_0");
//! assert_eq!(file.get_u32("amx.test.k")?, 256);
//!
//! let w = file.tensor("w")?;
//! // ne0 = 256 values per row (k), ne1 = 64 rows (n), one matrix.
//! assert_eq!((w.ne0(), w.ne1(), w.ne2()), (256, 64, 1));
//! assert_eq!((w.ggml_type, w.type_name()), (8, Some("Q8_0")));
//! // 64 rows of 8 Q8_0 blocks of 34 bytes, straight from the map.
//! assert_eq!(file.tensor_bytes("w")?.len(), 64 * 8 * 34);
//! # Ok(())
//! # }
//! ```
//!
//! ## Dims: which is n and which is k
//!
//! A tensor's dims are stored as in the file, `ne0` first ([`TensorInfo::ne`]); `ne0`
//! varies fastest in memory. For a matmul weight:
//!
//! | dim   | meaning                                            | in a `Y = X W^T` matmul |
//! |-------|----------------------------------------------------|-------------------------|
//! | `ne0` | values per row, a whole number of blocks of the type | `k`                    |
//! | `ne1` | rows                                               | `n` (outputs)           |
//! | `ne2` | stacked matrices (the experts of a MoE weight)     | experts                 |
//! | `ne3` | a fourth stacking dim, 1 for weights               |                         |
//!
//! So `blk.0.attn_q.weight` of a model with hidden size 576 has `ne0 = 576` (k) and
//! `ne1 = 576` (n); `blk.0.ffn_up.weight` with hidden size 576 and FFN size 1536 has
//! `ne0 = 576` (k), `ne1 = 1536` (n); an expert weight `blk.0.ffn_up_exps.weight` has
//! `ne2` experts of `ne1 x ne0`.
//!
//! ## The file must not change while it is mapped
//!
//! [`GgufFile::open`] maps the file read-only and hands out slices of the map. The file
//! must not be written to or truncated while the [`GgufFile`] lives (by this process or
//! another): a write changes bytes the program holds as `&[u8]`, a truncation makes
//! reading the lost pages kill the process with `SIGBUS`. Model files are normally
//! written once and then only read; for a file that may change, [`GgufFile::read`]
//! copies it into memory instead (the same checks, no map).
//!
//! ## Untrusted files
//!
//! Bad input is a [`GgufError`], never a panic: only regular files are opened (a
//! directory, `/dev/zero` or a FIFO is [`GgufError::NotARegularFile`]), at most the size
//! the file had when opened is mapped or read, every read is bounds-checked, every count
//! is checked against the bytes left before anything is allocated for it (and what is
//! reserved for a count never exceeds the bytes left), array nesting is capped at
//! [`MAX_ARRAY_DEPTH`], and every tensor of a known type is checked to lie inside the
//! file when the file is parsed (an absurd offset names the tensor, the offset and the
//! data section's size).
//!
//! ## Layout
//!
//! All little-endian: `"GGUF"`, u32 version, u64 tensor count, u64 key-value count, the
//! key-value pairs (u64-length string key, u32 value type, value), the tensor infos
//! (name, u32 n_dims, n_dims u64 dims `ne0..`, u32 ggml type, u64 offset), padding to
//! `general.alignment` (default 32), then the data section; tensor offsets are relative
//! to the data section and multiples of the alignment.
//!
//! ## Features
//!
//! - `writer` (off by default): the `writer` module, a tiny GGUF writer that builds byte
//!   images for tests, including malformed ones on request (it checks nothing, which is
//!   why engines do not get it by default).

mod error;
mod file;
mod metadata;
mod reader;
mod source;
mod tensor;
mod types;
mod value;

#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "writer"))]
pub mod writer;

pub use error::GgufError;
pub use file::GgufFile;
pub use tensor::TensorInfo;
pub use types::{
    GGML_TYPE_F32, GGML_TYPE_F64, GGML_TYPE_I8, GGML_TYPE_I16, GGML_TYPE_I32, GGML_TYPE_I64,
    TypeLayout, type_layout, type_name,
};
pub use value::{Array, Value, ValueType};

/// The data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u32 = 32;

/// The deepest array nesting accepted (an array of arrays is depth 2).
pub const MAX_ARRAY_DEPTH: usize = 8;
