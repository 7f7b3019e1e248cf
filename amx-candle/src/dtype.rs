//! candle's `GgmlDType` against amx-rs's `Format`, and candle `QTensor`s from ggml bytes.

use std::borrow::Cow;

use amx_core::formats::Format;
use candle_core::Device;
use candle_core::quantized::{GgmlDType, QStorage, QTensor};

use crate::AdapterError;

/// The formats both candle-core 0.11 and amx-rs hold (every amx-rs format but IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_NL,
/// IQ4_XS, MXFP4, TQ1_0, TQ2_0 and NVFP4).
pub const SHARED_FORMATS: [Format; 12] = [
    Format::Q4_0,
    Format::Q4_1,
    Format::Q5_0,
    Format::Q5_1,
    Format::Q8_0,
    Format::Q2_K,
    Format::Q3_K,
    Format::Q4_K,
    Format::Q5_K,
    Format::Q6_K,
    Format::F16,
    Format::BF16,
];

/// The amx-rs format of a candle dtype.
///
/// Errors: [`AdapterError::UnsupportedDType`] for the dtypes amx-rs has no kernel for
/// (F32, Q8_1, Q8K).
pub fn format_of(dtype: GgmlDType) -> Result<Format, AdapterError> {
    match dtype {
        GgmlDType::Q4_0 => Ok(Format::Q4_0),
        GgmlDType::Q4_1 => Ok(Format::Q4_1),
        GgmlDType::Q5_0 => Ok(Format::Q5_0),
        GgmlDType::Q5_1 => Ok(Format::Q5_1),
        GgmlDType::Q8_0 => Ok(Format::Q8_0),
        GgmlDType::Q2K => Ok(Format::Q2_K),
        GgmlDType::Q3K => Ok(Format::Q3_K),
        GgmlDType::Q4K => Ok(Format::Q4_K),
        GgmlDType::Q5K => Ok(Format::Q5_K),
        GgmlDType::Q6K => Ok(Format::Q6_K),
        GgmlDType::F16 => Ok(Format::F16),
        GgmlDType::BF16 => Ok(Format::BF16),
        dtype => Err(AdapterError::UnsupportedDType { dtype }),
    }
}

