//! `amx-bench`: the amx-rs main job and its subcommands.
//!
//! - no arguments: the CPU report, every check on the repository's vectors, the repack
//!   table and the throughput tables (`--quick` for fewer M values, `--full` for more and
//!   every cell at full size);
//! - `detect`: features, XCR0 state, permission;
//! - `verify DIR`: every check on every `.gguf` vector in DIR, `N passed, N failed`, and a
//!   non-zero exit status if any check fails (a file that does not load is a failed
//!   check; the others still run) or DIR does not exist or holds no vector;
//! - `pack [--json] [--n N] [--k K] [--formats F,..]`: pack, unpack and plain-copy GB/s per format;
//! - `bench ...`: one line (or JSON object) per format, column and M;
//! - `bench --decode ...`: SmolLM2-135M's matmuls at M = 1 (four shapes, then a whole
//!   layer one call per matmul and with Q/K/V and gate/up sharing X), on one thread and
//!   on `--threads` (default 2) side by side: median microseconds and the speedup;
//! - `moe [--formats F,..] [--t T,..] [--threads T] [--json]`: the grouped expert matmul
//!   against a loop over experts (Q4_K and Q4_0 at T = 1, 32, 512 by default), with the
//!   T = 1 read bound measured in the same run;
//! - `gguf FILE`: where the runtime would place each tensor of a model file, and why.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::{Duration, Instant};

use amx_bench::gemm_bench::{
    Column, Peak, ReadLoop, Row, Subject, dram_footprint, measure, measure_against_reads,
};
use amx_bench::throughput::{self, Plan};
use amx_bench::{pack_bench, report, verify};
use amx_core::formats::Format;
use amx_runtime::pool::Pool;

const USAGE: &str = "usage: amx-bench [--quick | --full | detect | verify DIR | pack [--json] [--n N] [--k K] [--formats F,..] | \
bench [--formats F,..] [--paths P,..] [--m M,..] [--n N] [--k K] [--threads T] [--min-share-macs W] [--dram] [--json] | \
bench --decode [--formats F,..] [--m M,..] [--threads T] [--min-share-macs W] [--json] | \
moe [--formats F,..] [--t T,..] [--threads T] [--json] | gguf FILE]";

