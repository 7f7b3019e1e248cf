//! The main job's throughput tables: for each format and M, GOPS of our dispatched path,
//! of each forced path and of the dequantize-then-sgemm baseline, on one thread and on
//! all threads, each also as a share of the tile unit's peak measured in the same run.
//!
//! A slow cell (the scalar reference, the baseline, forced paths far from their M) would
//! take seconds per call at K = N = 4096. Unless the plan says otherwise, such a cell is
//! timed on the first rows of the same weights (a prefix of 64, 256 or 1024 of the N
//! output columns, the largest whose call stays under [`Plan::slow_call`]) and marked `*`:
//! the figure is the same kind of rate, measured on less work. `--full` never does this.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use amx_core::formats::Format;
use amx_core::gemm::Path;
use amx_runtime::pool::Pool;

use crate::gemm_bench::{BenchError, Column, Figure, Peak, Subject, measure, percent_text};
use crate::progress::Progress;

/// What the tables cover and how long each cell is timed.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Weight formats (rows of each table).
    pub formats: Vec<Format>,
    /// Activation rows.
    pub ms: Vec<usize>,
    /// What is measured (columns of each table).
    pub columns: Vec<Column>,
    /// Thread counts, one table each.
    pub threads: Vec<usize>,
    /// Output columns.
    pub n: usize,
    /// Values per row.
    pub k: usize,
    /// Keep calling for at least this long per cell.
    pub min_time: Duration,
    /// A cell whose whole call would take longer than this is timed on a prefix of the
    /// weight rows; `None` times every cell on all of them.
    pub slow_call: Option<Duration>,
}

/// Weight-row prefixes a slow cell may be timed on.
const PREFIXES: [usize; 3] = [64, 256, 1024];

impl Plan {
    /// The default: every format, M in 1, 8, 32, 128, 512, K = N = 4096, every column,
    /// one thread and all of them; about a minute and a half on a 2-core machine.
    pub fn standard(all_threads: usize) -> Plan {
        Plan {
            formats: Format::ALL.to_vec(),
            ms: vec![1, 8, 32, 128, 512],
            columns: Column::MAIN.to_vec(),
            threads: thread_counts(all_threads),
            n: 4096,
            k: 4096,
            min_time: Duration::from_millis(40),
            slow_call: Some(Duration::from_millis(50)),
        }
    }

    /// `--quick`: M in 1 and 512 only, shorter timing.
    pub fn quick(all_threads: usize) -> Plan {
        Plan {
            ms: vec![1, 512],
            min_time: Duration::from_millis(20),
            ..Plan::standard(all_threads)
        }
    }

    /// `--full`: nine values of M, every cell on all 4096 rows, longer timing (many
    /// minutes: the scalar reference at M = 512 takes seconds per call).
    pub fn full(all_threads: usize) -> Plan {
        Plan {
            ms: vec![1, 4, 8, 16, 32, 64, 128, 256, 512],
            min_time: Duration::from_millis(200),
            slow_call: None,
            ..Plan::standard(all_threads)
        }
    }

    fn cells(&self) -> usize {
        self.formats.len() * self.ms.len() * self.columns.len() * self.threads.len()
    }
}

fn thread_counts(all: usize) -> Vec<usize> {
    if all > 1 { vec![1, all] } else { vec![1] }
}

/// One cell's outcome.
#[derive(Clone, Copy, Debug)]
enum Cell {
    Measured { gops: f64, prefix: Option<usize> },
    Unavailable,
    Failed,
}

/// One format's weights: all rows, and the prefixes slow cells use.
struct Subjects {
    all: Subject,
    prefixes: Vec<Subject>,
}

impl Subjects {
    fn new(format: Format, plan: &Plan) -> Result<Subjects, BenchError> {
        let all = Subject::new(format, plan.n, plan.k, 1)?;
        let prefixes = match plan.slow_call {
            Some(_) => PREFIXES
                .iter()
                .filter(|&&p| p < plan.n)
                .map(|&p| all.prefix(p))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Subjects { all, prefixes })
    }

    /// Times `column` on all rows if a call is estimated to stay under `slow_call`, else
    /// on the largest prefix that does. The estimate climbs the prefixes: a few calls on
    /// one, then a straight line through the last two (a fixed cost per call, such as
    /// preparing the activations, plus a cost per row) predicts the next.
    fn measure(
        &self,
        column: Column,
        m: usize,
        pool: &Pool,
        plan: &Plan,
    ) -> Result<(Figure, Option<usize>), BenchError> {
        let Some(slow) = plan.slow_call.map(|d| d.as_secs_f64()) else {
            return Ok((measure(&self.all, column, m, pool, plan.min_time)?, None));
        };
        let mut probes: Vec<(f64, f64)> = Vec::new();
        let mut chosen = None;
        for subject in self.prefixes.iter().chain([&self.all]) {
            let rows = subject.n() as f64;
            let estimate = match probes[..] {
                [] => 0.0,
                [(r, t)] => t * rows / r,
                [.., (r0, t0), (r1, t1)] => t1 + (rows - r1) * ((t1 - t0) / (r1 - r0)).max(0.0),
            };
            if estimate > slow {
                break;
            }
            // Warm-up and three calls; their average, set-up included, errs high.
            let t = Instant::now();
            measure(subject, column, m, pool, Duration::ZERO)?;
            probes.push((rows, t.elapsed().as_secs_f64() / 4.0));
            chosen = Some(subject);
            if probes.last().is_some_and(|&(_, t)| t > slow) {
                break;
            }
        }
        let subject = chosen.unwrap_or(&self.all);
        let prefix = (subject.n() < self.all.n()).then_some(subject.n());
        Ok((measure(subject, column, m, pool, plan.min_time)?, prefix))
    }
}

