use amx_core::formats::{Format, dequantize};
use amx_core::gemm::{MatMut, MatRef, Path};
use amx_core::pack::{self, PackError, PackedLayout};

use super::*;
use crate::pool::Pool;
use crate::test_util::{bytes, q8_0, values};

/// The ks tried for `format`: whole blocks, and partial 32-value groups for F16/BF16.
fn ks(format: Format) -> Vec<usize> {
    let b = format.block_values();
    if b == 1 { vec![5, 32, 40] } else { vec![b, 2 * b] }
}

fn packed_by_core(format: Format, n: usize, k: usize, e: usize, src: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; pack::packed_size(format, n, k, e).unwrap()];
    pack::pack(format, n, k, e, src, &mut buf).unwrap();
    buf
}

#[test]
fn from_ggml_packs_every_format_as_amx_core_does_and_serves_every_row() {
    for (i, format) in Format::ALL.into_iter().enumerate() {
        for k in ks(format) {
            for (n, e) in [(1, 1), (17, 3)] {
                let layout = PackedLayout::new(format, n, k, e).unwrap();
                let src = bytes(layout.source_bytes(), (i * 97 + k + n) as u64);
                let dims: &[u64] = if e == 1 && n == 1 {
                    &[k as u64, n as u64]
                } else {
                    &[k as u64, n as u64, e as u64]
                };
                let w = PackedWeight::from_ggml(format.ggml_type(), dims, &src).unwrap();
                assert_eq!((w.format(), w.n(), w.k(), w.matrices()), (format, n, k, e));
                assert_eq!(w.layout(), &layout);
                assert_eq!(w.bytes(), &packed_by_core(format, n, k, e, &src)[..], "{format}");
                let rb = layout.source_row_bytes();
                let (mut got, mut want) = (vec![0f32; k], vec![0f32; k]);
                for m in 0..e {
                    for r in 0..n {
                        let at = (m * n + r) * rb;
                        dequantize(format, &src[at..at + rb], &mut want).unwrap();
                        w.dequantize_row(m, r, &mut got).unwrap();
                        let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{format} k={k} matrix {m} row {r}");
                    }
                }
            }
        }
    }
}

#[test]
fn from_ggml_refuses_bad_types_dims_and_lengths_with_the_numbers() {
    let q4 = Format::Q4_0.ggml_type();
    let src = vec![0u8; 4 * 2 * 18]; // 4 rows of 64 Q4_0 values
    assert!(PackedWeight::from_ggml(q4, &[64, 4], &src).is_ok());
    for dims in [&[][..], &[64], &[64, 4, 1, 1]] {
        let e = PackedWeight::from_ggml(q4, dims, &src).unwrap_err();
        assert_eq!(e, WeightError::DimCount { count: dims.len() });
        assert!(e.to_string().contains(&format!("{} given", dims.len())), "{e}");
    }
    let empty = |n, k, matrices| WeightError::Pack(PackError::EmptyShape { n, k, matrices });
    assert_eq!(PackedWeight::from_ggml(q4, &[0, 4], &[]).unwrap_err(), empty(4, 0, 1));
    assert_eq!(PackedWeight::from_ggml(q4, &[64, 0], &[]).unwrap_err(), empty(0, 64, 1));
    assert_eq!(PackedWeight::from_ggml(q4, &[64, 4, 0], &[]).unwrap_err(), empty(4, 64, 0));
    // n and k swapped: k = 4 is not a whole block.
    let e = PackedWeight::from_ggml(q4, &[4, 64], &src).unwrap_err();
    assert_eq!(
        e,
        WeightError::Pack(PackError::NotBlockMultiple { format: Format::Q4_0, k: 4, block: 32 })
    );
    // Dims that agree with the block but not with the bytes.
    let e = PackedWeight::from_ggml(q4, &[32, 8], &src[..100]).unwrap_err();
    assert_eq!(e, WeightError::Pack(PackError::SourceLength { expected: 144, actual: 100 }));
    assert!(e.to_string().contains("144") && e.to_string().contains("100"), "{e}");
    // Types without a packed format, by ggml's name.
    for (id, name) in [(0, "F32"), (9, "Q8_1"), (15, "Q8_K")] {
        let e = PackedWeight::from_ggml(id, &[64, 4], &src).unwrap_err();
        assert_eq!(e, WeightError::UnsupportedType { ggml_type: id });
        assert!(e.to_string().contains(name), "{e}");
    }
    let e = PackedWeight::from_ggml(9999, &[64, 4], &src).unwrap_err();
    assert!(e.to_string().contains("9999 is not a ggml type"), "{e}");
    // Past usize: refused before any allocation.
    let huge = [u64::MAX / 2, 3];
    let f16 = Format::F16.ggml_type();
    assert_eq!(
        PackedWeight::from_ggml(f16, &huge, &src).unwrap_err(),
        WeightError::Pack(PackError::Overflow)
    );
}

