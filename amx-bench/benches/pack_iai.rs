//! Instruction counts (callgrind) of the weight repack, per format: `pack` and `unpack` of
//! a 4096 x 4096 weight. Source and destination are made in each bench's setup, outside
//! the counted function, and checked in its teardown.
//!
//! Valgrind cannot run AVX-512 or AMX and hides them from CPUID, so amx-core takes its
//! portable packer here: these counts track that code, not the AVX-512 one.
//!
//! Needs the runner, same version as the library:
//! `cargo install iai-callgrind-runner --version 0.16.1 --locked`, then
//! `cargo bench -p amx-bench --bench pack_iai`.

use iai_callgrind::main;

use benches::repack;

/// The benches, in a private module: the iai-callgrind macros make undocumented `pub`
/// items.
mod benches {
    use std::hint::black_box;

    use amx_core::detect::Features;
    use amx_core::formats::Format;
    use amx_core::pack::{PackedLayout, PackedRef, pack, unpack};
    use amx_testdata::random::pseudo_random_bytes;
    use iai_callgrind::{library_benchmark, library_benchmark_group};

    /// Rows of the benchmarked weight.
    const N: usize = 4096;
    /// Values per row of the benchmarked weight.
    const K: usize = 4096;

    /// The buffers of one bench: the ggml source, the packed buffer and the unpack output.
    struct Buffers {
        format: Format,
        src: Vec<u8>,
        packed: Vec<u8>,
        back: Vec<u8>,
    }

    /// The source bytes of `format` and room for everything else, the CPU features read once
    /// (so the counted call does not include the detection).
    fn buffers(format: Format) -> Buffers {
        let _ = Features::cached();
        let layout = PackedLayout::new(format, N, K, 1).expect("4096 x 4096 fits every format");
        let src = pseudo_random_bytes(format.ggml_type().into(), layout.source_bytes());
        Buffers { format, packed: vec![0u8; layout.total_bytes()], back: vec![0u8; src.len()], src }
    }

    /// Setup of the unpack benches: the source already packed.
    fn packed_buffers(format: Format) -> Buffers {
        let mut b = buffers(format);
        pack(format, N, K, 1, &b.src, &mut b.packed).expect("pack of a valid shape");
        b
    }

    /// Teardown of the pack benches: the buffer must be a valid packed weight of the shape.
    fn check_packed(b: Buffers) {
        let view = PackedRef::parse(&b.packed).expect("pack wrote a valid header");
        let layout = view.layout();
        assert_eq!((layout.format(), layout.n(), layout.k()), (b.format, N, K));
    }

    /// Teardown of the unpack benches: the output must be the exact source bytes.
    fn check_unpacked(b: Buffers) {
        assert!(b.back == b.src, "{}: unpack(pack(w)) differs from w", b.format.name());
    }

    #[library_benchmark(setup = buffers, teardown = check_packed)]
    #[bench::q4_0(Format::Q4_0)]
    #[bench::q4_1(Format::Q4_1)]
    #[bench::q5_0(Format::Q5_0)]
    #[bench::q5_1(Format::Q5_1)]
    #[bench::q8_0(Format::Q8_0)]
    #[bench::q4_k(Format::Q4_K)]
    #[bench::q5_k(Format::Q5_K)]
    #[bench::q6_k(Format::Q6_K)]
    #[bench::iq4_nl(Format::IQ4_NL)]
    #[bench::iq4_xs(Format::IQ4_XS)]
    #[bench::mxfp4(Format::MXFP4)]
    #[bench::f16(Format::F16)]
    #[bench::bf16(Format::BF16)]
    fn pack_4096x4096(mut b: Buffers) -> Buffers {
        pack(b.format, N, K, 1, black_box(&b.src), black_box(&mut b.packed))
            .expect("pack of a valid shape");
        b
    }

    #[library_benchmark(setup = packed_buffers, teardown = check_unpacked)]
    #[bench::q4_0(Format::Q4_0)]
    #[bench::q4_1(Format::Q4_1)]
    #[bench::q5_0(Format::Q5_0)]
    #[bench::q5_1(Format::Q5_1)]
    #[bench::q8_0(Format::Q8_0)]
    #[bench::q4_k(Format::Q4_K)]
    #[bench::q5_k(Format::Q5_K)]
    #[bench::q6_k(Format::Q6_K)]
    #[bench::iq4_nl(Format::IQ4_NL)]
    #[bench::iq4_xs(Format::IQ4_XS)]
    #[bench::mxfp4(Format::MXFP4)]
    #[bench::f16(Format::F16)]
    #[bench::bf16(Format::BF16)]
    fn unpack_4096x4096(mut b: Buffers) -> Buffers {
        let view = PackedRef::parse(black_box(&b.packed)).expect("a valid packed buffer");
        unpack(&view, black_box(&mut b.back)).expect("unpack of a valid buffer");
        b
    }

    library_benchmark_group!(
        name = repack;
        benchmarks = pack_4096x4096, unpack_4096x4096
    );
}

main!(library_benchmark_groups = repack);
