//! Token ids as JSON, for comparing the tokenizer with llama.cpp's `llama-tokenize`
//! (`amx-llm/scripts/tokenizer_diff.py` drives it).
//!
//! ```text
//! tokenize_ids MODEL FILE [--no-bos] [--no-parse-special]
//!     the ids of FILE's text, as `[1, 2, 3]` (llama-tokenize's `--ids` output)
//! tokenize_ids MODEL --jsonl
//!     reads JSON strings, one a line, from stdin; writes one line per text:
//!     `[ids(add_special, parse_special), ids(add, no parse), ids(no add, parse),
//!     ids(no add, no parse)]`, flushed after each line
//! tokenize_ids MODEL --pieces
//!     one line per id: the hex of `token_bytes(id)`
//! ```

use std::io::{BufRead, Write};
use std::process::ExitCode;

use amx_gguf::GgufFile;
use amx_llm::tokenizer::Tokenizer;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(args: &[String]) -> Result<(), String> {
    let [model, what, flags @ ..] = args else {
        return Err("usage: tokenize_ids MODEL (FILE [--no-bos] [--no-parse-special] \
                    | --jsonl | --pieces)"
            .into());
    };
    let file = GgufFile::open(model).map_err(|e| format!("{model}: {e}"))?;
    let tok = Tokenizer::from_gguf(&file).map_err(|e| format!("{model}: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| e.to_string();
    match what.as_str() {
        "--pieces" => {
            for id in 0..tok.vocab_size() as u32 {
                writeln!(out, "{}", hex(&tok.token_bytes(id))).map_err(io)?;
            }
        }
        "--jsonl" => {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(io)?;
                let text: String = serde_json::from_str(&line).map_err(|e| e.to_string())?;
                let modes = [(true, true), (true, false), (false, true), (false, false)];
                let ids: Vec<Vec<u32>> =
                    modes.iter().map(|&(add, parse)| tok.encode(&text, add, parse)).collect();
                writeln!(out, "{}", serde_json::to_string(&ids).map_err(|e| e.to_string())?)
                    .map_err(io)?;
                out.flush().map_err(io)?;
            }
        }
        path => {
            let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
            let text = String::from_utf8_lossy(&bytes);
            let add = !flags.iter().any(|f| f == "--no-bos");
            let parse = !flags.iter().any(|f| f == "--no-parse-special");
            let ids = tok.encode(&text, add, parse);
            writeln!(out, "{}", serde_json::to_string(&ids).map_err(|e| e.to_string())?)
                .map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenize_ids: {e}");
            ExitCode::FAILURE
        }
    }
}