#[test]
fn from_f32_as_bf16_is_amx_core_s_packing() {
    let (n, k, e) = (19, 45, 2);
    let rows = values(n * k * e, 5);
    let w = PackedWeight::from_f32_as_bf16(n, k, e, &rows).unwrap();
    let mut want = vec![0u8; pack::packed_size(Format::BF16, n, k, e).unwrap()];
    pack::pack_f32_as_bf16(n, k, e, &rows, &mut want).unwrap();
    assert_eq!(w.bytes(), &want[..]);
    assert_eq!((w.format(), w.n(), w.k(), w.matrices()), (Format::BF16, n, k, e));
    let e = PackedWeight::from_f32_as_bf16(n, k, 2, &rows[1..]).unwrap_err();
    let (expected, actual) = (4 * rows.len(), 4 * (rows.len() - 1));
    assert_eq!(e, WeightError::Pack(PackError::SourceLength { expected, actual }));
    let e = PackedWeight::from_f32_as_bf16(0, k, 1, &[]).unwrap_err();
    assert_eq!(e, WeightError::Pack(PackError::EmptyShape { n: 0, k, matrices: 1 }));
}

#[test]
fn from_packed_verifies_and_copies_only_the_recorded_size() {
    let src = q8_0(20, 64, 3);
    let w = PackedWeight::from_ggml(Format::Q8_0.ggml_type(), &[64, 20], &src).unwrap();
    let mut longer = w.bytes().to_vec();
    longer.extend_from_slice(&[7; 10]);
    let copy = PackedWeight::from_packed(&longer).unwrap();
    assert_eq!(copy.bytes(), w.bytes());
    assert_eq!(copy.layout(), w.layout());
    let total = w.bytes().len();
    let e = PackedWeight::from_packed(&w.bytes()[..total - 1]).unwrap_err();
    assert_eq!(e, WeightError::Pack(PackError::Truncated { needed: total, actual: total - 1 }));
    let mut changed = w.bytes().to_vec();
    changed[total - 64] ^= 0x10;
    let e = PackedWeight::from_packed(&changed).unwrap_err();
    assert!(matches!(e, WeightError::Pack(PackError::BodyChecksum { .. })), "{e}");
    assert!(core::error::Error::source(&e).is_some());
    assert_eq!(
        PackedWeight::from_packed(&[0; 10]).unwrap_err(),
        WeightError::Pack(PackError::Truncated { needed: 64, actual: 10 })
    );
}

#[test]
fn dequantize_row_errors_name_the_callers_numbers() {
    let w = PackedWeight::from_f32_as_bf16(3, 8, 2, &[1.0; 48]).unwrap();
    let mut out = [0f32; 9];
    let range = |matrix, row| {
        WeightError::Pack(PackError::RowOutOfRange { matrix, row, matrices: 2, n: 3 })
    };
    assert_eq!(w.dequantize_row(2, 0, &mut out[..8]), Err(range(2, 0)));
    assert_eq!(w.dequantize_row(1, 3, &mut out[..8]), Err(range(1, 3)));
    let e = w.dequantize_row(1, 2, &mut out).unwrap_err();
    assert_eq!(e, WeightError::Pack(PackError::RowLength { expected: 8, actual: 9 }));
    assert_eq!(w.dequantize_row(1, 2, &mut out[..8]), Ok(()));
    assert_eq!(out[..8], [1.0; 8]);
}

/// The ggml rows of `parts` concatenated along n, matrix by matrix.
fn concatenated(parts: &[(usize, Vec<u8>)], e: usize, rb: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for m in 0..e {
        for (n, src) in parts {
            out.extend_from_slice(&src[m * n * rb..(m + 1) * n * rb]);
        }
    }
    out
}

#[test]
fn concat_rows_equals_packing_the_concatenated_rows_in_every_format() {
    for (i, format) in Format::ALL.into_iter().enumerate() {
        let k = *ks(format).last().unwrap();
        let rb = format.row_bytes(k).unwrap();
        for e in [1, 2] {
            for ns in [&[5, 17, 1][..], &[16, 16], &[3], &[32, 7, 16, 9]] {
                let parts: Vec<(usize, Vec<u8>)> = ns
                    .iter()
                    .enumerate()
                    .map(|(j, &n)| (n, bytes(n * e * rb, (i * 31 + j * 7 + e) as u64)))
                    .collect();
                let weights: Vec<PackedWeight> = parts
                    .iter()
                    .map(|(n, src)| {
                        let dims = [k as u64, *n as u64, e as u64];
                        PackedWeight::from_ggml(format.ggml_type(), &dims, src).unwrap()
                    })
                    .collect();
                let refs: Vec<&PackedWeight> = weights.iter().collect();
                let got = PackedWeight::concat_rows(&refs).unwrap();
                let n: usize = ns.iter().sum();
                let src = concatenated(&parts, e, rb);
                let dims = [k as u64, n as u64, e as u64];
                let want = PackedWeight::from_ggml(format.ggml_type(), &dims, &src).unwrap();
                assert!(got.bytes() == want.bytes(), "{format} ns={ns:?} e={e}");
                assert_eq!(got.layout(), want.layout());
            }
        }
    }
}