fn all_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn repo_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn detect() -> ExitCode {
    for line in report::detect_lines() {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

fn verify(dir: &Path, verbose: bool) -> ExitCode {
    let checks = match verify::verify_dir(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("amx-bench verify: {e}");
            return ExitCode::FAILURE;
        }
    };
    for c in checks.iter().filter(|c| verbose || !c.passed) {
        println!("{c}");
    }
    println!("{}", verify::summary(&checks));
    // verify_dir refuses a folder without vectors; no check at all is a failure anyway.
    let passed = !checks.is_empty() && checks.iter().all(|c| c.passed);
    if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The names `--formats` takes, for its error message.
const FORMAT_NAMES: &str = "f16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m, iq4_nl, iq4_xs, bf16, tq1_0, tq2_0, mxfp4, nvfp4";

struct PackArgs {
    json: bool,
    n: usize,
    k: usize,
    formats: Vec<Format>,
}

fn parse_pack(args: &[String]) -> Result<PackArgs, String> {
    let mut out = PackArgs { json: false, n: 4096, k: 4096, formats: Format::ALL.to_vec() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--json" => out.json = true,
            "--n" => out.n = number("--n")?,
            "--k" => out.k = number("--k")?,
            "--formats" => {
                let list = it.next().ok_or("--formats needs a value")?;
                out.formats = parse_list(list, FORMAT_NAMES, Format::from_name)?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !out.k.is_multiple_of(256) || out.n == 0 {
        return Err(format!(
            "--n must be >= 1 and --k a multiple of 256, got {} x {}",
            out.n, out.k
        ));
    }
    Ok(out)
}

fn pack(args: &PackArgs) -> ExitCode {
    if !args.json {
        println!("pack {} x {}, one thread, GB/s of ggml source bytes", args.n, args.k);
        println!("{:<8} {:>8} {:>8} {:>8} {:>10}", "format", "pack", "unpack", "copy", "pack/copy");
    }
    for &format in &args.formats {
        match pack_bench::measure(format, args.n, args.k, 7) {
            Ok(f) if args.json => println!("{}", f.to_json()),
            Ok(f) => println!(
                "{:<8} {:>8.2} {:>8.2} {:>8.2} {:>9.0}%",
                format.name(),
                f.pack_gbps,
                f.unpack_gbps,
                f.copy_gbps,
                100.0 * f.pack_gbps / f.copy_gbps
            ),
            Err(e) => {
                eprintln!("amx-bench pack {format}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

struct BenchArgs {
    formats: Vec<Format>,
    columns: Vec<Column>,
    ms: Vec<usize>,
    n: usize,
    k: usize,
    threads: usize,
    dram: bool,
    json: bool,
    /// `--decode`: the decode cases instead of the throughput table.
    decode: bool,
    /// Whether `--formats`, `--m` or `--threads` were given (the decode cases have their
    /// own defaults: Q4_1, M = 1, 2 threads).
    formats_given: bool,
    ms_given: bool,
    threads_given: bool,
    /// `--min-share-macs`: the pool's threshold (else the default or the environment's).
    min_share_macs: Option<u64>,
}

/// A comma-separated list; `known` says what the values may be, for the error.
fn parse_list<T>(v: &str, known: &str, one: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    v.split(',').map(|s| one(s.trim()).ok_or(format!("unknown value {s:?} ({known})"))).collect()
}

fn parse_bench(args: &[String]) -> Result<BenchArgs, String> {
    let mut out = BenchArgs {
        formats: Format::ALL.to_vec(),
        columns: vec![Column::Dispatch],
        ms: vec![1, 8, 32, 128, 512],
        n: 4096,
        k: 4096,
        threads: 1,
        dram: false,
        json: false,
        decode: false,
        formats_given: false,
        ms_given: false,
        threads_given: false,
        min_share_macs: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--json" => out.json = true,
            "--dram" => out.dram = true,
            "--decode" => out.decode = true,
            "--min-share-macs" => {
                let v = value("--min-share-macs")?;
                out.min_share_macs = Some(
                    v.parse().map_err(|_| format!("--min-share-macs: {v:?} is not a number"))?,
                )
            }
            "--formats" => {
                out.formats = parse_list(&value("--formats")?, FORMAT_NAMES, Format::from_name)?;
                out.formats_given = true;
            }
            "--paths" => {
                let names = "dispatch, amx, vnni, scalar, deq-sgemm";
                out.columns = parse_list(&value("--paths")?, names, Column::from_name)?
            }
            "--m" => {
                out.ms = parse_list(&value("--m")?, "row counts", |s| {
                    s.parse().ok().filter(|&m: &usize| m > 0)
                })?;
                out.ms_given = true;
            }
            "--n" => out.n = value("--n")?.parse().map_err(|_| "--n: not a number")?,
            "--k" => out.k = value("--k")?.parse().map_err(|_| "--k: not a number")?,
            "--threads" => {
                out.threads = value("--threads")?.parse().map_err(|_| "--threads: not a number")?;
                out.threads_given = true;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(out)
}

/// `bench --decode`: each decode case on a one-thread pool and a `--threads` pool (default
/// 2), side by side.
fn bench_decode(args: &BenchArgs) -> ExitCode {
    use amx_bench::decode_bench::{Case, measure};
    let formats = if args.formats_given { args.formats.clone() } else { vec![Format::Q4_1] };
    let ms = if args.ms_given { args.ms.clone() } else { vec![1] };
    let threads = if args.threads_given { args.threads.max(1) } else { 2 };
    let pools = Pool::try_new(1).and_then(|one| Ok((one, Pool::try_new(threads)?)));
    let (one, many) = match pools {
        Ok(p) => p,
        Err(e) => {
            eprintln!("amx-bench bench --decode: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(w) = args.min_share_macs {
        one.set_min_share_macs(w);
        many.set_min_share_macs(w);
    }
    if !args.json {
        println!(
            "decode: SmolLM2-135M matmuls (n x k), median per pass, 1 thread vs {threads} (min_share_macs = {})",
            many.min_share_macs()
        );
        println!(
            "{:<6} {:<12} {:<5} {:>13} {:>13}  speedup",
            "format",
            "case",
            "m",
            "1 thread",
            format!("{threads} threads")
        );
    }
    let mut failed = false;
    for &format in &formats {
        for &m in &ms {
            for case in Case::ALL {
                match measure(format, case, m, (&one, &many), Duration::from_millis(300)) {
                    Ok(line) if args.json => println!("{}", line.to_json()),
                    Ok(line) => println!("{}", line.to_text()),
                    Err(e) => {
                        eprintln!("{:<6} {:<12} m={m:<3} error: {e}", format.name(), case.name());
                        failed = true;
                    }
                }
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn bench(args: &BenchArgs) -> ExitCode {
    if args.decode {
        return bench_decode(args);
    }
    let threads = args.threads.max(1);
    let peak = Peak::measure(threads);
    if !args.json {
        println!("tile peak this run on {threads} thread(s): {}", peak.describe());
    }
    let pool = Pool::new(threads);
    if let Some(w) = args.min_share_macs {
        pool.set_min_share_macs(w);
    }
    // Enough distinct copies to be four times the last-level cache (read once).
    let footprint = dram_footprint();
    for &format in &args.formats {
        let bytes = format.row_bytes(args.k).unwrap_or(0) * args.n;
        let copies = if args.dram { footprint.div_ceil(bytes.max(1)) } else { 1 };
        let subject = match Subject::new(format, args.n, args.k, copies) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("amx-bench bench {format}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let reads = args.dram.then(|| ReadLoop::new(bytes, footprint));
        let min_time = Duration::from_millis(300);
        for &column in &args.columns {
            for &m in &args.ms {
                // With --dram, the bandwidth bound of this case, measured in the same
                // loop: 2 M ops per weight (each weight meets M rows), the packed bytes
                // per weight read at the rate a plain read loop reaches.
                let per_weight = bytes as f64 / (args.n * args.k) as f64;
                let result = match &reads {
                    Some(r) => measure_against_reads(&subject, column, m, &pool, min_time, r)
                        .map(|(f, bw)| (f, Some(2.0 * m as f64 * bw / per_weight / 1e9))),
                    None => measure(&subject, column, m, &pool, min_time).map(|f| (f, None)),
                };
                match result {
                    Ok((f, bound)) => {
                        let row = Row {
                            format,
                            column,
                            m,
                            n: args.n,
                            k: args.k,
                            threads,
                            gops: f.gops,
                            peak_gops: peak,
                            bound_gops: bound,
                        };
                        println!("{}", if args.json { row.to_json() } else { row.to_text() });
                    }
                    Err(e) => {
                        eprintln!("{:<7} {:<9} m={m:<4} error: {e}", format.name(), column.name())
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn gguf(file: &Path) -> ExitCode {
    let parsed = match amx_gguf::GgufFile::open(file) {
        Ok(f) => f,
        // This error names the path itself.
        Err(e @ amx_gguf::GgufError::NotARegularFile { .. }) => {
            eprintln!("amx-bench gguf: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("amx-bench gguf: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match amx_bench::gguf_report::report(&parsed) {
        Ok((text, lines)) => {
            print!("{text}");
            println!("\nrepack (one thread):");
            for l in lines.iter().filter(|l| l.repack.is_some()) {
                if let Some((secs, bytes)) = l.repack {
                    println!("{:<40} {:>9.3} ms {:>12} bytes packed", l.name, secs * 1e3, bytes);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amx-bench gguf: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `amx-bench moe`'s options.
struct MoeArgs {
    json: bool,
    threads: usize,
    formats: Vec<Format>,
    tokens: Vec<usize>,
}

fn parse_moe(args: &[String]) -> Result<MoeArgs, String> {
    let mut out = MoeArgs {
        json: false,
        threads: 1,
        formats: vec![Format::Q4_K, Format::Q4_0],
        tokens: vec![1, 32, 512],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--json" => out.json = true,
            "--threads" => {
                let v = value("--threads")?;
                out.threads = v
                    .parse()
                    .ok()
                    .filter(|&t| t > 0)
                    .ok_or(format!("--threads takes a positive whole number, not {v:?}"))?;
            }
            "--formats" => {
                out.formats = parse_list(&value("--formats")?, FORMAT_NAMES, Format::from_name)?
            }
            "--t" => {
                let one = |s: &str| s.parse::<usize>().ok().filter(|&t| t > 0);
                out.tokens = parse_list(&value("--t")?, "positive token counts", one)?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(out)
}

fn moe(args: &[String]) -> ExitCode {
    let args = match parse_moe(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("amx-bench moe: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let (json, threads) = (args.json, args.threads);
    let layer = amx_bench::moe_bench::QWEN3_30B_A3B;
    if !json {
        println!(
            "MoE layer: {} experts, top-{}, K = {}, N = {}; tokens/s, {threads} thread(s)",
            layer.experts, layer.top_k, layer.k, layer.n
        );
    }
    for &format in &args.formats {
        // The T = 1 read bound, measured in this run next to the kernel.
        let bound = amx_bench::moe_bench::bound_tokens_per_s(format, &layer).ok();
        if !json && let Some(b) = bound {
            println!(
                "{:<7} T=1 read-bandwidth bound of its {} experts: {b:.1} tokens/s",
                format.name(),
                layer.top_k
            );
        }
        for &t in &args.tokens {
            for grouped in [true, false] {
                let path = if grouped { "grouped" } else { "loop" };
                let of_bound = bound.filter(|_| t == 1);
                match amx_bench::moe_bench::tokens_per_s(format, &layer, t, grouped, threads) {
                    Ok(v) if json => println!(
                        "{{\"format\":\"{}\",\"path\":\"{path}\",\"t\":{t},\"threads\":{threads},\"tokens_per_s\":{v:.2}{}}}",
                        format.name().to_ascii_lowercase(),
                        of_bound.map_or(String::new(), |b| format!(
                            ",\"bound_tokens_per_s\":{b:.2},\"bound_fraction\":{:.4}",
                            v / b
                        ))
                    ),
                    Ok(v) => println!(
                        "{:<7} {path:<8} T={t:<4} {v:>12.1} tokens/s{}",
                        format.name(),
                        of_bound.map_or(String::new(), |b| format!(
                            "  {:>5.1}% of the bound",
                            100.0 * v / b
                        ))
                    ),
                    Err(e) => {
                        eprintln!("amx-bench moe: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn main_job(plan: &Plan) -> ExitCode {
    let started = Instant::now();
    println!("== this machine");
    detect();
    println!("\n== vectors ({})", repo_vectors().display());
    let verified = match amx_bench::summary::vector_lines(&repo_vectors()) {
        Ok((lines, ok)) => {
            lines.iter().for_each(|l| println!("{l}"));
            ok
        }
        Err(e) => {
            println!("cannot load the vectors: {e}");
            false
        }
    };
    println!("\n== weight repack");
    let packed = pack(&PackArgs { json: false, n: 4096, k: 4096, formats: Format::ALL.to_vec() })
        == ExitCode::SUCCESS;
    println!("\n== GEMM throughput");
    let measured = match throughput::tables(plan) {
        Ok(lines) => {
            lines.iter().for_each(|l| println!("{l}"));
            true
        }
        Err(e) => {
            println!("cannot build the weights: {e}");
            false
        }
    };
    println!(
        "\n({:.0} s; `--quick` for less, `--full` for more; one case: `amx-bench bench --formats q4_k --paths dispatch,amx --m 1,512 --threads 2 --dram`)",
        started.elapsed().as_secs_f64()
    );
    if verified && packed && measured { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => main_job(&Plan::standard(all_threads())),
        Some("--quick") if args.len() == 1 => main_job(&Plan::quick(all_threads())),
        Some("--full") if args.len() == 1 => main_job(&Plan::full(all_threads())),
        Some("detect") => detect(),
        Some("verify") => match args.get(1) {
            Some(dir) => verify(Path::new(dir), true),
            None => {
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("pack") => match parse_pack(&args[1..]) {
            Ok(p) => pack(&p),
            Err(e) => {
                eprintln!("amx-bench pack: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("bench") => match parse_bench(&args[1..]) {
            Ok(b) => bench(&b),
            Err(e) => {
                eprintln!("amx-bench bench: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("moe") => moe(&args[1..]),
        Some("gguf") => match args.get(1) {
            Some(file) => gguf(Path::new(file)),
            None => {
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("amx-bench: unknown command {other}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
