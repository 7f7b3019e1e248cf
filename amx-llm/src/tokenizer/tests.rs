//! The whole tokenizer on tiny vocabularies written as GGUF metadata (no model file).

use amx_gguf::writer::Writer;
use amx_gguf::{Array, GgufFile, Value};

use super::{Tokenizer, TokenizerError};

fn strings(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| (*s).to_owned()).collect()))
}

fn build(kvs: Vec<(&str, Value)>) -> Result<Tokenizer, TokenizerError> {
    let mut w = Writer::new();
    for (k, v) in kvs {
        w = w.kv(k, v);
    }
    let (bytes, _) = w.build();
    Tokenizer::from_gguf(&GgufFile::parse(bytes).expect("test GGUF parses"))
}

/// A byte-level BPE vocabulary: 0 `<|end|>` (control), 1 `<x>` (user-defined), then
/// normal tokens.
fn bpe(pre: &str) -> Result<Tokenizer, TokenizerError> {
    let tokens =
        ["<|end|>", "<x>", "h", "e", "l", "o", "Ġ", "w", "he", "ll", "hell", "hello", "Ġw", "!"];
    let mut types = vec![1i32; tokens.len()];
    types[0] = 3;
    types[1] = 4;
    build(vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String(pre.into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.merges", strings(&["h e", "l l", "he ll", "hell o", "Ġ w"])),
        ("tokenizer.ggml.eos_token_id", Value::U32(0)),
    ])
}

#[test]
fn bpe_encodes_and_decodes() {
    let t = bpe("gpt2").unwrap();
    // "hello" merges fully; " w" is "Ġw"; "o" stays; "!" is a token.
    assert_eq!(t.encode("hello wo!", false, false), [11, 12, 5, 13]);
    assert_eq!(t.decode(&[11, 12, 5, 13]), b"hello wo!");
    assert_eq!(t.token_bytes(6), b" ");
    assert_eq!(t.token_bytes(0), b"<|end|>");
    assert_eq!(t.token_bytes(99), b"");
    assert!(t.is_eog(0));
    assert_eq!(t.eos(), Some(0));
    // llama.cpp's BPE default BOS (11) exists here, but gpt2 adds none.
    assert!(!t.add_bos());
    assert_eq!(t.vocab_size(), 14);
}

#[test]
fn bpe_special_tokens() {
    let t = bpe("gpt2").unwrap();
    assert_eq!(t.encode("he<|end|>he", false, true), [8, 0, 8]);
    // Without parse_special the control token is text; "<", "|", ... have no tokens.
    assert_eq!(t.encode("he<|end|>he", false, false), [8, 3, 8]);
    // A user-defined token is split out either way.
    assert_eq!(t.encode("he<x>he", false, false), [8, 1, 8]);
}

#[test]
fn empty_text() {
    let t = bpe("llama-bpe").unwrap();
    assert!(t.encode("", false, true).is_empty());
    // llama-bpe adds BOS by default: llama.cpp's default id 11 ("hello").
    assert_eq!(t.encode("", true, true), [11]);
    let s = spm(None).unwrap();
    assert!(s.encode("", false, false).is_empty());
    assert_eq!(s.encode("", true, false), [1]);
}

/// A SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, 256 byte tokens, then pieces.
fn spm(add_space_prefix: Option<bool>) -> Result<Tokenizer, TokenizerError> {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let pieces = [("▁", -1.0), ("a", -2.0), ("b", -2.0), ("▁a", -1.5), ("ab", -0.5), ("▁ab", -3.0)];
    let mut scores = vec![0.0f32; tokens.len()];
    for (p, s) in pieces {
        tokens.push(p.into());
        types.push(1);
        scores.push(s);
    }
    let mut kvs = vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
    ];
    if let Some(p) = add_space_prefix {
        kvs.push(("tokenizer.ggml.add_space_prefix", Value::Bool(p)));
    }
    build(kvs)
}

