extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::formats::Format;

use crate::test_util::{bytes, test_formats};

fn ks(format: Format) -> Vec<usize> {
    let b = format.block_values();
    if b == 1 { vec![1, 2, 31, 32, 33, 65, 96] } else { vec![b, 2 * b, 3 * b] }
}

fn round_trip(format: Format, n: usize, k: usize, matrices: usize, seed: u64) {
    let layout = PackedLayout::new(format, n, k, matrices).unwrap();
    let src = bytes(seed, layout.source_bytes());
    let mut dst = vec![0xA5u8; layout.total_bytes() + 7];
    let got = pack(format, n, k, matrices, &src, &mut dst).unwrap();
    assert_eq!(got, layout);
    assert!(dst[layout.total_bytes()..].iter().all(|&b| b == 0xA5), "wrote past the end");
    let packed = PackedRef::parse_expecting(&dst, format, n, k, matrices).unwrap();
    let mut back = vec![0u8; src.len()];
    unpack(&packed, &mut back).unwrap();
    assert!(back == src, "{format} n={n} k={k} e={matrices}: round trip differs");
}

#[test]
fn round_trips_every_format_and_awkward_shape() {
    for (i, format) in test_formats().enumerate() {
        for n in [1, 15, 16, 17, 33] {
            for k in ks(format) {
                for matrices in [1, 3] {
                    // Under Miri (thousands of times slower) one shape per format: one
                    // block per row, a partial second panel in each of several matrices.
                    if cfg!(miri) && (n, k, matrices) != (17, format.block_values(), 3) {
                        continue;
                    }
                    round_trip(format, n, k, matrices, (i * 1000 + n * 10 + k + matrices) as u64);
                }
            }
        }
    }
}

#[test]
fn sizes_follow_the_documented_layout() {
    let l = PackedLayout::new(Format::Q4_0, 17, 64, 1).unwrap();
    assert_eq!((l.groups(), l.panels_per_matrix(), l.panels()), (2, 2, 2));
    assert_eq!(l.panel_bytes(), 2 * 16 * 18);
    assert_eq!(l.total_bytes(), 64 + 2 * 576);
    // One Q4_0 group of 16 rows is 288 bytes: odd group counts pad each panel to 64.
    let l = PackedLayout::new(Format::Q4_0, 16, 32, 2).unwrap();
    assert_eq!(l.panel_bytes(), 320);
    assert_eq!(packed_size(Format::Q4_0, 16, 32, 2), Ok(64 + 2 * 320));
    // F16: 64 bytes per row and group, k = 33 needs two groups (the second padded).
    let l = PackedLayout::new(Format::F16, 3, 33, 1).unwrap();
    assert_eq!((l.groups(), l.panel_bytes(), l.source_bytes()), (2, 2 * 16 * 64, 3 * 66));
}

#[test]
fn bytes_land_where_the_docs_say() {
    // Q4_0, 2 panels, 2 blocks per row: check row 17 (panel 1, r = 1), block 1, quad 2.
    let (n, k) = (20, 64);
    let l = PackedLayout::new(Format::Q4_0, n, k, 1).unwrap();
    let src = bytes(7, l.source_bytes());
    let mut dst = vec![0u8; l.total_bytes()];
    pack(Format::Q4_0, n, k, 1, &src, &mut dst).unwrap();
    let (row, g, c, r) = (17, 1, 2, 1);
    let block = &src[row * 36 + g * 18..][..18];
    let panel = HEADER_BYTES + l.panel_bytes();
    let quad = panel + g * 16 * 16 + c * 64 + 4 * r;
    assert_eq!(&dst[quad..quad + 4], &block[2 + 4 * c..2 + 4 * c + 4]);
    let scales = panel + 2 * 16 * 16 + g * 32 + 2 * r;
    assert_eq!(&dst[scales..scales + 2], &block[0..2]);
    // Rows 20..32 of panel 1 are padding: zero, although dst was not zeroed by us.
    let pad_quad = panel + 4 * 5;
    assert_eq!(&dst[pad_quad..pad_quad + 4], &[0; 4]);
}

#[test]
fn padding_is_zeroed_whatever_the_destination_held() {
    let l = PackedLayout::new(Format::Q6_K, 5, 256, 1).unwrap();
    let src = bytes(3, l.source_bytes());
    let mut a = vec![0x00u8; l.total_bytes()];
    let mut b = vec![0xFFu8; l.total_bytes()];
    pack(Format::Q6_K, 5, 256, 1, &src, &mut a).unwrap();
    pack(Format::Q6_K, 5, 256, 1, &src, &mut b).unwrap();
    assert!(a == b);
}

