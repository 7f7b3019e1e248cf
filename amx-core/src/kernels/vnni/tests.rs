extern crate std;

use std::vec;
use std::vec::Vec;

use crate::formats::Format;
use crate::formats::codec::Grids;
use crate::formats::codec::tests::with_grids;
use crate::gemm::{self, MatMut, MatRef, Path};
use crate::kernels::decode::{Decoded, scalar};
use crate::pack::{PANEL_ROWS, PackedRef, group_values, pack, packed_size};
use crate::quantize::{Q8Layout, q8_row};

use crate::test_util::bytes;

/// Random ggml blocks; with `finite`, every f16 scale is made finite (exponent about
/// 2^-3 .. 2^4), otherwise they take any pattern, NaNs and infinities included.
fn weights(format: Format, seed: u64, len: usize, finite: bool) -> Vec<u8> {
    let mut out = bytes(seed, len);
    if finite {
        for block in out.chunks_exact_mut(format.block_bytes()) {
            for &at in format.f16_scales() {
                block[at + 1] = 0x30 + (block[at + 1] & 0x0f);
            }
            for &at in format.e8m0_scales() {
                block[at] = crate::test_util::moderate_e8m0(block[at]);
            }
        }
    }
    out
}

/// The kernel's float sequence in scalar code, from the scalar decoder: per sub-block,
/// in increasing K, `t = sum * scale`, `acc = fma(t, dx, acc)`,
/// `acc = fma(bias, dx * sum(q), acc)`.
///
/// For a format with integer sub-block scales ([`int_scales`](crate::formats::int_scales))
/// the sequence is that module's, per pair of sub-blocks, from the scalar
/// `QuantizedSpec::int_scales` of the source blocks `src`.
fn model(
    format: Format,
    src: &[u8],
    packed: &[u8],
    recs: &[u8],
    q8: Q8Layout,
    m: usize,
    n: usize,
) -> Vec<f32> {
    let packed = PackedRef::parse(packed).unwrap();
    let layout = *packed.layout();
    let (gv, sb) = (group_values(format), format.sub_block().unwrap());
    let rb = q8.row_bytes();
    let f32_at = |rec: &[u8], at: usize| f32::from_le_bytes(rec[at..at + 4].try_into().unwrap());
    let mut y = vec![0f32; m * n];
    for p in 0..layout.panels() {
        let panel = packed.panel(p).unwrap();
        let decoded: Vec<Decoded> = (0..layout.groups())
            .map(|g| {
                let mut d = Decoded::new();
                scalar::decode_group(&layout, panel, g, &mut d);
                d
            })
            .collect();
        for r in 0..PANEL_ROWS.min(n - p * PANEL_ROWS) {
            for i in 0..m {
                let rec = &recs[i * rb..(i + 1) * rb];
                let mut acc = 0f32;
                for (g, d) in decoded.iter().enumerate() {
                    let sum = |s: usize| {
                        (0..sb).fold(0i32, |a, kk| {
                            let u = d.u[64 * ((s * sb + kk) / 4) + 4 * r + kk % 4];
                            a.wrapping_add(
                                i32::from(u) * i32::from(rec[gv * g + s * sb + kk] as i8),
                            )
                        })
                    };
                    let row = p * PANEL_ROWS + r;
                    let block =
                        (row * layout.k() + g * gv) / format.block_values() * format.block_bytes();
                    if let Some(is) = format.int_scales(&src[block..]) {
                        for t in 0..gv / 32 {
                            let k0 = g * gv + 32 * t;
                            let isum = |h: usize| {
                                let at = q8.isum16_offset() + 4 * (k0 / 32) + 2 * h;
                                i32::from(i16::from_le_bytes([rec[at], rec[at + 1]]))
                            };
                            let sums = [(sum(2 * t), sum(2 * t + 1)), (isum(0), isum(1))];
                            let dx = f32_at(rec, q8.dx_offset() + 4 * (k0 / 32));
                            let dxs =
                                [0, 1].map(|h| f32_at(rec, q8.sum16_offset() + 4 * (k0 / 16 + h)));
                            acc = is.pair(t, acc, sums, dx, dxs);
                        }
                        continue;
                    }
                    for s in 0..gv / sb {
                        let k0 = g * gv + s * sb;
                        let sum = sum(s);
                        let dx = f32_at(rec, q8.dx_offset() + 4 * (k0 / 32));
                        let dxs = if sb == 32 {
                            f32_at(rec, q8.sum32_offset() + 4 * (k0 / 32))
                        } else {
                            f32_at(rec, q8.sum16_offset() + 4 * (k0 / 16))
                        };
                        let t = sum as f32 * d.scale[s][r];
                        acc = t.mul_add(dx, acc);
                        acc = d.bias[s][r].mul_add(dxs, acc);
                    }
                }
                y[i * n + p * PANEL_ROWS + r] = acc;
            }
        }
    }
    y
}

