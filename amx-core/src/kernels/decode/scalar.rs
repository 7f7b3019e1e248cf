//! The portable group decoder: rebuilds each row's ggml block and decodes it value by
//! value. It defines what the vectorised decoders must produce, and runs where they
//! cannot (valgrind, CPUs without AVX-512).

use crate::formats::half::f16_to_f32;
use crate::formats::{Format, KVALUES_IQ4NL, unpack_scales_mins_k4};
use crate::pack::{PANEL_ROWS, PackedLayout, read_block};

use super::Decoded;

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Low nibble of `qs[i]` for `i < 16`, high nibble of `qs[i - 16]` above: the value order
/// of Q4_0, Q4_1 and each IQ4_XS sub-block.
fn nibble_32(qs: &[u8], i: usize) -> u8 {
    if i < 16 { qs[i] & 0xf } else { qs[i - 16] >> 4 }
}

/// The K-quant nibble order: in each 64 values, the first 32 are the low nibbles of 32
/// bytes and the next 32 their high nibbles.
fn nibble_k(qs: &[u8], k: usize) -> u8 {
    let (j, i) = (k / 64, k % 64);
    if i < 32 { qs[32 * j + i] & 0xf } else { qs[32 * j + i - 32] >> 4 }
}

/// Q6_K's 6-bit value `k` (0..64) from `ql` (128 bytes) and `qh` (64 bytes).
fn q6(ql: &[u8], qh: &[u8], k: usize) -> u8 {
    let (h, l) = (k / 128, k % 128);
    let (ql, qh) = (&ql[64 * h..], &qh[32 * h..]);
    let (lo, hi) = match l / 32 {
        0 => (ql[l] & 0xf, qh[l] & 3),
        1 => (ql[l] & 0xf, (qh[l - 32] >> 2) & 3),
        2 => (ql[l - 64] >> 4, (qh[l - 64] >> 4) & 3),
        _ => (ql[l - 64] >> 4, (qh[l - 96] >> 6) & 3),
    };
    lo | (hi << 4)
}

/// Decodes row `r`'s block `b` into `out` (values, scales, biases of that row), the
/// block's values starting at `slot * 32` and its sub-blocks at `slot` (slot 0 for the
/// 256-value formats).
fn decode_row(format: Format, b: &[u8], r: usize, slot: usize, out: &mut Decoded) {
    let values = format.block_values();
    let mut put = |k: usize, u: u8| {
        let k = k + 32 * slot;
        out.u[64 * (k / 4) + 4 * r + k % 4] = u;
    };
    match format {
        Format::Q4_0 | Format::Q4_1 => {
            let qs = if format == Format::Q4_0 { &b[2..18] } else { &b[4..20] };
            (0..values).for_each(|k| put(k, nibble_32(qs, k)));
        }
        Format::Q8_0 => (0..values).for_each(|k| put(k, b[2 + k] ^ 0x80)),
        Format::Q4_K => (0..values).for_each(|k| put(k, nibble_k(&b[16..144], k))),
        Format::Q5_K => (0..values).for_each(|k| {
            let high = (b[16 + k % 32] >> (k / 32)) & 1;
            put(k, nibble_k(&b[48..176], k) | (high << 4));
        }),
        Format::Q6_K => (0..values).for_each(|k| put(k, q6(&b[0..128], &b[128..192], k))),
        Format::IQ4_XS => (0..values).for_each(|k| {
            let q = nibble_32(&b[8 + 16 * (k / 32)..], k % 32);
            put(k, (KVALUES_IQ4NL[usize::from(q)] as u8) ^ 0x80);
        }),
        Format::F16 | Format::BF16 => {}
    }
    let (scale, bias) = (&mut out.scale, &mut out.bias);
    match format {
        Format::Q4_0 => {
            let d = f16_at(b, 0);
            (scale[slot][r], bias[slot][r]) = (d, -8.0 * d);
        }
        Format::Q4_1 => (scale[slot][r], bias[slot][r]) = (f16_at(b, 0), f16_at(b, 2)),
        Format::Q8_0 => {
            let d = f16_at(b, 0);
            (scale[slot][r], bias[slot][r]) = (d, -128.0 * d);
        }
        Format::Q4_K | Format::Q5_K => {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let mut packed = [0u8; 12];
            packed.copy_from_slice(&b[4..16]);
            let (sc, m) = unpack_scales_mins_k4(&packed);
            for s in 0..8 {
                scale[s][r] = d * f32::from(sc[s]);
                bias[s][r] = -(dmin * f32::from(m[s]));
            }
        }
        Format::Q6_K => {
            let d = f16_at(b, 208);
            for s in 0..16 {
                let sc = d * f32::from(b[192 + s] as i8);
                (scale[s][r], bias[s][r]) = (sc, -32.0 * sc);
            }
        }
        Format::IQ4_XS => {
            let d = f16_at(b, 0);
            let high = u16::from_le_bytes([b[2], b[3]]);
            for s in 0..8 {
                let low = (b[4 + s / 2] >> (4 * (s % 2))) & 0xf;
                let ls = i32::from(low) | (i32::from((high >> (2 * s)) & 3) << 4);
                let sc = d * (ls - 32) as f32;
                (scale[s][r], bias[s][r]) = (sc, -128.0 * sc);
            }
        }
        Format::F16 | Format::BF16 => {}
    }
}

#[cfg(test)]
/// Decodes group `g` of `panel` (one whole panel of `layout`, a quantized format) into
/// `out`. Rows of a partial panel are the packed zero rows, which decode to zero weights.
/// Does nothing for F16/BF16 or an out-of-range group.
pub(crate) fn decode_group(layout: &PackedLayout, panel: &[u8], g: usize, out: &mut Decoded) {
    decode_span(layout, panel, g, 1, out);
}

/// Decodes groups `g..g + count` into consecutive places of `out`, as the vectorised
/// `decode_span` does: up to 8 groups of the 32-value formats, one of the others.
pub(crate) fn decode_span(
    layout: &PackedLayout,
    panel: &[u8],
    g: usize,
    count: usize,
    out: &mut Decoded,
) {
    let slots = if layout.format().block_values() == 32 { count.min(8) } else { count.min(1) };
    let mut block = [0u8; 256];
    for slot in 0..slots {
        for r in 0..PANEL_ROWS {
            if read_block(layout, panel, g + slot, r, &mut block).is_some() {
                decode_row(layout.format(), &block, r, slot, out);
            }
        }
    }
}
