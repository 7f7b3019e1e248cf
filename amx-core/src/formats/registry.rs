//! The registry: the one list of formats, and the macros generated from it.
//!
//! [`registry!`] holds the list. Everything that depends on the set of formats is one of
//! its callbacks, so it follows the list:
//!
//! - `define_format`: the [`Format`] enum, [`Format::ALL`], the names and GGML type ids,
//!   and the compile-time checks of every format's spec ([`check_spec`]);
//! - [`with_format!`]`(format, F => expr)`: an exhaustive `match` that evaluates `expr`
//!   with `F` the format's [`FormatSpec`] type (sizes, field tables, dequantization,
//!   the pack moves, thresholds);
//! - [`with_quantized!`]`(format, F => expr, Format::F16 | Format::BF16 => other)`: the
//!   same over the quantized formats, `F` a [`QuantizedSpec`] type (on x86_64 also a
//!   `Codec`), and the caller's arms for the float formats, by name (decoders, the
//!   quantized kernels, the sub-block size).
//!
//! A format missing from a dispatch is a compile error, never a silent no-op.

use super::Format;
use super::field::Kind;
use super::spec::{
    FormatSpec, MAX_FIELDS, MAX_GROUP_BYTES, MAX_GROUP_VALUES, MAX_SUB_BLOCKS, QuantizedSpec,
};

