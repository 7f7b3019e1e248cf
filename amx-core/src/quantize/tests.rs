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
        for (h, &sum) in s.iter().enumerate() {
            let at = l.isum16_offset() + 4 * b + 2 * h;
            assert_eq!(i32::from(i16::from_le_bytes([out[at], out[at + 1]])), sum);
        }
    }
}

/// Blocks whose max |x| is so small that `1 / dx` overflows (below ~3.7e-37: tiny normal
/// values, subnormals) still quantize to within half a step: they used to become +-127.
#[test]
fn q8_row_tiny_blocks_keep_their_precision() {
    // Max |x| per block: just below the overflow point, smallest normal, subnormal ones.
    for amax in [3.6e-37f32, 1e-37, f32::MIN_POSITIVE, 1e-39, 1e-41, 1e-43] {
        let x: vec::Vec<f32> =
            (0..64).map(|i| amax * ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let l = Q8Layout { k: 64 };
        let mut out = vec![0u8; l.row_bytes()];
        q8_row(&x, &mut out);
        for b in 0..2 {
            let dx = f32_at(&out, l.dx_offset() + 4 * b);
            assert!(dx > 0.0, "amax {amax:e}");
            for i in 32 * b..32 * b + 32 {
                let q = out[i] as i8;
                // Half a step, plus the rounding of the subnormal product dx * q.
                let err = (dx * f32::from(q) - x[i]).abs();
                assert!(
                    err <= dx * 0.5 + 128.0 * f32::from_bits(1),
                    "amax {amax:e}: x[{i}] = {:e} gave q = {q}, dx = {dx:e}",
                    x[i]
                );
            }
        }
    }
}

/// The checked record size is the record size where it fits, and `None` exactly where the
/// u128 value does not fit `usize`.
#[test]
fn q8_checked_row_bytes_agrees_and_never_overflows() {
    let top = usize::MAX / 32 * 32;
    for k in [0, 32, 64, 96, 4096, 1 << 40, top / 3 * 2 / 32 * 32, top / 2, top - 32, top] {
        let l = Q8Layout { k };
        let k128 = k as u128;
        let want = (k128 + 8 * (k128 / 32) + 6 * (k128 / 16)).div_ceil(64) * 64;
        let want = usize::try_from(want).ok();
        assert_eq!(l.checked_row_bytes(), want, "k={k}");
        if let Some(bytes) = want {
            assert_eq!(l.row_bytes(), bytes);
        }
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

/// xorshift64*.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
struct Rng(u64);

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 32) % n
    }
    /// A value in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// f32 patterns that need care: NaNs (quiet, signalling, negative, payloads), infinities,
/// signed zeros, subnormals (smallest, largest, around the rounding point), the extremes.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
const F32_SPECIALS: [u32; 16] = [
    0x7fc0_0000,
    0x7f80_0001,
    0xffbf_ffff,
    0x7fff_ffff,
    0x7f80_0000,
    0xff80_0000,
    0x0000_0000,
    0x8000_0000,
    0x0000_0001,
    0x807f_ffff,
    0x0000_8000,
    0x0001_8000,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x0080_0000,
    0x3f80_8000,
];

/// One 32-value block of a kind picked by `rng`: scaled uniform values, raw bit patterns,
/// zeros, a NaN or an infinity among normal values, subnormals only, exact ties, values
/// near the f32 limits, or tiny values around the point where `1 / dx` overflows.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
fn block(rng: &mut Rng) -> [f32; 32] {
    let mut b = [0f32; 32];
    let scale = f32::from_bits(((rng.below(60) as u32 + 97) << 23) | 0x3_3333);
    for v in b.iter_mut() {
        *v = rng.unit() * scale;
    }
    match rng.below(10) {
        0 => b.iter_mut().for_each(|v| *v = f32::from_bits(rng.next() as u32)),
        1 => b = [0.0; 32],
        2 => b[rng.below(32) as usize] = f32::from_bits(F32_SPECIALS[rng.below(4) as usize]),
        3 => {
            b[rng.below(32) as usize] =
                if rng.below(2) == 0 { f32::INFINITY } else { f32::NEG_INFINITY }
        }
        4 => b.iter_mut().for_each(|v| *v = f32::from_bits(rng.next() as u32 & 0x807f_ffff)),
        5 => {
            // dx = 1, values k + 1/2: every value a tie.
            b.iter_mut().for_each(|v| *v = (rng.below(254) as f32 - 127.0) + 0.5);
            b[rng.below(32) as usize] = 127.0;
        }
        6 => b.iter_mut().for_each(|v| *v = f32::MAX * rng.unit()),
        7 => b[rng.below(32) as usize] = f32::from_bits(F32_SPECIALS[rng.below(16) as usize]),
        8 => {
            // Exponents 0..=8: max |x| from subnormal to ~1.5e-36, across the overflow of
            // 1 / dx at ~3.7e-37.
            let top = (rng.below(9) as u32) << 23;
            b.iter_mut().for_each(|v| *v = f32::from_bits(rng.next() as u32 % top.max(1 << 20)));
        }
        _ => {}
    }
    b
}

/// Whether the AVX-512 quantizers can run here (prints why not).
#[cfg(target_arch = "x86_64")]
fn usable(bf16: bool) -> bool {
    let f = crate::detect::Features::cached();
    let ok = if bf16 { f.avx512_bf16_usable() } else { f.avx512_usable() };
    if !ok {
        use crate::test_util::{Need, skip};
        if bf16 {
            skip(Need::Avx512Bf16, "no AVX-512 BF16")
        } else {
            skip(Need::Avx512, "no AVX-512")
        }
    }
    ok
}

/// The AVX-512 Q8 quantizer writes the scalar one's bytes (every byte of the record) for
/// every K from 32 to 1024, on rows mixing every kind of block.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_q8_row_matches_scalar_bit_for_bit() {
    if !usable(false) {
        return;
    }
    let mut rng = Rng::new(11);
    for k in (32..=1024).step_by(32) {
        for _ in 0..8 {
            let x: vec::Vec<f32> = (0..k / 32).flat_map(|_| block(&mut rng)).collect();
            let l = Q8Layout { k };
            let (mut want, mut got) = (vec![0x5au8; l.row_bytes()], vec![0x5au8; l.row_bytes()]);
            scalar::q8_row(&x, &mut want);
            // SAFETY: AVX-512 F/BW/VL are usable (checked above).
            unsafe { x86::q8_row(&x, &mut got) };
            if let Some(i) = (0..want.len()).find(|&i| want[i] != got[i]) {
                let b = if i < k { i / 32 } else { 0 };
                panic!(
                    "k {k} byte {i}: {:#04x} vs {:#04x}; block {b}: {:?}",
                    want[i],
                    got[i],
                    &x[32 * b..32 * b + 32]
                );
            }
        }
    }
}

