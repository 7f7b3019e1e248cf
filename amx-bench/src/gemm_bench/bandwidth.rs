//! The read-bandwidth baseline of the `--dram` cases: how fast a plain loop reads the
//! same amount of memory the kernels read.

use std::hint::black_box;
use std::time::{Duration, Instant};

use amx_runtime::hugepage::HugeBuffer;
use amx_runtime::pool::Pool;

/// The last-level cache of the sizes a Sapphire Rapids socket has, assumed where Linux
/// does not say (105 MiB).
const DEFAULT_L3_BYTES: usize = 105 << 20;

/// The bytes the `--dram` cases cycle through: four times the largest cache Linux reports
/// for cpu0 (`/sys/devices/system/cpu/cpu0/cache/index*/size`), so that each pass reads
/// its weights from DRAM, not from a last-level cache (260 MiB on some Emerald Rapids
/// guests, where a fixed 440 MiB footprint was mostly cached).
pub fn dram_footprint() -> usize {
    let largest = (0..8)
        .filter_map(|i| {
            let path = format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size");
            parse_cache_size(std::fs::read_to_string(path).ok()?.trim())
        })
        .max()
        .unwrap_or(0);
    4 * largest.max(DEFAULT_L3_BYTES)
}

/// A sysfs cache size such as "266240K", "2048K" or "32M", in bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.strip_suffix('K') {
        Some(d) => (d, 1 << 10),
        None => match s.strip_suffix('M') {
            Some(d) => (d, 1 << 20),
            None => (s, 1),
        },
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

/// A plain read loop over `copies` chunks of `chunk` bytes, each pass reading the next
/// chunk, the way the `dram` GEMM cases cycle through their weight copies.
pub struct ReadLoop {
    buf: HugeBuffer,
    words: usize,
    copies: usize,
}

impl ReadLoop {
    /// Chunks of `chunk` bytes (rounded down to 8, at least 64) filling at least `total`,
    /// on the same kind of memory as the weights they are compared with (a
    /// [`HugeBuffer`]).
    pub fn new(chunk: usize, total: usize) -> ReadLoop {
        let chunk = chunk.max(64) / 8 * 8;
        let copies = total.div_ceil(chunk).max(1);
        let mut buf = HugeBuffer::zeroed(copies * chunk);
        // Distinct non-zero words, so that no page stays the shared zero page.
        for (i, w) in buf.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&(i as u64).to_le_bytes());
        }
        ReadLoop { buf, words: chunk / 8, copies }
    }

    /// The buffer as words.
    fn words(&self) -> &[u64] {
        // SAFETY: every bit pattern is a valid u64; `align_to` returns only the aligned
        // middle, and a HugeBuffer starts 64-byte aligned, so the head is empty.
        let (_, words, _) = unsafe { self.buf.align_to::<u64>() };
        words
    }

    /// Bytes one pass reads.
    pub fn chunk_bytes(&self) -> usize {
        self.words * 8
    }

    /// Pass `i`: chunk `i % copies`, split evenly over the pool's threads.
    pub fn pass(&self, i: usize, pool: &Pool) {
        let c = i % self.copies;
        let part = &self.words()[c * self.words..(c + 1) * self.words];
        let per = part.len().div_ceil(pool.threads());
        pool.broadcast(|share| {
            if let Some(piece) = part.chunks(per.max(1)).nth(share) {
                black_box(read_sum(piece));
            }
        });
    }
}

/// Read bandwidth in bytes per second on `pool`: passes of a [`ReadLoop`] of `chunk`-byte
/// chunks filling `total` bytes, for at least `min_time` and five passes; the median pass.
pub fn read_bandwidth(chunk: usize, total: usize, pool: &Pool, min_time: Duration) -> f64 {
    let reads = ReadLoop::new(chunk, total);
    reads.pass(0, pool);
    let mut times = Vec::new();
    let start = Instant::now();
    let mut i = 1;
    while start.elapsed() < min_time || times.len() < 5 {
        let t = Instant::now();
        reads.pass(i, pool);
        times.push(t.elapsed());
        i += 1;
    }
    times.sort();
    reads.chunk_bytes() as f64 / times[times.len() / 2].as_secs_f64()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_cache_sizes_parse() {
        assert_eq!(parse_cache_size("266240K"), Some(266_240 << 10));
        assert_eq!(parse_cache_size("32M"), Some(32 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("K"), None);
        assert_eq!(parse_cache_size("lots"), None);
        assert!(dram_footprint() >= 4 * DEFAULT_L3_BYTES);
    }
}