/// The formats: `NAME = GGML_TYPE_ID => module::SpecType`, with the variant's docs.
/// Quantized formats first (decoded by the kernels: [`QuantizedSpec`]), then the float
/// formats the kernels read as they are. The variant name is the ggml / gguf-py name.
///
/// Calls `$crate::formats::$callback!` with `$args` and the list.
macro_rules! registry {
    ($callback:ident $args:tt) => {
        $crate::formats::$callback! {
            $args
            quantized {
                /// 32 values per 18-byte block: f16 scale `d`, 32 unsigned nibbles;
                /// `x = d * (q - 8)`.
                Q4_0 = 2 => q4_0::BlockQ4_0,
                /// 32 values per 20-byte block: f16 `d` and `m`, 32 nibbles; `x = d * q + m`.
                Q4_1 = 3 => q4_1::BlockQ4_1,
                /// 32 values per 22-byte block: f16 scale `d`, 32 5-bit values (nibbles and
                /// one `u32` of fifth bits); `x = d * (q - 16)`.
                Q5_0 = 6 => q5_0::BlockQ5_0,
                /// 32 values per 24-byte block: f16 `d` and `m`, 32 5-bit values;
                /// `x = d * q + m`.
                Q5_1 = 7 => q5_1::BlockQ5_1,
                /// 32 values per 34-byte block: f16 scale `d`, 32 `i8`; `x = d * q`.
                Q8_0 = 8 => q8_0::BlockQ8_0,
                /// 256 values per 84-byte super-block: 2-bit values, 16 sub-blocks of 16
                /// with 4-bit scales and mins.
                Q2_K = 10 => q2_k::BlockQ2_K,
                /// 256 values per 110-byte super-block: 3-bit values, 16 sub-blocks of 16
                /// with 6-bit signed scales.
                Q3_K = 11 => q3_k::BlockQ3_K,
                /// 256 values per 144-byte super-block: 8 sub-blocks of 32 with 6-bit scales
                /// and mins.
                Q4_K = 12 => q4_k::BlockQ4_K,
                /// 256 values per 176-byte super-block: like Q4_K plus a fifth bit per value.
                Q5_K = 13 => q5_k::BlockQ5_K,
                /// 256 values per 210-byte super-block: 6-bit values, 16 `i8` scales of 16
                /// values.
                Q6_K = 14 => q6_k::BlockQ6_K,
                /// 32 values per 18-byte block: f16 scale `d`, 32 4-bit indices into a
                /// non-linear table; `x = d * KVALUES_IQ4NL[q]`.
                IQ4_NL = 20 => iq4_nl::BlockIQ4_NL,
                /// 256 values per 136-byte super-block: 4-bit indices into a non-linear
                /// table, 6-bit scales per 32 values.
                IQ4_XS = 23 => iq4_xs::BlockIQ4_XS,
                /// 32 values per 17-byte block: an E8M0 exponent `e`, 32 4-bit indices
                /// into the doubled E2M1 table; `x = 2^(e - 128) * KVALUES_MXFP4[q]`.
                MXFP4 = 39 => mxfp4::BlockMXFP4,
                /// 256 values per 66-byte block: 256 2-bit ternary values `q` (0..=2),
                /// f16 scale `d`; `x = d * (q - 1)`.
                TQ2_0 = 35 => tq2_0::BlockTQ2_0,
                /// 64 values per 36-byte block: four UE4M3 scale bytes `d` (one per 16
                /// values), 64 4-bit indices into the doubled E2M1 table;
                /// `x = ue4m3_to_f32_half(d[s]) * KVALUES_MXFP4[q]`.
                NVFP4 = 40 => nvfp4::BlockNVFP4,
                /// 256 values per 54-byte block: 256 ternary digits `t` (0..=2) packed
                /// five (or four) to a byte in base 3, f16 scale `d`; `x = d * (t - 1)`.
                TQ1_0 = 34 => tq1_0::BlockTQ1_0,
                /// 256 values per 66-byte block: f16 scale `d`, per 32 values four 8-bit
                /// indices into a grid of eight values in {8, 25, 43}, their 7-bit sign
                /// indices and a 4-bit scale `ls`; `x = d * (0.5 + ls) / 4 * grid * sign`.
                IQ2_XXS = 16 => iq2_xxs::BlockIQ2_XXS,
                /// 256 values per 74-byte block: f16 scale `d`, per 8 values a 9-bit
                /// index into a grid of eight values in {8, 25, 43} and a 7-bit sign index,
                /// 4-bit scales `ls` per 16 values; `x = d * (0.5 + ls) / 4 * grid * sign`.
                IQ2_XS = 17 => iq2_xs::BlockIQ2_XS,
                /// 256 values per 82-byte block: f16 scale `d`, per 8 values a 10-bit
                /// index into a grid of eight values in {8, 25, 43} and 8 sign bits, 4-bit
                /// scales `ls` per 16 values; `x = d * (0.5 + ls) / 4 * grid * sign`.
                IQ2_S = 22 => iq2_s::BlockIQ2_S,
                /// 256 values per 98-byte block: f16 `d`, 64 indices into a 256-entry grid of
                /// four magnitudes, per 32 values four 7-bit sign indices and a 4-bit scale.
                IQ3_XXS = 18 => iq3_xxs::BlockIQ3_XXS,
                /// 256 values per 110-byte block: f16 `d`, 64 9-bit indices into a 512-entry
                /// grid of four magnitudes, a sign bit per value, a 4-bit scale per 32 values.
                IQ3_S = 21 => iq3_s::BlockIQ3_S,
                /// 256 values per 50-byte block: f16 `d`, 32 11-bit indices into a 2048-entry
                /// grid of eight values in -1..=1, per 32 values a 3-bit scale and a ±1/8 delta.
                IQ1_S = 19 => iq1_s::BlockIQ1_S,
                /// 256 values per 56-byte block: 32 11-bit indices into IQ1_S's grid, a ±1/8
                /// delta per 8 values, 3-bit scales per 16, the f16 `d` in the scales' top nibbles.
                IQ1_M = 29 => iq1_m::BlockIQ1_M,
            }
            float {
                /// IEEE binary16, one value per 2 bytes.
                F16 = 1 => f16::F16,
                /// bfloat16, one value per 2 bytes.
                BF16 = 30 => bf16::BF16,
            }
        }
    };
}
pub(crate) use registry;

/// `match $format { Format::X => { type $F = <X's spec type>; $body } ... }` over every
/// format (see the module docs). [`FormatSpec`] is in scope in `$body`.
macro_rules! with_format {
    ($format:expr, $F:ident => $body:expr) => {
        $crate::formats::registry!(format_match($format, $F => $body))
    };
}
pub(crate) use with_format;