#[test]
fn split_packing_equals_whole_packing() {
    let (f, n, k, e) = (Format::Q4_K, 40, 512, 2);
    let l = PackedLayout::new(f, n, k, e).unwrap();
    let src = bytes(11, l.source_bytes());
    let mut whole = vec![0u8; l.total_bytes()];
    pack(f, n, k, e, &src, &mut whole).unwrap();
    // Ranges packed in any order (as threads would finish), their sums added in any order.
    let mut parts = vec![0u8; l.total_bytes()];
    let mut sum = BodySum::EMPTY;
    for range in [4..6, 0..1, 1..4] {
        let at = l.panel_offset(range.start).unwrap();
        sum = pack_panels(&l, &src, range, &mut parts[at..]).unwrap().combine(sum);
    }
    write_header(&l, &sum, &mut parts).unwrap();
    assert!(parts == whole);
    verify(&parts).unwrap();
    // Unpacking a sub-range gives the rows it covers: panels 2..4 are matrix 0's last
    // panel (rows 32..40) and matrix 1's first (rows 40..56).
    let packed = PackedRef::parse(&whole).unwrap();
    let range = source_range(&l, 2..4);
    assert_eq!(range, 32 * 144 * 2..56 * 144 * 2);
    let mut some = vec![0u8; range.len()];
    unpack_panels(&packed, 2..4, &mut some).unwrap();
    assert!(some[..] == src[range]);
}

#[test]
fn shape_and_length_errors() {
    use PackError::*;
    let q = Format::Q4_0;
    assert_eq!(PackedLayout::new(q, 0, 32, 1), Err(EmptyShape { n: 0, k: 32, matrices: 1 }));
    assert_eq!(PackedLayout::new(q, 1, 0, 1), Err(EmptyShape { n: 1, k: 0, matrices: 1 }));
    assert_eq!(PackedLayout::new(q, 1, 32, 0), Err(EmptyShape { n: 1, k: 32, matrices: 0 }));
    assert_eq!(
        PackedLayout::new(Format::Q4_K, 1, 128, 1),
        Err(NotBlockMultiple { format: Format::Q4_K, k: 128, block: 256 })
    );
    assert_eq!(PackedLayout::new(q, usize::MAX / 2, 32, 4), Err(Overflow));
    assert_eq!(PackedLayout::new(Format::BF16, 1, usize::MAX, 1), Err(Overflow));
    let mut dst = vec![0u8; 1024];
    assert_eq!(
        pack(q, 2, 32, 1, &[0; 35], &mut dst),
        Err(SourceLength { expected: 36, actual: 35 })
    );
    assert_eq!(
        pack(q, 2, 32, 1, &[0; 36], &mut dst[..100]),
        Err(DestinationTooSmall { needed: 64 + 320, actual: 100 })
    );
    let l = PackedLayout::new(q, 40, 32, 1).unwrap();
    assert_eq!(
        pack_panels(&l, &[0; 40 * 18], 2..4, &mut dst),
        Err(PanelRange { start: 2, end: 4, panels: 3 })
    );
    assert_eq!(
        write_header(&l, &BodySum::EMPTY, &mut dst[..10]),
        Err(DestinationTooSmall { needed: 64, actual: 10 })
    );
}

