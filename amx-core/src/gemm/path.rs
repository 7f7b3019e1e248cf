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

/// From this many rows on, [`Path::Auto`] takes the AMX path (when the machine has it).
/// Measured with `amx-bench bench` on a Sapphire Rapids guest; see the README.
pub const AMX_MIN_ROWS: usize = 16;

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
        let _ = format;
        match self {
            Path::Auto if m >= AMX_MIN_ROWS && Path::Amx.available() => Ok(Path::Amx),
            Path::Auto if Path::Vnni.available() => Ok(Path::Vnni),
            Path::Auto => Ok(Path::Scalar),
            p if p.available() => Ok(p),
            p => Err(GemmError::PathUnavailable { path: p }),
        }
    }
}
