//! GEMM throughput: GOPS (2 M N K per second) of a path on a shape, one or more threads,
//! with the weights reused from cache or cycled through memory (`dram`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use amx_core::formats::Format;
use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path};
use amx_core::pack::{self, PackedRef};

use crate::pack_bench::pseudo_random_bytes;

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// Operations per second / 1e9.
    pub gops: f64,
    /// Median seconds per call.
    pub seconds: f64,
}

/// Weights whose f16 scales are moderate (random bytes elsewhere), so the kernels do
/// ordinary arithmetic rather than NaN paths.
pub fn bench_weights(format: Format, seed: u64, n: usize, k: usize) -> Result<Vec<u8>, GemmError> {
    let len = n * format.row_bytes(k).map_err(|_| GemmError::Overflow)?;
    let mut w = pseudo_random_bytes(seed, len);
    let scales: &[usize] = match format {
        Format::Q4_0 | Format::Q8_0 | Format::IQ4XS => &[0],
        Format::Q4_1 | Format::Q4K | Format::Q5K => &[0, 2],
        Format::Q6K => &[208],
        _ => &[],
    };
    match format {
        Format::F16 | Format::BF16 => {
            for v in w.chunks_exact_mut(2) {
                v[1] =
                    if format == Format::F16 { 0x38 | (v[1] & 0x83) } else { 0x3f | (v[1] & 0x80) };
            }
        }
        _ => {
            for b in w.chunks_exact_mut(format.block_bytes()) {
                for &at in scales {
                    b[at + 1] = 0x30 | (b[at + 1] & 0x87);
                }
            }
        }
    }
    Ok(w)
}

/// One benchmark case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Weight format.
    pub format: Format,
    /// Kernel path (`Auto` or forced).
    pub path: Path,
    /// Activation rows.
    pub m: usize,
    /// Output columns.
    pub n: usize,
    /// Values per row.
    pub k: usize,
    /// Threads splitting the panels (and preparing the activations).
    pub threads: usize,
    /// Distinct packed copies of the weights, cycled call after call (enough of them put
    /// the weights out of cache).
    pub copies: usize,
    /// Keep calling for at least this long (and at least 3 timed calls).
    pub min_time: Duration,
}

/// Measures one case: the median time of whole matmuls (activation preparation
/// included).
pub fn measure(case: &Case) -> Result<Figure, GemmError> {
    let Case { format, path, m, n, k, threads, copies, min_time } = *case;
    let src = bench_weights(format, 7, n, k)?;
    let size = pack::packed_size(format, n, k, 1)?;
    let mut weights = Vec::with_capacity(copies.max(1));
    for _ in 0..copies.max(1) {
        let mut buf = vec![0u8; size];
        pack::pack(format, n, k, 1, &src, &mut buf)?;
        weights.push(buf);
    }
    let x: Vec<f32> =
        pseudo_random_bytes(11, m * k).iter().map(|&b| f32::from(b) / 128.0 - 1.0).collect();
    let mut y = vec![0f32; m * n];
    let xr = MatRef::new(&x, m, k, k)?;
    let resolved = path.resolve(format, m)?;
    let mut ws = vec![0u8; gemm::prepared_bytes(format, m, k, resolved)?];
    let scratch_len = gemm::scratch_bytes(format, k, resolved)?;
    let mut scratches: Vec<Vec<u8>> = (0..threads.max(1)).map(|_| vec![0u8; scratch_len]).collect();
    let threads = threads.max(1);
    let prep = gemm::Preparation::new(format, m, k, resolved)?;
    let mut call = |i: usize, y: &mut Vec<f32>| -> Result<(), GemmError> {
        let packed = PackedRef::parse_expecting(&weights[i % weights.len()], format, n, k, 1)?;
        let body = prep.body(&mut ws)?;
        prepare_parallel(&prep, &xr, body, threads)?;
        let prepared = prep.finish(&xr, body)?;
        let mut ym = MatMut::new(y, m, n, n)?;
        let panels = packed.layout().panels();
        if threads == 1 {
            return gemm::gemm_range(
                &packed,
                &prepared,
                &mut ym,
                0..panels,
                0..m,
                &mut scratches[0],
            );
        }
        let shared = ym.share();
        let per = panels.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = scratches
                .iter_mut()
                .enumerate()
                .map(|(t, scratch)| {
                    let (packed, prepared, shared) = (&packed, &prepared, &shared);
                    s.spawn(move || {
                        let range = (t * per).min(panels)..((t + 1) * per).min(panels);
                        // SAFETY: each thread writes its own panel range, disjoint from
                        // the others'.
                        unsafe {
                            gemm::gemm_range_shared(packed, prepared, shared, range, 0..m, scratch)
                        }
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| h.join().expect("bench thread"))
        })
    };
    call(0, &mut y)?;
    let mut times = Vec::new();
    let start = Instant::now();
    let mut i = 1;
    while start.elapsed() < min_time || times.len() < 3 {
        let t = Instant::now();
        call(i, &mut y)?;
        times.push(t.elapsed());
        black_box(&y);
        i += 1;
    }
    times.sort();
    let secs = times[times.len() / 2].as_secs_f64();
    Ok(Figure { gops: 2.0 * (m * n * k) as f64 / secs / 1e9, seconds: secs })
}

/// Prepares the activations with `threads` threads, each taking an aligned block of rows.
pub fn prepare_parallel(
    prep: &gemm::Preparation,
    x: &MatRef<'_>,
    body: &mut [u8],
    threads: usize,
) -> Result<(), GemmError> {
    let m = x.rows();
    let align = prep.row_align();
    let per = m.div_ceil(threads.max(1)).next_multiple_of(align).max(align);
    let mut parts = Vec::new();
    let mut rest = body;
    let mut start = 0;
    while start < m {
        let end = (start + per).min(m);
        let range = prep.byte_range(start..end)?;
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        parts.push((start..end, part));
        rest = tail;
        start = end;
    }
    if parts.len() <= 1 {
        return parts.into_iter().try_for_each(|(rows, part)| prep.prepare_rows(x, rows, part));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(rows, part)| s.spawn(move || prep.prepare_rows(x, rows, part)))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().expect("prepare thread"))
    })
}
