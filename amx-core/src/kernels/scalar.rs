//! The reference path: each weight row's blocks rebuilt from the panel, dequantized by the
//! format's reference dequantizer, and dotted with the f32 activations in f32. Slow and
//! simple on purpose: it is the oracle the other paths are tested against, and the path
//! that runs where they cannot.

use crate::formats::dequantize;
use crate::gemm::PreparedKind;
use crate::pack::{PANEL_ROWS, group_values, read_block};

use super::Job;

/// Computes `job` on the reference path.
///
/// # Safety
///
/// As [`super::run`]; the job's activations are f32 rows.
pub(crate) unsafe fn run(job: &Job<'_, '_, '_, '_>) {
    let PreparedKind::F32(x) = job.x.kind else { return };
    let layout = job.weights.layout();
    let format = layout.format();
    let (n, k, gv) = (layout.n(), layout.k(), group_values(format));
    let mut block = [0u8; 256];
    let mut deq = [0f32; 256];
    for p in job.panels.clone() {
        let Some(panel) = job.weights.panel(p) else { return };
        for r in 0..PANEL_ROWS.min(n - p * PANEL_ROWS) {
            let col = p * PANEL_ROWS + r;
            for m in job.rows.clone() {
                // SAFETY: (m, col) is inside the output (checked job) and inside this
                // job's block, which no concurrent job writes.
                unsafe { job.y.at(m, col).write(0.0) };
            }
            for g in 0..layout.groups() {
                let Some(len) = read_block(layout, panel, g, r, &mut block) else { return };
                let values = if format.block_values() == 1 { len / 2 } else { gv };
                if dequantize(format, &block[..len], &mut deq[..values]).is_err() {
                    return;
                }
                let k0 = g * gv;
                let take = values.min(k - k0);
                for m in job.rows.clone() {
                    let xs = &x.row_in(m)[k0..k0 + take];
                    let dot: f32 = xs.iter().zip(&deq[..take]).map(|(a, b)| a * b).sum();
                    // SAFETY: (m, col) is inside this job's block (m in job.rows, col in
                    // its panels), which no concurrent job writes.
                    unsafe {
                        let at = job.y.at(m, col);
                        at.write(at.read() + dot);
                    }
                }
            }
        }
    }
}
