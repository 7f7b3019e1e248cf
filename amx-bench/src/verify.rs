//! `amx-bench verify DIR`: every check on every GGUF vector in a directory, one line per
//! file and check, and a closing `N passed, N failed` line.
//!
//! A folder that does not exist or holds no vector is an error, not "0 passed"; a file
//! that does not load is one failed `load` check and the others still run; a kernel's
//! NMSE is held to `min(amx.test.nmse_max, NMSE_MAX_CAP)`.

use std::fmt;
use std::path::Path;

use amx_core::formats::dequantize;
use amx_core::pack::{PackedRef, pack, packed_size, unpack};

use amx_core::gemm::{self, GemmError, MatMut, MatRef, Path as KernelPath};
use amx_testdata::vectors::{NMSE_MAX_CAP, Vector, VectorError, nmse, vector_paths};

/// One check of one vector file.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The vector's file name.
    pub file: String,
    /// What was checked (`load`, `dequantize`, `pack-unpack`, `gemm-<path>`).
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was measured, for the line (`exact`, `nmse 1.2e-5 <= 5.0e-4`, or the error).
    pub detail: String,
    /// The NMSE, for the kernel-path checks that computed one.
    pub nmse: Option<f64>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "pass" } else { "FAIL" };
        write!(f, "{verdict} {} {}: {}", self.file, self.check, self.detail)
    }
}

fn dequantize_check(v: &Vector) -> (bool, String) {
    let Some(want) = &v.w_deq else {
        return (true, "skipped (no w_deq in file)".to_string());
    };
    let mut got = vec![0f32; v.n * v.k];
    if let Err(e) = dequantize(v.format, &v.w, &mut got) {
        return (false, format!("error: {e}"));
    }
    let differ = got.iter().zip(want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    match differ {
        0 => (true, format!("exact ({} values)", got.len())),
        d => (false, format!("{d} of {} values differ from w_deq", got.len())),
    }
}

fn pack_check(v: &Vector) -> (bool, String) {
    let size = match packed_size(v.format, v.n, v.k, 1) {
        Ok(s) => s,
        Err(e) => return (false, format!("error: {e}")),
    };
    let mut packed = vec![0u8; size];
    let mut back = vec![0u8; v.w.len()];
    let result = pack(v.format, v.n, v.k, 1, &v.w, &mut packed)
        .and_then(|_| PackedRef::parse_expecting(&packed, v.format, v.n, v.k, 1))
        .and_then(|p| unpack(&p, &mut back));
    match result {
        Err(e) => (false, format!("error: {e}")),
        Ok(()) if back == v.w => (true, format!("identical ({} bytes)", v.w.len())),
        Ok(()) => (false, "unpacked bytes differ from w".to_string()),
    }
}

/// One kernel path on one vector: NMSE of the output against the vector's float64
/// reference, at most [`Vector::nmse_max`] (the vector's `amx.test.nmse_max`, capped at
/// [`NMSE_MAX_CAP`]; the line says when the cap applied).
fn path_check(v: &Vector, path: KernelPath) -> (bool, String, Option<f64>) {
    let run = || -> Result<Vec<f32>, GemmError> {
        let mut packed = vec![0u8; packed_size(v.format, v.n, v.k, 1)?];
        pack(v.format, v.n, v.k, 1, &v.w, &mut packed)?;
        let mut y = vec![0f32; v.m * v.n];
        let mut ws = vec![0u8; gemm::workspace_bytes(v.format, v.m, v.k, path)?];
        let x = MatRef::new(&v.x, v.m, v.k, v.k)?;
        let mut ym = MatMut::new(&mut y, v.m, v.n, v.n)?;
        gemm::gemm(&packed, v.format, &x, &mut ym, path, &mut ws)?;
        Ok(y)
    };
    match run() {
        Err(e) => (false, format!("error: {e}"), None),
        Ok(y) => {
            let e = nmse(&y, &v.y);
            let limit = f64::from(v.nmse_max);
            let capped = if v.nmse_max < v.nmse_max_requested {
                format!(
                    ", capped from the vector's {:.1e} at {NMSE_MAX_CAP:.0e}",
                    v.nmse_max_requested
                )
            } else {
                String::new()
            };
            (e <= limit, format!("nmse {e:.2e} (limit {limit:.1e}{capped})"), Some(e))
        }
    }
}

/// The concrete paths this machine runs.
pub fn available_paths() -> Vec<KernelPath> {
    [KernelPath::Amx, KernelPath::Vnni, KernelPath::Scalar]
        .into_iter()
        .filter(|p| p.available())
        .collect()
}

/// Runs every check on one loaded vector: exact dequantization, the pack round trip, and
/// every available kernel path.
pub fn check_vector(v: &Vector) -> Vec<Check> {
    let file = v.file_name().into_owned();
    let check = |name: String, (passed, detail): (bool, String), nmse| Check {
        file: file.clone(),
        check: name,
        passed,
        detail,
        nmse,
    };
    let mut checks = vec![
        check("dequantize".to_string(), dequantize_check(v), None),
        check("pack-unpack".to_string(), pack_check(v), None),
    ];
    for path in available_paths() {
        let (passed, detail, nmse) = path_check(v, path);
        checks.push(check(format!("gemm-{}", path.name()), (passed, detail), nmse));
    }
    checks
}

/// The failed `load` check of a file that did not load, naming it and why.
pub fn load_failure(path: &Path, error: &VectorError) -> Check {
    let file = path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned();
    Check { file, check: "load".to_string(), passed: false, detail: error.to_string(), nmse: None }
}

/// Every check of the vector file at `path`: one failed `load` check if it does not load.
pub fn check_file(path: &Path) -> Vec<Check> {
    match Vector::load(path) {
        Ok(v) => check_vector(&v),
        Err(e) => vec![load_failure(path, &e)],
    }
}

/// Loads every `.gguf` vector in `dir` and runs every check; a file that does not load
/// is a failed `load` check and the others still run.
///
/// Errors: [`VectorError::Io`] when `dir` cannot be listed (for example it does not
/// exist), [`VectorError::NoVectors`] when it holds no `.gguf` file.
pub fn verify_dir(dir: &Path) -> Result<Vec<Check>, VectorError> {
    Ok(vector_paths(dir)?.iter().flat_map(|p| check_file(p)).collect())
}

/// The closing line: `N passed, N failed`.
pub fn summary(checks: &[Check]) -> String {
    let passed = checks.iter().filter(|c| c.passed).count();
    format!("{passed} passed, {} failed", checks.len() - passed)
}

#[cfg(test)]
mod tests;
