//! One row of a packed buffer back as f32 values (a GET_ROWS, or a tied embedding's
//! lookup), read from the panel that holds it without unpacking anything else.

use crate::formats::{Format, with_format};

use super::layout::PANEL_ROWS;
use super::{PackError, PackedRef, read_block};

/// Dequantizes row `row` of matrix `matrix` of `packed` into `out` (exactly `k` values):
/// the values [`crate::formats::dequantize`] gives for that row's ggml bytes, bit for
/// bit. A BF16 buffer packed from f32 rows ([`super::pack_f32_as_bf16`]) gives the BF16
/// values (the f32 values rounded to BF16).
///
/// The row's ggml blocks are rebuilt one at a time from the panel into a 256-byte stack
/// buffer and dequantized there: no allocation, and only the row's bytes of one panel are
/// read (a `k`-value row touches `k / block` blocks). The header was checked when
/// `packed` was parsed; the body checksum is not checked here (see [`super::verify`]).
///
/// Errors: [`PackError::RowOutOfRange`] when `matrix` or `row` is past the buffer's
/// shape, [`PackError::RowLength`] when `out` is not `k` values.
///
/// ```
/// use amx_core::formats::{self, Format};
/// use amx_core::pack::{self, PackError, PackedRef};
///
/// // 20 rows of 64 F16 values (two panels of 16 rows, the second one padded).
/// let (n, k) = (20, 64);
/// let src: Vec<u8> = (0..n * k)
///     .flat_map(|i| formats::half::f32_to_f16(i as f32 / 64.0).to_le_bytes())
///     .collect();
/// let mut buf = vec![0u8; pack::packed_size(Format::F16, n, k, 1)?];
/// pack::pack(Format::F16, n, k, 1, &src, &mut buf)?;
/// let packed = PackedRef::parse(&buf)?;
///
/// let mut row = vec![0f32; k];
/// pack::dequantize_row(&packed, 0, 17, &mut row)?;
/// let mut want = vec![0f32; k];
/// formats::dequantize(Format::F16, &src[17 * 2 * k..18 * 2 * k], &mut want)?;
/// assert_eq!(row, want);
/// assert_eq!(row[1], (17 * 64 + 1) as f32 / 64.0);
///
/// assert_eq!(
///     pack::dequantize_row(&packed, 0, 20, &mut row),
///     Err(PackError::RowOutOfRange { matrix: 0, row: 20, matrices: 1, n: 20 })
/// );
/// assert_eq!(
///     pack::dequantize_row(&packed, 0, 3, &mut row[..63]),
///     Err(PackError::RowLength { expected: 64, actual: 63 })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn dequantize_row(
    packed: &PackedRef<'_>,
    matrix: usize,
    row: usize,
    out: &mut [f32],
) -> Result<(), PackError> {
    let layout = packed.layout();
    let (matrices, n, k) = (layout.matrices(), layout.n(), layout.k());
    if matrix >= matrices || row >= n {
        return Err(PackError::RowOutOfRange { matrix, row, matrices, n });
    }
    if out.len() != k {
        return Err(PackError::RowLength { expected: k, actual: out.len() });
    }
    // No overflow: matrix < matrices and row / 16 < panels_per_matrix, so the index is
    // below `panels()`, which `PackedLayout::new` computed without overflow.
    let index = matrix * layout.panels_per_matrix() + row / PANEL_ROWS;
    let Some(panel) = packed.panel(index) else {
        return Err(PackError::PanelRange {
            start: index,
            end: index + 1,
            panels: layout.panels(),
        });
    };
    let format = layout.format();
    let mut block = [0u8; 256];
    // One group per chunk: a whole block for the block formats (k is a multiple of the
    // block), 32 values for F16/BF16, the last chunk shorter when 32 does not divide k.
    for (g, values) in out.chunks_mut(format.group_values()).enumerate() {
        if read_block(layout, panel, g, row % PANEL_ROWS, &mut block).is_none() {
            return Err(PackError::PanelRange {
                start: index,
                end: index + 1,
                panels: layout.panels(),
            });
        }
        // The ggml bytes of `values.len()` values: one block, or 2 bytes per F16/BF16
        // value (the padding past `k` is left out).
        let bytes = values.len() / format.block_values() * format.block_bytes();
        dequantize_group(format, &block[..bytes], values);
    }
    Ok(())
}

