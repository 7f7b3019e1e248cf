//! The main job's short form of the vector checks: one line per format.

use std::collections::BTreeMap;
use std::path::Path;

use amx_core::formats::Format;

use crate::verify::{check_vector, load_failure};
use amx_testdata::vectors::{Vector, VectorError, vector_paths};

/// One line per format: pass/fail over every check of its vectors, and the worst NMSE
/// of each kernel path, then one `FAIL` line per file that does not load (the others
/// are still checked). Returns the lines and whether everything passed.
///
/// Errors: as [`vector_paths`] (`dir` cannot be listed, or holds no `.gguf` file).
pub fn vector_lines(dir: &Path) -> Result<(Vec<String>, bool), VectorError> {
    let mut vectors = Vec::new();
    let mut unloadable = Vec::new();
    for path in vector_paths(dir)? {
        match Vector::load(&path) {
            Ok(v) => vectors.push(v),
            Err(e) => unloadable.push(load_failure(&path, &e)),
        }
    }
    let mut per_format: BTreeMap<u32, (Format, usize, usize, BTreeMap<String, f64>)> =
        BTreeMap::new();
    for v in &vectors {
        let entry =
            per_format.entry(v.format.ggml_type()).or_insert((v.format, 0, 0, BTreeMap::new()));
        for c in check_vector(v) {
            entry.1 += 1;
            entry.2 += usize::from(!c.passed);
            if let Some(path) = c.check.strip_prefix("gemm-") {
                let e = c.nmse.unwrap_or(f64::NAN);
                let worst = entry.3.entry(path.to_string()).or_insert(0.0);
                *worst = if e.is_nan() { f64::NAN } else { worst.max(e) };
            }
        }
    }
    let mut all = unloadable.is_empty();
    let mut lines: Vec<String> = per_format
        .values()
        .map(|(format, checks, failed, worst)| {
            all &= *failed == 0;
            let paths: Vec<String> = worst.iter().map(|(p, e)| format!("{p} {e:.1e}")).collect();
            format!(
                "{:<7} {} ({checks} checks: exact dequantization, pack round trip, every path); worst nmse: {}",
                format.name(),
                if *failed == 0 { "pass" } else { "FAIL" },
                paths.join(", ")
            )
        })
        .collect();
    lines.extend(unloadable.iter().map(ToString::to_string));
    Ok((lines, all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amx_testdata::test_dir::{TestDir, mixed_vectors};

    /// The main job's vector lines: a file that does not load is a FAIL line and the
    /// others are still checked (it used to abort the vector section), and a folder
    /// without vectors is an error (it used to print nothing and pass).
    #[test]
    fn a_malformed_vector_fails_the_main_job_and_the_others_run() {
        let dir = mixed_vectors("summary-mixed");
        let (lines, all) = vector_lines(dir.path()).unwrap();
        assert!(!all, "{lines:#?}");
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("Q8_0    pass"), "{}", lines[0]);
        assert!(lines[1].starts_with("FAIL broken.gguf load: "), "{}", lines[1]);
        assert!(lines[2].starts_with("FAIL empty.gguf load: "), "{}", lines[2]);
        let empty = TestDir::new("summary-empty");
        assert!(matches!(vector_lines(empty.path()), Err(VectorError::NoVectors { .. })));
    }
}
