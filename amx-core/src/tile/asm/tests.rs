//! Real AMX round trips against scalar references computed here. They skip (with a
//! notice) only when the CPU has no AMX; if `/proc/cpuinfo` lists AMX, the token must be
//! granted.

extern crate std;
use super::*;
use crate::detect::host;
use crate::token::Amx;
use std::{format, vec, vec::Vec};

fn token_or_skip(test: &str) -> Option<Amx> {
    match Amx::try_new() {
        Ok(token) => Some(token),
        Err(e) => {
            assert!(!host::has_amx(), "/proc/cpuinfo lists AMX but Amx::try_new failed: {e}");
            let why = format!("{test}: this CPU has no AMX ({e})");
            crate::test_util::skip(crate::test_util::Need::Amx, &why);
            None
        }
    }
}

/// Deterministic bytes (xorshift32), covering the extremes 0x00, 0x7f, 0x80, 0xff.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 11) as u8
        })
        .collect();
    for (i, x) in [0x00, 0x7f, 0x80, 0xff].into_iter().enumerate() {
        if let Some(b) = out.get_mut(i * 7) {
            *b = x;
        }
    }
    out
}

/// 64-byte aligned storage, so tiles are loaded from aligned and (with offsets)
/// unaligned rows alike.
#[repr(C, align(64))]
struct Buf<const N: usize>([u8; N]);

fn buf_from<const N: usize>(src: &[u8]) -> Buf<N> {
    let mut b = Buf([0u8; N]);
    b.0[..src.len()].copy_from_slice(src);
    b
}

struct Int8Case {
    m: usize, // rows of C and A
    n: usize, // i32 columns of C
    k: usize, // bytes per row of A; B has k/4 rows of 4n bytes
    a_stride: usize,
    b_stride: usize,
    c_stride: usize,
}

/// C[i][j] = c0[i][j] + sum_k A[i][k] * B[k/4][4j + k%4], each byte signed or not.
fn int8_reference(
    t: &Int8Case,
    a: &[u8],
    b: &[u8],
    c0: &[i32],
    a_signed: bool,
    b_signed: bool,
) -> Vec<i32> {
    let val = |x: u8, signed: bool| {
        if signed { i32::from(x as i8) } else { i32::from(x) }
    };
    let mut c = vec![0i32; t.m * t.n];
    for i in 0..t.m {
        for j in 0..t.n {
            let mut acc = c0[i * t.n + j];
            for kk in 0..t.k {
                let x = val(a[i * t.a_stride + kk], a_signed);
                let y = val(b[(kk / 4) * t.b_stride + 4 * j + kk % 4], b_signed);
                acc = acc.wrapping_add(x * y);
            }
            c[i * t.n + j] = acc;
        }
    }
    c
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Ssd,
    Sud,
    Usd,
    Uud,
}