/// Dequantizes the whole blocks `src` into `dst` (`dst.len() / block_values` blocks,
/// checked by [`dequantize_row`]'s chunking) with the format's reference dequantizer.
fn dequantize_group(format: Format, src: &[u8], dst: &mut [f32]) {
    with_format!(format, F => F::dequantize_blocks(src, dst));
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::formats::{Format, dequantize};
    use crate::pack::{PackedLayout, pack, pack_f32_as_bf16};
    use crate::test_util::bytes;

    /// Every format, shapes with partial panels and (for F16/BF16) partial groups, every
    /// row of every matrix: bit-equal to dequantizing the source row.
    #[test]
    fn rows_equal_the_dequantized_source_rows_in_every_format() {
        for (i, format) in crate::test_util::test_formats().enumerate() {
            let b = format.block_values();
            let mut ks = if b == 1 { vec![1, 31, 32, 33, 96] } else { vec![b, 3 * b] };
            if cfg!(miri) {
                // Minutes otherwise: one partial-group k for F16/BF16, one block elsewhere.
                ks = if b == 1 { vec![33] } else { vec![b] };
            }
            for k in ks {
                for (n, matrices) in [(1, 1), (17, 2), (32, 1)] {
                    if cfg!(miri) && (n, matrices) != (17, 2) {
                        continue;
                    }
                    let layout = PackedLayout::new(format, n, k, matrices).unwrap();
                    // Random bytes: NaN and infinite scales too, compared bit for bit.
                    let src = bytes((i * 100 + k + n) as u64, layout.source_bytes());
                    let mut buf = vec![0u8; layout.total_bytes()];
                    pack(format, n, k, matrices, &src, &mut buf).unwrap();
                    let packed = PackedRef::parse(&buf).unwrap();
                    let rb = layout.source_row_bytes();
                    let (mut got, mut want) = (vec![0f32; k], vec![0f32; k]);
                    for e in 0..matrices {
                        for r in 0..n {
                            // Miri: the first and last row of each panel.
                            if cfg!(miri) && ![0, 15, 16].contains(&r) {
                                continue;
                            }
                            let at = (e * n + r) * rb;
                            dequantize(format, &src[at..at + rb], &mut want).unwrap();
                            got.fill(1.5);
                            dequantize_row(&packed, e, r, &mut got).unwrap();
                            // Miri picks the payload of a NaN that arithmetic produces
                            // at random (Rust leaves it unspecified): there, a NaN only
                            // has to be a NaN.
                            let same = got.iter().zip(&want).all(|(g, w)| {
                                g.to_bits() == w.to_bits()
                                    || (cfg!(miri) && g.is_nan() && w.is_nan())
                            });
                            assert!(same, "{format} n={n} k={k} e={e} r={r}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_packed_from_f32_gives_the_rounded_values() {
        let (n, k) = (18, 40);
        let src: Vec<f32> = (0..n * k).map(|i| (i as f32).sin() * 3.0).collect();
        let mut buf = vec![0u8; crate::pack::packed_size(Format::BF16, n, k, 1).unwrap()];
        pack_f32_as_bf16(n, k, 1, &src, &mut buf).unwrap();
        let packed = PackedRef::parse(&buf).unwrap();
        let mut got = vec![0f32; k];
        for r in 0..n {
            dequantize_row(&packed, 0, r, &mut got).unwrap();
            for (g, &x) in got.iter().zip(&src[r * k..(r + 1) * k]) {
                let want = crate::formats::half::bf16_to_f32(crate::formats::half::f32_to_bf16(x));
                assert_eq!(g.to_bits(), want.to_bits(), "row {r}");
            }
        }
    }

    #[test]
    fn out_of_range_rows_and_wrong_lengths_are_errors_with_the_numbers() {
        let (n, k, e) = (5, 64, 3);
        let mut buf = vec![0u8; crate::pack::packed_size(Format::Q8_0, n, k, e).unwrap()];
        let src = bytes(7, PackedLayout::new(Format::Q8_0, n, k, e).unwrap().source_bytes());
        pack(Format::Q8_0, n, k, e, &src, &mut buf).unwrap();
        let packed = PackedRef::parse(&buf).unwrap();
        let mut out = vec![0f32; k + 1];
        let range = |matrix, row| PackError::RowOutOfRange { matrix, row, matrices: e, n };
        assert_eq!(dequantize_row(&packed, 3, 0, &mut out[..k]), Err(range(3, 0)));
        assert_eq!(dequantize_row(&packed, 0, 5, &mut out[..k]), Err(range(0, 5)));
        assert_eq!(
            dequantize_row(&packed, usize::MAX, usize::MAX, &mut out[..k]),
            Err(range(usize::MAX, usize::MAX))
        );
        let length = |actual| PackError::RowLength { expected: k, actual };
        assert_eq!(dequantize_row(&packed, 2, 4, &mut out), Err(length(k + 1)));
        assert_eq!(dequantize_row(&packed, 2, 4, &mut []), Err(length(0)));
        assert_eq!(dequantize_row(&packed, 2, 4, &mut out[..k]), Ok(()));
        let s = range(3, 0).to_string();
        assert!(s.contains("matrix 3") && s.contains("row 0") && s.contains("3 matrices"), "{s}");
        let s = length(0).to_string();
        assert!(s.contains("64") && s.contains('0'), "{s}");
    }
}
