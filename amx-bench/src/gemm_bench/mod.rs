//! GEMM throughput: GOPS (2 M N K per second) of a [`Column`] (our dispatched path, a
//! forced path, or the dequantize-then-sgemm baseline) on a shape, on a pool of one or
//! more threads, with the weights reused from cache or cycled through memory (`copies`).

mod bandwidth;
mod row;

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

use amx_core::formats::{Format, FormatError};
use amx_core::gemm::{GemmError, MatMut, MatRef, Path};
use amx_core::pack;
use amx_runtime::hugepage::HugeBuffer;
use amx_runtime::pool::Pool;

use amx_testdata::random::pseudo_random_bytes;
use amx_testdata::weights::bench_weights;

use crate::baseline::{self, DequantSgemm};

pub use bandwidth::{ReadLoop, dram_footprint, read_bandwidth};
pub use row::{Peak, Row, fraction_json, percent_text};

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// Operations per second / 1e9.
    pub gops: f64,
    /// Median seconds per call.
    pub seconds: f64,
}

/// What a figure measures: our dispatched path, one of our paths forced, or a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// [`Path::Auto`]: the path amx-core picks for the format and M.
    Dispatch,
    /// One of our paths, forced (`Amx`, `Vnni` or `Scalar`; the scalar path is our
    /// reference).
    Forced(Path),
    /// The baseline of [`crate::baseline`]: dequantize to f32 on every call, then
    /// `matrixmultiply::sgemm`.
    DequantSgemm,
}

impl Column {
    /// The main job's columns, in table order.
    pub const MAIN: [Column; 5] = [
        Column::Dispatch,
        Column::Forced(Path::Amx),
        Column::Forced(Path::Vnni),
        Column::Forced(Path::Scalar),
        Column::DequantSgemm,
    ];

    /// `dispatch`, `amx`, `vnni`, `scalar` or `deq-sgemm`.
    pub fn name(self) -> &'static str {
        match self {
            Column::Dispatch | Column::Forced(Path::Auto) => "dispatch",
            Column::Forced(p) => p.name(),
            Column::DequantSgemm => baseline::NAME,
        }
    }

    /// The column called `name` (case-insensitive; `auto` is `dispatch`).
    pub fn from_name(name: &str) -> Option<Column> {
        if name.eq_ignore_ascii_case("auto") {
            return Some(Column::Dispatch);
        }
        Column::MAIN.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Whether this machine can run it.
    pub fn available(self) -> bool {
        match self {
            Column::Forced(p) => p.available(),
            Column::Dispatch | Column::DequantSgemm => true,
        }
    }
}

