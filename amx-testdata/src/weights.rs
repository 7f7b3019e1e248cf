//! Weights for tests, examples and benchmarks: random bytes in a format's layout, with
//! the scales made moderate so that the kernels do ordinary arithmetic.

use amx_core::formats::Format;
use amx_core::gemm::GemmError;

use crate::random::pseudo_random_bytes;

/// `n` rows of `k` values of `format` (ggml bytes, `n * format.row_bytes(k)` of them) from
/// `seed`: random bytes whose f16 (or E8M0) scales are moderate, so the kernels do
/// ordinary arithmetic rather than NaN or infinity paths.
///
/// Errors: [`GemmError::Overflow`] when `k` is not a whole number of blocks or the size
/// overflows.
pub fn bench_weights(format: Format, seed: u64, n: usize, k: usize) -> Result<Vec<u8>, GemmError> {
    let row_bytes = format.row_bytes(k).map_err(|_| GemmError::Overflow)?;
    let len = n.checked_mul(row_bytes).ok_or(GemmError::Overflow)?;
    let mut w = pseudo_random_bytes(seed, len);
    // Where each block's f16 scales sit.
    let f16_scales: &[usize] = match format {
        Format::Q4_0 | Format::Q5_0 | Format::Q8_0 | Format::IQ4_NL | Format::IQ4_XS => &[0],
        Format::Q4_1 | Format::Q5_1 | Format::Q4_K | Format::Q5_K => &[0, 2],
        Format::Q6_K => &[208],
        Format::Q2_K => &[80, 82],
        Format::Q3_K => &[108],
        Format::TQ1_0 => &[52],
        Format::IQ2_XXS => &[0],
        Format::IQ2_S => &[0],
        Format::IQ2_XS => &[0],
        Format::IQ3_XXS => &[0],
        Format::IQ3_S => &[0],
        Format::IQ1_S => &[0],
        Format::IQ1_M => &[48, 50, 52, 54],
        Format::TQ2_0 => &[64],
        // NVFP4's UE4M3 scale bytes are all finite and moderate as they are (2^-10 ..= 240).
        Format::F16 | Format::BF16 | Format::MXFP4 | Format::NVFP4 => &[],
        // `Format` is non-exhaustive: a format added later keeps random bytes until its
        // scales are listed here (its test below then fails on non-finite values).
        _ => &[],
    };
    match format {
        Format::F16 | Format::BF16 => {
            for v in w.chunks_exact_mut(2) {
                v[1] =
                    if format == Format::F16 { 0x38 | (v[1] & 0x83) } else { 0x3f | (v[1] & 0x80) };
            }
        }
        Format::MXFP4 => {
            // The E8M0 exponent byte: 120..=135, a scale of 2^-8 ..= 2^7.
            for b in w.chunks_exact_mut(format.block_bytes()) {
                b[0] = 120 + (b[0] & 0x0f);
            }
        }
        // The block formats with f16 scales (and, `Format` being non-exhaustive, any later
        // one: `f16_scales` is empty for it).
        _ => {
            for b in w.chunks_exact_mut(format.block_bytes()) {
                for &at in f16_scales {
                    // Exponent bits 0b01100..0b01111 (or the same with the sign): a
                    // magnitude between 2^-3 and 2^1.
                    b[at + 1] = 0x30 | (b[at + 1] & 0x87);
                }
            }
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_dequantizes_to_finite_values() {
        for format in Format::ALL {
            let k = format.block_values() * 2;
            let w = bench_weights(format, 1, 3, k).expect("weights");
            assert_eq!(w.len(), 3 * format.row_bytes(k).expect("row bytes"), "{format:?}");
            let mut out = vec![0f32; 3 * k];
            amx_core::formats::dequantize(format, &w, &mut out).expect("dequantize");
            assert!(out.iter().all(|x| x.is_finite()), "{format:?}");
        }
        assert_eq!(bench_weights(Format::Q4_0, 1, 2, 33), Err(GemmError::Overflow));
    }
}
