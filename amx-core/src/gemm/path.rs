//! Which kernel runs: chosen per call from the CPU's features and M, or forced.

use crate::detect::Features;
use crate::formats::Format;
use crate::token::Amx;

use super::GemmError;

/// A kernel path. [`Path::Auto`] picks per call; the others force one path (tests and
/// benchmarks use them so that every path runs on one machine).
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
/// with `amx-bench bench --paths vnni,amx --m 1,4,8,16,20,24,28,32` (K = N = 4096, one
/// thread, Sapphire Rapids guest):
///
/// - quantized formats: VNNI ahead up to M = 16 (Q4_0 274 vs 276 GOPS, Q4_K 263 vs 230),
///   AMX ahead from M = 20 (Q4_0 335 vs 251, Q4_K 281 vs 258): 17;
/// - F16: VNNI ahead at M = 4 (73 vs 58), AMX from M = 8 (117 vs 102): 8;
/// - BF16: panels are B tiles as packed (no widening), AMX as fast at M = 1 (27 vs 26)
///   and ahead from M = 4 (107 vs 81): 1.
pub const fn amx_min_rows(format: Format) -> usize {
    match format {
        Format::BF16 => 1,
        Format::F16 => 8,
        _ => 17,
    }
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