/// Rewrites the header checksum of `b` to match its (edited) other header bytes.
fn forge_checksum(b: &mut [u8]) {
    let h: &mut [u8; HEADER_BYTES] = b.first_chunk_mut().unwrap();
    let sum = super::header::checksum_for_tests(h);
    h[48..56].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn header_errors() {
    use PackError::*;
    let (f, n, k) = (Format::Q8_0, 3, 64);
    let l = PackedLayout::new(f, n, k, 1).unwrap();
    let src = bytes(5, l.source_bytes());
    let mut good = vec![0u8; l.total_bytes()];
    pack(f, n, k, 1, &src, &mut good).unwrap();
    let parse = |b: &[u8]| PackedRef::parse(b).map(|p| *p.layout());

    assert_eq!(parse(&good[..10]), Err(Truncated { needed: 64, actual: 10 }));
    assert_eq!(
        parse(&good[..good.len() - 1]),
        Err(Truncated { needed: good.len(), actual: good.len() - 1 })
    );
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(parse(&b), Err(BadMagic));
    // A version with a consistent checksum (as a newer writer might produce).
    let mut b = good.clone();
    b[8] = 7;
    forge_checksum(&mut b);
    assert_eq!(parse(&b), Err(UnsupportedVersion { found: 7, supported: LAYOUT_VERSION }));
    // A flipped byte of the body checksum is a header fault.
    let mut b = good.clone();
    b[63] ^= 1;
    assert!(matches!(parse(&b), Err(HeaderChecksum { .. })));
    // A changed format id is caught by the checksum, even when the other format's layout
    // has the same size (Q4_0 and Q4_K: 144 bytes per 256 values).
    let l44 = PackedLayout::new(Format::Q4_0, 3, 256, 1).unwrap();
    let mut q40 = vec![0u8; l44.total_bytes()];
    pack(Format::Q4_0, 3, 256, 1, &bytes(6, l44.source_bytes()), &mut q40).unwrap();
    q40[12] = Format::Q4_K.ggml_type() as u8;
    assert!(matches!(PackedRef::parse(&q40), Err(HeaderChecksum { .. })));
    // Rows per panel other than 16, or a wrong total, with a consistent checksum.
    let mut b = good.clone();
    b[10] = 8;
    forge_checksum(&mut b);
    assert_eq!(parse(&b), Err(BadHeader));
    let mut b = good.clone();
    b[40] ^= 0x40;
    forge_checksum(&mut b);
    assert_eq!(parse(&b), Err(BadHeader));
    // An unknown id with a consistent checksum.
    let mut b = good.clone();
    b[12] = 99;
    forge_checksum(&mut b);
    assert_eq!(parse(&b), Err(UnknownFormat { ggml_type: 99 }));
    let msg = std::format!("{}", parse(&b).unwrap_err());
    assert_eq!(msg, "packed header names ggml type id 99, which is not a ggml type");
    let mut b = good.clone();
    b[12] = 9;
    forge_checksum(&mut b);
    let msg = std::format!("{}", parse(&b).unwrap_err());
    assert_eq!(msg, "packed header names Q8_1 (ggml type 9), which is not a packed format");
    assert_eq!(
        PackedRef::parse_expecting(&good, Format::Q4_0, n, k, 1).map(|_| ()),
        Err(FormatMismatch { expected: Format::Q4_0, found: f })
    );
    assert_eq!(
        PackedRef::parse_expecting(&good, f, n, 2 * k, 1).map(|_| ()),
        Err(ShapeMismatch { expected: (1, n, 2 * k), found: (1, n, k) })
    );
    let packed = PackedRef::parse(&good).unwrap();
    let mut out = vec![0u8; src.len() + 1];
    assert_eq!(
        unpack(&packed, &mut out),
        Err(SourceLength { expected: src.len(), actual: src.len() + 1 })
    );
}

#[test]
fn non_finite_scales_are_carried() {
    // Q4_0 blocks with d = +inf (0x7C00) and NaN (0x7E01).
    let mut src = bytes(9, 2 * 18);
    src[0..2].copy_from_slice(&0x7C00u16.to_le_bytes());
    src[18..20].copy_from_slice(&0x7E01u16.to_le_bytes());
    let mut dst = vec![0u8; packed_size(Format::Q4_0, 2, 32, 1).unwrap()];
    pack(Format::Q4_0, 2, 32, 1, &src, &mut dst).unwrap();
    let mut back = vec![0u8; src.len()];
    unpack(&PackedRef::parse(&dst).unwrap(), &mut back).unwrap();
    assert!(back == src);
}

#[test]
#[cfg_attr(miri, ignore = "Miri has only the portable packer, nothing to compare it with")]
fn portable_and_fast_paths_agree() {
    use super::checksum::Run;
    use super::transform::{pack_panel, portable, unpack_panel};
    for (i, format) in test_formats().enumerate() {
        for n in [1, 17, 33] {
            for k in ks(format) {
                let l = PackedLayout::new(format, n, k, 2).unwrap();
                let src = bytes(100 + i as u64 * 7 + k as u64, l.source_bytes());
                for panel in 0..l.panels() {
                    let mut fast = vec![0x11u8; l.panel_bytes()];
                    let mut slow = vec![0x22u8; l.panel_bytes()];
                    let (mut fast_sum, mut slow_sum) = (Run::new(), Run::new());
                    pack_panel(&l, &src, panel, &mut fast, &mut fast_sum, false);
                    portable::pack_panel(&l, &src, panel, &mut slow, &mut slow_sum);
                    assert!(fast == slow, "{format} n={n} k={k} panel {panel}: pack paths differ");
                    // Streaming stores, into a 64-byte aligned panel: the same bytes and
                    // checksum.
                    let mut storage = vec![0x44u8; l.panel_bytes() + 64];
                    let skip = storage.as_ptr().align_offset(64);
                    let streamed = &mut storage[skip..skip + l.panel_bytes()];
                    let mut streamed_sum = Run::new();
                    pack_panel(&l, &src, panel, streamed, &mut streamed_sum, true);
                    assert!(
                        streamed[..] == slow[..],
                        "{format} n={n} k={k} panel {panel}: streamed"
                    );
                    assert_eq!(streamed_sum.at(panel as u64), slow_sum.at(panel as u64));
                    // The AVX-512 packer that CPUs without VBMI run, on this one too.
                    let mut plain = vec![0x33u8; l.panel_bytes()];
                    let mut plain_sum = Run::new();
                    let ran = portable::pack_panel_avx512_without_vbmi(
                        &l,
                        &src,
                        panel,
                        &mut plain,
                        &mut plain_sum,
                    );
                    if ran {
                        assert!(plain == slow, "{format} n={n} k={k} panel {panel}: no VBMI");
                        assert_eq!(plain_sum.at(panel as u64), slow_sum.at(panel as u64));
                    }
                    // The checksum summed while packing (fused on AVX-512) is the
                    // checksum of the bytes written, on both paths.
                    let mut written = Run::new();
                    written.update_portable(&slow);
                    assert_eq!(fast_sum.at(panel as u64), written.at(panel as u64));
                    assert_eq!(slow_sum.at(panel as u64), written.at(panel as u64));
                    let range = source_range(&l, panel..panel + 1);
                    let mut a = vec![0u8; range.len()];
                    let mut b = vec![0u8; range.len()];
                    unpack_panel(&l, &fast, panel, &mut a);
                    portable::unpack_panel(&l, &fast, panel, &mut b);
                    assert!(a == b && a[..] == src[range], "{format} n={n} k={k}: unpack paths");
                }
            }
        }
    }
}

#[test]
fn read_block_gives_back_each_source_block() {
    for (i, format) in test_formats().enumerate() {
        let k = if format.block_values() == 1 { 70 } else { 2 * format.block_values() };
        let n = 19;
        let l = PackedLayout::new(format, n, k, 1).unwrap();
        let src = bytes(300 + i as u64, l.source_bytes());
        let mut dst = vec![0u8; l.total_bytes()];
        pack(format, n, k, 1, &src, &mut dst).unwrap();
        let packed = PackedRef::parse(&dst).unwrap();
        let rb = l.source_row_bytes();
        for row in 0..n {
            let panel = packed.panel(row / PANEL_ROWS).unwrap();
            for g in 0..l.groups() {
                let mut out = [0u8; 256];
                let len = read_block(&l, panel, g, row % PANEL_ROWS, &mut out).unwrap();
                let gb = group_bytes(format);
                assert_eq!(len, gb);
                let start = g * gb;
                let end = (start + gb).min(rb);
                let want = &src[row * rb + start..row * rb + end];
                assert_eq!(&out[..want.len()], want, "{format} row {row} group {g}");
                assert!(out[want.len()..gb].iter().all(|&b| b == 0), "{format}: padding not zero");
            }
        }
        let panel = packed.panel(0).unwrap();
        assert_eq!(read_block(&l, panel, l.groups(), 0, &mut [0; 256]), None);
        assert_eq!(read_block(&l, panel, 0, 16, &mut [0; 256]), None);
        assert_eq!(read_block(&l, &panel[1..], 0, 0, &mut [0; 256]), None);
    }
}

/// A valid packed Q4_0 buffer of 20 x 64 (two panels) and its source.
fn q4_0_buffer() -> (Vec<u8>, Vec<u8>) {
    let l = PackedLayout::new(Format::Q4_0, 20, 64, 1).unwrap();
    let src = bytes(41, l.source_bytes());
    let mut dst = vec![0u8; l.total_bytes()];
    pack(Format::Q4_0, 20, 64, 1, &src, &mut dst).unwrap();
    (src, dst)
}

#[test]
fn every_header_bit_flip_fails_the_header_checksum_before_any_field_is_read() {
    let (_, good) = q4_0_buffer();
    // Bytes 0..8 are the magic, checked first; every other header bit is covered.
    for bit in 8 * 8..HEADER_BYTES * 8 {
        let mut b = good.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let got = PackedRef::parse(&b).map(|p| *p.layout());
        assert!(
            matches!(got, Err(PackError::HeaderChecksum { .. })),
            "flip of header bit {bit} gave {got:?}"
        );
    }
    // Bit 15 of the version (byte 9) used to read as "layout version 32771".
    let mut b = good.clone();
    b[9] ^= 0x80;
    let msg = std::format!("{}", PackedRef::parse(&b).unwrap_err());
    assert!(msg.contains("header checksum failed") && !msg.contains("version"), "{msg}");
}

#[test]
fn a_buffer_of_layout_version_2_is_named_by_its_version() {
    let (_, mut b) = q4_0_buffer();
    // Version 2's header: no body checksum, FNV-1a 64 of bytes 0..48 at 48..56.
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    b[56..64].fill(0);
    let fnv = b[..48]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3));
    b[48..56].copy_from_slice(&fnv.to_le_bytes());
    assert_eq!(
        PackedRef::parse(&b).map(|_| ()),
        Err(PackError::UnsupportedVersion { found: 2, supported: LAYOUT_VERSION })
    );
}

