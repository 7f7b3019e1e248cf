//! candle-core's `QMatMul::forward` against amx-candle's `AmxMatMul::forward`: the same
//! ggml weights (reused from cache), the same f32 inputs, the same thread count, timed
//! interleaved in one run. Prints GOPS (2 M N K / s) of both, the ratio, the NMSE between
//! the two outputs, and which kernel each side ran.
//!
//! `cargo run --release -p amx-candle --bin compare -- --threads 2`

mod args;
mod candle_thread;
mod contention;
mod timing;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use amx_candle::{AmxMatMul, candle_path, dtype_of, qtensor_from_ggml};
use amx_core::formats::Format;
use amx_testdata::random::pseudo_random_values;
use amx_testdata::vectors::nmse;
use amx_testdata::weights::bench_weights;
use candle_core::quantized::QMatMul;
use candle_core::{Device, Tensor};

use args::Args;
use candle_thread::CandleSide;

/// Largest NMSE between the two outputs that counts as agreement: amx-rs's tests hold
/// every path to 5e-4 against the f32 reference, candle's activations are quantized too,
/// and two results each within 5e-4 of the reference are within (2 sqrt(5e-4))^2 = 2e-3
/// of each other.
const NMSE_BOUND: f64 = 2e-3;

/// One measured cell.
struct Cell {
    format: Format,
    m: usize,
    ours_gops: f64,
    candle_gops: f64,
    candle_path: String,
    ours_path: &'static str,
    nmse: f64,
    calls: usize,
    /// CPUs' worth of time other processes took during the cell (`None`: no `/proc`).
    others: Option<f64>,
    attempts: usize,
}

/// A cell during which other processes took more than this share of a CPU is measured
/// again (up to `ATTEMPTS` times in all); the attempt with the least is kept.
const MAX_OTHERS: f64 = 0.1;
const ATTEMPTS: usize = 4;

fn measure_quiet(
    args: &Args,
    ours: &AmxMatMul,
    candle: &CandleSide,
    format: Format,
    m: usize,
) -> candle_core::Result<Cell> {
    let mut best: Option<Cell> = None;
    for attempt in 1..=ATTEMPTS {
        let before = contention::snapshot();
        let mut cell = measure(args, ours, candle, format, m)?;
        cell.others = before.zip(contention::snapshot()).map(|(b, a)| contention::others(&b, &a));
        cell.attempts = attempt;
        let quiet = cell.others.is_none_or(|o| o <= MAX_OTHERS);
        if best.as_ref().is_none_or(|b| cell.others < b.others) {
            best = Some(cell);
        }
        if quiet {
            break;
        }
    }
    best.ok_or_else(|| candle_core::Error::msg("no attempt"))
}

fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Our side of one format (built once and reused for every M), candle's loaded into
/// `candle` from the same bytes.
fn load(
    args: &Args,
    format: Format,
    seed: u64,
    candle: &mut CandleSide,
) -> candle_core::Result<AmxMatMul> {
    let bytes = bench_weights(format, seed, args.n, args.k).map_err(candle_core::Error::wrap)?;
    let mut ours = AmxMatMul::from_ggml_bytes(format, args.n, args.k, &bytes)?;
    if args.threads > 1 {
        ours = ours.with_threads(args.threads)?;
    }
    candle.load(QMatMul::from_qtensor(qtensor_from_ggml(format, args.n, args.k, &bytes)?)?)?;
    Ok(ours)
}

fn timed(ours: &AmxMatMul, xs: &Tensor) -> candle_core::Result<(Tensor, Duration)> {
    let t = Instant::now();
    let y = ours.forward(xs)?;
    Ok((y, t.elapsed()))
}

/// Below this warm-up time per call, with worker threads, each side's turn starts with
/// an untimed call: after a call the other side's workers spin before they sleep (up to
/// 100 us in amx-runtime, 25,000 `spin_loop`s in candle's barrier pool).
const SETTLE_BELOW: Duration = Duration::from_millis(50);

