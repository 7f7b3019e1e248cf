extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::formats::half::{bf16_to_f32, f32_to_bf16};
use crate::pack::{PANEL_ROWS, PackedRef, pack, pack_panels, packed_size, unpack, verify};
use crate::test_util::bytes;

/// f32 values that need care: NaNs (quiet, signalling, negative, with payloads in the
/// bits BF16 drops and keeps), infinities, signed zeros, f32 subnormals (some rounding to
/// a BF16 subnormal, some to zero), the largest finite (rounds to infinity), ties in both
/// directions, and values just off a tie.
const SPECIALS: [u32; 20] = [
    0x7fc0_0000,
    0x7f80_0001,
    0xff80_0001,
    0x7fa5_a5a5,
    0xffff_ffff,
    0x7f80_0000,
    0xff80_0000,
    0x0000_0000,
    0x8000_0000,
    0x0000_0001,
    0x8001_8000,
    0x0001_16c2,
    0x007f_ffff,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x3f80_8000,
    0x3f81_8000,
    0x3f80_8001,
    0xbf81_7fff,
    0x0080_0000,
];

/// `len` values: random bit patterns (any sign, exponent and NaN), values near 1, and
/// the specials, interleaved.
fn values(seed: u64, len: usize) -> Vec<f32> {
    bytes(seed, 4 * len)
        .chunks_exact(4)
        .enumerate()
        .map(|(i, b)| {
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            f32::from_bits(match i % 5 {
                0 => SPECIALS[(i / 5) % SPECIALS.len()],
                1 => (bits & 0x807f_ffff) | 0x3f00_0000,
                _ => bits,
            })
        })
        .collect()
}

/// The BF16 bytes of `v`, as a ggml BF16 tensor holds them.
fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| f32_to_bf16(x).to_le_bytes()).collect()
}

/// Shapes (n, k, matrices): partial panels, k not a multiple of 32 (a partial last
/// group), a single value, several matrices.
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (16, 32, 1),
    (17, 33, 2),
    (5, 31, 1),
    (37, 100, 1),
    (16, 256, 3),
    (33, 64, 2),
    (3, 7, 4),
    (20, 95, 1),
];

#[test]
fn packing_f32_equals_packing_its_bf16_bytes() {
    // Miri: the small shapes (every panel path still: one row, partial panels and groups,
    // stacks); the larger ones take minutes there.
    let shapes = if cfg!(miri) { &SHAPES[..4] } else { &SHAPES[..] };
    for (i, &(n, k, e)) in shapes.iter().enumerate() {
        let v = values(11 + i as u64, n * k * e);
        let size = packed_size(Format::BF16, n, k, e).unwrap();
        let mut want = vec![0x5au8; size];
        let lw = pack(Format::BF16, n, k, e, &bf16_bytes(&v), &mut want).unwrap();
        // A destination full of other bytes, and one byte past the buffer left alone.
        let mut got = vec![0xc3u8; size + 1];
        let lg = pack_f32_as_bf16(n, k, e, &v, &mut got).unwrap();
        assert_eq!(lg, lw);
        assert_eq!(got[size], 0xc3, "n={n} k={k} e={e}: wrote past the buffer");
        assert!(got[..size] == want[..], "n={n} k={k} e={e}: packed bytes differ");
        // A checked BF16 buffer; it unpacks to the rounded values' bytes.
        let packed = verify(&got[..size]).unwrap();
        packed.expect(Format::BF16, n, k, e).unwrap();
        let mut back = vec![0u8; n * k * e * 2];
        unpack(&packed, &mut back).unwrap();
        assert!(back == bf16_bytes(&v));
    }
}

#[test]
fn specials_round_as_f32_to_bf16_does() {
    // One row of the specials: each packed value is the rounding documented in `half`.
    let v: Vec<f32> = SPECIALS.iter().map(|&b| f32::from_bits(b)).collect();
    let mut buf = vec![0u8; packed_size(Format::BF16, 1, v.len(), 1).unwrap()];
    pack_f32_as_bf16(1, v.len(), 1, &v, &mut buf).unwrap();
    let mut back = vec![0u8; 2 * v.len()];
    unpack(&PackedRef::parse(&buf).unwrap(), &mut back).unwrap();
    let got: Vec<u16> = back.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let want: [u16; 20] = [
        0x7fc0, 0x7fc0, 0xffc0, 0x7fe5, 0xffff, 0x7f80, 0xff80, 0x0000, 0x8000, 0x0000, 0x8002,
        0x0001, 0x0080, 0x7f80, 0xff80, 0x3f80, 0x3f82, 0x3f81, 0xbf81, 0x0080,
    ];
    assert_eq!(got, want);
    assert!(bf16_to_f32(got[0]).is_nan() && bf16_to_f32(got[2]).is_sign_negative());
}