#[test]
fn every_body_bit_flip_is_an_error_of_verify_and_unpack() {
    let (src, good) = q4_0_buffer();
    let stored = u64::from_le_bytes(good[56..64].try_into().unwrap());
    assert_eq!(verify(&good).map(|p| *p.layout()), PackedRef::parse(&good).map(|p| *p.layout()));
    // Under Miri every 257th bit (257 = 1 mod 8: every bit position of a byte is hit).
    let step = if cfg!(miri) { 257 } else { 1 };
    for bit in (HEADER_BYTES * 8..good.len() * 8).step_by(step) {
        let mut b = good.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        // The header alone still reads (the GEMM's per-call check is the header only).
        let packed = PackedRef::parse(&b).unwrap();
        let err = verify(&b).map(|_| ()).unwrap_err();
        let named = |s, c| s == stored && c != stored;
        assert!(
            matches!(err, PackError::BodyChecksum { stored: s, computed: c } if named(s, c)),
            "flip of body bit {bit}: {err:?}"
        );
        let mut out = vec![0x77u8; src.len()];
        assert_eq!(unpack(&packed, &mut out), Err(err), "bit {bit}");
        assert!(out.iter().all(|&x| x == 0x77), "unpack wrote before it verified");
    }
}

#[test]
fn a_nan_written_into_a_scale_is_an_error_of_verify_and_unpack() {
    let (src, mut b) = q4_0_buffer();
    // Row 17's scale of block 1: panel 1, per-row region after 2 groups of 16 x 16 quads.
    let l = PackedLayout::new(Format::Q4_0, 20, 64, 1).unwrap();
    let at = HEADER_BYTES + l.panel_bytes() + 2 * 16 * 16 + 32 + 2;
    assert_eq!(&b[at..at + 2], &src[17 * 36 + 18..17 * 36 + 20], "not the scale");
    b[at..at + 2].copy_from_slice(&0x7E00u16.to_le_bytes());
    assert!(matches!(verify(&b), Err(PackError::BodyChecksum { .. })));
    let mut out = vec![0u8; src.len()];
    let packed = PackedRef::parse(&b).unwrap();
    assert!(matches!(unpack(&packed, &mut out), Err(PackError::BodyChecksum { .. })));
}

#[test]
fn a_matrix_view_verifies_its_whole_stack() {
    let (f, n, k, e) = (Format::Q8_0, 17, 64, 3);
    let l = PackedLayout::new(f, n, k, e).unwrap();
    let src = bytes(43, l.source_bytes());
    let mut b = vec![0u8; l.total_bytes()];
    pack(f, n, k, e, &src, &mut b).unwrap();
    let one = src.len() / e;
    let mut out = vec![0u8; one];
    unpack(&PackedRef::parse(&b).unwrap().matrix(1).unwrap(), &mut out).unwrap();
    assert!(out[..] == src[one..2 * one]);
    // A flip in matrix 2 makes matrix 1's view refuse to unpack too.
    let last = b.len() - 1;
    b[last] ^= 4;
    let view = PackedRef::parse(&b).unwrap().matrix(1).unwrap();
    assert!(matches!(unpack(&view, &mut out), Err(PackError::BodyChecksum { .. })));
}