/// The AVX-512 Q8 quantizer leaves a too-short record alone instead of writing past it.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_q8_row_ignores_a_short_record() {
    if !usable(false) {
        return;
    }
    let x = vec![1.0f32; 64];
    let mut out = vec![7u8; 64 + 16 * 2 - 1];
    // SAFETY: AVX-512 F/BW/VL are usable (checked above).
    unsafe { x86::q8_row(&x, &mut out) };
    assert!(out.iter().all(|&b| b == 7));
}

/// The AVX-512 BF16 tile writer writes the scalar one's bytes (padding left alone) for M
/// and K on and off the tile multiples, values of every kind, rows in any order.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_bf16_tiles_match_scalar_bit_for_bit() {
    if !usable(true) {
        return;
    }
    let mut rng = Rng::new(5);
    for (m, k) in
        [(1usize, 1usize), (3, 31), (16, 32), (17, 33), (5, 100), (33, 64), (40, 257), (2, 1024)]
    {
        let x: vec::Vec<f32> =
            (0..m * k.div_ceil(32)).flat_map(|_| block(&mut rng)).take(m * k).collect();
        let l = TileLayout::new(m, k);
        let (mut want, mut got) = (vec![0xa5u8; l.bytes()], vec![0xa5u8; l.bytes()]);
        let rows = || (0..m).rev().map(|i| (i, &x[i * k..i * k + k]));
        scalar::bf16_tile_rows(&l, rows(), &mut want);
        // SAFETY: AVX-512 F/BW/VL and BF16 are usable (checked above).
        unsafe { x86::bf16_tile_rows(&l, rows(), &mut got) };
        if let Some(i) = (0..want.len()).find(|&i| want[i] != got[i]) {
            panic!("m {m} k {k} byte {i}: {:#04x} vs {:#04x}", want[i], got[i]);
        }
    }
}

/// The AVX-512 BF16 rounding equals `f32_to_bf16` on a sweep of bit patterns: every
/// 4099th pattern, all low-mantissa patterns around the subnormal and NaN boundaries.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_bf16_rounding_matches_scalar_on_a_pattern_sweep() {
    if !usable(true) {
        return;
    }
    let mut pats: vec::Vec<u32> = (0..=u32::MAX / 4099).map(|i| i * 4099).collect();
    for base in [0x0000_0000u32, 0x007f_0000, 0x0080_0000, 0x7f7f_0000, 0x7f80_0000, 0x7fc0_0000] {
        for sign in [0, 0x8000_0000] {
            pats.extend((0..0x1_0000).map(|i| sign | (base + i)));
        }
    }
    pats.extend(F32_SPECIALS);
    let x: vec::Vec<f32> = pats.iter().map(|&p| f32::from_bits(p)).collect();
    let k = 32 * 64;
    let m = x.len() / k;
    let l = TileLayout::new(m, k);
    let (mut want, mut got) = (vec![0u8; l.bytes()], vec![0u8; l.bytes()]);
    let rows = || (0..m).map(|i| (i, &x[i * k..i * k + k]));
    scalar::bf16_tile_rows(&l, rows(), &mut want);
    // SAFETY: AVX-512 F/BW/VL and BF16 are usable (checked above).
    unsafe { x86::bf16_tile_rows(&l, rows(), &mut got) };
    for (t, (a, b)) in want.chunks_exact(2).zip(got.chunks_exact(2)).enumerate() {
        assert_eq!(a, b, "value slot {t}");
    }
}