fn run_int8(amx: Amx, t: &Int8Case, op: Op, zero_c: bool, seed: u32) {
    let cfg = TileConfig::new()
        .with_tile(0, t.m as u8, (4 * t.n) as u16)
        .and_then(|c| c.with_tile(1, t.m as u8, t.k as u16))
        .and_then(|c| c.with_tile(2, (t.k / 4) as u8, (4 * t.n) as u16))
        .expect("valid test shapes");
    let a: Buf<2048> = buf_from(&bytes(t.m * t.a_stride, seed));
    let b: Buf<2048> = buf_from(&bytes((t.k / 4) * t.b_stride, seed.wrapping_mul(7)));
    let c0: Vec<i32> = if zero_c {
        vec![0; t.m * t.n]
    } else {
        bytes(t.m * t.n, seed ^ 0x5555).iter().map(|&x| (i32::from(x) - 128) * 1000).collect()
    };
    // C in and out with row stride `c_stride` bytes; padding must survive the store.
    let mut c_in = Buf([0xAAu8; 2048]);
    let mut c_out = Buf([0xAAu8; 2048]);
    for i in 0..t.m {
        for j in 0..t.n {
            let at = i * t.c_stride + 4 * j;
            c_in.0[at..at + 4].copy_from_slice(&c0[i * t.n + j].to_le_bytes());
        }
    }

    amx.load_config(&cfg);
    // SAFETY: the token proves AMX is permitted; `cfg` configures tmm0 (m x 4n), tmm1
    // (m x k) and tmm2 (k/4 x 4n), the shapes every load/store and dot product below
    // uses; every row read or written lies inside the 2048-byte buffers (checked by the
    // asserts on the case shapes in the callers).
    unsafe {
        if zero_c {
            tilezero::<0>();
        } else {
            tileloadd::<0>(c_in.0.as_ptr(), t.c_stride);
        }
        tileloadd::<1>(a.0.as_ptr(), t.a_stride);
        tileloaddt1::<2>(b.0.as_ptr(), t.b_stride);
        match op {
            Op::Ssd => tdpbssd::<0, 1, 2>(),
            Op::Sud => tdpbsud::<0, 1, 2>(),
            Op::Usd => tdpbusd::<0, 1, 2>(),
            Op::Uud => tdpbuud::<0, 1, 2>(),
        }
        tilestored::<0>(c_out.0.as_mut_ptr(), t.c_stride);
    }
    amx.release();

    let (a_signed, b_signed) = match op {
        Op::Ssd => (true, true),
        Op::Sud => (true, false),
        Op::Usd => (false, true),
        Op::Uud => (false, false),
    };
    let expected = int8_reference(t, &a.0, &b.0, &c0, a_signed, b_signed);
    for i in 0..t.m {
        for j in 0..t.n {
            let at = i * t.c_stride + 4 * j;
            let got = i32::from_le_bytes(c_out.0[at..at + 4].try_into().expect("4 bytes"));
            assert_eq!(got, expected[i * t.n + j], "{op:?} C[{i}][{j}] (zero_c {zero_c})");
        }
        // Bytes past the tile's row are untouched.
        let row_end = i * t.c_stride + 4 * t.n;
        let next = if i + 1 < t.m { (i + 1) * t.c_stride } else { 2048 };
        assert!(c_out.0[row_end..next].iter().all(|&x| x == 0xAA), "{op:?} row {i} padding");
    }
}

#[test]
fn int8_dot_products_match_the_scalar_reference() {
    let Some(amx) = token_or_skip("int8_dot_products_match_the_scalar_reference") else {
        return;
    };
    let full = Int8Case { m: 16, n: 16, k: 64, a_stride: 64, b_stride: 64, c_stride: 64 };
    // Odd shapes and strides: 5 rows, 7 columns, K = 12, padded and unaligned rows.
    let small = Int8Case { m: 5, n: 7, k: 12, a_stride: 13, b_stride: 36, c_stride: 40 };
    let padded = Int8Case { m: 16, n: 16, k: 64, a_stride: 128, b_stride: 100, c_stride: 96 };
    for t in [&full, &small, &padded] {
        assert!(t.m * t.a_stride <= 2048 && (t.k / 4) * t.b_stride <= 2048);
        assert!(t.m * t.c_stride <= 2048 && 4 * t.n <= t.c_stride);
    }
    for (seed, op) in [(1, Op::Ssd), (2, Op::Sud), (3, Op::Usd), (4, Op::Uud)] {
        for zero_c in [true, false] {
            for t in [&full, &small, &padded] {
                run_int8(amx, t, op, zero_c, seed);
            }
        }
    }
}

