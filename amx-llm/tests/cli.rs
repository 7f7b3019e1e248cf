//! The command line's contract: JSON keys, one error line and exit code 1, on a tiny
//! model written here (no model file needed).

mod tiny;

use std::process::Command;

fn amx_llm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_amx-llm")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn tiny_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("amx-llm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, tiny::build(tiny::BASE, 5).file).unwrap();
    path
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s:?}"))
}

#[test]
fn generate_perplexity_and_bench_print_their_json() {
    let model = tiny_file("generate.gguf");
    let m = model.to_str().unwrap();
    let (ok, out, err) =
        amx_llm(&["generate", m, "--prompt-ids", "1,2,3", "--tokens", "5", "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["prompt_ids"], serde_json::json!([1, 2, 3]));
    assert!(v["generated_ids"].as_array().unwrap().len() <= 5);
    assert!(v["text"].is_string());
    for key in ["prefill_tokens_per_s", "decode_tokens_per_s"] {
        assert!(v[key].as_f64().is_some() || v[key].is_null(), "{key} in {out}");
    }
    let ids: Vec<String> = (0..80).map(|i| ((i * 7) % 40).to_string()).collect();
    let ids_file = model.with_extension("ids.json");
    std::fs::write(&ids_file, format!("{{\"ids\": [{}]}}", ids.join(","))).unwrap();
    let idf = ids_file.to_str().unwrap();
    let (ok, out, err) =
        amx_llm(&["perplexity", m, "--file", idf, "--ids", idf, "--ctx", "16", "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!((v["tokens"].as_u64(), v["chunks"].as_u64()), (Some(80), Some(5)));
    assert!(v["ppl"].as_f64().unwrap() > 1.0);
    let (ok, out, err) = amx_llm(&["bench", m, "--prefill", "8", "--decode", "4", "--json"]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert!(v["prefill_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_models_and_arguments_are_one_error_line_and_exit_code_1() {
    let good = tiny_file("good.gguf");
    let m = good.to_str().unwrap();
    let bad = tiny_file("bad.gguf").with_extension("txt");
    std::fs::write(&bad, "not a gguf file").unwrap();
    for args in [
        vec!["bench", "/nonexistent/model.gguf"],
        vec!["bench", bad.to_str().unwrap()],
        vec!["generate", "/nonexistent/model.gguf", "--prompt-ids", "1", "--tokens", "x"],
        vec!["frobnicate", "model.gguf"],
        vec!["bench", "model.gguf", "--nope", "1"],
        vec!["bench", m, "--threads", "5000"],
        vec!["bench", m, "--threads", "0"],
        vec!["perplexity", m, "--ids", m, "--ctx", "2"],
        vec!["generate", m, "--prompt-ids", "999999"],
        vec!["generate", m, "--prompt-ids", "1", "--tokens", "18446744073709551615"],
        vec!["bench", m, "--prefill", "18446744073709551615", "--decode", "9"],
        vec!["bench", m, "--prefill", "4000000000"],
    ] {
        let (ok, out, err) = amx_llm(&args);
        assert!(!ok, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("amx-llm: "), "{err}");
    }
}