/// `match $format { Format::X => { type $F = <X's spec type>; $body } ..., $float_arms }`
/// over the quantized formats X, with the caller's arms for F16 and BF16 (named, so the
/// match is exhaustive; see the module docs). [`FormatSpec`] and [`QuantizedSpec`] are in
/// scope in `$body`.
macro_rules! with_quantized {
    ($format:expr, $F:ident => $body:expr, $($float:pat => $other:expr),+ $(,)?) => {
        $crate::formats::registry!(quantized_match($format, $F => $body, $($float => $other),+))
    };
}
pub(crate) use with_quantized;

/// The callback of [`with_format!`].
macro_rules! format_match {
    (
        ($format:expr, $F:ident => $body:expr)
        quantized { $($(#[$qa:meta])* $q:ident = $qid:literal => $qm:ident::$qt:ident,)* }
        float { $($(#[$fa:meta])* $f:ident = $fid:literal => $fm:ident::$ft:ident,)* }
    ) => {
        match $format {
            $($crate::formats::Format::$q => {
                #[allow(unused_imports)]
                use $crate::formats::FormatSpec as _;
                type $F = $crate::formats::$qm::$qt;
                $body
            })*
            $($crate::formats::Format::$f => {
                #[allow(unused_imports)]
                use $crate::formats::FormatSpec as _;
                type $F = $crate::formats::$fm::$ft;
                $body
            })*
        }
    };
}
pub(crate) use format_match;

/// The callback of [`with_quantized!`].
macro_rules! quantized_match {
    (
        ($format:expr, $F:ident => $body:expr, $($float:pat => $other:expr),+)
        quantized { $($(#[$qa:meta])* $q:ident = $qid:literal => $qm:ident::$qt:ident,)* }
        float { $($floats:tt)* }
    ) => {
        match $format {
            $($crate::formats::Format::$q => {
                #[allow(unused_imports)]
                use $crate::formats::{FormatSpec as _, QuantizedSpec as _};
                type $F = $crate::formats::$qm::$qt;
                $body
            })*
            $($float => $other,)+
        }
    };
}
pub(crate) use quantized_match;

/// The callback that defines [`Format`] (invoked once, in `format.rs`).
macro_rules! define_format {
    (
        ()
        quantized { $($(#[$qa:meta])* $q:ident = $qid:literal => $qm:ident::$qt:ident,)* }
        float { $($(#[$fa:meta])* $f:ident = $fid:literal => $fm:ident::$ft:ident,)* }
    ) => {
        /// A ggml weight storage format. The variant names are ggml's and gguf-py's
        /// ([`Format::name`]).
        #[non_exhaustive]
        #[allow(non_camel_case_types)] // Q4_0 etc.: the names ggml and gguf-py use.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[$qa])* $q,)*
            $($(#[$fa])* $f,)*
        }

        /// The number of formats.
        const COUNT: usize = [$(stringify!($q),)* $(stringify!($f),)*].len();

        impl Format {
            /// Every format, in GGML type id order.
            pub const ALL: [Format; COUNT] =
                $crate::formats::registry::by_ggml_type([$(Format::$q,)* $(Format::$f,)*]);

            /// The gguf-py name (`GGMLQuantizationType.name`): "Q4_0", "Q4_K", "IQ4_XS",
            /// "BF16", ...
            pub const fn name(self) -> &'static str {
                match self {
                    $(Format::$q => stringify!($q),)*
                    $(Format::$f => stringify!($f),)*
                }
            }

            /// The `GGML_TYPE_*` id, as stored in a GGUF tensor info.
            pub const fn ggml_type(self) -> u32 {
                match self {
                    $(Format::$q => $qid,)*
                    $(Format::$f => $fid,)*
                }
            }

            /// The format with this `GGML_TYPE_*` id, or
            /// [`FormatError::UnknownGgmlType`](crate::formats::FormatError::UnknownGgmlType)
            /// for an id that is unknown or not supported here (F32 = 0 included).
            pub const fn from_ggml_type(
                id: u32,
            ) -> Result<Format, $crate::formats::FormatError> {
                match id {
                    $($qid => Ok(Format::$q),)*
                    $($fid => Ok(Format::$f),)*
                    // Every other u32: not a format of the list.
                    _ => Err($crate::formats::FormatError::UnknownGgmlType { id }),
                }
            }
        }

        // What the pack and kernel code rely on, for every format of the list.
        const _: () = {
            $($crate::formats::registry::check_quantized::<$crate::formats::$qm::$qt>(
                Format::$q,
            );)*
            $($crate::formats::registry::check_float::<$crate::formats::$fm::$ft>(
                Format::$f,
            );)*
        };
    };
}
pub(crate) use define_format;

/// `all` sorted by GGML type id (for [`Format::ALL`]).
pub(crate) const fn by_ggml_type<const N: usize>(mut all: [Format; N]) -> [Format; N] {
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && all[j - 1].ggml_type() > all[j].ggml_type() {
            let t = all[j];
            all[j] = all[j - 1];
            all[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    all
}

/// Fails the build unless `F` is `format`'s spec with a group the pack and kernel code
/// can move: at most [`MAX_GROUP_BYTES`] bytes and [`MAX_GROUP_VALUES`] values, whole
/// blocks, at most [`MAX_FIELDS`] fields that lie inside the group, overlap nowhere and
/// cover it, quads fields a multiple of 16 bytes (the transposes' unit).
pub(crate) const fn check_spec<F: FormatSpec>(format: Format) {
    assert!(F::FORMAT as u8 == format as u8, "a spec type is registered for another format");
    assert!(F::GROUP_BYTES <= MAX_GROUP_BYTES && F::GROUP_VALUES <= MAX_GROUP_VALUES);
    assert!(F::BLOCK_VALUES > 0 && F::GROUP_VALUES.is_multiple_of(F::BLOCK_VALUES));
    assert!(F::FIELDS.len() <= MAX_FIELDS, "more fields than the pack moves handle");
    let mut covered = 0;
    let mut i = 0;
    while i < F::FIELDS.len() {
        let f = F::FIELDS[i];
        assert!(f.len > 0 && f.offset + f.len <= F::GROUP_BYTES, "a field outside the group");
        if let Kind::Quads = f.kind {
            assert!(f.len.is_multiple_of(16), "a quads field that is not whole 16-byte units");
        }
        let mut j = 0;
        while j < i {
            let g = F::FIELDS[j];
            assert!(f.offset + f.len <= g.offset || g.offset + g.len <= f.offset, "overlap");
            j += 1;
        }
        covered += f.len;
        i += 1;
    }
    assert!(covered == F::GROUP_BYTES, "the fields do not cover the group");
    let mut s = 0;
    while s < F::F16_SCALES.len() {
        assert!(F::F16_SCALES[s] + 2 <= F::BLOCK_BYTES, "an f16 scale outside the block");
        s += 1;
    }
    let mut s = 0;
    while s < F::E8M0_SCALES.len() {
        assert!(F::E8M0_SCALES[s] < F::BLOCK_BYTES, "an E8M0 scale outside the block");
        s += 1;
    }
}

/// [`check_spec`], and for the decoded form: the group is one block; sub-blocks of 16
/// or 32 values (the activations carry `dx * sum` per 16 and per 32 values) tile it in
/// at most [`MAX_SUB_BLOCKS`].
pub(crate) const fn check_quantized<F: QuantizedSpec>(format: Format) {
    check_spec::<F>(format);
    assert!(F::GROUP_VALUES == F::BLOCK_VALUES && F::GROUP_BYTES == F::BLOCK_BYTES);
    assert!(F::SUB_BLOCK == 16 || F::SUB_BLOCK == 32, "sub-blocks of 16 or 32 values");
    assert!(F::BLOCK_VALUES.is_multiple_of(F::SUB_BLOCK));
    assert!(F::BLOCK_VALUES / F::SUB_BLOCK <= MAX_SUB_BLOCKS);
}

/// [`check_spec`], and the float form the kernels read: one value per 2-byte block,
/// groups of 32 values.
pub(crate) const fn check_float<F: FormatSpec>(format: Format) {
    check_spec::<F>(format);
    assert!(F::BLOCK_VALUES == 1 && F::BLOCK_BYTES == 2);
    assert!(F::GROUP_VALUES == 32 && F::GROUP_BYTES == 64);
}