/// Why a measurement could not be made.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchError {
    /// amx-core refused a call (shape, weights, or a path this machine lacks).
    Gemm(GemmError),
    /// The weight shape is not whole blocks of the format.
    Format(FormatError),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Gemm(e) => write!(f, "{e}"),
            BenchError::Format(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<GemmError> for BenchError {
    fn from(e: GemmError) -> Self {
        BenchError::Gemm(e)
    }
}

impl From<FormatError> for BenchError {
    fn from(e: FormatError) -> Self {
        BenchError::Format(e)
    }
}

impl From<pack::PackError> for BenchError {
    fn from(e: pack::PackError) -> Self {
        BenchError::Gemm(e.into())
    }
}

/// The weights under test: `n` rows of `k` values of one format, as ggml bytes and
/// packed (in an amx-runtime [`HugeBuffer`], as the runtime's buffers hold them), in
/// `copies` distinct copies that calls cycle through (enough copies put the weights out
/// of cache).
pub struct Subject {
    format: Format,
    n: usize,
    k: usize,
    ggml: Vec<Vec<u8>>,
    packed: Vec<HugeBuffer>,
}

impl Subject {
    /// Pseudo-random weights ([`bench_weights`]), packed, `copies` times (at least once).
    ///
    /// Errors: [`BenchError::Format`] or [`BenchError::Gemm`] for a shape the format or
    /// the packer refuses.
    pub fn new(format: Format, n: usize, k: usize, copies: usize) -> Result<Self, BenchError> {
        format.row_bytes(k)?;
        Subject::packed(format, n, k, bench_weights(format, 7, n, k)?, copies)
    }

    /// The first `rows` rows (at most N) of the same weights, in one copy: a smaller
    /// call of the same kind.
    ///
    /// Errors: those of [`Subject::new`] (none for a subject that exists).
    pub fn prefix(&self, rows: usize) -> Result<Subject, BenchError> {
        let rows = rows.min(self.n);
        let src = self.ggml[0][..rows * self.format.row_bytes(self.k)?].to_vec();
        Subject::packed(self.format, rows, self.k, src, 1)
    }

    /// `src` (`n` rows of ggml bytes) and its packed form, `copies` times (at least once).
    fn packed(
        format: Format,
        n: usize,
        k: usize,
        src: Vec<u8>,
        copies: usize,
    ) -> Result<Self, BenchError> {
        // Packed weights where an engine using amx-runtime keeps them: on huge pages.
        let mut packed = HugeBuffer::zeroed(pack::packed_size(format, n, k, 1)?);
        pack::pack(format, n, k, 1, &src, &mut packed)?;
        let copies = copies.max(1);
        Ok(Subject { format, n, k, ggml: vec![src; copies], packed: vec![packed; copies] })
    }

    /// The weight format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Rows of the weight matrix (output columns).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per row.
    pub fn k(&self) -> usize {
        self.k
    }
}

/// One timed call: the copy to use, and the output.
type Call<'a> = dyn FnMut(usize, &mut [f32]) -> Result<(), BenchError> + 'a;

/// Pseudo-random activations in [-1, 1), `m` rows of `k`.
pub fn bench_activations(m: usize, k: usize) -> Vec<f32> {
    pseudo_random_bytes(11, m * k).iter().map(|&b| f32::from(b) / 128.0 - 1.0).collect()
}

/// Measures `column` on `subject` with `m` activation rows on `pool`: one warm-up call,
/// then calls until `min_time` has passed and at least three were timed; the median call
/// (activation preparation included) gives the figure.
///
/// Errors: [`BenchError::Gemm`] with [`GemmError::PathUnavailable`] for a forced path this
/// machine lacks, or whatever the call refuses.
pub fn measure(
    subject: &Subject,
    column: Column,
    m: usize,
    pool: &Pool,
    min_time: Duration,
) -> Result<Figure, BenchError> {
    Ok(timed(subject, column, m, pool, min_time, None)?.0)
}

/// [`measure`] with a pass of `reads` before every call, timed apart: the calls and the
/// plain read loop see the same machine state (a noisy neighbour, the memory's mood), so
/// their ratio holds. Returns the figure and the read loop's median bytes per second.
///
/// Errors: those of [`measure`].
pub fn measure_against_reads(
    subject: &Subject,
    column: Column,
    m: usize,
    pool: &Pool,
    min_time: Duration,
    reads: &ReadLoop,
) -> Result<(Figure, f64), BenchError> {
    let (figure, pass) = timed(subject, column, m, pool, min_time, Some(reads))?;
    Ok((figure, reads.chunk_bytes() as f64 / pass.unwrap_or(f64::NAN)))
}

/// The timing loop of [`measure`] and [`measure_against_reads`]: median seconds of the
/// calls, and of the read passes when there are any.
fn timed(
    subject: &Subject,
    column: Column,
    m: usize,
    pool: &Pool,
    min_time: Duration,
    reads: Option<&ReadLoop>,
) -> Result<(Figure, Option<f64>), BenchError> {
    let Subject { format, n, k, .. } = *subject;
    let x = bench_activations(m, k);
    let mut y = vec![0f32; m * n];
    let xr = MatRef::new(&x, m, k, k)?;
    let copies = subject.packed.len();
    let mut call: Box<Call<'_>> = match column {
        Column::Dispatch | Column::Forced(_) => {
            let path = if let Column::Forced(p) = column { p } else { Path::Auto };
            path.resolve(format, m)?;
            Box::new(move |i, y| {
                let mut ym = MatMut::new(y, m, n, n)?;
                pool.matmul_on(&subject.packed[i % copies], format, &xr, &mut ym, path)?;
                Ok(())
            })
        }
        Column::DequantSgemm => {
            let bases = subject
                .ggml
                .iter()
                .map(|src| DequantSgemm::new(format, src, n, k, pool.threads()))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(move |i, y| bases[i % copies].run(&x, m, y, pool))
        }
    };
    if let Some(r) = reads {
        r.pass(0, pool);
    }
    call(0, &mut y)?;
    let (mut times, mut passes) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut i = 1;
    while start.elapsed() < min_time || times.len() < 3 || (reads.is_some() && times.len() < 5) {
        if let Some(r) = reads {
            let t = Instant::now();
            r.pass(i, pool);
            passes.push(t.elapsed().as_secs_f64());
        }
        let t = Instant::now();
        call(i, &mut y)?;
        times.push(t.elapsed().as_secs_f64());
        black_box(&y);
        i += 1;
    }
    let secs = median(&mut times);
    let figure = Figure { gops: 2.0 * (m * n * k) as f64 / secs / 1e9, seconds: secs };
    Ok((figure, reads.map(|_| median(&mut passes))))
}

/// The middle value of `v` (sorted in place; the upper one of an even count).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_round_trip() {
        for c in Column::MAIN {
            assert_eq!(Column::from_name(c.name()), Some(c));
        }
        assert_eq!(Column::from_name("AUTO"), Some(Column::Dispatch));
        assert_eq!(Column::from_name("gpu"), None);
    }

    #[test]
    fn a_prefix_is_the_first_rows_of_the_same_weights() {
        let all = Subject::new(Format::Q6_K, 40, 512, 2).expect("subject");
        let p = all.prefix(17).expect("prefix");
        let rb = Format::Q6_K.row_bytes(512).expect("row bytes");
        assert_eq!((p.n(), p.k(), p.packed.len()), (17, 512, 1));
        assert_eq!(p.ggml[0], all.ggml[0][..17 * rb]);
        assert_eq!(all.prefix(99).expect("prefix").n(), 40);
    }

    #[test]
    fn every_available_column_measures_a_positive_rate() {
        let subject = Subject::new(Format::Q4_K, 32, 256, 2).expect("subject");
        let pool = Pool::new(2);
        for c in Column::MAIN {
            match measure(&subject, c, 3, &pool, Duration::ZERO) {
                Ok(f) => assert!(f.gops > 0.0 && f.seconds > 0.0, "{}", c.name()),
                Err(BenchError::Gemm(GemmError::PathUnavailable { .. })) => {
                    assert!(!c.available(), "{} is available but refused", c.name());
                    match c {
                        Column::Forced(p) => amx_runtime::test_support::skip_path(p),
                        Column::Dispatch | Column::DequantSgemm => {
                            panic!("{} is always available, yet refused", c.name())
                        }
                    }
                }
                Err(e) => panic!("{}: {e}", c.name()),
            }
        }
    }
}
