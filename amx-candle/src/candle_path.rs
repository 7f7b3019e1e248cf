//! Which kernel candle-core 0.11.1 runs for `QMatMul::forward` on an f32 input on this
//! x86-64 CPU, decided the way candle decides it, so that a comparison can say what it
//! compared against.
//!
//! From the candle-core 0.11.1 source (`quantized/mod.rs`, `repack.rs`, `repack_x86.rs`,
//! `k_quants.rs`, `avx.rs`):
//!
//! - `QMatMul::from_qtensor` dequantizes F16, BF16 (and F32) weights to an f32 tensor at
//!   load time (all dtypes when `CANDLE_DEQUANTIZE_ALL` is set, to f16 when
//!   `CANDLE_DEQUANTIZE_ALL_F16` is): `forward` is then candle's dense matmul (the `gemm`
//!   crate on the CPU, built without its `x86-v4` feature, so AVX2 FMA kernels at best).
//! - Otherwise `QTensor::cpu_fwd` calls `repack::try_matmul_f32`, which on x86-64 takes
//!   the repacked kernels when `repack_x86::select(dtype, m, n, k)`: an x86 level is
//!   detected (AVX-512F + AVX-512 VNNI; else AVX-VNNI + AVX2; else AVX2 + FMA; the env
//!   `MISTRALRS_FORCE_AVX2=1` / `MISTRALRS_FORCE_AVXVNNI=1` force the lower ones), `n % 16
//!   == 0`, `k % 256 == 0`, and the dtype is Q4K (any M), Q6K (M > 1) or Q8_0 (not at the
//!   plain AVX2 level). Activations are quantized to Q8K rows. Q4K with M >= 32 goes to the
//!   AMX kernel (`matmul_amx_q4k`) when the level is AVX-512 VNNI, CPUID reports AMX-TILE
//!   and AMX-INT8 and the Linux tile permission is granted. Weights are repacked on the
//!   first call (a `OnceLock` per tensor, one for the AMX tiles and one for the others).
//! - Else `k_quants::matmul`: activations quantized to the dtype's `VecDotType` (Q8_0 for
//!   Q4_0 and Q8_0, Q8_1 for Q4_1, Q8K for the K-quants), then `vec_dot` per output: the
//!   AVX2 kernels of `avx.rs` when AVX2 and FMA are present, except Q4_1, whose `vec_dot`
//!   is always the generic scalar loop.

use amx_core::detect::Features;
use candle_core::quantized::GgmlDType;

/// candle's x86 tier for its repacked kernels (`repack_x86::level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Avx512Vnni,
    AvxVnni,
    Avx2,
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).as_deref() == Ok(value)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|s| !s.is_empty() && s != "0")
}

fn level() -> Option<Level> {
    let force_avx2 = env_is("MISTRALRS_FORCE_AVX2", "1");
    let force_vnni = env_is("MISTRALRS_FORCE_AVXVNNI", "1");
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    if !force_avx2
        && !force_vnni
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vnni")
    {
        return Some(Level::Avx512Vnni);
    }
    if !force_avx2 && (force_vnni || std::arch::is_x86_feature_detected!("avxvnni")) && avx2 {
        return Some(Level::AvxVnni);
    }
    (avx2 && std::arch::is_x86_feature_detected!("fma")).then_some(Level::Avx2)
}

/// candle's `repack_x86::amx_available`: AVX-512 VNNI level, AMX-TILE and AMX-INT8 in
/// CPUID, and the tile-data permission (amx-core asks for the same permission; the
/// request is per process and idempotent).
fn amx_available() -> bool {
    let f = Features::cached();
    level() == Some(Level::Avx512Vnni)
        && f.amx_tile()
        && f.amx_int8()
        && amx_core::permission::request_tile_data().is_ok()
}

