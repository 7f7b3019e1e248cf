//! The per-row fields of a small-block format in one move.
//!
//! A 32-value block (Q4_0, Q5_0, IQ4_NL, MXFP4, ...) keeps its scale, minimum and fifth
//! bits in its first few bytes. Copied field by field, a group's per-row region is up to
//! 48 moves of 1 to 4 bytes; packing Q5_0 spent about as long on those as on its 256 quads
//! bytes. When every per-row field lies in a block's first [`HEAD_BYTES`] bytes, the 16
//! rows' first bytes are loaded at once and the whole region is one byte permutation of
//! them ([`Head`], computed from the format's field table at compile time).

use crate::formats::field::{Field, Kind};

use super::PANEL_ROWS;

/// Bytes loaded from the start of each row's group.
pub(crate) const HEAD_BYTES: usize = 8;

/// The longest per-row region a [`Head`] describes: 16 rows of [`HEAD_BYTES`].
pub(crate) const HEAD_REGION: usize = PANEL_ROWS * HEAD_BYTES;

/// Where each byte of a group's per-row region comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes of the per-row region (16 times the per-row bytes of one row); 0 when the
    /// format's per-row fields do not all lie in its first [`HEAD_BYTES`] bytes.
    pub(crate) len: usize,
    /// Byte `j < len` of the region is byte `idx[j]` of the 16 rows' heads laid end to
    /// end (row `r`'s first [`HEAD_BYTES`] bytes at `r * HEAD_BYTES`).
    pub(crate) idx: [u8; HEAD_REGION],
}

/// The [`Head`] of a field table whose groups are `group_bytes` long: the per-row fields
/// in table order, each 16 rows of its `len` bytes, as [`crate::pack`]'s layout stores
/// them (see `field_base`).
pub(crate) const fn head(fields: &[Field], group_bytes: usize) -> Head {
    let none = Head { len: 0, idx: [0; HEAD_REGION] };
    if group_bytes < HEAD_BYTES {
        return none;
    }
    let mut idx = [0u8; HEAD_REGION];
    let mut base = 0;
    let mut i = 0;
    while i < fields.len() {
        let f = fields[i];
        if matches!(f.kind, Kind::PerRow) {
            if f.offset + f.len > HEAD_BYTES || base + PANEL_ROWS * f.len > HEAD_REGION {
                return none;
            }
            let mut r = 0;
            while r < PANEL_ROWS {
                let mut b = 0;
                while b < f.len {
                    idx[base + r * f.len + b] = (r * HEAD_BYTES + f.offset + b) as u8;
                    b += 1;
                }
                r += 1;
            }
            base += PANEL_ROWS * f.len;
        }
        i += 1;
    }
    Head { len: base, idx }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Format;
    use crate::formats::field::{per_row, quads};

    #[test]
    fn q5_0_region_is_scales_then_fifth_bits() {
        // d at 0..2 and qh at 2..6: 32 bytes of scales, then 64 of fifth bits.
        let h = head(&[quads(6, 16), per_row(0, 2), per_row(2, 4)], 22);
        assert_eq!(h.len, 96);
        assert_eq!(&h.idx[..4], &[0, 1, 8, 9]);
        assert_eq!(&h.idx[30..32], &[120, 121]);
        assert_eq!(&h.idx[32..40], &[2, 3, 4, 5, 10, 11, 12, 13]);
        assert_eq!(&h.idx[92..96], &[122, 123, 124, 125]);
    }

    #[test]
    fn fields_past_the_head_or_short_groups_have_none() {
        assert_eq!(head(&[quads(0, 16), per_row(16, 2)], 18).len, 0);
        assert_eq!(head(&[quads(0, 4), per_row(4, 2)], 6).len, 0);
        assert_eq!(head(&[quads(0, 64)], 64).len, 0);
    }

    #[test]
    fn every_format_with_a_head_moves_its_per_row_bytes_exactly() {
        // Against the field table directly: region byte by region byte.
        for format in Format::ALL {
            let h = head(format.fields(), format.group_bytes());
            if h.len == 0 {
                continue;
            }
            let mut at = 0;
            for f in format.fields().iter().filter(|f| matches!(f.kind, Kind::PerRow)) {
                for r in 0..PANEL_ROWS {
                    for b in 0..f.len {
                        assert_eq!(usize::from(h.idx[at]), r * HEAD_BYTES + f.offset + b);
                        at += 1;
                    }
                }
            }
            assert_eq!(at, h.len, "{format}");
        }
    }
}