#[test]
fn bf16_dot_product_matches_the_f32_reference() {
    let Some(amx) = token_or_skip("bf16_dot_product_matches_the_f32_reference") else {
        return;
    };
    const M: usize = 16;
    const N: usize = 16;
    const K: usize = 32; // bf16 values per row of A
    // Values (x - 8) / 4 for x in 0..16: exact in bf16, their products and sums of 32 of
    // them are exact in f32, so any summation order gives the same bits.
    let value = |x: u8| f32::from(i8::try_from(x % 16).expect("< 16") - 8) / 4.0;
    let bf16 = |v: f32| (v.to_bits() >> 16) as u16;
    let ra = bytes(M * K, 11);
    let rb = bytes(K * N, 12);
    let a_f: Vec<f32> = ra.iter().map(|&x| value(x)).collect(); // a_f[i*K + k]
    let b_f: Vec<f32> = rb.iter().map(|&x| value(x)).collect(); // b_f[k*N + j]
    let mut a = Buf([0u8; 1024]);
    let mut b = Buf([0u8; 1024]);
    for (i, v) in a_f.iter().enumerate() {
        a.0[2 * i..2 * i + 2].copy_from_slice(&bf16(*v).to_le_bytes());
    }
    // VNNI pairs: B row k/2 holds (B[k][j], B[k+1][j]) at bytes 4j..4j+4.
    for k in 0..K {
        for j in 0..N {
            let at = (k / 2) * 64 + 4 * j + 2 * (k % 2);
            b.0[at..at + 2].copy_from_slice(&bf16(b_f[k * N + j]).to_le_bytes());
        }
    }
    let c0: Vec<f32> = bytes(M * N, 13).iter().map(|&x| f32::from(x) / 4.0 - 32.0).collect();
    let mut c_in = Buf([0u8; 1024]);
    for (i, v) in c0.iter().enumerate() {
        c_in.0[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    let mut c_out = Buf([0u8; 1024]);

    let cfg = TileConfig::new()
        .with_tile(4, M as u8, 64)
        .and_then(|c| c.with_tile(6, M as u8, 64))
        .and_then(|c| c.with_tile(7, (K / 2) as u8, 64))
        .expect("valid test shapes");
    amx.load_config(&cfg);
    // SAFETY: the token proves AMX (with AMX-BF16) is permitted; tmm4, tmm6 and tmm7 are
    // configured 16 x 64 bytes, matching the dot product's shape rules; each buffer holds
    // 16 rows of 64 bytes.
    unsafe {
        tileloadd::<4>(c_in.0.as_ptr(), 64);
        tileloadd::<6>(a.0.as_ptr(), 64);
        tileloadd::<7>(b.0.as_ptr(), 64);
        tdpbf16ps::<4, 6, 7>();
        tilestored::<4>(c_out.0.as_mut_ptr(), 64);
    }
    amx.release();

    for i in 0..M {
        for j in 0..N {
            let expected = (0..K).fold(f64::from(c0[i * N + j]), |acc, k| {
                acc + f64::from(a_f[i * K + k]) * f64::from(b_f[k * N + j])
            }) as f32;
            let at = 4 * (i * N + j);
            let got = f32::from_le_bytes(c_out.0[at..at + 4].try_into().expect("4 bytes"));
            assert_eq!(got, expected, "C[{i}][{j}]");
        }
    }
}

#[test]
fn config_round_trips_through_sttilecfg() {
    let Some(amx) = token_or_skip("config_round_trips_through_sttilecfg") else {
        return;
    };
    // Built field by field at run time, so a lost store would show up as a difference.
    let mut cfg = TileConfig::new();
    for t in 0..8u8 {
        let rows = 16 - t;
        let colsb = 64 - 4 * u16::from(t);
        cfg = cfg.with_tile(t, rows, colsb).expect("valid shape");
    }
    amx.load_config(&cfg);
    let mut back = TileConfig::new();
    // SAFETY: AMX is permitted (token) and the current configuration was loaded from a
    // `TileConfig` just above.
    unsafe { sttilecfg(&mut back) };
    assert_eq!(back, cfg);
    assert_eq!(amx.store_config(), Ok(Some(cfg)));
    // An all-unused palette-1 configuration is valid too.
    amx.load_config(&TileConfig::new());
    assert_eq!(amx.store_config(), Ok(Some(TileConfig::new())));
    amx.release();
    assert_eq!(amx.store_config(), Ok(None));
}
