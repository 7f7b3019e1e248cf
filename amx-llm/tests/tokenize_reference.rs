//! The tokenizer against llama.cpp's ids on real models.
//!
//! Models come from the directory in `AMX_LLM_MODELS`; reference ids from
//! `../shared/reference` beside the repository (or the directory in `AMX_LLM_REFERENCE`).
//! Each test prints a notice and passes when its model or reference file is missing.

mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use amx_llm::tokenizer::Tokenizer;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";
/// The two models and their names in the reference files.
const MODELS: [(&str, &str); 2] = [("smollm2", SMOLLM2), ("gemma3", GEMMA3)];
const TEXTS: [&str; 7] =
    ["p1_capital", "p2_once", "p3_fib", "p4_rust", "p5_spaces", "p6_french", "gpl3_4k"];

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AMX_LLM_REFERENCE").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference")),
        PathBuf::from,
    );
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no reference directory {} (set AMX_LLM_REFERENCE)", dir.display());
        None
    }
}

fn tokenizer(file: &str) -> Option<Tokenizer> {
    support::tokenizer(file)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ids_of(json: &serde_json::Value) -> Vec<u32> {
    json["ids"]
        .as_array()
        .expect("ids array")
        .iter()
        .map(|v| u32::try_from(v.as_u64().expect("id")).expect("id fits u32"))
        .collect()
}

/// The first index where `a` and `b` differ, with some context, for a readable failure.
fn first_difference(tok: &Tokenizer, got: &[u32], want: &[u32]) -> String {
    let i = got.iter().zip(want).take_while(|(g, w)| g == w).count();
    let show = |ids: &[u32]| {
        ids.iter()
            .map(|&id| format!("{id}:{:?}", String::from_utf8_lossy(&tok.token_bytes(id))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lo = i.saturating_sub(3);
    format!(
        "lengths {} vs {}; first difference at {i}\n  got:  {}\n  want: {}",
        got.len(),
        want.len(),
        show(&got[lo..got.len().min(i + 5)]),
        show(&want[lo..want.len().min(i + 5)])
    )
}

#[test]
fn prompts_match_llama_cpp() {
    let Some(refs) = reference_dir() else { return };
    for (name, file) in MODELS {
        let Some(tok) = tokenizer(file) else { continue };
        let mut checked = 0;
        for text_name in TEXTS {
            let text = std::fs::read_to_string(refs.join(format!("texts/{text_name}.txt")))
                .expect("reference text");
            for add_special in [false, true] {
                let path = refs
                    .join(format!("tokenize/{name}__{text_name}__add_special_{add_special}.json"));
                if !path.is_file() {
                    eprintln!("skipped: no reference file {}", path.display());
                    continue;
                }
                let json = read_json(&path);
                assert_eq!(json["text"].as_str(), Some(text.as_str()), "{}", path.display());
                let parse_special = json["parse_special"].as_bool().unwrap_or(false);
                let want = ids_of(&json);
                for parse in [parse_special, !parse_special] {
                    let got = tok.encode(&text, add_special, parse);
                    assert!(
                        got == want,
                        "{name} {text_name} add_special={add_special} parse_special={parse}: {}",
                        first_difference(&tok, &got, &want)
                    );
                }
                checked += 1;
            }
        }
        eprintln!("{name}: {checked} reference tokenizations match");
    }
}

#[test]
fn whole_gpl3_matches_llama_perplexity() {
    let Some(refs) = reference_dir() else { return };
    for (name, _) in MODELS {
        let path = refs.join(format!("ppl/{name}__gpl3.json"));
        if !path.is_file() {
            eprintln!("skipped: no reference file {}", path.display());
            continue;
        }
        let json = read_json(&path);
        let text = json["text"].as_str().expect("text");
        let add_special = json["add_special"].as_bool().unwrap_or(true);
        let parse_special = json["parse_special"].as_bool().unwrap_or(false);
        let want = ids_of(&json);
        // Every model the reference lists (SmolLM2's MoE variants share its vocabulary).
        for file in json["models"].as_array().expect("models").iter().filter_map(|m| m.as_str()) {
            let Some(tok) = tokenizer(file) else { continue };
            // The reference says how llama-perplexity tokenized; GPL-3 holds no
            // special-token string, so the other setting must give the same ids.
            for parse in [parse_special, !parse_special] {
                let t = Instant::now();
                let got = tok.encode(text, add_special, parse);
                let took = t.elapsed();
                eprintln!(
                    "{file}: {} bytes -> {} ids in {took:?} (parse_special={parse})",
                    text.len(),
                    got.len()
                );
                assert!(
                    got == want,
                    "{file} GPL-3 parse_special={parse}: {}",
                    first_difference(&tok, &got, &want)
                );
                if !cfg!(debug_assertions) {
                    assert!(took.as_secs_f64() < 0.5, "{file}: tokenizing GPL-3 took {took:?}");
                }
            }
        }
    }
}

/// Texts with no llama.cpp reference: ids cannot be checked here, but decoding must give
/// the text back.
const ROUND_TRIP: &[&str] = &[
    "",
    " ",
    "\n\n\n",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\t\tand\r\nCRLF\n \n\t \u{a0}no-break\u{3000}ideographic",
    "digits 1234567890 0.5 3,14159 ١٢٣ ½",
    "emoji 😀👍🏽 👨‍👩‍👧 🇫🇷",
    "CJK 日本語のテキスト 中文 한국어",
    "mixed ÆØÅ ñ ß İ ǅ e\u{301} Ω ∑ ∞",
    "code: fn main() { println!(\"{}\", x?); } // don't won't I'M",
    "<|im_start|>user\nhi<|im_end|> <start_of_turn>model<end_of_turn><eos>",
    "\u{0}\u{1}\u{7f}\u{80}\u{ffff}\u{10ffff}",
];

#[test]
fn decode_inverts_encode() {
    for (name, file) in MODELS {
        let Some(tok) = tokenizer(file) else { continue };
        for text in ROUND_TRIP {
            for parse_special in [false, true] {
                let ids = tok.encode(text, false, parse_special);
                assert_eq!(
                    String::from_utf8_lossy(&tok.decode(&ids)),
                    *text,
                    "{name}: {text:?} (parse_special={parse_special}) gave {ids:?}"
                );
            }
        }
        assert!(tok.encode("", false, true).is_empty());
    }
}

#[test]
fn special_ids() {
    if let Some(tok) = tokenizer(SMOLLM2) {
        assert_eq!((tok.bos(), tok.eos(), tok.add_bos()), (Some(1), Some(2), false));
        assert_eq!(tok.vocab_size(), 49152);
        assert!(tok.is_eog(2) && tok.is_eog(0), "<|im_end|> and <|endoftext|> end generation");
        assert!(!tok.is_eog(1));
        assert_eq!(tok.token_bytes(1), b"<|im_start|>");
        assert_eq!(tok.encode("<|im_start|>user", false, true)[0], 1);
        assert_ne!(tok.encode("<|im_start|>user", false, false)[0], 1);
    }
    if let Some(tok) = tokenizer(GEMMA3) {
        assert_eq!((tok.bos(), tok.eos(), tok.add_bos()), (Some(2), Some(1), true));
        assert_eq!(tok.encode("", true, false), [2]);
        let eot = tok.encode("<end_of_turn>", false, true);
        assert_eq!(eot.len(), 1);
        assert!(tok.is_eog(eot[0]) && tok.is_eog(1));
        assert!(!tok.is_eog(2));
        assert_eq!(tok.token_bytes(2), b"<bos>");
    }
}