/// Runs the plan (a progress bar on stderr) and returns the tables as text lines.
///
/// Errors: [`BenchError`] when a format's weights cannot be built for the plan's shape;
/// a cell that fails is shown as `error` (and a path this machine lacks as `n/a`).
pub fn tables(plan: &Plan) -> Result<Vec<String>, BenchError> {
    let pools: Vec<Pool> = plan.threads.iter().map(|&t| Pool::new(t)).collect();
    let peaks: Vec<Peak> = plan.threads.iter().map(|&t| Peak::measure(t)).collect();
    let mut progress = Progress::new(plan.cells());
    let mut cells = BTreeMap::new();
    for (fi, &format) in plan.formats.iter().enumerate() {
        let subjects = Subjects::new(format, plan)?;
        for (ti, pool) in pools.iter().enumerate() {
            for &m in &plan.ms {
                for (ci, &column) in plan.columns.iter().enumerate() {
                    progress.step(&format!(
                        "{} M={m} {} t={}",
                        format.name(),
                        column.name(),
                        pool.threads()
                    ));
                    let cell = if column.available() {
                        match subjects.measure(column, m, pool, plan) {
                            Ok((f, prefix)) => Cell::Measured { gops: f.gops, prefix },
                            Err(_) => Cell::Failed,
                        }
                    } else {
                        Cell::Unavailable
                    };
                    cells.insert((ti, fi, m, ci), cell);
                }
            }
        }
    }
    progress.finish();
    let mut lines = Vec::new();
    for (ti, &threads) in plan.threads.iter().enumerate() {
        let peak = peaks[ti];
        lines.push(String::new());
        lines.push(format!(
            "{threads} thread{}: GOPS (% of the tile peak on {threads} thread{0}, int8 for the block formats, bf16 for F16/BF16: {}), K = {}, N = {}",
            if threads == 1 { "" } else { "s" },
            peak.describe(),
            plan.k,
            plan.n
        ));
        let mut head = format!("{:<7} {:>4} {:<6}", "format", "M", "via");
        for c in &plan.columns {
            head.push_str(&format!("{:>17}", c.name()));
        }
        head.push_str(&format!("{:>9}", "x base"));
        lines.push(head);
        for (fi, &format) in plan.formats.iter().enumerate() {
            for &m in &plan.ms {
                let via = Path::Auto.resolve(format, m).map_or("-", |p| p.name());
                let mut line = format!("{:<7} {m:>4} {via:<6}", format.name());
                let gops = |c: Column| -> Option<f64> {
                    let ci = plan.columns.iter().position(|&x| x == c)?;
                    match cells.get(&(ti, fi, m, ci)) {
                        Some(Cell::Measured { gops, .. }) => Some(*gops),
                        _ => None,
                    }
                };
                for ci in 0..plan.columns.len() {
                    line.push_str(&match cells[&(ti, fi, m, ci)] {
                        Cell::Measured { gops, prefix } => format!(
                            "{:>9.1}{} ({})",
                            gops,
                            if prefix.is_some() { '*' } else { ' ' },
                            percent_text(gops, peak.for_format(format), 4)
                        ),
                        Cell::Unavailable => format!("{:>17}", "n/a"),
                        Cell::Failed => format!("{:>17}", "error"),
                    });
                }
                let ratio = gops(Column::Dispatch).zip(gops(Column::DequantSgemm));
                line.push_str(&match ratio {
                    Some((ours, base)) => format!("{:>8.1}x", ours / base),
                    None => format!("{:>9}", "-"),
                });
                lines.push(line);
            }
        }
    }
    if cells.values().any(|c| matches!(c, Cell::Measured { prefix: Some(_), .. })) {
        lines.push(String::new());
        lines.push(format!(
            "* a call on all {} rows would take over {} ms: timed on the first 64, 256 or 1024 rows of the same weights (`--full` times every cell on all of them)",
            plan.n,
            plan.slow_call.map_or(0, |d| d.as_millis())
        ));
    }
    lines.push(
        "via: the path dispatch takes; x base: dispatch over the deq-sgemm baseline (dequantize to f32 on every call, then matrixmultiply's sgemm)".to_string(),
    );
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_plan_fills_every_cell_and_marks_prefixes() {
        let plan = Plan {
            formats: vec![Format::Q8_0, Format::BF16],
            ms: vec![1, 20],
            columns: Column::MAIN.to_vec(),
            threads: vec![1, 2],
            n: 2048,
            k: 256,
            min_time: Duration::ZERO,
            // Zero: every cell is "slow", so every measured cell uses a prefix.
            slow_call: Some(Duration::ZERO),
        };
        let lines = tables(&plan).expect("tables");
        let rows: Vec<&String> =
            lines.iter().filter(|l| l.starts_with("Q8_0") || l.starts_with("BF16")).collect();
        assert_eq!(rows.len(), 2 * 2 * 2, "{lines:#?}");
        for r in rows {
            assert!(!r.contains("error"), "{r}");
            let marks = r.matches('*').count();
            let unavailable = r.matches("n/a").count();
            assert_eq!(marks + unavailable, Column::MAIN.len(), "{r}");
        }
        assert!(lines.iter().any(|l| l.starts_with("* a call on all 2048 rows")));
    }
}
