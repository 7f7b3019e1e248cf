//! `amx-llm`: generate, tokenize, perplexity and bench on a GGUF model (see `USAGE`).
//! Results on stdout (one JSON line with `--json`), progress on stderr; any error is
//! one line on stderr and exit code 1.

mod args;
mod json;
mod text;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use amx_core::gemm::Path;
use amx_llm::engine::perplexity::perplexity;
use amx_llm::engine::{Engine, Options};

use args::Args;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || argv[0] == "--help" || argv[0] == "-h" {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let result = Args::parse(&argv).and_then(|a| run(&a));
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amx-llm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn options(a: &Args, context: usize) -> Result<Options, String> {
    let path = match a.get("path").unwrap_or("auto") {
        "auto" => Path::Auto,
        "amx" => Path::Amx,
        "vnni" => Path::Vnni,
        "scalar" => Path::Scalar,
        p => return Err(format!("--path {p:?}: expected auto, amx, vnni or scalar")),
    };
    Ok(Options {
        threads: a.num("threads", 1)?,
        path,
        gpu_layers: a.num("gpu-layers", 0)?,
        context,
    })
}

fn open(a: &Args, context: usize) -> Result<Engine, String> {
    let o = options(a, context)?;
    Engine::open(&a.model, o).map_err(|e| format!("{}: {e}", a.model))
}

fn run(a: &Args) -> Result<String, String> {
    match a.command.as_str() {
        "generate" => generate(a),
        "tokenize" => tokenize(a),
        "perplexity" => ppl(a),
        "bench" => bench(a),
        c => Err(format!("unknown command {c:?}")),
    }
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        // NaN never wins; ties keep the lower id.
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

fn file_text(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn generate(a: &Args) -> Result<String, String> {
    let n = a.num("tokens", 32)?;
    let file = amx_gguf::GgufFile::open(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    // Ids in and out work on a file without a vocabulary (the tests' tiny models): no
    // text then, and no end-of-generation token.
    let tok = text::tokenizer_unless_ids(&file, &a.model, a.get("prompt-ids").is_some())?;
    let prompt = match (a.get("prompt-ids"), a.get("prompt"), &tok) {
        (Some(ids), _, _) => json::parse_ids(ids)?,
        (None, Some(p), Some(tok)) => text::encode(tok, p, true),
        _ => return Err("generate needs --prompt".into()),
    };
    drop(file);
    if prompt.is_empty() {
        return Err("the prompt has no tokens".into());
    }
    let mut engine = open(a, prompt.len().saturating_add(n.max(1)))?;
    let t0 = Instant::now();
    let logits = engine.step(&prompt, 1).map_err(|e| e.to_string())?;
    let prefill_s = t0.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(n);
    let mut next = argmax(&logits);
    let t1 = Instant::now();
    let mut decoded = 0usize;
    while out.len() < n {
        out.push(next);
        if tok.as_ref().is_some_and(|t| t.is_eog(next)) || out.len() == n {
            break;
        }
        let logits = engine.step(&[next], 1).map_err(|e| e.to_string())?;
        decoded += 1;
        next = argmax(&logits);
    }
    let decode_s = t1.elapsed().as_secs_f64();
    let txt = tok.as_ref().map(|t| text::decode(t, &out)).unwrap_or_default();
    if tok.is_none() {
        eprintln!("notice: {} has no tokenizer: the text is left empty", a.model);
    }
    let (pp, tg) = (prompt.len() as f64 / prefill_s, decoded as f64 / decode_s);
    if a.json {
        return Ok(format!(
            "{{\"prompt_ids\":{},\"generated_ids\":{},\"text\":{},\"prefill_tokens_per_s\":{},\"decode_tokens_per_s\":{}}}",
            json::ids(&prompt),
            json::ids(&out),
            json::string(&txt),
            json::num(pp),
            json::num(tg)
        ));
    }
    eprintln!("prefill {pp:.1} tokens/s, decode {tg:.1} tokens/s");
    Ok(format!("{txt}\nids: {out:?}"))
}

fn tokenize(a: &Args) -> Result<String, String> {
    let file = amx_gguf::GgufFile::open(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    let t = match (a.get("file"), a.get("prompt")) {
        (Some(f), _) => file_text(f)?,
        (None, Some(p)) => p.to_owned(),
        (None, None) => return Err("tokenize needs --prompt or --file".into()),
    };
    let ids = text::encode(&text::tokenizer(&file, &a.model)?, &t, false);
    Ok(if a.json { format!("{{\"ids\":{}}}", json::ids(&ids)) } else { format!("{ids:?}") })
}

fn ppl(a: &Args) -> Result<String, String> {
    let ctx = a.num("ctx", 512)?;
    let file = amx_gguf::GgufFile::open(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    // With --ids, a file without a vocabulary is fine (no BOS then).
    let tok = text::tokenizer_unless_ids(&file, &a.model, a.get("ids").is_some())?;
    let ids = match (a.get("ids"), a.get("file"), &tok) {
        (Some(f), _, _) => json::parse_ids(&file_text(f)?)?,
        (None, Some(f), Some(tok)) => text::encode(tok, &file_text(f)?, false),
        _ => return Err("perplexity needs --file".into()),
    };
    let bos = tok.as_ref().and_then(text::bos);
    drop(tok);
    drop(file);
    let chunks = a.get("chunks").map(|_| a.num("chunks", 0)).transpose()?;
    let mut engine = open(a, ctx)?;
    let t0 = Instant::now();
    let p = perplexity(&mut engine, &ids, ctx, bos, chunks, |c, n, ppl| {
        eprint!("\r[{c}/{n}] ppl {ppl:.4}");
        let _ = std::io::stderr().flush();
    })
    .map_err(|e| e.to_string())?;
    eprintln!(" ({:.1} s)", t0.elapsed().as_secs_f64());
    if p.saw_nan {
        eprintln!("warning: NaN in the logits");
    }
    Ok(if a.json {
        format!("{{\"ppl\":{},\"tokens\":{},\"chunks\":{}}}", json::num(p.ppl), p.tokens, p.chunks)
    } else {
        format!("ppl {:.4} ({} tokens, {} chunks of {ctx})", p.ppl, p.tokens, p.chunks)
    })
}

/// The median of `v` (the upper one of an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(a: &Args) -> Result<String, String> {
    let (p, d) = (a.num("prefill", 512)?, a.num("decode", 64)?);
    let repeat = a.num("repeat", 1)?;
    if p == 0 || repeat == 0 {
        return Err("--prefill and --repeat must be at least 1".into());
    }
    let mut engine = open(a, p.saturating_add(d))?;
    let vocab = engine.hparams().n_vocab;
    let prompt: Vec<u32> = (0..p).map(|i| ((i * 7919 + 13) % vocab) as u32).collect();
    // One warm-up run builds the step graphs and takes the AMX permission.
    engine.step(&prompt, 1).map_err(|e| e.to_string())?;
    let (mut pps, mut tgs) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        engine.reset();
        let t0 = Instant::now();
        let logits = engine.step(&prompt, 1).map_err(|e| e.to_string())?;
        pps.push(p as f64 / t0.elapsed().as_secs_f64());
        // Generation is timed from an empty cache, as llama-bench's tg test runs it
        // (its prompt and generation tests are separate): D single-token steps at
        // positions 0..D.
        let mut next = argmax(&logits);
        engine.reset();
        next = argmax(&engine.step(&[next], 1).map_err(|e| e.to_string())?);
        engine.reset();
        let t1 = Instant::now();
        for _ in 0..d {
            next = argmax(&engine.step(&[next], 1).map_err(|e| e.to_string())?);
        }
        tgs.push(d as f64 / t1.elapsed().as_secs_f64());
    }
    let (pp, tg) = (median(&mut pps), median(&mut tgs));
    Ok(if a.json {
        format!(
            "{{\"prefill_tokens_per_s\":{},\"decode_tokens_per_s\":{}}}",
            json::num(pp),
            json::num(tg)
        )
    } else {
        format!("pp{p}: {pp:.1} tokens/s, tg{d}: {tg:.1} tokens/s")
    })
}