/// What candle-core 0.11.1's `QMatMul::forward` runs for an f32 input of `m` rows on
/// `dtype` weights of `n` rows by `k` values, on this machine, e.g.
/// `"candle AMX int8 (q4_k repack, q8_K activations)"`.
pub fn candle_path(dtype: GgmlDType, m: usize, n: usize, k: usize) -> String {
    let name = dtype_name(dtype);
    if matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
        || env_flag("CANDLE_DEQUANTIZE_ALL")
    {
        // The `gemm` crate as candle builds it (no `x86-v4` feature): FMA kernels at best.
        let isa = if std::arch::is_x86_feature_detected!("fma") { "AVX2 FMA" } else { "scalar" };
        return format!("candle f32 gemm {isa} (weights dequantized to f32 at load)");
    }
    if env_flag("CANDLE_DEQUANTIZE_ALL_F16") {
        return "candle f16 gemm (weights dequantized to f16 at load)".to_string();
    }
    let lv = level();
    let selected = lv.is_some()
        && k > 0
        && n.is_multiple_of(16)
        && k.is_multiple_of(256)
        && match dtype {
            GgmlDType::Q4K => true,
            GgmlDType::Q6K => m > 1,
            GgmlDType::Q8_0 => lv != Some(Level::Avx2),
            _ => false,
        };
    if selected {
        if dtype == GgmlDType::Q4K && m >= 32 && amx_available() {
            return format!("candle AMX int8 ({name} repack, q8_K activations)");
        }
        let isa = match lv {
            Some(Level::Avx512Vnni) => "AVX-512 VNNI",
            Some(Level::AvxVnni) => "AVX-VNNI 256-bit",
            _ => "AVX2 maddubs",
        };
        return format!("candle {isa} ({name} repack, q8_K activations)");
    }
    let acts = match dtype {
        GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q4_1 | GgmlDType::Q5_1 | GgmlDType::Q8_1 => "q8_1",
        _ => "q8_K",
    };
    let simd = std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && matches!(
            dtype,
            GgmlDType::Q4_0
                | GgmlDType::Q8_0
                | GgmlDType::Q2K
                | GgmlDType::Q3K
                | GgmlDType::Q4K
                | GgmlDType::Q5K
                | GgmlDType::Q6K
                | GgmlDType::Q8K
        );
    let isa = if simd { "AVX2" } else { "scalar" };
    format!("candle {isa} vec_dot ({name}, {acts} activations)")
}

fn dtype_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_k",
        GgmlDType::Q3K => "q3_k",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q5K => "q5_k",
        GgmlDType::Q6K => "q6_k",
        GgmlDType::Q8K => "q8_k",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_candles_dispatch_rules() {
        // Independent of this CPU: dense after dequantization, scalar Q4_1, and shapes the
        // repack refuses (n not a multiple of 16) fall back to vec_dot.
        let f16 = candle_path(GgmlDType::F16, 8, 4096, 4096);
        assert!(f16.contains("dequantized"), "{f16}");
        assert!(candle_path(GgmlDType::Q4_1, 8, 4096, 4096).contains("scalar vec_dot"));
        assert!(candle_path(GgmlDType::Q4K, 64, 4100, 4096).contains("vec_dot (q4_k, q8_K"));
        assert!(candle_path(GgmlDType::Q4_0, 64, 4096, 4096).contains("vec_dot (q4_0, q8_0"));
        if level() == Some(Level::Avx512Vnni) {
            let q6 = candle_path(GgmlDType::Q6K, 1, 4096, 4096);
            assert!(q6.contains("vec_dot"), "{q6}");
            let q6 = candle_path(GgmlDType::Q6K, 2, 4096, 4096);
            assert!(q6.contains("AVX-512 VNNI (q6_k repack"), "{q6}");
            let q4 = candle_path(GgmlDType::Q4K, 31, 4096, 4096);
            assert!(q4.contains("AVX-512 VNNI (q4_k repack"), "{q4}");
            let q4 = candle_path(GgmlDType::Q4K, 32, 4096, 4096);
            assert_eq!(q4.contains("AMX"), amx_available(), "{q4}");
        } else {
            println!("no AVX-512 VNNI: candle's repack-tier labels not checked on this CPU");
        }
    }
}