#[test]
fn concat_rows_refuses_mismatched_parts_naming_the_part() {
    let q8 = |n: usize, k: usize, e: usize| {
        let src = q8_0(n * e, k, 1);
        PackedWeight::from_ggml(Format::Q8_0.ggml_type(), &[k as u64, n as u64, e as u64], &src)
            .unwrap()
    };
    let (a, b) = (q8(4, 64, 1), q8(5, 64, 1));
    assert_eq!(PackedWeight::concat_rows(&[]).unwrap_err(), WeightError::NoParts);
    let other_k = q8(4, 32, 1);
    let e = PackedWeight::concat_rows(&[&a, &b, &other_k]).unwrap_err();
    assert_eq!(e, WeightError::PartK { part: 2, expected: 64, found: 32 });
    assert!(e.to_string().contains("weight 2") && e.to_string().contains("k = 32"), "{e}");
    let stack = q8(4, 64, 3);
    let e = PackedWeight::concat_rows(&[&a, &stack]).unwrap_err();
    assert_eq!(e, WeightError::PartMatrices { part: 1, expected: 1, found: 3 });
    assert!(e.to_string().contains("stacks 3 matrices"), "{e}");
    let bf16 = PackedWeight::from_f32_as_bf16(4, 64, 1, &values(256, 2)).unwrap();
    let e = PackedWeight::concat_rows(&[&a, &bf16]).unwrap_err();
    let want = WeightError::PartFormat { part: 1, expected: Format::Q8_0, found: Format::BF16 };
    assert_eq!(e, want);
    assert!(e.to_string().contains("BF16") && e.to_string().contains("Q8_0"), "{e}");
    let one = PackedWeight::concat_rows(&[&b]).unwrap();
    assert_eq!(one.bytes(), b.bytes());
}

/// One matmul with the fused weight gives each part's outputs, bit for bit, side by side.
#[test]
fn a_fused_weight_computes_its_parts_outputs() {
    let (k, m) = (64, 3);
    let ns = [20, 7, 7];
    let parts: Vec<PackedWeight> = ns
        .iter()
        .enumerate()
        .map(|(j, &n)| {
            let src = q8_0(n, k, 10 + j as u64);
            PackedWeight::from_ggml(Format::Q8_0.ggml_type(), &[k as u64, n as u64], &src).unwrap()
        })
        .collect();
    let refs: Vec<&PackedWeight> = parts.iter().collect();
    let fused = PackedWeight::concat_rows(&refs).unwrap();
    let x = values(m * k, 4);
    let pool = Pool::new(1);
    let xr = MatRef::new(&x, m, k, k).unwrap();
    let total: usize = ns.iter().sum();
    for path in [Path::Scalar, Path::Auto] {
        let mut y = vec![0f32; m * total];
        pool.matmul_on(
            fused.bytes(),
            fused.format(),
            &xr,
            &mut MatMut::new(&mut y, m, total, total).unwrap(),
            path,
        )
        .unwrap();
        let mut col = 0;
        for (w, &n) in parts.iter().zip(&ns) {
            let mut yp = vec![0f32; m * n];
            pool.matmul_on(
                w.bytes(),
                w.format(),
                &xr,
                &mut MatMut::new(&mut yp, m, n, n).unwrap(),
                path,
            )
            .unwrap();
            for r in 0..m {
                let fused_row = &y[r * total + col..r * total + col + n];
                assert_eq!(fused_row, &yp[r * n..(r + 1) * n], "{path:?} row {r} col {col}");
            }
            col += n;
        }
    }
}

#[test]
fn from_gguf_packs_a_files_tensor_and_its_rows_are_the_files_dequantization() {
    // Every test vector of the repository: its `w` packed from the file, each row read
    // back equal bit for bit to the file's own `w_deq` (gguf-py's dequantization).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "gguf") {
            continue;
        }
        let file = amx_gguf::GgufFile::open(&path).unwrap();
        let w = PackedWeight::from_gguf(&file, "w").unwrap();
        let info = file.tensor("w").unwrap();
        assert_eq!((w.k() as u64, w.n() as u64), (info.ne0(), info.ne1()), "{path:?}");
        let want = file.tensor_f32("w_deq").unwrap();
        let mut row = vec![0f32; w.k()];
        for r in 0..w.n() {
            w.dequantize_row(0, r, &mut row).unwrap();
            let expect = &want[r * w.k()..(r + 1) * w.k()];
            assert!(
                row.iter().zip(expect).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{path:?} row {r}"
            );
        }
        // An F32 tensor has no packed format: the error names it.
        let e = PackedWeight::from_gguf(&file, "w_deq").unwrap_err();
        assert!(e.to_string().contains("F32"), "{e}");
        // A tensor the file does not hold: the GGUF reader's error, naming it.
        let e = PackedWeight::from_gguf(&file, "no_such_tensor").unwrap_err();
        assert!(
            matches!(e, WeightError::Gguf(_)) && e.to_string().contains("no_such_tensor"),
            "{e}"
        );
        seen += 1;
    }
    assert!(seen >= 4 * Format::ALL.len(), "only {seen} vector files in {dir:?}");
}