/// The `GGML_TYPE_*` id of a candle dtype (candle names Q2_K `Q2K`; errors name it by
/// ggml's name through this id, [`amx_core::formats::ggml_type_name`]).
pub fn ggml_type_of(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

/// The candle dtype of an amx-rs format.
///
/// Errors: [`AdapterError::NoCandleDType`] for IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0 and
/// NVFP4 (candle-core 0.11 has none of them) and any format added to amx-rs later.
pub fn dtype_of(format: Format) -> Result<GgmlDType, AdapterError> {
    match format {
        Format::Q4_0 => Ok(GgmlDType::Q4_0),
        Format::Q4_1 => Ok(GgmlDType::Q4_1),
        Format::Q5_0 => Ok(GgmlDType::Q5_0),
        Format::Q5_1 => Ok(GgmlDType::Q5_1),
        Format::Q8_0 => Ok(GgmlDType::Q8_0),
        Format::Q2_K => Ok(GgmlDType::Q2K),
        Format::Q3_K => Ok(GgmlDType::Q3K),
        Format::Q4_K => Ok(GgmlDType::Q4K),
        Format::Q5_K => Ok(GgmlDType::Q5K),
        Format::Q6_K => Ok(GgmlDType::Q6K),
        Format::F16 => Ok(GgmlDType::F16),
        Format::BF16 => Ok(GgmlDType::BF16),
        format => Err(AdapterError::NoCandleDType { format }),
    }
}

/// Checks that `bytes` are `n` rows of `k` values of `format` in ggml layout.
///
/// Errors: [`AdapterError::WeightShape`] (K not a whole number of blocks),
/// [`AdapterError::WeightBytes`].
pub fn check_ggml_bytes(
    format: Format,
    n: usize,
    k: usize,
    bytes: &[u8],
) -> Result<(), AdapterError> {
    let row = format.row_bytes(k).map_err(AdapterError::WeightShape)?;
    let expected = row.saturating_mul(n);
    if expected != bytes.len() {
        return Err(AdapterError::WeightBytes { n, k, expected, actual: bytes.len() });
    }
    Ok(())
}

/// A CPU candle `QTensor` of shape `(n, k)` holding `bytes` (`n` rows of `k` values of
/// `format`, ggml layout, as stored in a GGUF file). candle copies the bytes.
///
/// Errors: [`AdapterError::NoCandleDType`], those of [`check_ggml_bytes`], and candle's.
pub fn qtensor_from_ggml(
    format: Format,
    n: usize,
    k: usize,
    bytes: &[u8],
) -> candle_core::Result<QTensor> {
    let dtype = dtype_of(format)?;
    check_ggml_bytes(format, n, k, bytes)?;
    // candle views the bytes as blocks and asserts (panics) on a pointer misaligned for
    // them: every candle block type and f16/bf16 has 2-byte alignment (f16 fields). Bytes
    // at an odd address are copied into a fresh allocation (the system allocator returns
    // at least 8-byte aligned blocks), checked again so that candle never panics.
    let data: Cow<'_, [u8]> =
        if is_even(bytes) { Cow::Borrowed(bytes) } else { Cow::Owned(bytes.to_vec()) };
    if !is_even(&data) {
        candle_core::bail!(
            "amx-candle: cannot place {} weight bytes at an even address",
            bytes.len()
        )
    }
    let storage = QStorage::from_data(data, &Device::Cpu, dtype)?;
    QTensor::new(storage, (n, k))
}

fn is_even(bytes: &[u8]) -> bool {
    bytes.as_ptr().align_offset(2) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candle_dtype_maps_or_errs_and_round_trips() {
        let all = [
            GgmlDType::F32,
            GgmlDType::F16,
            GgmlDType::BF16,
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::Q8_0,
            GgmlDType::Q8_1,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
            GgmlDType::Q8K,
        ];
        let mut mapped = 0;
        for dtype in all {
            match format_of(dtype) {
                Ok(format) => {
                    mapped += 1;
                    assert_eq!(dtype_of(format), Ok(dtype));
                    // Same block geometry on both sides.
                    assert_eq!(format.block_values(), dtype.block_size(), "{dtype:?}");
                    assert_eq!(format.block_bytes(), dtype.type_size(), "{dtype:?}");
                }
                Err(e) => assert_eq!(e, AdapterError::UnsupportedDType { dtype }),
            }
            // Every dtype's ggml id names it as ggml does: Q2K is Q2_K.
            let name = amx_core::formats::ggml_type_name(ggml_type_of(dtype)).unwrap();
            assert_eq!(name.replace('_', ""), format!("{dtype:?}").replace('_', ""));
            if let Ok(format) = format_of(dtype) {
                assert_eq!(format.ggml_type(), ggml_type_of(dtype));
            }
        }
        assert_eq!(mapped, 12);
        assert_eq!(
            AdapterError::UnsupportedDType { dtype: GgmlDType::Q8_1 }.to_string(),
            "amx-candle: candle dtype Q8_1 (Q8_1, ggml type 9) has no amx-rs kernel"
        );
        for format in [
            Format::IQ2_XXS,
            Format::IQ2_S,
            Format::IQ2_XS,
            Format::IQ4_NL,
            Format::IQ4_XS,
            Format::MXFP4,
            Format::TQ1_0,
            Format::IQ3_XXS,
            Format::IQ3_S,
            Format::IQ1_S,
            Format::IQ1_M,
            Format::TQ2_0,
            Format::NVFP4,
        ] {
            assert_eq!(dtype_of(format), Err(AdapterError::NoCandleDType { format }));
        }
    }

    #[test]
    fn qtensor_from_misaligned_and_wrong_bytes() {
        let (n, k) = (2, 64);
        let mut buf = [0u8; 2 * 2 * 34 + 1];
        let odd = usize::from(buf.as_ptr().align_offset(2) == 0);
        let bytes = &mut buf[odd..odd + 2 * 2 * 34];
        for b in bytes.chunks_exact_mut(34) {
            b[1] = 0x3c; // d = 1.0
            b[2] = 3;
        }
        let t = qtensor_from_ggml(Format::Q8_0, n, k, bytes).expect("misaligned bytes are copied");
        assert_eq!(t.data().expect("cpu data").as_ref(), &*bytes);
        let short = &bytes[..bytes.len() - 1];
        let e = qtensor_from_ggml(Format::Q8_0, n, k, short).expect_err("short");
        assert!(e.to_string().contains("135 given"), "{e}");
        assert!(qtensor_from_ggml(Format::IQ4_XS, 1, 256, &[0; 136]).is_err());
    }
}
