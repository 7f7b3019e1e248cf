//! Command-line options of `compare`.

use std::time::Duration;

use amx_core::formats::Format;

pub const USAGE: &str = "\
usage: compare [--formats q4_0,q4_k,...] [--m 1,8,32,128,512] [--n 4096] [--k 4096]
               [--threads T] [--min-ms 200] [--json] [--same-thread] [--back-to-back]

Times candle-core's QMatMul::forward and amx-candle's AmxMatMul::forward on the same
weights (reused from cache) and inputs, interleaved, median per call, T threads on both.
Formats: those both hold (default: q4_0,q4_1,q5_0,q5_1,q8_0,q2_k,q3_k,q4_k,q5_k,q6_k,f16,bf16).
candle runs on a thread of its own; --same-thread runs it on ours, which reproduces
candle 0.11.1's tile-state hazard (wrong Q4_K results for M >= 32, SIGILL with T > 1).
--back-to-back times each side's calls in a block of its own instead of interleaved.";

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub formats: Vec<Format>,
    pub ms: Vec<usize>,
    pub n: usize,
    pub k: usize,
    pub threads: usize,
    pub min_time: Duration,
    pub json: bool,
    pub same_thread: bool,
    pub back_to_back: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            formats: amx_candle::SHARED_FORMATS.to_vec(),
            ms: vec![1, 8, 32, 128, 512],
            n: 4096,
            k: 4096,
            threads: 1,
            min_time: Duration::from_millis(200),
            json: false,
            same_thread: false,
            back_to_back: false,
        }
    }
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value.trim().parse().map_err(|_| format!("{flag}: `{value}` is not a number"))
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match number(flag, value)? {
        0 => Err(format!("{flag}: must be at least 1")),
        v => Ok(v),
    }
}

/// Parses the options (without the program name). `Ok(None)` for `--help`.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Args>, String> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag == "--json" {
            out.json = true;
            continue;
        }
        if flag == "--same-thread" {
            out.same_thread = true;
            continue;
        }
        if flag == "--back-to-back" {
            out.back_to_back = true;
            continue;
        }
        let (flag, value) = match flag.split_once('=') {
            Some((f, v)) => (f.to_string(), v.to_string()),
            None => {
                let v = it.next().ok_or_else(|| format!("{flag}: missing value"))?;
                (flag, v)
            }
        };
        match flag.as_str() {
            "--formats" => {
                out.formats = value
                    .split(',')
                    .map(|s| Format::from_name(s.trim()).ok_or(format!("unknown format `{s}`")))
                    .collect::<Result<_, _>>()?;
            }
            "--m" => {
                out.ms = value.split(',').map(|s| number("--m", s)).collect::<Result<_, _>>()?;
            }
            "--n" => out.n = positive("--n", &value)?,
            "--k" => out.k = positive("--k", &value)?,
            "--threads" => out.threads = positive("--threads", &value)?,
            "--min-ms" => {
                out.min_time = Duration::from_millis(positive("--min-ms", &value)? as u64)
            }
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    if out.formats.is_empty() || out.ms.is_empty() {
        return Err("--formats and --m need at least one value".to_string());
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<Args>, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn options_and_defaults() {
        assert_eq!(args(""), Ok(Some(Args::default())));
        let a =
            args("--formats q4_0,Q4_K --m 1,512 --n=256 --k 512 --threads 2 --json --same-thread --back-to-back")
                .expect("parses")
                .expect("not help");
        assert_eq!(a.formats, vec![Format::Q4_0, Format::Q4_K]);
        assert_eq!((a.ms, a.n, a.k, a.threads), (vec![1, 512], 256, 512, 2));
        assert!(a.json && a.same_thread && a.back_to_back);
        assert_eq!(args("--help"), Ok(None));
        assert!(args("--formats q9_9").is_err());
        assert!(args("--threads 0").is_err());
        assert!(args("--m").is_err());
        assert!(args("--bogus 1").is_err());
    }
}
