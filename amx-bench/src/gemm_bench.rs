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

/// Read bandwidth in bytes per second on `threads` threads: each pass reads `chunk`
/// bytes (a weight's size) from the next of the chunks of a buffer of `total` bytes, the
/// way the `dram` GEMM cases cycle through their weight copies.
pub fn read_bandwidth(chunk: usize, total: usize, threads: usize, min_time: Duration) -> f64 {
    let chunk = chunk.max(64) / 8 * 8;
    let copies = total.div_ceil(chunk).max(1);
    let buf: Vec<u64> = (0..copies * chunk / 8).map(|i| i as u64).collect();
    let read = |part: &[u64]| -> u64 { read_sum(part) };
    let words = chunk / 8;
    let pass = |i: usize| {
        let part = &buf[(i % copies) * words..(i % copies + 1) * words];
        if threads <= 1 {
            black_box(read(part));
            return;
        }
        let per = words.div_ceil(threads);
        std::thread::scope(|s| {
            for piece in part.chunks(per) {
                s.spawn(move || black_box(read(piece)));
            }
        });
    };
    pass(0);
    let mut times = Vec::new();
    let start = Instant::now();
    let mut i = 1;
    while start.elapsed() < min_time || times.len() < 5 {
        let t = Instant::now();
        pass(i);
        times.push(t.elapsed());
        i += 1;
    }
    times.sort();
    chunk as f64 / times[times.len() / 2].as_secs_f64()
}

/// The tile unit's peaks measured in the same run, GOPS.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// `tdpbssd` loop.
    pub int8: f64,
    /// `tdpbf16ps` loop.
    pub bf16: f64,
}

/// One line of the throughput output.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Weight format.
    pub format: Format,
    /// Path asked for.
    pub path: Path,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Values per row.
    pub k: usize,
    /// Threads.
    pub threads: usize,
    /// Measured GOPS.
    pub gops: f64,
    /// The tile unit's peaks this run.
    pub peak_gops: Peak,
    /// The read-bandwidth bound of this case, when measured (`--dram`).
    pub bound_gops: Option<f64>,
}

impl Row {
    /// One JSON object: format, path, m, n, k, threads, gops, peak_fraction (of the int8
    /// tile peak), and with a measured bound also bound_gops and bound_fraction.
    pub fn to_json(&self) -> String {
        let bound = match self.bound_gops {
            Some(b) => format!(",\"bound_gops\":{b:.2},\"bound_fraction\":{:.4}", self.gops / b),
            None => String::new(),
        };
        format!(
            "{{\"format\":\"{}\",\"path\":\"{}\",\"m\":{},\"n\":{},\"k\":{},\"threads\":{},\"gops\":{:.2},\"peak_fraction\":{:.4}{bound}}}",
            self.format.name().to_ascii_lowercase(),
            self.path.name(),
            self.m,
            self.n,
            self.k,
            self.threads,
            self.gops,
            self.gops / self.peak_gops.int8
        )
    }

    /// One aligned text line.
    pub fn to_text(&self) -> String {
        let bound = match self.bound_gops {
            Some(b) => format!("  bound {b:>6.1} GOPS, {:>5.1}% of it", 100.0 * self.gops / b),
            None => String::new(),
        };
        format!(
            "{:<7} {:<7} m={:<4} t={} {:>8.1} GOPS {:>5.1}% of int8 peak {:>5.1}% of bf16 peak{bound}",
            self.format.name(),
            self.path.name(),
            self.m,
            self.threads,
            self.gops,
            100.0 * self.gops / self.peak_gops.int8,
            100.0 * self.gops / self.peak_gops.bf16
        )
    }
}

/// Sums `part` with the widest loads this CPU has (64-byte AVX-512 loads where usable), so
/// that the bandwidth baseline reads memory at least as well as the kernels do.
fn read_sum(part: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if amx_core::detect::Features::cached().avx512_usable() {
        // SAFETY: AVX-512F is usable (checked just above).
        return unsafe { read_sum_avx512(part) };
    }
    let mut acc = [0u64; 8];
    for c in part.chunks_exact(8) {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(*v);
        }
    }
    acc.iter().fold(0, |s, a| s.wrapping_add(*a))
}

/// [`read_sum`] with four independent 64-byte accumulators.
///
/// # Safety
///
/// The CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_sum_avx512(part: &[u64]) -> u64 {
    use std::arch::x86_64::{
        _mm512_add_epi64, _mm512_loadu_si512, _mm512_reduce_add_epi64, _mm512_setzero_si512,
    };
    let mut acc = [_mm512_setzero_si512(); 4];
    for c in part.chunks_exact(32) {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` holds 32 u64, so words 8j..8j + 8 are readable.
            let v = unsafe { _mm512_loadu_si512(c[8 * j..].as_ptr().cast()) };
            *a = _mm512_add_epi64(*a, v);
        }
    }
    let sum = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
    _mm512_reduce_add_epi64(sum) as u64
}
