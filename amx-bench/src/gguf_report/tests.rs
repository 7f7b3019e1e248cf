//! The repack bound: real shapes pass, padded ones are refused before allocating.

use super::*;
use amx_gguf::writer::Writer;

const F16: u32 = 1;
const Q4_0: u32 = 2;

fn ratio(format: Format, [k, n, e]: [usize; 3]) -> f64 {
    let src = format.row_bytes(k).unwrap() * n * e;
    pack::packed_size(format, n, k, e).unwrap() as f64 / src as f64
}

/// Every format, N >= 8 and K a multiple of its packed group, and F16/BF16 with N >= 16
/// and rows of 16 to 200 values, 1 to 8 matrices: within the bound, and the worst real
/// case (N >= 16) is the one `MAX_PACK_AMPLIFICATION` documents.
#[test]
fn real_shapes_stay_within_the_bound() {
    let mut worst = (0.0, Format::F16, [0; 3]);
    for format in Format::ALL {
        let group = pack::group_values(format);
        let mut ks: Vec<usize> = (1..=9).map(|g| g * group).collect();
        if format.block_values() == 1 {
            ks.extend(16..=200);
        }
        for n in (8..=80).chain([255, 4096]) {
            for &k in ks.iter().filter(|&&k| n >= 16 || k.is_multiple_of(group)) {
                for e in [1, 2, 8] {
                    let r = ratio(format, [k, n, e]);
                    let src = format.row_bytes(k).unwrap() * n * e;
                    assert!(
                        bounded_packed_size("t", format, [k, n, e], src).is_ok(),
                        "{format} [{k}, {n}, {e}]: ratio {r}"
                    );
                    if n >= 16 && k.is_multiple_of(group) && r > worst.0 {
                        worst = (r, format, [k, n, e]);
                    }
                }
            }
        }
    }
    assert_eq!(worst.1, Format::MXFP4, "{worst:?}");
    assert_eq!(worst.2, [32, 17, 1], "{worst:?}");
    assert_eq!(worst.0, 704.0 / 289.0);
    assert_eq!(ratio(Format::MXFP4, [32, 8, 1]), 384.0 / 136.0);
    assert!(ratio(Format::F16, [16, 17, 1]) < MAX_PACK_AMPLIFICATION as f64);
}

#[test]
fn padding_attacks_are_refused_with_both_sizes() {
    // F16 [1, 1, 2^23]: 16 MiB asking for 8 GiB (only sizes are computed here).
    let e = bounded_packed_size("stack", Format::F16, [1, 1, 1 << 23], 1 << 24).unwrap_err();
    assert!(["stack", "16777216 bytes", "8589934656 bytes"].iter().all(|s| e.contains(s)), "{e}");
    // A K = 1 expert: 2 bytes to 1088.
    let e = bounded_packed_size("expert", Format::F16, [1, 1, 1], 2).unwrap_err();
    assert!(["expert", " 2 bytes", "1088 bytes"].iter().all(|s| e.contains(s)), "{e}");
    // One row of Q4_K: 144 bytes would take 64 + 16 * 144.
    let e = bounded_packed_size("row", Format::Q4_K, [256, 1, 1], 144).unwrap_err();
    assert!(e.contains("2368 bytes"), "{e}");
}

/// A crafted file: the report refuses the padded tensors (it used to allocate and pack
/// 4 MiB for an 8 KiB stack) and still repacks an honest one.
#[test]
fn crafted_gguf_padding_is_refused_before_allocating() {
    let cases: [(&str, &[u64], usize); 2] =
        [("blk.0.ffn_up_exps.weight", &[1, 1, 4096], 8192), ("blk.0.attn_q.weight", &[1, 16], 32)];
    for (name, dims, len) in cases {
        let bytes = Writer::new().tensor(name, dims, F16, vec![0x3c; len]).build().0;
        let file = GgufFile::parse(bytes).unwrap();
        let e = report(&file).unwrap_err();
        let packed = pack::packed_size(
            Format::F16,
            dims[1] as usize,
            1,
            dims.get(2).copied().unwrap_or(1) as usize,
        )
        .unwrap();
        let want = [name.to_string(), format!(" {len} bytes"), format!("{packed} bytes")];
        assert!(want.iter().all(|s| e.contains(s.as_str())), "{e}");
    }
    let q4_0 =
        Writer::new().tensor("blk.0.ffn_down.weight", &[32, 17], Q4_0, vec![0; 17 * 18]).build().0;
    let (_, lines) = report(&GgufFile::parse(q4_0).unwrap()).unwrap();
    assert_eq!(lines[0].buft, "AMX");
    assert_eq!(lines[0].repack.map(|r| r.1), Some(704));
}

#[test]
fn unhandled_types_are_named_as_ggml_names_them() {
    assert_eq!(type_label(10), "Q2_K (ggml type 10)");
    assert_eq!(type_label(0), "F32 (ggml type 0)");
    assert_eq!(type_label(40), "NVFP4 (ggml type 40)");
    assert_eq!(type_label(4), "ggml type id 4 (not a ggml type)");
    assert_eq!(type_label(77), "ggml type id 77 (not a ggml type)");
}
