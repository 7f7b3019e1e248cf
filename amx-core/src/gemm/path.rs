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
/// thread, Sapphire Rapids guest, two runs; GOPS AMX / VNNI):
///
/// - Q4_0: 345/366 at M = 24, 369/346 at 26: 26; Q4_1: 310/356 at 24, 353/350 at 26: 26;
/// - Q8_0: 331/330 at 26, 334/328 and 356/339 at 28: 28;
/// - Q4_K: 357/363 at 24, 380/347 at 26: 25; IQ4_XS: 364/366 at 24, 393/352 at 26: 25;
/// - Q5_K: 285/286 at 20, 315/293 at 22: 21; Q6_K: 277/275 at 20 (223/279 at 16): 20;
/// - F16 (`--m 1,2,4,6,7,8,10,12`): VNNI ahead at M = 8 (122/134), AMX at 10 (154/124): 9;
/// - BF16: panels are B tiles as packed (no widening); from cache AMX ties at M = 1
///   (26/26) and leads from M = 2 (52/44); streaming from memory (`--dram`, weights on
///   huge pages) VNNI leads at M = 1 (15.1/14.6, 15.4/14.5) and AMX at M = 2 (29.5/27.8): 2.
pub const fn amx_min_rows(format: Format) -> usize {
    match format {
        Format::BF16 => 2,
        Format::F16 => 9,
        Format::Q6_K => 20,
        Format::Q5_K => 21,
        Format::Q4_K | Format::IQ4_XS => 25,
        Format::Q4_0 | Format::Q4_1 => 26,
        Format::Q8_0 => 28,
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