#[test]
fn spm_merges_by_score_with_byte_fallback() {
    let t = spm(None).unwrap();
    let (sp, a, b, sp_a, ab, sp_ab) = (259, 260, 261, 262, 263, 264);
    // "▁ab": "ab" (-0.5) merges before "▁a" (-1.5); then "▁" + "ab" = "▁ab".
    assert_eq!(t.encode("ab", false, false), [sp_ab]);
    assert_eq!(t.encode("ab", true, false), [1, sp_ab]);
    // "é" has no piece: its two UTF-8 bytes.
    assert_eq!(t.encode("a é", false, false), [sp_a, sp, 3 + 0xC3, 3 + 0xA9]);
    // The space llama.cpp puts before the text stays in the pieces.
    assert_eq!(t.decode(&t.encode("a é b", false, false)), " a é b".as_bytes());
    let _ = (a, b, ab);
    let t = spm(Some(false)).unwrap();
    assert_eq!(t.encode("ab", false, false), [ab]);
    assert_eq!(t.token_bytes(sp_a), b" a");
    assert_eq!(t.token_bytes(3 + 0x41), b"A");
    assert_eq!(t.token_bytes(1), b"<s>");
    assert!(t.is_eog(2) && !t.is_eog(1));
}

#[test]
fn errors_name_what_is_wrong() {
    let e = bpe("no-such-pre").unwrap_err();
    assert_eq!(e, TokenizerError::UnsupportedPre { pre: "no-such-pre".into() });
    assert!(e.to_string().contains("no-such-pre"));
    let e = build(vec![
        ("tokenizer.ggml.model", Value::String("bert".into())),
        ("tokenizer.ggml.tokens", strings(&["a"])),
    ])
    .unwrap_err();
    assert!(matches!(&e, TokenizerError::UnsupportedModel { model } if model == "bert"), "{e}");
    let e = build(vec![("tokenizer.ggml.model", Value::String("llama".into()))]).unwrap_err();
    assert!(e.to_string().contains("tokenizer.ggml.tokens"), "{e}");
    let e = build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", strings(&["a", "b", "a"])),
    ])
    .unwrap_err();
    assert!(matches!(e, TokenizerError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("repeats token 0"), "{e}");
    let e = build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", strings(&["a", "b"])),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0]))),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("1 scores for 2 tokens"), "{e}");
    let e = build(vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strings(&["a"])),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("tokenizer.ggml.merges"), "{e}");
    let e = build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", strings(&["a"])),
        ("tokenizer.ggml.add_bos_token", Value::U32(1)),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("add_bos_token"), "{e}");
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tokenizer>();
    check::<TokenizerError>();
}

#[test]
fn every_listed_pre_tokenizer_builds() {
    for pre in super::pretokenize::SUPPORTED_PRE {
        bpe(pre).unwrap_or_else(|e| panic!("{pre}: {e}"));
    }
}

/// Random bytes read as UTF-8 lossily (invalid sequences become U+FFFD), biased toward
/// the characters the splitters and special-token search branch on.
fn random_texts(count: usize) -> Vec<String> {
    // xorshift64*: reproducible without a dependency.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let pool: &[&[u8]] = &[
        b" ",
        b"\n",
        b"\r\n",
        b"\t",
        b"'",
        b"'s",
        b"'LL",
        b"7",
        b"h",
        b"he",
        b"<|end|>",
        b"<x>",
        b"<|end",
        b"\xe2\x96\x81",
        b"\xc3\xa9",
        b"\xcc\x81",
        b"\xf0\x9f\x98\x80",
        b"\xe2\x80\x8d",
        b"\xc2\xa0",
        b"\x00",
        b"\xff",
        b"\xe0\x80",
        b"\xed\xa0\x80",
    ];
    (0..count)
        .map(|_| {
            let mut bytes = Vec::new();
            for _ in 0..next() % 24 {
                let r = next();
                if r % 3 == 0 {
                    bytes.push((r >> 8) as u8);
                } else {
                    bytes.extend_from_slice(pool[(r >> 8) as usize % pool.len()]);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

#[test]
fn random_bytes_never_panic() {
    let texts = random_texts(300);
    let mut tokenizers: Vec<Tokenizer> =
        super::pretokenize::SUPPORTED_PRE.iter().map(|pre| bpe(pre).unwrap()).collect();
    tokenizers.push(spm(None).unwrap());
    tokenizers.push(spm(Some(false)).unwrap());
    for tok in &tokenizers {
        for text in &texts {
            for (add, parse) in [(true, true), (true, false), (false, true), (false, false)] {
                let ids = tok.encode(text, add, parse);
                assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()), "{text:?}");
                let _ = tok.decode(&ids);
            }
        }
    }
}

/// A SentencePiece vocabulary laid out as the GGUF files given to `llama-tokenize`: `<unk>`,
/// `<s>`, `</s>`, the 256 byte tokens (score -1000), then `pieces` (ids from 259), no
/// space prefix.
fn spm_pieces(pieces: &[(&str, f32)]) -> Tokenizer {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![-1000.0f32; 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(-1000.0);
    }
    for &(p, s) in pieces {
        tokens.push(p.into());
        types.push(1);
        scores.push(s);
    }
    build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
        ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
    ])
    .unwrap()
}