fn measure(
    args: &Args,
    ours: &AmxMatMul,
    candle: &CandleSide,
    format: Format,
    m: usize,
) -> candle_core::Result<Cell> {
    let dtype = dtype_of(format)?;
    let xs = Tensor::from_vec(
        pseudo_random_values(m as u64 + 1, m * args.k),
        (m, args.k),
        &Device::Cpu,
    )?;
    // Warm-up, one call each: candle repacks Q4_K / Q6_K / Q8_0 weights on its first
    // call for a kernel (a OnceLock per tensor), which this keeps out of the timing; the
    // outputs are the agreement check.
    let (ours_y, ours_t) = timed(ours, &xs)?;
    let (candle_y, candle_t) = candle.forward(&xs)?;
    let e = nmse(&values(&ours_y)?, &values(&candle_y)?);
    let settle = args.threads > 1 && ours_t.min(candle_t) < SETTLE_BELOW;
    let ours_call = || {
        timed(ours, &xs).map(|(y, t)| {
            drop(black_box(y));
            t
        })
    };
    let candle_call = || {
        candle.forward(&xs).map(|(y, t)| {
            drop(black_box(y));
            t
        })
    };
    let pair = if args.back_to_back {
        timing::back_to_back(args.min_time, ours_call, candle_call)?
    } else {
        timing::interleaved(args.min_time, settle, ours_call, candle_call)?
    };
    let ops = 2.0 * m as f64 * args.n as f64 * args.k as f64;
    Ok(Cell {
        format,
        m,
        ours_gops: ops / pair.a / 1e9,
        candle_gops: ops / pair.b / 1e9,
        candle_path: candle_path(dtype, m, args.n, args.k),
        ours_path: ours.path(m)?.name(),
        nmse: e,
        calls: pair.calls,
        others: None,
        attempts: 1,
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn print_cell(args: &Args, c: &Cell) {
    let ratio = c.ours_gops / c.candle_gops;
    if args.json {
        println!(
            "{{\"format\":{},\"m\":{},\"n\":{},\"k\":{},\"threads\":{},\"ours_gops\":{:.2},\
             \"candle_gops\":{:.2},\"ratio\":{:.3},\"candle_path\":{},\"ours_path\":{},\
             \"nmse\":{:.3e},\"others_cpu\":{},\"attempts\":{}}}",
            json_string(c.format.name()),
            c.m,
            args.n,
            args.k,
            args.threads,
            c.ours_gops,
            c.candle_gops,
            ratio,
            json_string(&c.candle_path),
            json_string(c.ours_path),
            c.nmse,
            c.others.map_or("null".to_string(), |o| format!("{o:.2}")),
            c.attempts
        );
    } else {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2}x | {} | {} | {:.1e} | {} | {} | {} |",
            c.format.name(),
            c.m,
            c.ours_gops,
            c.candle_gops,
            ratio,
            c.ours_path,
            c.candle_path,
            c.nmse,
            c.calls,
            c.others.map_or("-".to_string(), |o| format!("{o:.2}")),
            c.attempts
        );
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

fn header(args: &Args) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let pool = candle_core::utils::barrier_pool().n_workers() + 1;
    format!(
        "# amx-candle compare: {} | N = {}, K = {}, threads: ours {}, candle {} (barrier pool \
         {} threads, rayon {}) | load {}\n# candle's first call per kernel repacks its weights \
         (OnceLock); one warm-up call per side and M keeps that out of the timing.\n\
         # weights reused from cache; median per call, {}, >= {} ms per side\n\
         # others: CPUs' worth of time other processes took during the cell; above {} the \
         cell is measured again (at most {} attempts), the quietest attempt kept",
        cpu_model(),
        args.n,
        args.k,
        args.threads,
        candle_core::utils::get_num_threads(),
        pool,
        candle_core::utils::get_num_threads(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        if args.back_to_back { "each side back to back" } else { "interleaved" },
        args.min_time.as_millis(),
        MAX_OTHERS,
        ATTEMPTS
    )
}

fn run(args: &Args) -> candle_core::Result<()> {
    if args.json {
        eprintln!("{}", header(args));
    } else {
        println!("{}", header(args));
        println!(
            "| format | M | ours GOPS | candle GOPS | ours/candle | ours path | candle path | nmse | calls | others | attempts |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
    }
    let mut candle = if args.same_thread {
        CandleSide::here()
    } else {
        CandleSide::spawn().map_err(candle_core::Error::wrap)?
    };
    let mut disagreements = 0;
    for (i, &format) in args.formats.iter().enumerate() {
        if let Err(e) = dtype_of(format) {
            eprintln!("skipping {format}: {e}");
            continue;
        }
        let ours = load(args, format, 1000 + i as u64, &mut candle)?;
        for &m in &args.ms {
            let cell = measure_quiet(args, &ours, &candle, format, m)?;
            print_cell(args, &cell);
            let agree = cell.nmse <= NMSE_BOUND; // false for NaN
            if !agree {
                disagreements += 1;
                eprintln!("compare: {format} M={m}: outputs disagree (nmse {:.2e})", cell.nmse);
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    if args.json {
        eprintln!("# done, load {load}");
    } else {
        println!("# done, load {load}");
    }
    if disagreements > 0 {
        candle_core::bail!("{disagreements} cells where the two outputs disagree")
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("compare: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    // candle-core 0.11.1 sizes its quantized-matmul barrier pool from CANDLE_NUM_THREADS
    // (else RAYON_NUM_THREADS) and its dense matmul and rayon's global pool from
    // RAYON_NUM_THREADS, each read once on first use: set both before any candle call.
    let threads = args.threads.to_string();
    // SAFETY: no other thread exists yet (nothing has been spawned: candle's pools and
    // amx-runtime's pool start later), so no one reads the environment concurrently.
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", &threads);
        std::env::set_var("RAYON_NUM_THREADS", &threads);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}
