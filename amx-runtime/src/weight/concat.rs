//! [`PackedWeight::concat_rows`]: weights stacked along `n` (fused QKV, gate+up).

use amx_core::pack::{self, PackError, PackedLayout};

use crate::error::AllocError;
use crate::hugepage::HugeBuffer;

use super::{PackedWeight, WeightError};

impl PackedWeight {
    /// One weight whose rows are those of `parts` in order: for each matrix `e`, the rows
    /// of matrix `e` of `parts[0]`, then of `parts[1]`, and so on (ggml's concatenation
    /// along `ne1`). One matmul with it computes the outputs of all parts side by side
    /// (fused Q, K and V, or gate and up): output columns
    /// `n0 + .. + n(i-1) .. n0 + .. + ni` are part `i`'s.
    ///
    /// The result is byte for byte the weight packed from the concatenated ggml rows.
    /// Rows are packed in panels of 16, the last one padded, so when a part's `n` is not
    /// a multiple of 16 the panels cannot just be copied: each part's ggml rows are
    /// unpacked into one temporary buffer of the result's ggml size, then packed again
    /// (a load-time cost of about one pack).
    ///
    /// Errors: [`WeightError::NoParts`]; [`WeightError::PartFormat`],
    /// [`WeightError::PartK`], [`WeightError::PartMatrices`] naming the first part that
    /// differs from `parts[0]` and both numbers; [`WeightError::Pack`] with
    /// [`PackError::Overflow`] when the rows add up past `usize`; [`WeightError::Alloc`].
    ///
    /// ```
    /// use amx_runtime::amx_core::formats::Format;
    /// use amx_runtime::weight::{PackedWeight, WeightError};
    ///
    /// // q: 3 rows, k: 2 rows, v: 2 rows, each of 32 F16 values (row r all r + 1).
    /// let f16 = |rows: usize, first: usize| -> Vec<u8> {
    ///     (0..rows * 32)
    ///         .flat_map(|i| {
    ///             let v = (first + i / 32 + 1) as f32;
    ///             amx_runtime::amx_core::formats::half::f32_to_f16(v).to_le_bytes()
    ///         })
    ///         .collect()
    /// };
    /// let id = Format::F16.ggml_type();
    /// let q = PackedWeight::from_ggml(id, &[32, 3], &f16(3, 0))?;
    /// let k = PackedWeight::from_ggml(id, &[32, 2], &f16(2, 3))?;
    /// let v = PackedWeight::from_ggml(id, &[32, 2], &f16(2, 5))?;
    /// let qkv = PackedWeight::concat_rows(&[&q, &k, &v])?;
    /// assert_eq!((qkv.n(), qkv.k()), (7, 32));
    /// // Equal to packing the concatenated rows.
    /// assert_eq!(qkv.bytes(), PackedWeight::from_ggml(id, &[32, 7], &f16(7, 0))?.bytes());
    /// let mut row = [0f32; 32];
    /// qkv.dequantize_row(0, 4, &mut row)?; // k's second row
    /// assert_eq!(row, [5.0; 32]);
    ///
    /// let other = PackedWeight::from_ggml(id, &[64, 2], &f16(4, 0))?;
    /// let e = PackedWeight::concat_rows(&[&q, &other]).unwrap_err();
    /// assert_eq!(e, WeightError::PartK { part: 1, expected: 32, found: 64 });
    /// # Ok::<(), WeightError>(())
    /// ```
    pub fn concat_rows(parts: &[&PackedWeight]) -> Result<PackedWeight, WeightError> {
        let first = parts.first().ok_or(WeightError::NoParts)?;
        let (format, k, matrices) = (first.format(), first.k(), first.matrices());
        let mut n = 0usize;
        for (part, w) in parts.iter().enumerate() {
            if w.format() != format {
                return Err(WeightError::PartFormat { part, expected: format, found: w.format() });
            }
            if w.k() != k {
                return Err(WeightError::PartK { part, expected: k, found: w.k() });
            }
            if w.matrices() != matrices {
                return Err(WeightError::PartMatrices {
                    part,
                    expected: matrices,
                    found: w.matrices(),
                });
            }
            n = n.checked_add(w.n()).ok_or(PackError::Overflow)?;
        }
        let layout = PackedLayout::new(format, n, k, matrices)?;
        let mut src = Vec::new();
        src.try_reserve_exact(layout.source_bytes())
            .map_err(|_| AllocError::Refused { bytes: layout.source_bytes() })?;
        src.resize(layout.source_bytes(), 0);
        let mut at = 0;
        for e in 0..matrices {
            for w in parts {
                let ppm = w.layout().panels_per_matrix();
                let panels = e * ppm..(e + 1) * ppm;
                // Matrix e's rows of this part: `n` rows of `source_row_bytes`, the same
                // row size for every part (same format and k).
                let len = pack::source_range(w.layout(), panels.clone()).len();
                pack::unpack_panels(&w.packed(), panels, &mut src[at..at + len])?;
                at += len;
            }
        }
        let mut buf = HugeBuffer::try_zeroed(layout.total_bytes())?;
        pack::pack(format, n, k, matrices, &src, &mut buf)?;
        Ok(PackedWeight { layout, buf })
    }
}
