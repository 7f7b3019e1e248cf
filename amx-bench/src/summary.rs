//! The main job's short form of the vector checks: one line per format.

use std::collections::BTreeMap;
use std::path::Path;

use amx_core::formats::Format;

use crate::vectors::{VectorError, load_dir};
use crate::verify::check_vector;

/// One line per format: pass/fail over every check of its vectors, and the worst NMSE
/// of each kernel path. Returns the lines and whether everything passed.
pub fn vector_lines(dir: &Path) -> Result<(Vec<String>, bool), VectorError> {
    let vectors = load_dir(dir)?;
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
    let mut all = true;
    let lines = per_format
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
    Ok((lines, all))
}