/// The VNNI path gives exactly the bits of [`model`] for every quantized format, every
/// row block size (M = 1..=9 and 17 cover R = 1..=8 and blocks after the first), a
/// partial last panel, and finite or arbitrary scales (NaN only where the model has a
/// NaN: its payload may differ).
#[test]
fn fused_kernel_gives_the_model_bits() {
    if !Path::Vnni.available() {
        crate::test_util::skip(crate::test_util::Need::Vnni, "no AVX-512 VNNI");
        return;
    }
    let n = 37;
    for (fi, format) in Format::ALL.into_iter().enumerate() {
        if format.sub_block().is_none() {
            continue;
        }
        let bv = format.block_values();
        let k = if bv == 32 { 11 * 32 } else { 2 * 256 };
        let len = n * k / bv * format.block_bytes();
        for finite in [true, false] {
            let src = weights(format, 31 + fi as u64 + u64::from(finite), len, finite);
            let mut packed = vec![0u8; packed_size(format, n, k, 1).unwrap()];
            pack(format, n, k, 1, &src, &mut packed).unwrap();
            for m in (1..=9).chain([17]) {
                let x: Vec<f32> = bytes(7 * m as u64 + fi as u64, m * k)
                    .iter()
                    .map(|&b| f32::from(b) / 64.0 - 2.0)
                    .collect();
                let q8 = Q8Layout { k };
                let mut recs = vec![0u8; m * q8.row_bytes()];
                for (row, rec) in x.chunks_exact(k).zip(recs.chunks_exact_mut(q8.row_bytes())) {
                    q8_row(row, rec);
                }
                let want = model(format, &src, &packed, &recs, q8, m, n);
                let xr = MatRef::new(&x, m, k, k).unwrap();
                // Both kernel bodies: the grids by gathers and (where usable) by VBMI.
                for grids in Grids::usable() {
                    let mut y = vec![0f32; m * n];
                    let mut ym = MatMut::new(&mut y, m, n, n).unwrap();
                    let mut ws =
                        vec![0u8; gemm::workspace_bytes(format, m, k, Path::Vnni).unwrap()];
                    let path = with_grids(grids, || {
                        gemm::gemm(&packed, format, &xr, &mut ym, Path::Vnni, &mut ws)
                    });
                    assert_eq!(path, Ok(Path::Vnni));
                    for (j, (a, b)) in y.iter().zip(&want).enumerate() {
                        let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                        assert!(
                            same,
                            "{format} {grids:?} finite={finite} m={m} y[{}][{}]: {a} vs {b}",
                            j / n,
                            j % n
                        );
                    }
                }
            }
        }
    }
}

/// A format the fused kernel runs with integer sub-block scales has the scalar definition
/// the model above follows, and only such a format.
#[test]
fn integer_scales_come_with_their_scalar_definition() {
    use crate::formats::codec::Codec;
    use crate::formats::int_scales::Scales;
    use crate::formats::with_quantized;
    for format in Format::ALL {
        let block = vec![0u8; format.block_bytes()];
        let (int, defined) = with_quantized!(
            format,
            F => (matches!(<F as Codec>::SCALES, Scales::Int { .. }), format.int_scales(&block).is_some()),
            Format::F16 | Format::BF16 => (false, format.int_scales(&block).is_some())
        );
        assert_eq!(int, defined, "{format}");
    }
}
