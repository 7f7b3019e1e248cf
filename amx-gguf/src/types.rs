//! ggml tensor types whose byte size this reader knows: the block formats of
//! [`amx_core::formats`] plus the plain integer and float types.

use amx_core::formats::Format;

/// ggml type id of `F32`.
pub const GGML_TYPE_F32: u32 = 0;
/// ggml type id of `I8`.
pub const GGML_TYPE_I8: u32 = 24;
/// ggml type id of `I16`.
pub const GGML_TYPE_I16: u32 = 25;
/// ggml type id of `I32`.
pub const GGML_TYPE_I32: u32 = 26;
/// ggml type id of `I64`.
pub const GGML_TYPE_I64: u32 = 27;
/// ggml type id of `F64`.
pub const GGML_TYPE_F64: u32 = 28;

/// How a ggml type lays out values: `block_bytes` bytes hold `block_values` values
/// (1 value per "block" for the plain types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeLayout {
    /// Values per block.
    pub block_values: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

const fn plain(bytes: u64) -> TypeLayout {
    TypeLayout { block_values: 1, block_bytes: bytes }
}

/// The layout of ggml type `ggml_type`, or `None` for a type this reader cannot size
/// (ggml types outside [`Format`] and the plain F32/F64/I8/I16/I32/I64).
pub fn type_layout(ggml_type: u32) -> Option<TypeLayout> {
    match ggml_type {
        GGML_TYPE_F32 | GGML_TYPE_I32 => Some(plain(4)),
        GGML_TYPE_F64 | GGML_TYPE_I64 => Some(plain(8)),
        GGML_TYPE_I8 => Some(plain(1)),
        GGML_TYPE_I16 => Some(plain(2)),
        id => Format::from_ggml_type(id).ok().map(|f| TypeLayout {
            block_values: f.block_values() as u64,
            block_bytes: f.block_bytes() as u64,
        }),
    }
}

/// The ggml name of type `ggml_type` (`"F32"`, `"Q4_K"`, ...), for the types
/// [`type_layout`] knows.
pub fn type_name(ggml_type: u32) -> Option<&'static str> {
    match ggml_type {
        GGML_TYPE_F32 => Some("F32"),
        GGML_TYPE_I8 => Some("I8"),
        GGML_TYPE_I16 => Some("I16"),
        GGML_TYPE_I32 => Some("I32"),
        GGML_TYPE_I64 => Some("I64"),
        GGML_TYPE_F64 => Some("F64"),
        id => Format::from_ggml_type(id).ok().map(Format::name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes as in ggml's `type_traits` table (ggml.c), written out independently of
    /// `amx_core::formats` so that a wrong entry on either side shows up here.
    #[test]
    fn layouts_match_ggml() {
        let want: [(u32, &str, u64, u64); 31] = [
            (0, "F32", 1, 4),
            (1, "F16", 1, 2),
            (2, "Q4_0", 32, 18),
            (3, "Q4_1", 32, 20),
            (6, "Q5_0", 32, 22),
            (7, "Q5_1", 32, 24),
            (8, "Q8_0", 32, 34),
            (10, "Q2_K", 256, 84),
            (11, "Q3_K", 256, 110),
            (12, "Q4_K", 256, 144),
            (13, "Q5_K", 256, 176),
            (14, "Q6_K", 256, 210),
            (16, "IQ2_XXS", 256, 66),
            (17, "IQ2_XS", 256, 74),
            (18, "IQ3_XXS", 256, 98),
            (21, "IQ3_S", 256, 110),
            (19, "IQ1_S", 256, 50),
            (29, "IQ1_M", 256, 56),
            (20, "IQ4_NL", 32, 18),
            (22, "IQ2_S", 256, 82),
            (23, "IQ4_XS", 256, 136),
            (24, "I8", 1, 1),
            (25, "I16", 1, 2),
            (26, "I32", 1, 4),
            (27, "I64", 1, 8),
            (28, "F64", 1, 8),
            (30, "BF16", 1, 2),
            (34, "TQ1_0", 256, 54),
            (35, "TQ2_0", 256, 66),
            (39, "MXFP4", 32, 17),
            (40, "NVFP4", 64, 36),
        ];
        for (id, name, block_values, block_bytes) in want {
            assert_eq!(
                type_layout(id),
                Some(TypeLayout { block_values, block_bytes }),
                "type {id}"
            );
            assert_eq!(type_name(id), Some(name), "type {id}");
        }
        // Types that exist in ggml but are not sized here (Q8_1) and ids that do not
        // exist (or no longer: 31, 32, 36).
        for id in [9, 31, 32, 36, 41, 1000, u32::MAX] {
            assert_eq!(type_layout(id), None, "type {id}");
            assert_eq!(type_name(id), None, "type {id}");
        }
    }
}
