//! Which kernel runs: chosen per call from the CPU's features and M, or forced.

use crate::detect::Features;
use crate::formats::Format;
use crate::token::Amx;

use super::GemmError;

/// A kernel path. [`Path::Auto`] picks per call; the others force one path (tests and
/// benchmarks use them so that every path runs on one machine).
///
/// What each path does with subnormal, huge, NaN and infinite values is listed in the
/// [module docs](super#extreme-values).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// AMX where M is large enough to fill tiles, AVX-512 VNNI below, scalar without
    /// AVX-512.
    Auto,
    /// AMX BF16 tiles (weights widened to BF16 panel by panel).
    Amx,
    /// AVX-512 VNNI on int8 activations (F16/BF16 weights: AVX-512 f32 FMA).
    Vnni,
    /// The portable reference: f32 dequantization and f32 dot products.
    Scalar,
}

/// From how many rows on [`Path::Auto`] takes the AMX path for `format` weights (when the
/// machine has it). The AMX path widens every weight panel to BF16 once per call, a cost
/// fixed in M, while the VNNI path's cost grows with M; the crossing points were measured
/// with `amx-bench bench --paths amx,vnni --m 16,20,22,24,26,28,32` (K = N = 4096, one
/// thread, Sapphire Rapids guest, two runs; GOPS AMX / VNNI). Each format's number and its
/// measurements are in the format's module (`AMX_MIN_ROWS`): 26 for Q4_0 and Q4_1, 28 for
/// Q8_0, 25 for Q4_K and IQ4_XS, 21 for Q5_K, 20 for Q6_K, 9 for F16, 2 for BF16 (whose
/// panels are B tiles as packed); Q3_K 18, Q2_K 19, Q5_0 and Q5_1 25, MXFP4 26, IQ4_NL 27
/// (measured the same way; the numbers are on each format's constant). Not measured, for
/// the hosts these formats were added on had no AMX: TQ1_0's and TQ2_0's 19 are taken
/// from Q2_K and NVFP4's 26 from MXFP4; IQ2_XXS's, IQ2_XS's and IQ2_S's 19 are Q2_K's;
/// IQ3_XXS's and IQ3_S's 18 are Q3_K's.
/// IQ1_S's 19 is taken from TQ1_0 the same way.
/// IQ1_M's 19 is taken from IQ1_S the same way.
pub const fn amx_min_rows(format: Format) -> usize {
    format.amx_min_rows()
}

impl Path {
    /// Every path, [`Path::Auto`] first.
    pub const ALL: [Path; 4] = [Path::Auto, Path::Amx, Path::Vnni, Path::Scalar];

    /// The lower-case name (`auto`, `amx`, `vnni`, `scalar`).
    pub const fn name(self) -> &'static str {
        match self {
            Path::Auto => "auto",
            Path::Amx => "amx",
            Path::Vnni => "vnni",
            Path::Scalar => "scalar",
        }
    }

    /// The path with this name (case-insensitive), as [`Path::name`] writes it.
    pub fn from_name(name: &str) -> Option<Path> {
        Path::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether this machine can run the path (always true for `Auto` and `Scalar`).
    pub fn available(self) -> bool {
        let f = Features::cached();
        match self {
            Path::Auto | Path::Scalar => true,
            Path::Vnni => f.avx512_vnni_usable(),
            Path::Amx => f.avx512_vnni_usable() && f.avx512_bf16_usable() && Amx::try_new().is_ok(),
        }
    }

    /// The concrete path a call with `m` rows of `format` weights takes: `Auto` resolved
    /// by features and `m`, a forced path checked for availability.
    ///
    /// Errors: [`GemmError::PathUnavailable`] for a forced path this machine lacks.
    pub fn resolve(self, format: Format, m: usize) -> Result<Path, GemmError> {
        match self {
            Path::Auto if m >= amx_min_rows(format) && Path::Amx.available() => Ok(Path::Amx),
            Path::Auto if Path::Vnni.available() => Ok(Path::Vnni),
            Path::Auto => Ok(Path::Scalar),
            p if p.available() => Ok(p),
            p => Err(GemmError::PathUnavailable { path: p }),
        }
    }
}
