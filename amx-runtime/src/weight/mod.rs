//! Owned packed weights: [`PackedWeight`], one weight packed by amx-core on huge pages,
//! built straight from a GGUF tensor's description (ggml type, ggml dims, bytes).
//!
//! # Dimensions
//!
//! [`PackedWeight::from_ggml`] takes ggml's `ne` as a GGUF tensor info records it:
//! `ne0 = k` (values per row, the contracted dimension), `ne1 = n` (rows, output
//! columns of `y = x * W^T`), optionally `ne2` = stacked matrices (MoE experts). So `n`
//! and `k` come from where the file puts them and cannot be swapped; a byte count that
//! does not match the dims, a `k` that is not a multiple of the type's block, an empty
//! dimension and any other number of dims are errors.
//!
//! # What it serves
//!
//! - the matmuls: [`PackedWeight::bytes`] and [`PackedWeight::format`] are what
//!   [`crate::pool::Pool::matmul`] and amx-core's [`amx_core::gemm`] take, and
//!   [`PackedWeight::packed`] the checked view ([`PackedRef`]) the range and MoE calls
//!   take;
//! - GET_ROWS: [`PackedWeight::dequantize_row`] gives a row back as f32 values from the
//!   packed bytes, bit for bit as dequantizing the original ggml row, so one copy of a
//!   tied token embedding serves both the lookup and the logits;
//! - fused projections: [`PackedWeight::concat_rows`] stacks Q, K and V (or gate and up)
//!   along `n` into one weight, so one matmul computes all of them.
//!
//! # Memory and integrity
//!
//! The packed buffer is a [`HugeBuffer`] (2 MiB pages from 2 MiB on, as the AMX buffer
//! type's). The weight packs its buffer itself, so it is valid by construction; a buffer
//! packed elsewhere ([`PackedWeight::from_packed`]) is verified end to end (header and
//! body checksum) before it is taken. The bytes are never handed out mutably.

use amx_core::formats::Format;
use amx_core::pack::{self, PackedLayout, PackedRef};

use crate::hugepage::HugeBuffer;

mod concat;
mod error;

pub use error::WeightError;

/// One weight (or a stack of `matrices` weights of the same shape) packed by amx-core,
/// owned, on huge pages. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct PackedWeight {
    layout: PackedLayout,
    buf: HugeBuffer,
}

/// The shape `(n, k, matrices)` of ggml dims `[ne0 = k, ne1 = n]` or `[k, n, ne2]`.
fn shape_of(dims: &[u64]) -> Result<(usize, usize, usize), WeightError> {
    let dim = |d: u64| usize::try_from(d).map_err(|_| WeightError::Pack(pack::PackError::Overflow));
    match *dims {
        [k, n] => Ok((dim(n)?, dim(k)?, 1)),
        [k, n, e] => Ok((dim(n)?, dim(k)?, dim(e)?)),
        _ => Err(WeightError::DimCount { count: dims.len() }),
    }
}

impl PackedWeight {
    /// Packs a weight from a GGUF tensor's description: its ggml type id, its ggml dims
    /// (`[ne0 = k, ne1 = n]`, or `[k, n, ne2 = matrices]` for stacked experts) and its
    /// bytes as in the file (`matrices * n` ggml rows). The single entry point for GGUF
    /// tensors of a type amx-core packs; an F32 weight goes through
    /// [`PackedWeight::from_f32_as_bf16`].
    ///
    /// Errors: [`WeightError::UnsupportedType`] for a type without a packed format (named
    /// by ggml's name), [`WeightError::DimCount`], [`WeightError::Pack`] with
    /// [`pack::PackError::EmptyShape`] (a zero dim), [`pack::PackError::NotBlockMultiple`]
    /// (`k` is not a multiple of the type's block), [`pack::PackError::SourceLength`]
    /// (`bytes` is not the dims' size), [`pack::PackError::Overflow`];
    /// [`WeightError::Alloc`].
    ///
    /// ```
    /// use amx_runtime::amx_core::formats::Format;
    /// use amx_runtime::amx_core::pack::PackError;
    /// use amx_runtime::weight::{PackedWeight, WeightError};
    ///
    /// // A Q8_0 weight of n = 3 rows by k = 64 values: ggml dims [64, 3], 2 blocks per row.
    /// let q8_0 = Format::Q8_0.ggml_type();
    /// let bytes = vec![0u8; 3 * 2 * 34];
    /// let w = PackedWeight::from_ggml(q8_0, &[64, 3], &bytes)?;
    /// assert_eq!((w.format(), w.n(), w.k(), w.matrices()), (Format::Q8_0, 3, 64, 1));
    ///
    /// // The dims swapped: k = 3 is not a whole number of 32-value blocks.
    /// let swapped = PackedWeight::from_ggml(q8_0, &[3, 64], &bytes).unwrap_err();
    /// assert_eq!(swapped, WeightError::Pack(PackError::NotBlockMultiple {
    ///     format: Format::Q8_0, k: 3, block: 32 }));
    /// // Q8_1 (ggml type 9) has no packed format.
    /// let e = PackedWeight::from_ggml(9, &[64, 3], &bytes).unwrap_err();
    /// assert!(e.to_string().contains("Q8_1"), "{e}");
    /// # Ok::<(), WeightError>(())
    /// ```
    pub fn from_ggml(ggml_type: u32, dims: &[u64], bytes: &[u8]) -> Result<Self, WeightError> {
        let format = Format::from_ggml_type(ggml_type)
            .map_err(|_| WeightError::UnsupportedType { ggml_type })?;
        let (n, k, matrices) = shape_of(dims)?;
        let layout = PackedLayout::new(format, n, k, matrices)?;
        if bytes.len() != layout.source_bytes() {
            return Err(WeightError::Pack(pack::PackError::SourceLength {
                expected: layout.source_bytes(),
                actual: bytes.len(),
            }));
        }
        let mut buf = HugeBuffer::try_zeroed(layout.total_bytes())?;
        pack::pack(format, n, k, matrices, bytes, &mut buf)?;
        Ok(Self { layout, buf })
    }

