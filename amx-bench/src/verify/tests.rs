//! `verify_dir` on folders that are missing, empty, mixed, and on a vector that asks for
//! a loose bound.

use super::*;
use amx_gguf::writer::Writer;
use amx_gguf::{GGML_TYPE_F32, GgufFile, Value};
use amx_testdata::test_dir::{TestDir, mixed_vectors, repo_vector};

#[test]
fn missing_and_empty_folders_are_errors() {
    let e = verify_dir(Path::new("/nonexistent/amx-rs/vectors")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/amx-rs/vectors does not exist"), "{e}");
    let dir = TestDir::new("verify-empty");
    let e = verify_dir(dir.path()).unwrap_err();
    assert_eq!(e, VectorError::NoVectors { path: dir.path().to_path_buf() });
}

/// One malformed vector used to abort the whole run.
#[test]
fn a_malformed_vector_is_one_failure_and_the_others_run() {
    let dir = mixed_vectors("verify-mixed");
    let checks = verify_dir(dir.path()).unwrap();
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 2, "{checks:#?}");
    for (c, file, why) in
        [(failed[0], "broken.gguf", "truncated"), (failed[1], "empty.gguf", "magic")]
    {
        assert_eq!((c.file.as_str(), c.check.as_str()), (file, "load"));
        assert!(c.detail.contains(file) && c.detail.contains(why), "{c}");
    }
    let good: Vec<&Check> = checks.iter().filter(|c| c.file == "good.gguf").collect();
    assert!(good.len() >= 3 && good.iter().all(|c| c.passed), "{good:#?}");
    assert!(summary(&checks).ends_with(", 2 failed"), "{}", summary(&checks));
}

/// The repository vector `name` rewritten with `amx.test.nmse_max = asked` and its `y`
/// scaled by 1.25 (an NMSE of 0.0625 / 1.5625 = 0.04 for any kernel that computes the
/// true product).
fn loose_and_wrong(name: &str, asked: f32) -> Vector {
    let file = GgufFile::open(repo_vector(name)).unwrap();
    let mut w = Writer::new();
    w.alignment = u64::from(file.alignment());
    for (k, v) in file.metadata() {
        let v = if k == "amx.test.nmse_max" { Value::F32(asked) } else { v.clone() };
        w = w.kv(k, v);
    }
    for t in file.tensors() {
        let dims = &t.ne[..t.n_dims as usize];
        let data = if t.name == "y" {
            let y = file.tensor_f32("y").unwrap();
            y.iter().flat_map(|v| (v * 1.25).to_le_bytes()).collect()
        } else {
            file.tensor_bytes(&t.name).unwrap().to_vec()
        };
        w = w.tensor(&t.name, dims, t.ggml_type, data);
    }
    assert_eq!(file.tensor("y").unwrap().ggml_type, GGML_TYPE_F32);
    Vector::from_gguf(name, &GgufFile::parse(w.build().0).unwrap()).unwrap()
}

/// A vector asking for `nmse_max = 1.0` used to pass with an NMSE of 0.04.
#[test]
fn a_vectors_own_nmse_max_is_capped() {
    let v = loose_and_wrong("q8_0_m1_n64_k256_plain.gguf", 1.0);
    assert_eq!((v.nmse_max, v.nmse_max_requested), (NMSE_MAX_CAP, 1.0));
    let gemm: Vec<Check> =
        check_vector(&v).into_iter().filter(|c| c.check.starts_with("gemm-")).collect();
    assert!(!gemm.is_empty());
    for c in &gemm {
        assert!(!c.passed, "{c}");
        assert!(c.nmse.is_some_and(|e| e > 0.03 && e < 0.05), "{c}");
        assert!(c.detail.contains("capped from the vector's 1.0e0 at 1e-2"), "{c}");
    }
}
