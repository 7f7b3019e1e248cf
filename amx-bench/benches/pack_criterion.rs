//! Wall-clock throughput of the weight repack, one thread, per format: `pack` and
//! `unpack` of a 4096 x 4096 weight, and a `copy_from_slice` of the same source bytes as
//! a baseline in the same group, all reported in MB/s (or GB/s) of ggml source bytes.
//!
//! amx-core picks its fastest packer for this CPU (AVX-512 where usable, the portable
//! code elsewhere). Run with `cargo bench -p amx-bench --bench pack_criterion`.

use std::hint::black_box;
use std::time::Duration;

use amx_core::formats::Format;
use amx_core::pack::{PackedLayout, PackedRef, pack, unpack};
use amx_testdata::random::pseudo_random_bytes;
use criterion::{Criterion, Throughput, criterion_main};

/// Rows of the benchmarked weight.
const N: usize = 4096;
/// Values per row of the benchmarked weight.
const K: usize = 4096;

/// One group per format: `pack`, `unpack` and `copy` of the same source bytes.
fn pack_formats(c: &mut Criterion) {
    for format in Format::ALL {
        let layout = PackedLayout::new(format, N, K, 1).expect("4096 x 4096 fits every format");
        let src = pseudo_random_bytes(format.ggml_type().into(), layout.source_bytes());
        let mut packed = vec![0u8; layout.total_bytes()];
        let mut back = vec![0u8; src.len()];

        // Check once, outside the timings, that the measured calls do the whole job.
        pack(format, N, K, 1, &src, &mut packed).expect("pack of a valid shape");
        unpack(&PackedRef::parse(&packed).expect("just packed"), &mut back)
            .expect("unpack of a valid buffer");
        assert!(back == src, "{}: unpack(pack(w)) differs from w", format.name());

        let mut group = c.benchmark_group(format!("pack_{N}x{K}/{}", format.name()));
        group.throughput(Throughput::BytesDecimal(src.len() as u64));
        group.bench_function("pack", |b| {
            b.iter(|| {
                pack(format, N, K, 1, black_box(&src), black_box(&mut packed))
                    .expect("pack of a valid shape")
            })
        });
        let view = PackedRef::parse(&packed).expect("just packed");
        group.bench_function("unpack", |b| {
            b.iter(|| unpack(black_box(&view), black_box(&mut back)).expect("valid buffer"))
        });
        group.bench_function("copy", |b| {
            b.iter(|| black_box(&mut back).copy_from_slice(black_box(&src)))
        });
        group.finish();
    }
}

/// 10 samples over 2 s per function: 27 functions finish in about a minute and a half.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// `criterion_group!` makes an undocumented `pub fn`: kept private in this module.
mod group {
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = super::config();
        targets = super::pack_formats
    }
}

criterion_main!(group::benches);
