//! Packing throughput: pack, unpack and a plain copy of the same bytes, one thread, in one
//! run, so that the ratios mean something on a shared, noisy machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use amx_core::formats::Format;
use amx_core::pack::{PackError, PackedRef, pack, packed_size, unpack};
use amx_testdata::random::pseudo_random_bytes;

/// One format's figures, in GB/s of ggml source bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PackFigures {
    /// The weight format.
    pub format: Format,
    /// Bytes of ggml source per repetition.
    pub source_bytes: usize,
    /// `pack` throughput.
    pub pack_gbps: f64,
    /// `unpack` throughput.
    pub unpack_gbps: f64,
    /// `copy_from_slice` of the same number of bytes.
    pub copy_gbps: f64,
}

impl PackFigures {
    /// One JSON object (keys format, pack_gbps, unpack_gbps, copy_gbps, plus source_bytes).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"format\":\"{}\",\"pack_gbps\":{:.3},\"unpack_gbps\":{:.3},\"copy_gbps\":{:.3},\"source_bytes\":{}}}",
            self.format.name().to_ascii_lowercase(),
            self.pack_gbps,
            self.unpack_gbps,
            self.copy_gbps,
            self.source_bytes
        )
    }
}

/// A weight's ggml bytes for the benchmarks: random bytes for the block formats (packing
/// moves bytes whatever they mean), and for F16/BF16 values like a model's weights
/// (roughly normal, standard deviation 0.02, so a few are F16 subnormals), because the
/// F16 conversion work depends on the values.
pub fn weight_bytes(format: Format, seed: u64, len: usize) -> Vec<u8> {
    let raw = pseudo_random_bytes(seed, len.div_ceil(2) * 4);
    let mut out = match format {
        Format::F16 | Format::BF16 => raw
            .chunks_exact(4)
            .flat_map(|c| {
                // Sum of four uniforms in [-0.5, 0.5): mean 0, variance 1/3.
                let u: f32 = c.iter().map(|&b| f32::from(b) / 256.0 - 0.5).sum();
                let x = u * 0.02 * 3f32.sqrt();
                let bits = if format == Format::F16 {
                    amx_core::formats::half::f32_to_f16(x)
                } else {
                    amx_core::formats::half::f32_to_bf16(x)
                };
                bits.to_le_bytes()
            })
            .collect(),
        _ => raw,
    };
    out.truncate(len);
    out
}

/// Median of `reps` timings of `f` after one warm-up call.
fn median_time(reps: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn gbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-12) / 1e9
}

/// Measures pack, unpack and copy for one `n x k` weight of `format`; the three are
/// interleaved per repetition round so that a noisy neighbour hits all of them alike.
pub fn measure(format: Format, n: usize, k: usize, reps: usize) -> Result<PackFigures, PackError> {
    let layout = amx_core::pack::PackedLayout::new(format, n, k, 1)?;
    let src = weight_bytes(format, format.ggml_type().into(), layout.source_bytes());
    // Packed into 64-byte aligned memory, as amx-runtime's buffers are (which lets large
    // packs use streaming stores: `amx_core::pack::STREAM_MIN_BYTES`).
    let size = packed_size(format, n, k, 1)?;
    let mut storage = vec![0u8; size + 64];
    let skip = storage.as_ptr().align_offset(64);
    let packed = &mut storage[skip..skip + size];
    let mut back = vec![0u8; src.len()];
    let mut copy = vec![0u8; src.len()];
    pack(format, n, k, 1, &src, packed)?;
    let (mut tp, mut tu, mut tc) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        tp.push(median_time(reps, || {
            pack(format, n, k, 1, black_box(&src), black_box(&mut *packed)).expect("checked shape");
        }));
        let view = PackedRef::parse(packed)?;
        tu.push(median_time(reps, || {
            unpack(black_box(&view), black_box(&mut back)).expect("checked shape");
        }));
        tc.push(median_time(reps, || {
            black_box(&mut copy).copy_from_slice(black_box(&src));
        }));
    }
    if back != src {
        return Err(PackError::SourceLength { expected: src.len(), actual: back.len() });
    }
    let best = |v: &[Duration]| *v.iter().min().expect("three rounds");
    Ok(PackFigures {
        format,
        source_bytes: src.len(),
        pack_gbps: gbps(src.len(), best(&tp)),
        unpack_gbps: gbps(src.len(), best(&tu)),
        copy_gbps: gbps(src.len(), best(&tc)),
    })
}
