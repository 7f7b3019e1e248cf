//! The [`Format`] enum: names, GGML type ids, block and row sizes.

use core::fmt;

use super::{
    BlockIQ4_XS, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_0, FormatError,
};

/// A ggml weight storage format. The variant names follow gguf-py ([`Format::name`]).
#[non_exhaustive]
#[allow(non_camel_case_types)] // Q4_0 etc.: the names ggml and gguf-py use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// 32 values per 18-byte block: f16 scale `d`, 32 unsigned nibbles; `x = d * (q - 8)`.
    Q4_0,
    /// 32 values per 20-byte block: f16 `d` and `m`, 32 nibbles; `x = d * q + m`.
    Q4_1,
    /// 32 values per 34-byte block: f16 scale `d`, 32 `i8`; `x = d * q`.
    Q8_0,
    /// 256 values per 144-byte super-block: 8 sub-blocks of 32 with 6-bit scales and mins.
    Q4_K,
    /// 256 values per 176-byte super-block: like Q4_K plus a fifth bit per value.
    Q5_K,
    /// 256 values per 210-byte super-block: 6-bit values, 16 `i8` scales of 16 values.
    Q6_K,
    /// 256 values per 136-byte super-block: 4-bit indices into a non-linear table, 6-bit
    /// scales per 32 values.
    IQ4_XS,
    /// IEEE binary16, one value per 2 bytes.
    F16,
    /// bfloat16, one value per 2 bytes.
    BF16,
}

impl Format {
    /// Every format, in GGML type id order.
    pub const ALL: [Format; 9] = [
        Format::F16,
        Format::Q4_0,
        Format::Q4_1,
        Format::Q8_0,
        Format::Q4_K,
        Format::Q5_K,
        Format::Q6_K,
        Format::IQ4_XS,
        Format::BF16,
    ];

    /// The gguf-py name (`GGMLQuantizationType.name`): "Q4_0", "Q4_K", "IQ4_XS", "BF16", ...
    pub const fn name(self) -> &'static str {
        match self {
            Format::Q4_0 => "Q4_0",
            Format::Q4_1 => "Q4_1",
            Format::Q8_0 => "Q8_0",
            Format::Q4_K => "Q4_K",
            Format::Q5_K => "Q5_K",
            Format::Q6_K => "Q6_K",
            Format::IQ4_XS => "IQ4_XS",
            Format::F16 => "F16",
            Format::BF16 => "BF16",
        }
    }

    /// The format with this gguf-py name, compared ignoring ASCII case ("q4_k" or "Q4_K").
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The `GGML_TYPE_*` id, as stored in a GGUF tensor info.
    pub const fn ggml_type(self) -> u32 {
        match self {
            Format::F16 => 1,
            Format::Q4_0 => 2,
            Format::Q4_1 => 3,
            Format::Q8_0 => 8,
            Format::Q4_K => 12,
            Format::Q5_K => 13,
            Format::Q6_K => 14,
            Format::IQ4_XS => 23,
            Format::BF16 => 30,
        }
    }

    /// The format with this `GGML_TYPE_*` id, or [`FormatError::UnknownGgmlType`] for an id
    /// that is unknown or not supported here (F32 = 0 included).
    pub const fn from_ggml_type(id: u32) -> Result<Format, FormatError> {
        match id {
            1 => Ok(Format::F16),
            2 => Ok(Format::Q4_0),
            3 => Ok(Format::Q4_1),
            8 => Ok(Format::Q8_0),
            12 => Ok(Format::Q4_K),
            13 => Ok(Format::Q5_K),
            14 => Ok(Format::Q6_K),
            23 => Ok(Format::IQ4_XS),
            30 => Ok(Format::BF16),
            _ => Err(FormatError::UnknownGgmlType { id }),
        }
    }

    /// Values per block: 32 (Q4_0, Q4_1, Q8_0), 256 (K-quants, IQ4_XS) or 1 (F16, BF16).
    pub const fn block_values(self) -> usize {
        match self {
            Format::Q4_0 => BlockQ4_0::VALUES,
            Format::Q4_1 => BlockQ4_1::VALUES,
            Format::Q8_0 => BlockQ8_0::VALUES,
            Format::Q4_K => BlockQ4_K::VALUES,
            Format::Q5_K => BlockQ5_K::VALUES,
            Format::Q6_K => BlockQ6_K::VALUES,
            Format::IQ4_XS => BlockIQ4_XS::VALUES,
            Format::F16 | Format::BF16 => 1,
        }
    }

    /// Bytes per block: 18, 20, 34, 144, 176, 210, 136, 2, 2.
    pub const fn block_bytes(self) -> usize {
        match self {
            Format::Q4_0 => BlockQ4_0::BYTES,
            Format::Q4_1 => BlockQ4_1::BYTES,
            Format::Q8_0 => BlockQ8_0::BYTES,
            Format::Q4_K => BlockQ4_K::BYTES,
            Format::Q5_K => BlockQ5_K::BYTES,
            Format::Q6_K => BlockQ6_K::BYTES,
            Format::IQ4_XS => BlockIQ4_XS::BYTES,
            Format::F16 | Format::BF16 => 2,
        }
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
        let table: [(Format, u32, &str, usize, usize); 9] = [
            (Format::Q4_0, 2, "Q4_0", 32, 18),
            (Format::Q4_1, 3, "Q4_1", 32, 20),
            (Format::Q8_0, 8, "Q8_0", 32, 34),
            (Format::Q4_K, 12, "Q4_K", 256, 144),
            (Format::Q5_K, 13, "Q5_K", 256, 176),
            (Format::Q6_K, 14, "Q6_K", 256, 210),
            (Format::IQ4_XS, 23, "IQ4_XS", 256, 136),
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
        for id in [0, 4, 5, 6, 7, 9, 10, 11, 15, 20, 22, 24, 29, 31, 39, u32::MAX] {
            assert_eq!(Format::from_ggml_type(id), Err(FormatError::UnknownGgmlType { id }));
        }
        for name in ["", "Q4", "Q4K", "F32", "Q4_K_M", "IQ4_NL", "Q4_0 "] {
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