/// Scores `-0.0` and `0.0` tie, and a tie merges the leftmost pair. Expected ids from
/// llama.cpp's `llama-tokenize --no-bos` on the same vocabulary written as a GGUF file
/// (the differential harness found amx-llm merging `bc` first, ordering `-0.0 < 0.0`).
#[test]
fn spm_negative_zero_score_ties_with_zero() {
    let t = spm_pieces(&[("a", -5.0), ("b", -5.0), ("c", -5.0), ("ab", -0.0), ("bc", 0.0)]);
    assert_eq!(t.encode("abc", false, false), [262, 261]);
    assert_eq!(t.encode("abcabc", false, false), [262, 261, 262, 261]);
    assert_eq!(t.encode("bcab", false, false), [263, 262]);
}

/// Two overlapping user-defined tokens of one length: which is split out first is the
/// order libstdc++'s `std::sort` leaves them in among the 17 special tokens (by length
/// alone), here `ba` (274) before `ab` (261) although `ab` has the lower id. Expected ids
/// from llama.cpp's `llama-tokenize --no-bos --no-parse-special` on the same vocabulary
/// as a GGUF file (the harness's tiny vocabularies found amx-llm splitting `ab` first).
#[test]
fn overlapping_specials_of_one_length_in_std_sort_order() {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    tokens.extend(["a", "b"].map(String::from));
    types.extend([1, 1]);
    let fillers = (0..10).map(|i| format!("x{i}")).chain((0..2).map(|i| format!("y{i}")));
    let specials: Vec<String> =
        std::iter::once("ab".into()).chain(fillers).chain(std::iter::once("ba".into())).collect();
    types.extend(specials.iter().map(|_| 4));
    tokens.extend(specials);
    let scores = vec![0.0f32; tokens.len()];
    let t = build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
        ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
    ])
    .unwrap();
    assert_eq!(t.encode("aba", false, false), [259, 274]);
    assert_eq!(t.encode("xabay0ba", false, false), [123, 259, 274, 272, 274]);
}

/// Two fill-in-the-middle prefix names, both normal tokens: llama.cpp takes the first its
/// `token_to_id` hash map lists (`<|fim_prefix|>`, 260, not the lower id `<PRE>`) and makes
/// it a control token, split out with `parse_special`. Expected ids from llama.cpp's
/// `llama-tokenize --no-bos` on the same vocabulary as a GGUF file (the harness's tiny
/// vocabularies found amx-llm taking the lowest id).
#[test]
fn fim_name_picked_in_llama_cpp_map_order() {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    tokens.extend(["<PRE>", "<|fim_prefix|>"].map(String::from));
    types.extend([1, 1]);
    let scores = vec![0.0f32; tokens.len()];
    let t = build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
        ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
    ])
    .unwrap();
    let pre_bytes = [63, 83, 85, 72, 65];
    let mut want = vec![260];
    want.extend(pre_bytes);
    assert_eq!(t.encode("<|fim_prefix|><PRE>", false, true), want);
    // Unparsed, both are their bytes.
    let mut bytes = vec![63, 127, 105, 108, 112, 98, 115, 117, 104, 105, 108, 123, 127, 65];
    bytes.extend(pre_bytes);
    assert_eq!(t.encode("<|fim_prefix|><PRE>", false, false), bytes);
}