    /// Packs the tensor `name` of a GGUF file: [`PackedWeight::from_ggml`] with the
    /// tensor's ggml type, its dims as the file records them and its bytes (zero-copy from
    /// the file's map when it was opened with [`amx_gguf::GgufFile::open`]).
    ///
    /// Errors: [`WeightError::Gguf`] when the file has no such tensor or its bytes lie
    /// outside the file; then as [`PackedWeight::from_ggml`].
    pub fn from_gguf(file: &amx_gguf::GgufFile, name: &str) -> Result<Self, WeightError> {
        let info = file.tensor(name)?;
        let dims = &info.ne[..(info.n_dims as usize).min(info.ne.len())];
        Self::from_ggml(info.ggml_type, dims, file.tensor_bytes(name)?)
    }

    /// Packs `matrices` weights of `n` rows by `k` f32 values (`rows`, row after row,
    /// matrix after matrix) as [`Format::BF16`] (each value rounded to nearest, ties to
    /// even: [`pack::pack_f32_as_bf16`]). For F32 weights, and weights of a ggml type
    /// without a packed format once dequantized.
    ///
    /// Errors: [`WeightError::Pack`] with [`pack::PackError::EmptyShape`],
    /// [`pack::PackError::SourceLength`] (in bytes, 4 per value) when `rows` is not
    /// `matrices * n * k` values, [`pack::PackError::Overflow`]; [`WeightError::Alloc`].
    ///
    /// ```
    /// use amx_runtime::amx_core::formats::Format;
    /// use amx_runtime::weight::PackedWeight;
    ///
    /// let w = PackedWeight::from_f32_as_bf16(2, 3, 1, &[1.0, 2.0, 3.0, 4.0, 5.0, 1.0 / 3.0])?;
    /// assert_eq!((w.format(), w.n(), w.k()), (Format::BF16, 2, 3));
    /// let mut row = [0f32; 3];
    /// w.dequantize_row(0, 1, &mut row)?;
    /// assert_eq!(row, [4.0, 5.0, 0.333984375]); // 1/3 rounded to BF16
    /// # Ok::<(), amx_runtime::weight::WeightError>(())
    /// ```
    pub fn from_f32_as_bf16(
        n: usize,
        k: usize,
        matrices: usize,
        rows: &[f32],
    ) -> Result<Self, WeightError> {
        let layout = PackedLayout::new(Format::BF16, n, k, matrices)?;
        let mut buf = HugeBuffer::try_zeroed(layout.total_bytes())?;
        pack::pack_f32_as_bf16(n, k, matrices, rows, &mut buf)?;
        Ok(Self { layout, buf })
    }

    /// Takes a buffer packed elsewhere (by amx-core's [`pack::pack`], or a weight's
    /// [`PackedWeight::bytes`] saved earlier) after verifying it end to end: the header,
    /// then the body checksum ([`pack::verify`]). Bytes past the size the header records
    /// are not copied.
    ///
    /// Errors: [`WeightError::Pack`] with what [`pack::verify`] refused (a bad header,
    /// [`pack::PackError::BodyChecksum`] for a changed body, a truncated buffer);
    /// [`WeightError::Alloc`].
    ///
    /// ```
    /// use amx_runtime::amx_core::pack::PackError;
    /// use amx_runtime::weight::{PackedWeight, WeightError};
    ///
    /// let w = PackedWeight::from_f32_as_bf16(4, 32, 1, &[0.5; 4 * 32])?;
    /// let copy = PackedWeight::from_packed(w.bytes())?;
    /// assert_eq!(copy.bytes(), w.bytes());
    ///
    /// let mut changed = w.bytes().to_vec();
    /// changed[100] ^= 1; // one bit of the body
    /// let e = PackedWeight::from_packed(&changed).unwrap_err();
    /// assert!(matches!(e, WeightError::Pack(PackError::BodyChecksum { .. })), "{e}");
    /// # Ok::<(), WeightError>(())
    /// ```
    pub fn from_packed(bytes: &[u8]) -> Result<Self, WeightError> {
        let layout = *pack::verify(bytes)?.layout();
        let mut buf = HugeBuffer::try_zeroed(layout.total_bytes())?;
        buf.copy_from_slice(&bytes[..layout.total_bytes()]);
        Ok(Self { layout, buf })
    }

