//! Every public size function of amx-core's formats, pack and gemm modules (MoE's have
//! their own tests) over extreme arguments: 0, 1, block and panel edges, 2^32, 2^33,
//! usize::MAX and its neighbours, and values whose products overflow. None may panic;
//! each returns exactly the size a u128 computation of its documented formula gives, or
//! `Overflow` exactly when that size does not fit `usize`.

use amx_core::formats::{Format, FormatError};
use amx_core::gemm::{self, GemmError, Path, Preparation};
use amx_core::pack::{self, HEADER_BYTES, PackError, PackedLayout};

/// The extreme values every argument takes.
fn extremes() -> Vec<usize> {
    let mut v = vec![0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 255, 256, 257, 4096];
    for p in [31, 32, 33, 40, 48, 56, 60, 61, 62, 63] {
        v.extend([(1usize << p) - 1, 1 << p, (1 << p) + 32]);
    }
    let m = usize::MAX;
    v.extend([m / 2, m / 2 + 1, m / 3, m / 64, m / 1024, m / 2048, m / 256 * 256]);
    v.extend([m / 32 * 32, m / 1024 * 1024, m - 255, m - 31, m - 1, m]);
    v.sort_unstable();
    v.dedup();
    v
}

fn round_up(x: u128, to: u128) -> u128 {
    x.div_ceil(to) * to
}

/// `Ok(v)` when `v` fits `usize`, else `err`.
fn fit<E>(v: u128, err: E) -> Result<usize, E> {
    usize::try_from(v).map_err(|_| err)
}

#[test]
fn format_row_bytes() {
    for format in Format::ALL {
        let (block, bytes) = (format.block_values() as u128, format.block_bytes() as u128);
        for k in extremes() {
            let want = if !(k as u128).is_multiple_of(block) {
                Err(FormatError::NotBlockMultiple { format, values: k, block: block as usize })
            } else {
                fit(k as u128 / block * bytes, FormatError::Overflow)
            };
            assert_eq!(format.row_bytes(k), want, "{format} k={k}");
        }
    }
}

/// The packed size of `matrices` `n x k` weights: `HEADER_BYTES` plus panels of 16 rows,
/// each `groups * 16 * group_bytes` rounded up to 64 bytes.
fn packed_model(format: Format, n: usize, k: usize, matrices: usize) -> Result<u128, PackError> {
    if n == 0 || k == 0 || matrices == 0 {
        return Err(PackError::EmptyShape { n, k, matrices });
    }
    let block = format.block_values();
    if !k.is_multiple_of(block) {
        return Err(PackError::NotBlockMultiple { format, k, block });
    }
    let groups = (k as u128).div_ceil(pack::group_values(format) as u128);
    let panel = round_up(groups * 16 * pack::group_bytes(format) as u128, 64);
    // Saturating: anything past u128 is past usize too.
    let body = (n as u128).div_ceil(16).saturating_mul(matrices as u128).saturating_mul(panel);
    Ok(body.saturating_add(HEADER_BYTES as u128))
}

