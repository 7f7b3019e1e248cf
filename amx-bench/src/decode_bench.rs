//! Decode-shaped matmuls (`amx-bench bench --decode`): SmolLM2-135M's projections at
//! M = 1 through [`Pool::linear`], on a one-thread pool and a T-thread pool side by side,
//! to check that the pool never loses to one thread on small jobs (issue 13).
//!
//! Shapes are `n x k` as `bench --n N --k K` names them: N output values (rows of the
//! weight), K values per row (the activation width).

use std::hint::black_box;
use std::time::{Duration, Instant};

use amx_core::formats::Format;
use amx_core::gemm::GemmError;
use amx_core::pack::{self, PackedRef};
use amx_runtime::hugepage::HugeBuffer;
use amx_runtime::pool::Pool;

use crate::gemm_bench::{BenchError, bench_activations, median};
use amx_testdata::weights::bench_weights;

/// One SmolLM2-135M layer's matmuls in order: q, k, v, o, gate, up, down (`n x k`;
/// hidden 576, 9 query heads and 3 key/value heads of 64, feed-forward 1536).
pub const SMOLLM2_135M_LAYER: [(&str, usize, usize); 7] = [
    ("q", 576, 576),
    ("k", 192, 576),
    ("v", 192, 576),
    ("o", 576, 576),
    ("gate", 1536, 576),
    ("up", 1536, 576),
    ("down", 576, 1536),
];

/// What one timed pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// One matmul: the layer's matmul of this index in [`SMOLLM2_135M_LAYER`].
    Single(usize),
    /// The seven matmuls of [`SMOLLM2_135M_LAYER`], one [`Pool::linear`] each.
    Layer,
    /// The same layer as an engine sharing X would run it: q, k, v in one
    /// [`Pool::linear_many`], o, gate and up in one, down.
    LayerFused,
}

impl Case {
    /// The cases of `bench --decode`: the four distinct shapes, then the layer both ways.
    /// (q 576x576, k 192x576, gate 1536x576, down 576x1536).
    pub const ALL: [Case; 6] = [
        Case::Single(0),
        Case::Single(1),
        Case::Single(4),
        Case::Single(6),
        Case::Layer,
        Case::LayerFused,
    ];

    /// `576x576` (`n x k`), `layer`, `layer-fused`.
    pub fn name(&self) -> String {
        match self {
            Case::Single(i) => match SMOLLM2_135M_LAYER.get(*i) {
                Some((_, n, k)) => format!("{n}x{k}"),
                None => format!("matmul {i}"),
            },
            Case::Layer => "layer".to_string(),
            Case::LayerFused => "layer-fused".to_string(),
        }
    }

    /// Multiply-accumulates of one pass with `m` rows.
    pub fn macs(&self, m: usize) -> usize {
        match self {
            Case::Single(i) => SMOLLM2_135M_LAYER.get(*i).map_or(0, |&(_, n, k)| m * n * k),
            Case::Layer | Case::LayerFused => {
                SMOLLM2_135M_LAYER.iter().map(|&(_, n, k)| m * n * k).sum()
            }
        }
    }
}

/// One line: a case's median pass on one thread and on `threads`.
#[derive(Clone, Debug)]
pub struct DecodeLine {
    /// Weight format.
    pub format: Format,
    /// The case ([`Case::name`]).
    pub case: String,
    /// Rows.
    pub m: usize,
    /// Threads of the second pool.
    pub threads: usize,
    /// The second pool's [`Pool::min_share_macs`].
    pub min_share_macs: u64,
    /// Median seconds per pass on one thread.
    pub one: f64,
    /// Median seconds per pass on `threads` threads.
    pub many: f64,
}

impl DecodeLine {
    /// One thread's time over `threads`' (above 1: the pool wins).
    pub fn speedup(&self) -> f64 {
        self.one / self.many
    }

    /// The human line.
    pub fn to_text(&self) -> String {
        format!(
            "{:<6} {:<12} m={:<3} {:>10.1} us {:>10.1} us  {:>5.2}x",
            self.format.name(),
            self.case,
            self.m,
            self.one * 1e6,
            self.many * 1e6,
            self.speedup()
        )
    }

    /// The JSON object (one line).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"bench\":\"decode\",\"format\":\"{}\",\"case\":\"{}\",\"m\":{},\"threads\":{},\"min_share_macs\":{},\"us_1_thread\":{:.3},\"us_threads\":{:.3},\"speedup\":{:.3}}}",
            self.format.name().to_ascii_lowercase(),
            self.case,
            self.m,
            self.threads,
            self.min_share_macs,
            self.one * 1e6,
            self.many * 1e6,
            self.speedup()
        )
    }
}

/// The layer's weights packed (on huge pages, as an engine keeps them), in
/// [`SMOLLM2_135M_LAYER`]'s order.
struct Weights {
    bufs: Vec<HugeBuffer>,
}

