extern crate std;

use std::vec;

use super::*;

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn q8_row_reconstructs_within_half_a_step() {
    let k = 96;
    let x: vec::Vec<f32> = (0..k).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
    let l = Q8Layout { k };
    let mut out = vec![0u8; l.row_bytes()];
    q8_row(&x, &mut out);
    for b in 0..k / 32 {
        let dx = f32_at(&out, l.dx_offset() + 4 * b);
        let amax = x[32 * b..32 * b + 32].iter().fold(0f32, |a, v| a.max(v.abs()));
        assert_eq!(dx, amax / 127.0);
        let mut s = [0i32; 2];
        for i in 0..32 {
            let q = out[32 * b + i] as i8;
            s[i / 16] += i32::from(q);
            assert!((dx * f32::from(q) - x[32 * b + i]).abs() <= dx * 0.5 + 1e-7);
        }
        assert_eq!(f32_at(&out, l.sum32_offset() + 4 * b), dx * (s[0] + s[1]) as f32);
        assert_eq!(f32_at(&out, l.sum16_offset() + 8 * b), dx * s[0] as f32);
        assert_eq!(f32_at(&out, l.sum16_offset() + 8 * b + 4), dx * s[1] as f32);
    }
}

#[test]
fn q8_row_non_finite_stays_in_its_block() {
    let mut x = vec![0.5f32; 64];
    x[3] = f32::NAN;
    x[40] = f32::INFINITY;
    let l = Q8Layout { k: 64 };
    let mut out = vec![0u8; l.row_bytes()];
    q8_row(&x, &mut out);
    assert!(f32_at(&out, l.dx_offset()).is_nan());
    assert_eq!(f32_at(&out, l.dx_offset() + 4), f32::INFINITY);
    let zero = vec![0f32; 32];
    let mut out = vec![0u8; Q8Layout { k: 32 }.row_bytes()];
    q8_row(&zero, &mut out);
    assert_eq!(f32_at(&out, 32), 0.0);
    assert!(out[..32].iter().all(|&q| q == 0));
}

#[test]
fn bf16_tiles_put_rows_where_the_layout_says() {
    let (m, k) = (18, 40);
    let l = TileLayout::new(m, k);
    assert_eq!((l.m_tiles, l.k_tiles, l.bytes()), (2, 2, 4096));
    let x: vec::Vec<f32> = (0..m * k).map(|i| i as f32).collect();
    let mut out = vec![0u8; l.bytes()];
    bf16_tile_rows(&l, (0..m).map(|i| (i, &x[i * k..i * k + k])), &mut out);
    let at = |mt: usize, kt: usize, r: usize, j: usize| {
        let o = l.tile(mt, kt) + 64 * r + 2 * j;
        crate::formats::half::bf16_to_f32(u16::from_le_bytes([out[o], out[o + 1]]))
    };
    assert_eq!(
        at(1, 1, 1, 3),
        crate::formats::half::bf16_to_f32(crate::formats::half::f32_to_bf16((17 * k + 35) as f32))
    );
    assert_eq!(at(0, 0, 0, 1), 1.0);
    assert_eq!(at(1, 1, 1, 8), 0.0, "value 40 is padding");
    assert_eq!(at(1, 0, 2, 0), 0.0, "row 18 is padding");
}