#[test]
fn packed_sizes_and_layouts() {
    let xs = extremes();
    let mut checked = 0;
    for format in Format::ALL {
        for &n in &xs {
            for &k in &xs {
                for matrices in [0, 1, 2, 3, 8, 1 << 20, usize::MAX / 2, usize::MAX] {
                    let model = packed_model(format, n, k, matrices);
                    let want = model.and_then(|v| fit(v, PackError::Overflow));
                    let what = format!("{format} n={n} k={k} matrices={matrices}");
                    assert_eq!(pack::packed_size(format, n, k, matrices), want, "{what}");
                    let Ok(total) = want else {
                        assert!(PackedLayout::new(format, n, k, matrices).is_err());
                        continue;
                    };
                    checked += 1;
                    layout_sizes(&PackedLayout::new(format, n, k, matrices).expect(&what), total);
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} layouts fit");
}

/// Every size a layout reports, against u128 arithmetic, and `panel_offset` and
/// `source_range` at and past the end.
fn layout_sizes(l: &PackedLayout, total: usize) {
    let what = format!("{l:?}");
    assert_eq!(l.total_bytes(), total, "{what}");
    let (n, k, e) = (l.n() as u128, l.k() as u128, l.matrices() as u128);
    let panels = n.div_ceil(16) * e;
    assert_eq!(l.panels() as u128, panels, "{what}");
    assert_eq!(l.panels_per_matrix() as u128, n.div_ceil(16), "{what}");
    assert_eq!(HEADER_BYTES as u128 + panels * l.panel_bytes() as u128, total as u128);
    let format = l.format();
    let row = k / format.block_values() as u128 * format.block_bytes() as u128;
    assert_eq!(l.source_row_bytes() as u128, row, "{what}");
    assert_eq!(l.source_bytes() as u128, row * n * e, "{what}");
    for p in [0, 1, l.panels() / 2, l.panels() - 1, l.panels()] {
        let want = HEADER_BYTES as u128 + p as u128 * l.panel_bytes() as u128;
        assert_eq!(l.panel_offset(p).map(|v| v as u128), Ok(want), "{what} panel {p}");
        let range = pack::source_range(l, p..l.panels());
        assert!(range.start <= range.end && range.end <= l.source_bytes(), "{what}");
    }
    for p in [l.panels() + 1, usize::MAX] {
        let want = PackError::PanelRange { start: p, end: p, panels: l.panels() };
        assert_eq!(l.panel_offset(p), Err(want), "{what} panel {p}");
        assert_eq!(pack::source_range(l, 0..p), 0..0, "{what}");
    }
}

/// Bytes of the prepared activations of `m x k` on the resolved `path`, as the module
/// docs describe them.
fn prepared_model(format: Format, m: usize, k: usize, path: Path) -> Result<u128, GemmError> {
    if k == 0 {
        return Err(GemmError::ZeroK);
    }
    let float = matches!(format, Format::F16 | Format::BF16);
    let (m, k128) = (m as u128, k as u128);
    Ok(match path.resolve(format, m as usize)? {
        Path::Vnni if !float => {
            if !k.is_multiple_of(32) {
                let expected = fit(round_up(k128, 32), GemmError::Overflow)?;
                return Err(GemmError::ShapeMismatch { dim: "k", expected, found: k });
            }
            // k int8, then f32 dx and dx * sum per 32 values, dx * sum per 16 and the
            // i16 sum per 16.
            m.saturating_mul(round_up(k128 + 8 * (k128 / 32) + 6 * (k128 / 16), 64))
        }
        // 16-row x 32-value BF16 tiles of 1 KiB, row tiles rounded up to an even count.
        Path::Amx => (m.div_ceil(32) * 2).saturating_mul(k128.div_ceil(32) * 1024),
        _ => 0,
    })
}

/// Per-thread scratch: two BF16 weight panels on the AMX path.
fn scratch_model(format: Format, k: usize, path: Path) -> Result<u128, GemmError> {
    if k == 0 {
        return Err(GemmError::ZeroK);
    }
    Ok(match path.resolve(format, gemm::amx_min_rows(format))? {
        Path::Amx => (k as u128).div_ceil(32) * 2048 + 64,
        _ => 0,
    })
}

fn to_usize(v: Result<u128, GemmError>) -> Result<usize, GemmError> {
    v.and_then(|v| fit(v, GemmError::Overflow))
}

#[test]
fn gemm_sizes() {
    let xs = extremes();
    for format in Format::ALL {
        for path in Path::ALL {
            for &k in &xs {
                let scratch = to_usize(scratch_model(format, k, path));
                let what = format!("{format} {path:?} k={k}");
                assert_eq!(gemm::scratch_bytes(format, k, path), scratch, "{what}");
                for &m in &xs {
                    let what = format!("{format} {path:?} m={m} k={k}");
                    let body = prepared_model(format, m, k, path);
                    let prep = Preparation::new(format, m, k, path);
                    assert_eq!(prep.map(|p| p.bytes()), to_usize(body), "{what}");
                    let prepared = body.map(|b| b.saturating_add(64));
                    let got = gemm::prepared_bytes(format, m, k, path);
                    assert_eq!(got, to_usize(prepared), "{what}");
                    let resolved = path.resolve(format, m);
                    let ws = match (prepared, resolved) {
                        (Err(e), _) | (_, Err(e)) => Err(e),
                        (Ok(p), Ok(r)) => scratch_model(format, k, r).map(|s| p.saturating_add(s)),
                    };
                    assert_eq!(gemm::workspace_bytes(format, m, k, path), to_usize(ws), "{what}");
                    if let Ok(p) = prep {
                        let all = p.byte_range(0..m).map(|r| r.len());
                        assert_eq!(all, Ok(p.bytes()), "{what}");
                        let a = p.row_align();
                        assert!(p.byte_range(0..0).is_ok_and(|r| r.is_empty()), "{what}");
                        if m > a {
                            assert!(p.byte_range(a..m).is_ok(), "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn panels_for_columns_never_overflows() {
    for &a in &extremes() {
        for &b in &extremes() {
            let r = gemm::panels_for_columns(a..b);
            assert_eq!(r.start as u128, a as u128 / 16);
            assert_eq!(r.end as u128, (b as u128).div_ceil(16));
        }
    }
}
