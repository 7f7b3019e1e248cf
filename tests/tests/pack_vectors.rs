//! The weight repack on the GGUF vectors (real ggml bytes, every format x 4 shapes):
//! - `pack` then `unpack` gives back `w` byte for byte, as one matrix and as 3 stacked;
//! - each stacked matrix's panels are the single matrix's panels and `unpack_panels` of its
//!   panel range gives back that matrix;
//! - the packed bytes are where the module docs of `amx_core::pack` say (a reference packer
//!   written from those docs, below), on all rows and on `n - 1` rows (a partial panel);
//! - `PackedRef::parse_expecting` refuses another format or shape with the right error.

use amx_core::formats::Format;
use amx_core::pack::{
    self, HEADER_BYTES, LAYOUT_VERSION, MAGIC, PackError, PackedLayout, PackedRef, packed_size,
};
use amx_testdata::vectors::{self, Vector};

fn load() -> Vec<Vector> {
    let dir = amx_tests::vectors_dir();
    let vs = vectors::load_dir(&dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    let want = 4 * Format::ALL.len();
    assert_eq!(vs.len(), want, "expected every format x 4 shapes in {}", dir.display());
    vs
}

/// Packs `src` as `matrices` weights of `n x k` into a buffer that held `fill` bytes (and 5
/// bytes past the end, which must stay untouched).
fn pack_into(format: Format, n: usize, k: usize, matrices: usize, src: &[u8], fill: u8) -> Vec<u8> {
    let total = packed_size(format, n, k, matrices).expect("valid shape");
    let mut dst = vec![fill; total + 5];
    let layout = pack::pack(format, n, k, matrices, src, &mut dst)
        .unwrap_or_else(|e| panic!("{format} n={n} k={k} e={matrices}: pack: {e}"));
    assert_eq!(layout.total_bytes(), total);
    assert_eq!(layout.source_bytes(), src.len());
    assert!(dst[total..].iter().all(|&b| b == fill), "pack wrote past total_bytes");
    dst.truncate(total);
    dst
}

#[test]
fn one_matrix_round_trips_every_vector() {
    for v in load() {
        let name = v.file_name();
        let packed = pack_into(v.format, v.n, v.k, 1, &v.w, 0xC3);
        let view = PackedRef::parse_expecting(&packed, v.format, v.n, v.k, 1)
            .unwrap_or_else(|e| panic!("{name}: parse: {e}"));
        let mut back = vec![0u8; v.w.len()];
        pack::unpack(&view, &mut back).unwrap_or_else(|e| panic!("{name}: unpack: {e}"));
        assert!(back == v.w, "{name}: unpack differs from w");
    }
}

#[test]
fn three_stacked_matrices_round_trip_and_unpack_per_matrix() {
    for v in load() {
        let name = v.file_name();
        let stacked = v.w.repeat(3);
        let single = pack_into(v.format, v.n, v.k, 1, &v.w, 0);
        let packed = pack_into(v.format, v.n, v.k, 3, &stacked, 0x5A);
        let view = PackedRef::parse_expecting(&packed, v.format, v.n, v.k, 3)
            .unwrap_or_else(|e| panic!("{name}: parse: {e}"));
        let layout = *view.layout();
        assert_eq!(layout.matrices(), 3);
        assert_eq!(layout.panels(), 3 * layout.panels_per_matrix());

        let mut back = vec![0u8; stacked.len()];
        pack::unpack(&view, &mut back).unwrap_or_else(|e| panic!("{name}: unpack: {e}"));
        assert!(back == stacked, "{name}: 3-matrix round trip differs");

        let ppm = layout.panels_per_matrix();
        let body = &single[HEADER_BYTES..];
        for e in 0..3 {
            let panels = e * ppm..(e + 1) * ppm;
            // The same weight packs to the same panels whichever matrix it is.
            let at = layout.panel_offset(panels.start).expect("in range");
            assert!(
                packed[at..at + body.len()] == *body,
                "{name}: matrix {e}'s panels differ from the single-matrix pack"
            );
            let range = pack::source_range(&layout, panels.clone());
            assert_eq!(range, e * v.w.len()..(e + 1) * v.w.len(), "{name}: source_range");
            let mut one = vec![0xEEu8; v.w.len()];
            pack::unpack_panels(&view, panels, &mut one)
                .unwrap_or_else(|err| panic!("{name}: unpack_panels of matrix {e}: {err}"));
            assert!(one == v.w, "{name}: unpack_panels of matrix {e} differs from w");
        }
    }
}

#[test]
fn parse_expecting_refuses_another_format_or_shape() {
    for v in load() {
        let name = v.file_name();
        let (f, n, k) = (v.format, v.n, v.k);
        let packed = pack_into(f, n, k, 1, &v.w, 0);
        let other = Format::ALL
            [(Format::ALL.iter().position(|&x| x == f).unwrap() + 1) % Format::ALL.len()];
        let check = |format, n2, k2, e2, want: PackError| {
            let got = PackedRef::parse_expecting(&packed, format, n2, k2, e2).map(|_| ());
            assert_eq!(got, Err(want), "{name}: expecting {format} {e2} x {n2} x {k2}");
        };
        check(other, n, k, 1, PackError::FormatMismatch { expected: other, found: f });
        let found = (1, n, k);
        check(f, n + 1, k, 1, PackError::ShapeMismatch { expected: (1, n + 1, k), found });
        check(f, n - 1, k, 1, PackError::ShapeMismatch { expected: (1, n - 1, k), found });
        let k2 = 2 * k;
        check(f, n, k2, 1, PackError::ShapeMismatch { expected: (1, n, k2), found });
        check(f, n, k, 3, PackError::ShapeMismatch { expected: (3, n, k), found });
        // The format is checked before the shape.
        check(other, n + 1, k, 2, PackError::FormatMismatch { expected: other, found: f });

        let stacked = pack_into(f, n, k, 3, &v.w.repeat(3), 0);
        let got = PackedRef::parse_expecting(&stacked, f, n, k, 1).map(|_| ());
        let want = PackError::ShapeMismatch { expected: (1, n, k), found: (3, n, k) };
        assert_eq!(got, Err(want), "{name}: 3 stacked read as 1");
    }
}

#[test]
fn packed_bytes_are_where_the_docs_say() {
    for v in load() {
        for n in [v.n, v.n - 1] {
            let src = &v.w[..n * v.w.len() / v.n];
            let packed = pack_into(v.format, n, v.k, 1, src, 0x77);
            let layout = PackedLayout::new(v.format, n, v.k, 1).expect("valid shape");
            let want = doc::pack(&layout, src);
            assert_eq!(packed.len(), want.len(), "{}: n={n}: size", v.file_name());
            if let Some(i) = (0..want.len()).find(|&i| packed[i] != want[i]) {
                panic!(
                    "{}: n={n}: byte {i} (panel {}, offset {}) is {:#04x}, the docs say {:#04x}",
                    v.file_name(),
                    i.saturating_sub(HEADER_BYTES) / layout.panel_bytes(),
                    i.saturating_sub(HEADER_BYTES) % layout.panel_bytes(),
                    packed[i],
                    want[i]
                );
            }
        }
    }
}

/// A packer written from the module docs of `amx_core::pack` only (layout version 1), as an
/// oracle for where every byte goes.
mod doc {
    use super::*;

    const ROWS: usize = 16;

    /// Fields as (offset, length) in the group bytes.
    type Fields = &'static [(usize, usize)];

    /// (quads fields, per-row fields): the table in the docs.
    fn fields(f: Format) -> (Fields, Fields) {
        match f {
            Format::Q4_0 => (&[(2, 16)], &[(0, 2)]),
            Format::Q4_1 => (&[(4, 16)], &[(0, 2), (2, 2)]),
            Format::Q5_0 => (&[(6, 16)], &[(0, 2), (2, 4)]),
            Format::Q5_1 => (&[(8, 16)], &[(0, 2), (2, 2), (4, 4)]),
            Format::Q8_0 => (&[(2, 32)], &[(0, 2)]),
            Format::Q2_K => (&[(16, 64)], &[(80, 2), (82, 2), (0, 16)]),
            Format::Q3_K => (&[(32, 64), (0, 32)], &[(108, 2), (96, 12)]),
            Format::Q4_K => (&[(16, 128)], &[(0, 2), (2, 2), (4, 12)]),
            Format::Q5_K => (&[(48, 128), (16, 32)], &[(0, 2), (2, 2), (4, 12)]),
            Format::Q6_K => (&[(0, 128), (128, 64)], &[(192, 16), (208, 2)]),
            Format::IQ2_XXS => (&[(2, 64)], &[(0, 2)]),
            Format::IQ2_XS => (&[(2, 64)], &[(0, 2), (66, 8)]),
            Format::IQ2_S => (&[(2, 32), (34, 32)], &[(0, 2), (66, 8), (74, 8)]),
            Format::IQ3_XXS => (&[(2, 64)], &[(0, 2), (66, 32)]),
            Format::IQ3_S => (&[(2, 64), (74, 32)], &[(0, 2), (66, 8), (106, 4)]),
            Format::IQ1_S => (&[(2, 32)], &[(0, 2), (34, 16)]),
            Format::IQ1_M => (&[(0, 32), (32, 16)], &[(48, 8)]),
            Format::IQ4_NL => (&[(2, 16)], &[(0, 2)]),
            Format::IQ4_XS => (&[(8, 128)], &[(0, 2), (2, 2), (4, 4)]),
            Format::MXFP4 => (&[(1, 16)], &[(0, 1)]),
            Format::TQ1_0 => (&[(0, 48)], &[(48, 4), (52, 2)]),
            Format::TQ2_0 => (&[(0, 64)], &[(64, 2)]),
            Format::NVFP4 => (&[(4, 32)], &[(0, 4)]),
            Format::BF16 | Format::F16 => (&[(0, 64)], &[]),
            other => panic!("no documented field table for {other}"),
        }
    }

    /// The bytes of group `g` of source row `row`; `None` is a padding row (all zeros).
    fn group(layout: &PackedLayout, src: &[u8], row: Option<usize>, g: usize) -> Vec<u8> {
        let f = layout.format();
        let size = match f {
            // 32 values of 2 bytes; a partial last group is padded with zeros.
            Format::F16 | Format::BF16 => 64,
            _ => f.block_bytes(),
        };
        let mut bytes = vec![0u8; size];
        if let Some(row) = row {
            let rb = layout.source_row_bytes();
            let row = &src[row * rb..(row + 1) * rb];
            let end = ((g + 1) * size).min(row.len());
            bytes[..end - g * size].copy_from_slice(&row[g * size..end]);
        }
        bytes
    }

    /// The whole packed buffer of `src`, by the docs.
    pub fn pack(layout: &PackedLayout, src: &[u8]) -> Vec<u8> {
        let total = layout.total_bytes();
        let mut out = vec![0u8; total];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&16u16.to_le_bytes());
        out[12..16].copy_from_slice(&layout.format().ggml_type().to_le_bytes());
        out[16..24].copy_from_slice(&(layout.n() as u64).to_le_bytes());
        out[24..32].copy_from_slice(&(layout.k() as u64).to_le_bytes());
        out[32..40].copy_from_slice(&(layout.matrices() as u64).to_le_bytes());
        out[40..48].copy_from_slice(&(total as u64).to_le_bytes());

        let (quads, per_row) = fields(layout.format());
        let quad_bytes: usize = quads.iter().map(|q| q.1).sum();
        let row_bytes: usize = per_row.iter().map(|q| q.1).sum();
        let groups = layout.groups();
        let ppm = layout.panels_per_matrix();
        for panel in 0..layout.panels() {
            let base = HEADER_BYTES + panel * layout.panel_bytes();
            let (matrix, p) = (panel / ppm, panel % ppm);
            for r in 0..ROWS {
                let in_matrix = p * ROWS + r;
                let row = (in_matrix < layout.n()).then_some(matrix * layout.n() + in_matrix);
                for g in 0..groups {
                    let bytes = group(layout, src, row, g);
                    let mut put = |at: usize, from: usize, len: usize| {
                        out[base + at..base + at + len].copy_from_slice(&bytes[from..from + len]);
                    };
                    let mut at = g * ROWS * quad_bytes;
                    for &(offset, len) in quads {
                        for c in 0..len / 4 {
                            put(at + 64 * c + 4 * r, offset + 4 * c, 4);
                        }
                        at += ROWS * len;
                    }
                    let mut at = groups * ROWS * quad_bytes + g * ROWS * row_bytes;
                    for &(offset, len) in per_row {
                        put(at + r * len, offset, len);
                        at += ROWS * len;
                    }
                }
            }
        }
        let body = body_checksum(&out[HEADER_BYTES..]);
        out[56..64].copy_from_slice(&body.to_le_bytes());
        // FNV-1a 64 of bytes 0..48 then 56..64.
        let sum = out[..48].iter().chain(&out[56..64]).fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        out[48..56].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// The body checksum as `pack::BodySum` documents it, computed from its definition:
    /// per lane of 16 little-endian u32 per 64-byte chunk i, s1 = sum c_i and
    /// s2 = sum (i + 1) c_i; low half sum (2l + 1) s1[l], high half the top of a
    /// splitmix64 chain over s2 then s1.
    fn body_checksum(body: &[u8]) -> u64 {
        let (mut s1, mut s2) = ([0u32; 16], [0u32; 16]);
        for (i, chunk) in body.chunks_exact(64).enumerate() {
            for l in 0..16 {
                let w = u32::from_le_bytes(chunk[4 * l..4 * l + 4].try_into().expect("4 bytes"));
                s1[l] = s1[l].wrapping_add(w);
                s2[l] = s2[l].wrapping_add((i as u32 + 1).wrapping_mul(w));
            }
        }
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let lo = (0..16).fold(0u32, |h, l| h.wrapping_add((2 * l as u32 + 1).wrapping_mul(s1[l])));
        let hi =
            s2.iter().chain(&s1).fold(0x9E37_79B9_7F4A_7C15_u64, |h, &x| mix(h ^ u64::from(x)));
        (hi & 0xFFFF_FFFF_0000_0000) | u64::from(lo)
    }
}