    /// The format the weight is packed in ([`Format::BF16`] for f32 weights).
    pub fn format(&self) -> Format {
        self.layout.format()
    }

    /// Rows per matrix (`ne1`: the output columns of `y = x * W^T`).
    pub fn n(&self) -> usize {
        self.layout.n()
    }

    /// Values per row (`ne0`: the contracted dimension, the width of `x`).
    pub fn k(&self) -> usize {
        self.layout.k()
    }

    /// Stacked matrices (`ne2`; 1 for a plain weight).
    pub fn matrices(&self) -> usize {
        self.layout.matrices()
    }

    /// The packed layout (format, shape and sizes).
    pub fn layout(&self) -> &PackedLayout {
        &self.layout
    }

    /// The packed buffer, header included: what [`crate::pool::Pool::matmul`] and
    /// amx-core's GEMM calls take with [`PackedWeight::format`].
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The checked view of the packed buffer, for the calls that take a [`PackedRef`]
    /// (range GEMM, MoE, [`pack::unpack`]). Checks the 64-byte header (constant time).
    pub fn packed(&self) -> PackedRef<'_> {
        match PackedRef::parse(&self.buf) {
            Ok(packed) => packed,
            // The buffer was packed (or verified) by a constructor and is never written
            // since: its header always parses.
            Err(e) => unreachable!("a PackedWeight's own header does not parse: {e}"),
        }
    }

    /// Whether the buffer is on memory advised for transparent huge pages (see
    /// [`HugeBuffer::huge_pages_advised`]).
    pub fn huge_pages_advised(&self) -> bool {
        self.buf.huge_pages_advised()
    }

    /// Row `row` of matrix `matrix` as f32 values into `out` (exactly `k` values), read
    /// from the packed bytes: bit for bit what [`amx_core::formats::dequantize`] gives for
    /// the original ggml row (the BF16 values for a weight packed from f32). A GET_ROWS;
    /// no allocation ([`pack::dequantize_row`]).
    ///
    /// Errors: [`WeightError::Pack`] with [`pack::PackError::RowOutOfRange`] or
    /// [`pack::PackError::RowLength`], naming the caller's numbers.
    ///
    /// # Example: a tied embedding
    ///
    /// One weight serves the token lookup (its rows) and the logits (the matmul with the
    /// last hidden state), as in a model whose output projection is tied to its token
    /// embedding.
    ///
    /// ```
    /// use amx_runtime::amx_core::gemm::{MatMut, MatRef, Path};
    /// use amx_runtime::pool::Pool;
    /// use amx_runtime::weight::PackedWeight;
    ///
    /// // vocab = 40 tokens (n), hidden size 64 (k).
    /// let (vocab, hidden) = (40, 64);
    /// let table: Vec<f32> = (0..vocab * hidden).map(|i| ((i % 13) as f32 - 6.0) / 8.0).collect();
    /// let embedding = PackedWeight::from_f32_as_bf16(vocab, hidden, 1, &table)?;
    ///
    /// // The lookup: token 7's row.
    /// let mut x = vec![0f32; hidden];
    /// embedding.dequantize_row(0, 7, &mut x)?;
    /// assert_eq!(&x[..], &table[7 * hidden..8 * hidden]); // these values are exact in BF16
    ///
    /// // The logits: x times the same weight, on the exact scalar path.
    /// let pool = Pool::new(1);
    /// let mut logits = vec![0f32; vocab];
    /// pool.matmul_on(
    ///     embedding.bytes(),
    ///     embedding.format(),
    ///     &MatRef::new(&x, 1, hidden, hidden)?,
    ///     &mut MatMut::new(&mut logits, 1, vocab, vocab)?,
    ///     Path::Scalar,
    /// )?;
    /// let mut row = vec![0f32; hidden];
    /// for (t, &logit) in logits.iter().enumerate() {
    ///     embedding.dequantize_row(0, t, &mut row)?;
    ///     let dot: f32 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
    ///     assert!((logit - dot).abs() <= 1e-4 * dot.abs().max(1.0), "token {t}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dequantize_row(
        &self,
        matrix: usize,
        row: usize,
        out: &mut [f32],
    ) -> Result<(), WeightError> {
        Ok(pack::dequantize_row(&self.packed(), matrix, row, out)?)
    }
}

#[cfg(test)]
mod tests;
