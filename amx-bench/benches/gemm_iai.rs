//! Instruction counts (callgrind) of the paths valgrind can run: the scalar reference
//! GEMM per format (M = 4, K = N = 256) and the activation preparation it uses. Valgrind
//! hides AVX-512 and AMX from CPUID, so `Path::Auto` resolves to the scalar path here; the
//! AVX-512 activation quantizers and kernels are measured by `gemm_criterion` instead.
//!
//! Needs the runner, same version as the library:
//! `cargo install iai-callgrind-runner --version 0.16.1 --locked`, then
//! `cargo bench -p amx-bench --bench gemm_iai`.

use iai_callgrind::main;

use benches::scalar_gemm;

/// The benches, in a private module: the iai-callgrind macros make undocumented `pub`
/// items.
mod benches {
    use std::hint::black_box;

    use amx_core::detect::Features;
    use amx_core::formats::Format;
    use amx_core::gemm::{self, MatMut, MatRef, Path};
    use amx_core::pack::{pack, packed_size};
    use amx_testdata::weights::bench_weights;
    use iai_callgrind::{library_benchmark, library_benchmark_group};

    const M: usize = 4;
    const N: usize = 256;
    const K: usize = 256;

    /// Everything one call needs, made outside the counted function.
    struct Case {
        format: Format,
        packed: Vec<u8>,
        x: Vec<f32>,
        y: Vec<f32>,
        ws: Vec<u8>,
    }

    fn case(format: Format) -> Case {
        let _ = Features::cached();
        let w = bench_weights(format, 5, N, K).expect("shape fits");
        let mut packed = vec![0u8; packed_size(format, N, K, 1).expect("shape fits")];
        pack(format, N, K, 1, &w, &mut packed).expect("pack");
        let x = (0..M * K).map(|i| ((i * 31 % 97) as f32) / 48.0 - 1.0).collect();
        let ws = vec![0u8; gemm::workspace_bytes(format, M, K, Path::Scalar).expect("sizes")];
        Case { format, packed, x, y: vec![0f32; M * N], ws }
    }

    /// Teardown: every output written and finite.
    fn check(c: Case) {
        assert!(c.y.iter().all(|v| v.is_finite()), "{}: non-finite output", c.format.name());
    }

    #[library_benchmark(setup = case, teardown = check)]
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
    fn scalar_gemm_m4_256x256(mut c: Case) -> Case {
        let x = MatRef::new(&c.x, M, K, K).expect("view");
        let mut y = MatMut::new(&mut c.y, M, N, N).expect("view");
        gemm::gemm(black_box(&c.packed), c.format, &x, &mut y, Path::Scalar, &mut c.ws)
            .expect("gemm");
        c
    }

    library_benchmark_group!(
        name = scalar_gemm;
        benchmarks = scalar_gemm_m4_256x256
    );
}

main!(library_benchmark_groups = scalar_gemm);