#[test]
fn panel_ranges_from_their_rows_add_up_to_the_whole() {
    // Packed in pieces (each from only the rows it covers) into a poisoned buffer, the
    // pieces' sums combined: the same bytes as one call.
    let shapes: &[(usize, usize, usize)] =
        if cfg!(miri) { &[(17, 33, 2)] } else { &[(37, 100, 2), (17, 33, 3), (16, 64, 1)] };
    for &(n, k, e) in shapes {
        let v = values(n as u64 * 31 + k as u64, n * k * e);
        let size = packed_size(Format::BF16, n, k, e).unwrap();
        let mut whole = vec![0u8; size];
        let layout = pack_f32_as_bf16(n, k, e, &v, &mut whole).unwrap();
        let panels = layout.panels();
        for cut in [vec![0, panels], (0..=panels).collect(), vec![0, 1, panels]] {
            let mut parts = vec![0x77u8; size];
            let mut sum = BodySum::EMPTY;
            for w in cut.windows(2) {
                let at = layout.panel_offset(w[0]).unwrap();
                let rows = source_rows(&layout, w[0]..w[1]);
                let src = &v[rows.start * k..rows.end * k];
                let s = pack_f32_as_bf16_panels(&layout, src, w[0]..w[1], &mut parts[at..]);
                sum = sum.combine(s.unwrap());
            }
            write_header(&layout, &sum, &mut parts).unwrap();
            assert!(parts == whole, "n={n} k={k} e={e} cut {cut:?}");
        }
        // And the same sums as `pack_panels` of the BF16 bytes, range by range.
        let src = bf16_bytes(&v);
        for p in 0..panels {
            let rows = source_rows(&layout, p..p + 1);
            let mut a = vec![0u8; layout.panel_bytes()];
            let mut b = vec![0u8; layout.panel_bytes()];
            let sa = pack_panels(&layout, &src, p..p + 1, &mut a).unwrap();
            let sb = pack_f32_as_bf16_panels(
                &layout,
                &v[rows.start * k..rows.end * k],
                p..p + 1,
                &mut b,
            );
            assert_eq!(sb.unwrap(), sa);
            assert!(a == b);
        }
    }
}

#[test]
fn source_rows_cover_each_matrix_up_to_its_n() {
    let layout = PackedLayout::new(Format::BF16, 20, 8, 3).unwrap();
    assert_eq!(layout.panels(), 6);
    assert_eq!(source_rows(&layout, 0..1), 0..16);
    assert_eq!(source_rows(&layout, 1..2), 16..20);
    assert_eq!(source_rows(&layout, 2..3), 20..36);
    assert_eq!(source_rows(&layout, 1..4), 16..40);
    assert_eq!(source_rows(&layout, 0..6), 0..60);
    assert_eq!(source_rows(&layout, 3..3), 0..0);
    #[allow(clippy::reversed_empty_ranges)] // a reversed range on purpose
    let reversed = 4..2;
    assert_eq!(source_rows(&layout, reversed), 0..0);
    assert_eq!(source_rows(&layout, 0..7), 0..0);
}

#[test]
fn errors_say_what_was_wrong() {
    let v = vec![1.0f32; 16 * 40];
    let mut dst = vec![0u8; packed_size(Format::BF16, 16, 40, 1).unwrap()];
    assert_eq!(
        pack_f32_as_bf16(0, 40, 1, &[], &mut dst),
        Err(PackError::EmptyShape { n: 0, k: 40, matrices: 1 })
    );
    assert_eq!(
        pack_f32_as_bf16(16, 40, 1, &v[1..], &mut dst),
        Err(PackError::SourceLength { expected: 4 * 640, actual: 4 * 639 })
    );
    let short = dst.len() - 1;
    assert_eq!(
        pack_f32_as_bf16(16, 40, 1, &v, &mut dst[..short]),
        Err(PackError::DestinationTooSmall { needed: short + 1, actual: short })
    );
    let q = PackedLayout::new(Format::Q4_0, 16, 64, 1).unwrap();
    assert_eq!(
        pack_f32_as_bf16_panels(&q, &v, 0..1, &mut dst),
        Err(PackError::FormatMismatch { expected: Format::BF16, found: Format::Q4_0 })
    );
    let l = PackedLayout::new(Format::BF16, 16, 40, 1).unwrap();
    assert_eq!(
        pack_f32_as_bf16_panels(&l, &v, 0..2, &mut dst),
        Err(PackError::PanelRange { start: 0, end: 2, panels: 1 })
    );
    assert_eq!(
        pack_f32_as_bf16_panels(&l, &v, 0..1, &mut dst[..10]),
        Err(PackError::DestinationTooSmall { needed: l.panel_bytes(), actual: 10 })
    );
    // An empty range takes no rows.
    assert_eq!(pack_f32_as_bf16_panels(&l, &[], 1..1, &mut []), Ok(BodySum::EMPTY));
    assert_eq!(
        pack_f32_as_bf16_panels(&l, &v, 1..1, &mut []),
        Err(PackError::SourceLength { expected: 0, actual: 4 * 640 })
    );
    assert!(pack_f32_as_bf16(16, 40, 1, &v, &mut dst).is_ok());
}

#[test]
#[cfg_attr(miri, ignore = "Miri has only the portable packer, nothing to compare it with")]
fn portable_and_fast_paths_agree() {
    use crate::pack::checksum::Run;
    use crate::pack::transform::{pack_f32_panel, portable};
    for &(n, k, e) in &SHAPES {
        let v = values(7 * n as u64 + k as u64, n * k * e);
        let l = PackedLayout::new(Format::BF16, n, k, e).unwrap();
        for p in 0..l.panels() {
            let rows = source_rows(&l, p..p + 1);
            let src = &v[rows.start * k..rows.end * k];
            let mut fast = vec![0x11u8; l.panel_bytes()];
            let mut slow = vec![0x22u8; l.panel_bytes()];
            let (mut fast_sum, mut slow_sum) = (Run::new(), Run::new());
            pack_f32_panel(&l, src, p, &mut fast, &mut fast_sum);
            portable::pack_f32_panel(&l, src, p, &mut slow, &mut slow_sum);
            assert!(fast == slow, "n={n} k={k} panel {p}: paths differ");
            let mut written = Run::new();
            written.update_portable(&slow);
            assert_eq!(fast_sum.at(p as u64), written.at(p as u64));
            assert_eq!(slow_sum.at(p as u64), written.at(p as u64));
            assert!(rows.len() <= PANEL_ROWS);
        }
    }
}
