//! Every available kernel path on every GGUF vector: NMSE against the float64 reference
//! `y` at most the vector's `amx.test.nmse_max`.

use amx_core::formats::Format;
use amx_core::gemm::Path;
use amx_testdata::vectors::{load_dir, nmse};
use amx_tests::{available_paths, run_gemm, vectors_dir};

#[test]
fn every_path_meets_every_vector() {
    let vectors = load_dir(vectors_dir()).expect("vectors load");
    assert_eq!(vectors.len(), 4 * Format::ALL.len());
    let mut failures = Vec::new();
    for path in available_paths() {
        for v in &vectors {
            let y = run_gemm(v.format, &v.w, &v.x, v.m, v.n, v.k, path).expect("gemm runs");
            let e = nmse(&y, &v.y);
            println!("{} {}: nmse {e:.3e} (max {:.1e})", v.file_name(), path.name(), v.nmse_max);
            let within = e <= f64::from(v.nmse_max); // false for NaN too
            if !within {
                failures.push(format!(
                    "{} on {}: nmse {e:.3e} > {}",
                    v.file_name(),
                    path.name(),
                    v.nmse_max
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn auto_path_meets_every_vector() {
    for v in &load_dir(vectors_dir()).expect("vectors load") {
        let y = run_gemm(v.format, &v.w, &v.x, v.m, v.n, v.k, Path::Auto).expect("gemm runs");
        let e = nmse(&y, &v.y);
        assert!(e <= f64::from(v.nmse_max), "{}: {e}", v.file_name());
    }
}
