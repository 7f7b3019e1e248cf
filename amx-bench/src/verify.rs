//! `amx-bench verify DIR`: every check on every GGUF vector in a directory, one line per
//! file and check, and a closing `N passed, N failed` line.

use std::fmt;
use std::path::Path;

use amx_core::formats::dequantize;
use amx_core::pack::{PackedRef, pack, packed_size, unpack};

use crate::vectors::{Vector, VectorError, load_dir};

/// One check of one vector file.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The vector's file name.
    pub file: String,
    /// What was checked (`dequantize`, `pack-unpack`, later one per kernel path).
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was measured, for the line (`exact`, `nmse 1.2e-5 <= 5.0e-4`, or the error).
    pub detail: String,
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

/// Runs every check on one loaded vector.
pub fn check_vector(v: &Vector) -> Vec<Check> {
    let file = v.file_name().into_owned();
    let mut out = Vec::new();
    for (name, (passed, detail)) in
        [("dequantize", dequantize_check(v)), ("pack-unpack", pack_check(v))]
    {
        out.push(Check { file: file.clone(), check: name.to_string(), passed, detail });
    }
    out
}

/// Loads every `.gguf` vector in `dir` and runs every check.
pub fn verify_dir(dir: &Path) -> Result<Vec<Check>, VectorError> {
    Ok(load_dir(dir)?.iter().flat_map(check_vector).collect())
}

/// The closing line: `N passed, N failed`.
pub fn summary(checks: &[Check]) -> String {
    let passed = checks.iter().filter(|c| c.passed).count();
    format!("{passed} passed, {} failed", checks.len() - passed)
}
