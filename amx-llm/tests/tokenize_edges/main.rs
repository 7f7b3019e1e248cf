//! The tokenizer against llama.cpp's ids on edge-case texts (contractions, digit runs,
//! whitespace mixes, combining marks, scripts, emoji sequences, odd code points, special
//! tokens in text, long runs, code), and random byte soup on the real models never panics.
//!
//! The expected ids ([`ids`]) are llama.cpp's, hard-coded; `amx-llm/scripts/tokenizer_diff.py`
//! is the differential harness these texts came out of. Models come from the directory in
//! `AMX_LLM_MODELS`; each test prints a notice and passes when a model file is missing.

mod ids;
#[path = "../support.rs"]
mod support;

use amx_llm::tokenizer::Tokenizer;

/// One text and llama.cpp's ids for it without BOS: with special tokens parsed (`parse`)
/// and not (`plain`, `None` when the same).
pub(crate) struct Case {
    name: &'static str,
    text: &'static str,
    parse: &'static [u32],
    plain: Option<&'static [u32]>,
}

fn tokenizer(file: &str) -> Option<Tokenizer> {
    support::tokenizer(file)
}

/// `(file, cases, BOS that llama-tokenize puts first without --no-bos)`.
const MODELS: [(&str, &[Case], Option<u32>); 2] = [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", ids::SMOLLM2, None),
    ("gemma-3-270m-q4_k_m.gguf", ids::GEMMA3, Some(2)),
];

#[test]
fn edge_cases_match_llama_tokenize() {
    for (file, cases, bos) in MODELS {
        let Some(tok) = tokenizer(file) else { continue };
        for case in cases {
            let plain = case.plain.unwrap_or(case.parse);
            for (parse_special, want) in [(true, case.parse), (false, plain)] {
                let got = tok.encode(case.text, false, parse_special);
                assert_eq!(got, want, "{file} {} parse_special={parse_special}", case.name);
                let with_bos: Vec<u32> = bos.into_iter().chain(want.iter().copied()).collect();
                let got = tok.encode(case.text, true, parse_special);
                assert_eq!(got, with_bos, "{file} {} add_special", case.name);
            }
        }
        eprintln!("{file}: {} edge cases match", cases.len());
    }
}

/// xorshift64*: reproducible random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_bytes_never_panic_on_real_models() {
    for (file, _, _) in MODELS {
        let Some(tok) = tokenizer(file) else { continue };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..500 {
            let len = (rng.next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            for (add, parse) in [(true, true), (true, false), (false, true), (false, false)] {
                let ids = tok.encode(&text, add, parse);
                let _ = tok.decode(&ids);
            }
        }
    }
}