impl Weights {
    fn new(format: Format) -> Result<Self, BenchError> {
        let mut bufs = Vec::new();
        for (seed, &(_, n, k)) in SMOLLM2_135M_LAYER.iter().enumerate() {
            let src = bench_weights(format, 20 + seed as u64, n, k)?;
            let mut packed = HugeBuffer::zeroed(pack::packed_size(format, n, k, 1)?);
            pack::pack(format, n, k, 1, &src, &mut packed)?;
            bufs.push(packed);
        }
        Ok(Self { bufs })
    }

    /// Matmul `i` of the layer.
    fn get(&self, i: usize) -> Result<PackedRef<'_>, BenchError> {
        let len = self.bufs.len();
        let buf = self.bufs.get(i).ok_or(GemmError::Range {
            what: "layer matmuls",
            start: i,
            end: i + 1,
            len,
        })?;
        Ok(PackedRef::parse(buf)?)
    }
}

/// One pass of `case` with `m` rows on `pool`.
fn pass(
    case: Case,
    w: &Weights,
    pool: &Pool,
    (x576, x1536): (&[f32], &[f32]),
    ys: &mut [Vec<f32>; 7],
) -> Result<(), BenchError> {
    let [yq, yk, yv, yo, yg, yu, yd] = ys;
    match case {
        Case::Single(i) => {
            let weights = w.get(i)?;
            let (n, k) = (weights.layout().n(), weights.layout().k());
            let x = if k == 1536 { x1536 } else { x576 };
            let m = x.len() / k;
            pool.linear(&weights, x, &mut yg[..m * n])?; // the widest output
        }
        Case::Layer => {
            for (i, y) in [yq, yk, yv, yo, yg, yu].into_iter().enumerate() {
                pool.linear(&w.get(i)?, x576, y)?;
            }
            pool.linear(&w.get(6)?, x1536, yd)?;
        }
        Case::LayerFused => {
            let (q, k, v) = (w.get(0)?, w.get(1)?, w.get(2)?);
            pool.linear_many(x576, &mut [(&q, yq), (&k, yk), (&v, yv)])?;
            // o reads the attention output, gate and up the normed residual: separate
            // calls in an engine.
            pool.linear(&w.get(3)?, x576, yo)?;
            let (gate, up) = (w.get(4)?, w.get(5)?);
            pool.linear_many(x576, &mut [(&gate, yg), (&up, yu)])?;
            pool.linear(&w.get(6)?, x1536, yd)?;
        }
    }
    black_box(&*ys);
    Ok(())
}

/// Measures `case` at `m` rows on `one` (a one-thread pool) and `many`, alternating
/// passes so both see the same machine state, until `min_time` has passed and at least
/// five passes of each were timed; medians.
///
/// Errors: [`BenchError`] for a format the shapes do not fit, or a refused call.
pub fn measure(
    format: Format,
    case: Case,
    m: usize,
    (one, many): (&Pool, &Pool),
    min_time: Duration,
) -> Result<DecodeLine, BenchError> {
    let w = Weights::new(format)?;
    let (x576, x1536) = (bench_activations(m, 576), bench_activations(m, 1536));
    let mut ys: [Vec<f32>; 7] = SMOLLM2_135M_LAYER.map(|(_, n, _)| vec![0f32; m * n]);
    let xs = (&x576[..], &x1536[..]);
    for pool in [one, many] {
        pass(case, &w, pool, xs, &mut ys)?; // warm-up: workspaces, scratch, caches
    }
    let (mut t1, mut tn) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while start.elapsed() < min_time || t1.len() < 5 {
        for (pool, times) in [(one, &mut t1), (many, &mut tn)] {
            let t = Instant::now();
            pass(case, &w, pool, xs, &mut ys)?;
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(DecodeLine {
        format,
        case: case.name(),
        m,
        threads: many.threads(),
        min_share_macs: many.min_share_macs(),
        one: median(&mut t1),
        many: median(&mut tn),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_runs_and_names_itself() {
        let (one, two) = (Pool::new(1), Pool::new(2));
        let names: Vec<String> = Case::ALL.iter().map(Case::name).collect();
        assert_eq!(names, ["576x576", "192x576", "1536x576", "576x1536", "layer", "layer-fused"]);
        assert_eq!(Case::Layer.macs(1), 576 * 576 * 2 + 192 * 576 * 2 + 1536 * 576 * 3);
        for case in Case::ALL {
            let line =
                measure(Format::Q4_1, case, 1, (&one, &two), Duration::ZERO).expect("measure");
            assert!(line.one > 0.0 && line.many > 0.0, "{line:?}");
            assert!(line.to_json().contains(&format!("\"case\":\"{}\"", case.name())));
            assert!(line.to_text().contains(&case.name()));
        }
    }
}
