//! `amx-bench`: the amx-rs main job and its subcommands.
//!
//! - no arguments: the CPU report, every check on the repository's vectors, and the
//!   throughput tables;
//! - `detect`: features, XCR0 state, permission;
//! - `verify DIR`: every check on every `.gguf` vector in DIR, `N passed, N failed`, and a
//!   non-zero exit status if any check fails;
//! - `pack [--json] [--n N] [--k K]`: pack, unpack and plain-copy GB/s per format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use amx_bench::{pack_bench, report, verify};
use amx_core::formats::Format;

const USAGE: &str = "usage: amx-bench [detect | verify DIR | pack [--json] [--n N] [--k K]]";

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
    if checks.iter().all(|c| c.passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

struct PackArgs {
    json: bool,
    n: usize,
    k: usize,
}

fn parse_pack(args: &[String]) -> Result<PackArgs, String> {
    let mut out = PackArgs { json: false, n: 4096, k: 4096 };
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
    for format in Format::ALL {
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

fn main_job() -> ExitCode {
    println!("== this machine");
    detect();
    println!("\n== vectors ({})", repo_vectors().display());
    let verified = verify(&repo_vectors(), false);
    println!("\n== weight repack");
    let packed = pack(&PackArgs { json: false, n: 4096, k: 4096 });
    if verified == ExitCode::SUCCESS && packed == ExitCode::SUCCESS {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => main_job(),
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
