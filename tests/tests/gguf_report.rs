//! `amx-bench gguf`: every quantized weight of a GGUF file goes to the AMX buffer type
//! (because AMX accepts its consuming MUL_MAT), F32 tensors stay in host memory, and the
//! AMX ones are repacked.

use amx_bench::gguf_report::report;
use amx_gguf::GgufFile;
use amx_tests::vectors_dir;

#[test]
fn quantized_weights_go_to_amx_and_f32_stays_on_the_host() {
    for name in [
        "q4_k_m33_n80_k1024_plain.gguf",
        "q8_0_m5_n48_k512_plain.gguf",
        "bf16_m1_n64_k256_plain.gguf",
    ] {
        let file = GgufFile::open(vectors_dir().join(name)).expect("vector opens");
        let (text, lines) = report(&file).expect("report");
        let line = |t: &str| lines.iter().find(|l| l.name == t).expect("tensor listed").clone();
        let w = line("w");
        assert_eq!(w.buft, "AMX", "{name}: {text}");
        let (secs, bytes) = w.repack.expect("AMX tensors are repacked");
        assert!(secs >= 0.0 && bytes > 64, "{name}: {bytes} bytes");
        for t in ["w_deq", "x", "y"] {
            let l = line(t);
            assert_ne!(l.buft, "AMX", "{name}: {t} must stay in host memory");
            assert!(l.repack.is_none());
        }
        assert!(text.contains("AMX refuses MUL_MAT"), "{text}");
    }
}
