//! The [`Format`] enum (defined from the registry): names, GGML type ids, block and row
//! sizes.

use core::fmt;

use super::{FormatError, registry, with_format};

registry!(define_format());

impl Format {
    /// The format with this gguf-py name, compared ignoring ASCII case ("q4_k" or "Q4_K").
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Values per block: 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4), 64 (NVFP4), 256
    /// (K-quants, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_XS, TQ1_0,
    /// TQ2_0) or 1 (F16, BF16).
    pub const fn block_values(self) -> usize {
        with_format!(self, F => F::BLOCK_VALUES)
    }

    /// Bytes per block, in [`Format::ALL`]'s order: 2 (F16), 18, 20, 22, 24, 34 (Q4_0 ..
    /// Q8_0), 84, 110, 144, 176, 210 (Q2_K .. Q6_K), 66 (IQ2_XXS), 74 (IQ2_XS), 18
    /// (IQ4_NL), 82 (IQ2_S), 98 (IQ3_XXS), 110 (IQ3_S), 50 (IQ1_S), 56 (IQ1_M), 136
    /// (IQ4_XS), 2 (BF16), 54 (TQ1_0), 66 (TQ2_0), 17 (MXFP4), 36 (NVFP4).
    pub const fn block_bytes(self) -> usize {
        with_format!(self, F => F::BLOCK_BYTES)
    }

    /// Bytes taken by `k` values (one row of K values) in this format.
    ///
    /// Errors: [`FormatError::NotBlockMultiple`] when `k` is not a multiple of
    /// [`Format::block_values`], [`FormatError::Overflow`] when the size does not fit `usize`.
    pub const fn row_bytes(self, k: usize) -> Result<usize, FormatError> {
        let block = self.block_values();
        if !k.is_multiple_of(block) {
            return Err(FormatError::NotBlockMultiple { format: self, values: k, block });
        }
        match (k / block).checked_mul(self.block_bytes()) {
            Some(bytes) => Ok(bytes),
            None => Err(FormatError::Overflow),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_ids_names_and_sizes() {
        let table: [(Format, u32, &str, usize, usize); 25] = [
            (Format::Q4_0, 2, "Q4_0", 32, 18),
            (Format::Q4_1, 3, "Q4_1", 32, 20),
            (Format::Q5_0, 6, "Q5_0", 32, 22),
            (Format::Q5_1, 7, "Q5_1", 32, 24),
            (Format::Q8_0, 8, "Q8_0", 32, 34),
            (Format::Q2_K, 10, "Q2_K", 256, 84),
            (Format::Q3_K, 11, "Q3_K", 256, 110),
            (Format::Q4_K, 12, "Q4_K", 256, 144),
            (Format::Q5_K, 13, "Q5_K", 256, 176),
            (Format::Q6_K, 14, "Q6_K", 256, 210),
            (Format::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
            (Format::IQ2_XS, 17, "IQ2_XS", 256, 74),
            (Format::IQ2_S, 22, "IQ2_S", 256, 82),
            (Format::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
            (Format::IQ3_S, 21, "IQ3_S", 256, 110),
            (Format::IQ1_S, 19, "IQ1_S", 256, 50),
            (Format::IQ1_M, 29, "IQ1_M", 256, 56),
            (Format::IQ4_NL, 20, "IQ4_NL", 32, 18),
            (Format::IQ4_XS, 23, "IQ4_XS", 256, 136),
            (Format::TQ1_0, 34, "TQ1_0", 256, 54),
            (Format::TQ2_0, 35, "TQ2_0", 256, 66),
            (Format::MXFP4, 39, "MXFP4", 32, 17),
            (Format::NVFP4, 40, "NVFP4", 64, 36),
            (Format::F16, 1, "F16", 1, 2),
            (Format::BF16, 30, "BF16", 1, 2),
        ];
        for (format, id, name, values, bytes) in table {
            assert_eq!(format.ggml_type(), id);
            assert_eq!(Format::from_ggml_type(id), Ok(format));
            assert_eq!(format.name(), name);
            assert_eq!(Format::from_name(name), Some(format));
            let mut lower = [0u8; 8];
            lower[..name.len()].copy_from_slice(name.as_bytes());
            lower.make_ascii_lowercase();
            let lower = core::str::from_utf8(&lower[..name.len()]).unwrap();
            assert_eq!(Format::from_name(lower), Some(format));
            assert_eq!(format.block_values(), values);
            assert_eq!(format.block_bytes(), bytes);
            assert!(Format::ALL.contains(&format));
        }
        for (i, a) in Format::ALL.iter().enumerate() {
            for b in &Format::ALL[i + 1..] {
                assert_ne!(a, b);
                assert!(a.ggml_type() < b.ggml_type());
            }
        }
    }

    #[test]
    fn unknown_ids_and_names() {
        for id in [0, 4, 5, 9, 15, 24, 31, 32, 33, 41, u32::MAX] {
            assert_eq!(Format::from_ggml_type(id), Err(FormatError::UnknownGgmlType { id }));
        }
        for name in ["", "Q4", "Q4K", "F32", "Q4_K_M", "IQ4_NL ", "Q4_0 "] {
            assert_eq!(Format::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn row_bytes_and_its_errors() {
        assert_eq!(Format::Q4_0.row_bytes(0), Ok(0));
        assert_eq!(Format::Q4_0.row_bytes(4096), Ok(128 * 18));
        assert_eq!(Format::Q4_K.row_bytes(4096), Ok(16 * 144));
        assert_eq!(Format::Q6_K.row_bytes(512), Ok(420));
        assert_eq!(Format::BF16.row_bytes(7), Ok(14));
        assert_eq!(
            Format::Q5_K.row_bytes(4000),
            Err(FormatError::NotBlockMultiple { format: Format::Q5_K, values: 4000, block: 256 })
        );
        assert_eq!(
            Format::Q8_0.row_bytes(33),
            Err(FormatError::NotBlockMultiple { format: Format::Q8_0, values: 33, block: 32 })
        );
        // Only formats with more bytes than values can overflow (F16, BF16, Q8_0).
        assert_eq!(Format::F16.row_bytes(usize::MAX), Err(FormatError::Overflow));
        assert_eq!(Format::BF16.row_bytes(usize::MAX / 2 + 1), Err(FormatError::Overflow));
        assert_eq!(Format::BF16.row_bytes(usize::MAX / 2), Ok(usize::MAX / 2 * 2));
        let k = usize::MAX / 32 * 32;
        assert_eq!(Format::Q8_0.row_bytes(k), Err(FormatError::Overflow));
        let k = usize::MAX / 34 * 32;
        assert_eq!(Format::Q8_0.row_bytes(k), Ok(usize::MAX / 34 * 34));
        let k = usize::MAX / 256 * 256;
        assert_eq!(Format::Q6_K.row_bytes(k), Ok(usize::MAX / 256 * 210));
    }
}
