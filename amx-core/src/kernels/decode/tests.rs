extern crate std;

use std::vec;
use std::vec::Vec;

use super::Decoded;
use super::scalar::decode_group;
#[cfg(target_arch = "x86_64")]
use crate::formats::codec::Grids;
use crate::formats::{Format, dequantize};
use crate::pack::{PANEL_ROWS, PackedRef, pack, packed_size, read_block};
use crate::test_util::test_formats;

/// xorshift64* bytes; block scales are then made finite so values can be compared.
pub(crate) fn random_blocks(format: Format, seed: u64, len: usize) -> Vec<u8> {
    let mut out = crate::test_util::bytes(seed, len);
    // f16 scale fields: exponent 0x0c..0x13 (about 2^-3 .. 2^4), random mantissa.
    for block in out.chunks_exact_mut(format.block_bytes()) {
        for &at in format.f16_scales() {
            block[at + 1] = 0x30 + (block[at + 1] & 0x0f);
        }
        for &at in format.e8m0_scales() {
            block[at] = crate::test_util::moderate_e8m0(block[at]);
        }
    }
    out
}

/// Every decoded value equals the reference dequantization, within the rounding of one
/// f32 multiply-add.
#[test]
fn scalar_decode_matches_reference_dequantization() {
    for (i, format) in test_formats().enumerate() {
        let Some(sb) = format.sub_block() else { continue };
        // Under Miri (thousands of times slower) one partial panel of one group.
        let (n, k) = if cfg!(miri) { (5, 1) } else { (21, 2) };
        let k = k * format.block_values();
        let src = random_blocks(
            format,
            7 + i as u64,
            n * k / format.block_values() * format.block_bytes(),
        );
        let mut buf = vec![0u8; packed_size(format, n, k, 1).unwrap()];
        let layout = pack(format, n, k, 1, &src, &mut buf).unwrap();
        let packed = PackedRef::parse(&buf).unwrap();
        let bv = format.block_values();
        for p in 0..layout.panels() {
            let panel = packed.panel(p).unwrap();
            for g in 0..layout.groups() {
                let mut d = Decoded::new();
                decode_group(&layout, panel, g, &mut d);
                for r in 0..PANEL_ROWS {
                    let mut block = [0u8; 256];
                    read_block(&layout, panel, g, r, &mut block).unwrap();
                    let mut want = [0f32; 256];
                    dequantize(format, &block[..format.block_bytes()], &mut want[..bv]).unwrap();
                    for (kk, w) in want[..bv].iter().enumerate() {
                        let got = d.value(sb, r, kk);
                        let tol = 1e-6 * (w.abs() + d.bias[kk / sb][r].abs());
                        assert!(
                            (got - w).abs() <= tol,
                            "{format} p{p} g{g} r{r} k{kk}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

/// xorshift64* bytes, nothing fixed up (so scales take every f16 pattern, NaNs included).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
fn raw_bytes(seed: u64, len: usize) -> Vec<u8> {
    crate::test_util::bytes(seed, len)
}

/// f16 scales that need care: NaNs (signalling, quiet, negative, payloads), infinities,
/// subnormals, signed zeros, the largest finite.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
const F16_SPECIALS: [u16; 12] = [
    0x7c01, 0x7e00, 0xfd55, 0x7dff, 0x7c00, 0xfc00, 0x0001, 0x83ff, 0x0000, 0x8000, 0x7bff, 0x3c00,
];

/// E8M0 scales that need care: the subnormal results (0, 1), the smallest normal (2),
/// 1/2 and 1 (127, 128), the largest two (254, 255: values and biases that overflow f32).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
const E8M0_SPECIALS: [u8; 7] = [0, 1, 2, 127, 128, 254, 255];

/// The source kinds the vector decoder is checked on.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
fn sources(format: Format, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut special = raw_bytes(seed ^ 0x55, len);
    for (b, block) in special.chunks_exact_mut(format.block_bytes()).enumerate() {
        for (i, &at) in format.f16_scales().iter().enumerate() {
            let h = F16_SPECIALS[(b + 5 * i) % F16_SPECIALS.len()];
            block[at..at + 2].copy_from_slice(&h.to_le_bytes());
        }
        for (i, &at) in format.e8m0_scales().iter().enumerate() {
            block[at] = E8M0_SPECIALS[(b + 3 * i) % E8M0_SPECIALS.len()];
        }
    }
    vec![
        random_blocks(format, seed, len),
        raw_bytes(seed, len),
        special,
        vec![0; len],
        vec![0xff; len],
    ]
}

/// A `Decoded` full of a pattern that no decoder writes, so an unwritten place shows.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
fn poisoned() -> Decoded {
    let mut d = Decoded::new();
    d.u.fill(0xa5);
    for row in d.scale.iter_mut().chain(d.bias.iter_mut()) {
        row.fill(f32::from_bits(0x7fa5_a5a5));
    }
    d
}

/// Whole-struct equality: `u` bytes, scale and bias bits (NaNs by their bits).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // x86_64 tests' helpers
fn assert_same(a: &Decoded, b: &Decoded, what: &dyn core::fmt::Display) {
    if let Some(i) = (0..a.u.len()).find(|&i| a.u[i] != b.u[i]) {
        panic!(
            "{what}: u chunk {} row {} byte {}: {:#04x} vs {:#04x}",
            i / 64,
            i % 64 / 4,
            i % 4,
            a.u[i],
            b.u[i]
        );
    }
    for (name, x, y) in [("scale", &a.scale, &b.scale), ("bias", &a.bias, &b.bias)] {
        for s in 0..x.len() {
            for r in 0..16 {
                let (p, q) = (x[s][r].to_bits(), y[s][r].to_bits());
                assert_eq!(p, q, "{what}: {name}[{s}][{r}]: {p:#010x} vs {q:#010x}");
            }
        }
    }
}

/// Whether the AVX-512 decoders can run here (prints why not).
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    let ok = crate::detect::Features::cached().avx512_usable();
    if !ok {
        crate::test_util::skip(crate::test_util::Need::Avx512, "no AVX-512");
    } else if !crate::detect::Features::cached().avx512_vbmi_usable() {
        std::println!("skipped: the VBMI grid lookups (no AVX-512 VBMI)");
    }
    ok
}

/// The AVX-512 decoder gives the scalar decoder's bytes and bits, for every quantized
/// format, on random, special-scale, all-zero and all-one blocks, partial panels and
/// several groups.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_decode_matches_scalar_bit_for_bit() {
    if !avx512() {
        return;
    }
    for (i, format) in test_formats().enumerate() {
        if format.sub_block().is_none() {
            continue;
        }
        for (n, groups) in [(16, 1), (21, 3), (5, 2), (37, 2)] {
            let k = groups * format.block_values();
            let len = n * groups * format.block_bytes();
            for (v, src) in sources(format, len, 100 * i as u64 + n as u64).iter().enumerate() {
                let mut buf = vec![0u8; packed_size(format, n, k, 1).unwrap()];
                let layout = pack(format, n, k, 1, src, &mut buf).unwrap();
                let packed = PackedRef::parse(&buf).unwrap();
                for p in 0..layout.panels() {
                    let panel = packed.panel(p).unwrap();
                    for (g, grids) in
                        (0..layout.groups()).flat_map(|g| Grids::usable().map(move |l| (g, l)))
                    {
                        let (mut want, mut got) = (poisoned(), poisoned());
                        decode_group(&layout, panel, g, &mut want);
                        // SAFETY: AVX-512 F/BW/VL are usable (checked above), VBMI where
                        // `grids` says so.
                        unsafe { super::x86::decode_group(&layout, panel, g, &mut got, grids) };
                        let what = std::format!("{format} n{n} source{v} p{p} g{g} {grids:?}");
                        assert_same(&want, &got, &what);
                    }
                }
            }
        }
    }
}

/// Out-of-range groups and wrong-sized panels leave the output alone, as in the scalar
/// decoder.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_decode_ignores_bad_arguments() {
    if !avx512() {
        return;
    }
    for format in Format::ALL {
        let (n, k) = (16, format.block_values() * 2);
        let src = random_blocks(format, 3, n * 2 * format.block_bytes());
        let mut buf = vec![0u8; packed_size(format, n, k, 1).unwrap()];
        let layout = pack(format, n, k, 1, &src, &mut buf).unwrap();
        let packed = PackedRef::parse(&buf).unwrap();
        let panel = packed.panel(0).unwrap();
        for (g, bytes) in [(2, panel), (usize::MAX, panel), (0, &panel[1..]), (0, &panel[..0])] {
            for grids in Grids::usable() {
                let mut got = poisoned();
                // SAFETY: AVX-512 F/BW/VL are usable (checked above), VBMI where `grids`
                // says so.
                unsafe { super::x86::decode_group(&layout, bytes, g, &mut got, grids) };
                let what = std::format!("{format} g{g} len {} {grids:?}", bytes.len());
                assert_same(&poisoned(), &got, &what);
            }
        }
    }
}

/// Spans of up to 8 groups (256 values) decode into consecutive places exactly as one group at a time
/// (scalar and AVX-512 alike).
#[test]
fn spans_equal_groups_one_at_a_time() {
    for format in [
        Format::Q4_0,
        Format::Q4_1,
        Format::Q5_0,
        Format::Q5_1,
        Format::Q8_0,
        Format::IQ4_NL,
        Format::Q4_K,
        Format::MXFP4,
        Format::NVFP4,
    ] {
        // Under Miri (a minute and a half for all eight) the formats of `test_formats`.
        if !test_formats().any(|f| f == format) {
            continue;
        }
        // 11 groups of 32 values (a partial last span of 3), 7 of 64 (a partial last span
        // of 3), or 2 of 256.
        let k = match format.block_values() {
            32 => 11 * 32,
            64 => 7 * 64,
            _ => 512,
        };
        let n = 19;
        let src = random_blocks(format, 77, n * k / format.block_values() * format.block_bytes());
        let mut buf = vec![0u8; packed_size(format, n, k, 1).unwrap()];
        let layout = pack(format, n, k, 1, &src, &mut buf).unwrap();
        let packed = PackedRef::parse(&buf).unwrap();
        let panel = packed.panel(1).unwrap();
        let span = super::span_groups(format);
        let gv = format.block_values();
        let sb = format.sub_block().unwrap();
        for g in (0..layout.groups()).step_by(span) {
            let count = span.min(layout.groups() - g);
            let mut whole = Decoded::new();
            super::scalar::decode_span(&layout, panel, g, count, &mut whole);
            for i in 0..count {
                let mut one = Decoded::new();
                decode_group(&layout, panel, g + i, &mut one);
                for r in 0..PANEL_ROWS {
                    for kk in 0..gv {
                        let a = whole.value(sb, r, i * gv + kk);
                        let b = one.value(sb, r, kk);
                        assert_eq!(a.to_bits(), b.to_bits(), "{format} g{g}+{i} r{r} k{kk}");
                    }
                }
            }
            // The vector span decoder exists on x86_64 only.
            #[cfg(target_arch = "x86_64")]
            if crate::detect::Features::cached().avx512_usable() {
                for grids in Grids::usable() {
                    let mut fast = Decoded::new();
                    match grids {
                        // SAFETY: AVX-512 is usable (checked just above).
                        Grids::Gather => unsafe {
                            super::x86::decode_span(&layout, panel, g, count, &mut fast)
                        },
                        // SAFETY: AVX-512 is usable (checked just above), and VBMI (`grids`).
                        Grids::Vbmi => unsafe {
                            super::x86::decode_span_vbmi(&layout, panel, g, count, &mut fast)
                        },
                    }
                    let chunks = count * gv / 4;
                    assert_eq!(&fast.u[..64 * chunks], &whole.u[..64 * chunks], "{format} span u");
                    for s in 0..count * gv / sb {
                        for r in 0..PANEL_ROWS {
                            assert_eq!(fast.scale[s][r].to_bits(), whole.scale[s][r].to_bits());
                            assert_eq!(fast.bias[s][r].to_bits(), whole.bias[s][r].to_bits());
                        }
                    }
                }
            } else {
                let why = "no AVX-512 for the vector span decoder";
                crate::test_util::skip(crate::test_util::Need::Avx512, why);
            }
        }
    }
}
