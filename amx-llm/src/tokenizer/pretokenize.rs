//! The BPE pre-tokenizer: `tokenizer.ggml.pre` names a list of regexes, each cutting the
//! pieces of the one before into smaller pieces, as llama.cpp's `unicode_regex_split` does.
//!
//! llama.cpp runs the GPT-2 and Llama-3 family regexes as hand-written loops ([`super::split`])
//! and the others with `std::regex`. For a regex with `\p{..}` classes it first collapses the
//! text: ASCII stays, every other code point becomes one stand-in per Unicode category
//! (whitespace becomes `\v`), and each `\p{X}` becomes "X's stand-in or X's ASCII members".
//! This module does the same with stand-ins from the private use area, so the classes match
//! exactly what llama.cpp's do (not what the current Unicode tables say).

use fancy_regex::Regex;

use super::error::TokenizerError;
use super::split;
use super::unicode::{ACCENT_MARK, BYTE_CHARS, Flags, LETTER, NUMBER, PUNCTUATION, SYMBOL};

/// One pass of the pre-tokenizer.
#[derive(Debug)]
enum Splitter {
    Gpt2,
    Llama3 { max_digits: usize, marks: bool },
    Regex { re: Box<Regex>, collapsed: bool },
}

/// A pre-tokenizer: regex passes, then (for byte-level BPE) GPT-2's byte-to-unicode
/// mapping of every piece.
#[derive(Debug)]
pub(super) struct PreTokenizer {
    splitters: Vec<Splitter>,
    byte_encode: bool,
}

/// What a `tokenizer.ggml.pre` value sets besides the regexes.
#[derive(Debug)]
pub(super) struct PreOptions {
    /// A whole piece that is a token is emitted without merging (llama.cpp's `ignore_merges`).
    pub(super) ignore_merges: bool,
    /// The default of `add_bos` when `tokenizer.ggml.add_bos_token` is absent.
    pub(super) add_bos: bool,
    /// The default BOS id is dropped (llama.cpp's ChatGLM rule).
    pub(super) no_default_bos: bool,
}

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DEFAULT_PUNCT: &str = r"[\p{P}\$\+<=>\^~\|]+";
const CONTRACTIONS: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/// The `tokenizer.ggml.pre` values implemented here (each is llama.cpp's list of regexes).
#[rustfmt::skip]
pub(super) const SUPPORTED_PRE: &[&str] = &[
    "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
    "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe", "tekken", "gpt-4o", "llama4", "kanana2",
    "talkie", "minimax-m2", "deepseek-coder", "deepseek-v3", "hunyuan-dense", "joyai-llm",
    "hy_v4", "falcon", "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
    "minerva-7b", "mellum2", "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat",
    "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jina-v1-en",
    "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling",
    "exaone4", "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan",
    "megrez", "solar-open", "grok-2", "qwen35", "chatglm-bpe", "glm4", "glm5", "poro-chat",
    "bloom", "gpt3-finnish", "viking", "seed-coder", "bailingmoe", "bailingmoe2", "llada-moe",
    "ufakzeka", "minicpm5",
];

/// The regexes and options of a `tokenizer.ggml.pre` value, as llama.cpp's
/// `llm_tokenizer_bpe` lists them; `None` for a value this crate does not know.
fn regexes_of(pre: &str) -> Option<(Vec<String>, PreOptions)> {
    let mut opts = PreOptions { ignore_merges: false, add_bos: false, no_default_bos: false };
    let s = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    let regexes = match pre {
        "default" => s(&[DEFAULT_PUNCT, GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => {
            opts.ignore_merges = true;
            opts.add_bos = true;
            s(&[LLAMA3])
        }
        "dbrx" | "smaug-bpe" => s(&[LLAMA3]),
        "tekken" => {
            opts.ignore_merges = true;
            opts.add_bos = true;
            s(&[
                r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ])
        }
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => s(&[&format!(
            r"[^\r\n\p{{L}}\p{{N}}]?((?=[\p{{L}}])([^a-z]))*((?=[\p{{L}}])([^A-Z]))+{CONTRACTIONS}?|[^\r\n\p{{L}}\p{{N}}]?((?=[\p{{L}}])([^a-z]))+((?=[\p{{L}}])([^A-Z]))*{CONTRACTIONS}?|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        )]),
        "deepseek-coder" => {
            s(&["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"])
        }
        "deepseek-v3" | "hunyuan-dense" | "joyai-llm" | "hy_v4" => s(&[
            r"\p{N}{1,3}",
            "[一-龥぀-ゟ゠-ヿ]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ]),
        "falcon" => s(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => s(&[r"\p{N}", GPT2]),
        // llama.cpp spells GPT-2's "gpt-2" (and rejects "gpt2"): "gpt2" is an alias here.
        "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
        | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code"
        | "roberta-bpe" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling" | "exaone4" => {
            s(&[GPT2])
        }
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "stablelm2" | "hunyuan" | "megrez"
        | "solar-open" | "grok-2" => s(&[QWEN2]),
        "qwen35" => s(&[QWEN35]),
        "chatglm-bpe" => {
            opts.no_default_bos = true;
            s(&[LLAMA3])
        }
        "glm4" | "glm5" => {
            opts.no_default_bos = true;
            opts.ignore_merges = true;
            s(&[LLAMA3])
        }
        "poro-chat" | "bloom" | "gpt3-finnish" => s(&[" ?[^(\\s|.,!?…。，、।۔،)]+"]),
        "viking" => s(&[" ?[^(\\s|.,!?…。，、।۔،)]+", r"\p{N}"]),
        "seed-coder" => s(&[&format!(
            r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1}}| ?[^\s\p{{L}}\p{{N}}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"
        )]),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => s(&[
            r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
        ]),
        "ufakzeka" => s(&[
            r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        "minicpm5" => {
            opts.ignore_merges = true;
            s(&[
                r"\p{N}{1,3}",
                &format!(
                    r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}+| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
                ),
            ])
        }
        _ => return None,
    };
    Some((regexes, opts))
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre = pre` (`None` or empty
    /// when the key is absent: llama.cpp's `default`).
    ///
    /// Errors: [`TokenizerError::UnsupportedPre`] for a value not implemented here.
    pub(super) fn for_pre(pre: Option<&str>) -> Result<(PreTokenizer, PreOptions), TokenizerError> {
        // llama.cpp reads an empty value as absent.
        let name = pre.filter(|p| !p.is_empty()).unwrap_or("default");
        let unsupported = || TokenizerError::UnsupportedPre { pre: name.to_owned() };
        if !SUPPORTED_PRE.contains(&name) {
            return Err(unsupported());
        }
        let (regexes, opts) = regexes_of(name).ok_or_else(unsupported)?;
        let splitters = regexes
            .iter()
            .map(|r| splitter(r).map_err(|_| unsupported()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((PreTokenizer::new(splitters, true), opts))
    }

    fn new(splitters: Vec<Splitter>, byte_encode: bool) -> PreTokenizer {
        PreTokenizer { splitters, byte_encode }
    }

    /// Splits `text` into pieces (byte-encoded when the tokenizer is byte-level), in order.
    pub(super) fn split(&self, text: &str) -> Vec<String> {
        let cpts: Vec<char> = text.chars().collect();
        let flags: Vec<Flags> = cpts.iter().map(|&c| Flags::of(c)).collect();
        let mut offsets = vec![cpts.len()];
        for s in &self.splitters {
            offsets = match s {
                Splitter::Gpt2 => split::gpt2(&cpts, &flags, &offsets),
                Splitter::Llama3 { max_digits, marks } => {
                    split::llama3(&cpts, &flags, &offsets, *max_digits, *marks)
                }
                Splitter::Regex { re, collapsed } => {
                    regex_split(re, *collapsed, &cpts, &flags, &offsets)
                }
            };
        }
        let mut words = Vec::with_capacity(offsets.len());
        let mut start = 0;
        let mut buf = [0u8; 4];
        for len in offsets {
            let piece = &cpts[start..start + len];
            start += len;
            let word: String = if self.byte_encode {
                piece
                    .iter()
                    .flat_map(|c| {
                        let bytes = c.encode_utf8(&mut buf).as_bytes().to_vec();
                        bytes.into_iter().map(|b| BYTE_CHARS[usize::from(b)])
                    })
                    .collect()
            } else {
                piece.iter().collect()
            };
            words.push(word);
        }
        words
    }
}

/// The splitter for one regex: llama.cpp's hand-written loop when it has one for exactly
/// this regex, else the regex itself (collapsed when it uses `\p{..}` classes).
fn splitter(regex: &str) -> Result<Splitter, Box<fancy_regex::Error>> {
    Ok(match regex {
        GPT2 => Splitter::Gpt2,
        LLAMA3 => Splitter::Llama3 { max_digits: 3, marks: false },
        QWEN2 => Splitter::Llama3 { max_digits: 1, marks: false },
        QWEN35 => Splitter::Llama3 { max_digits: 1, marks: true },
        _ => {
            let collapsed = CATEGORY_CLASSES.iter().any(|(name, _)| regex.contains(name));
            let pattern = translate(regex, collapsed);
            Splitter::Regex { re: Box::new(Regex::new(&pattern).map_err(Box::new)?), collapsed }
        }
    })
}

/// The `\p{..}` classes llama.cpp collapses, and the category each stands for.
const CATEGORY_CLASSES: [(&str, u8); 10] = [
    (r"\p{N}", NUMBER),
    (r"\p{L}", LETTER),
    (r"\p{P}", PUNCTUATION),
    (r"\p{M}", ACCENT_MARK),
    (r"\p{S}", SYMBOL),
    (r"\p{Lu}", LETTER),
    (r"\p{Ll}", LETTER),
    (r"\p{Lt}", LETTER),
    (r"\p{Lm}", LETTER),
    (r"\p{Lo}", LETTER),
];

/// The stand-in of a non-ASCII code point of category `category` in collapsed text.
fn stand_in(category: u8) -> char {
    let k = match category {
        NUMBER => 1,
        LETTER => 2,
        PUNCTUATION => 3,
        ACCENT_MARK => 4,
        SYMBOL => 5,
        _ => 0,
    };
    char::from_u32(0xE0D0 + k).unwrap_or('\u{E0D0}')
}

/// The class body (without brackets) llama.cpp puts for `\p{X}` in a collapsed regex: the
/// stand-in and the ASCII members it lists for the category.
fn class_body(category: u8) -> String {
    let ascii = match category {
        NUMBER => r"0-9",
        LETTER => r"A-Za-z",
        PUNCTUATION => r"!-#%-*,-/:-;?-@\[-\]_\{\}",
        SYMBOL => r"\$\+<->\^`\|~",
        _ => "",
    };
    format!("\\x{{{:X}}}{ascii}", stand_in(category) as u32)
}

/// Rewrites a llama.cpp (ECMAScript) regex for fancy-regex: `\p{X}` as in llama.cpp's
/// collapsed form when `collapsed`, and `\d` as ECMAScript's ASCII digits.
fn translate(regex: &str, collapsed: bool) -> String {
    let mut out = String::with_capacity(regex.len() * 2);
    let mut inside = false;
    let mut rest = regex;
    while let Some(c) = rest.chars().next() {
        if collapsed
            && let Some((name, cat)) = CATEGORY_CLASSES.iter().find(|(n, _)| rest.starts_with(n))
        {
            let body = class_body(*cat);
            if inside {
                out.push_str(&body);
            } else {
                out.push('[');
                out.push_str(&body);
                out.push(']');
            }
            rest = &rest[name.len()..];
            continue;
        }
        if c == '\\' {
            let next = rest[1..].chars().next();
            match next {
                Some('d') => out.push_str(if inside { "0-9" } else { "[0-9]" }),
                Some('D') if !inside => out.push_str("[^0-9]"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            rest = &rest[1 + next.map_or(0, char::len_utf8)..];
            continue;
        }
        match c {
            '[' => inside = true,
            ']' => inside = false,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// One regex pass with a regex engine, as llama.cpp's `unicode_regex_split_stl`: within
/// each chunk, every match is a piece and so is every gap between matches.
fn regex_split(
    re: &Regex,
    collapsed: bool,
    cpts: &[char],
    flags: &[Flags],
    offsets: &[usize],
) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    let mut haystack = String::new();
    let mut char_at = Vec::new();
    for &len in offsets {
        let (chunk, chunk_flags) = (&cpts[start..start + len], &flags[start..start + len]);
        start += len;
        haystack.clear();
        char_at.clear();
        for (k, (&c, &f)) in chunk.iter().zip(chunk_flags).enumerate() {
            // std::regex's \s is ASCII only: llama.cpp turns other whitespace into \v.
            let mapped = if (c as u32) < 0x80 {
                c
            } else if f.whitespace {
                '\u{0B}'
            } else if collapsed {
                stand_in(f.category)
            } else {
                c
            };
            haystack.push(mapped);
            // char_at[byte] = the chunk index of the code point holding that byte.
            char_at.resize(haystack.len(), k);
        }
        char_at.push(len);
        let mut last = 0;
        for m in re.find_iter(&haystack) {
            let Ok(m) = m else {
                // A regex that gives up (backtrack limit) leaves the rest of the chunk whole.
                break;
            };
            let (ms, me) = (char_at[m.start()], char_at[m.end()]);
            if ms > last {
                out.push(ms - last);
            }
            if me > ms {
                out.push(me - ms);
            }
            last = me;
        }
        if last < len {
            out.push(len - last);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::unicode::char_to_byte;

    /// The pieces of `text` under `pre`, byte mapping undone.
    fn pieces(pre: &str, text: &str) -> Vec<String> {
        let (p, _) = PreTokenizer::for_pre(Some(pre)).unwrap();
        p.split(text)
            .iter()
            .map(|w| String::from_utf8(w.chars().filter_map(char_to_byte).collect()).unwrap())
            .collect()
    }

    #[test]
    fn regex_passes_cut_pieces_of_pieces() {
        // default: punctuation runs, then GPT-2, then digit runs, then digit triples.
        assert_eq!(
            pieces("default", "Hello, world! 12345 $5"),
            ["Hello", ",", " world", "!", " ", "123", "45", " ", "$", "5"]
        );
        // smollm: every digit alone (non-ASCII digits too, through the collapsed text).
        assert_eq!(pieces("smollm", "x١٢ 34"), ["x", "١", "٢", " ", "3", "4"]);
        assert_eq!(pieces("deepseek-coder", "ab\ncd"), ["ab", "\n", "cd"]);
    }

    #[test]
    fn collapsed_regex_translation() {
        assert_eq!(translate(r"\p{N}", true), r"[\x{E0D1}0-9]");
        assert_eq!(translate(r"[^\s\p{L}]\d", true), r"[^\s\x{E0D2}A-Za-z][0-9]");
        assert_eq!(translate(r"\p{Han}+", false), r"\p{Han}+");
    }

    /// The pieces of `text` under one regex, through the regex engine (collapsed text).
    fn engine_pieces(regex: &str, text: &str) -> Vec<usize> {
        let re = Regex::new(&translate(regex, true)).unwrap();
        let cpts: Vec<char> = text.chars().collect();
        let flags: Vec<Flags> = cpts.iter().map(|&c| Flags::of(c)).collect();
        regex_split(&re, true, &cpts, &flags, &[cpts.len()])
    }

    #[test]
    fn hand_written_splitters_agree_with_their_regexes() {
        let texts = [
            "Hello world's  12 ok!!\n\n  x ",
            "I'M 12345 a.b\n\n  x\r\n\ty  ",
            "  leading spaces and\ttabs\nnewlines",
            "Émile a mangé 3 crêpes à 12h30 — délicieux!",
            "code: fn main() { println!(\"{}\", x?); } // don't won't",
            "日本語のテキスト 中文 한국어 😀👍🏽 ١٢٣ ½ e\u{301}",
            "a\u{a0}b\u{3000}c \u{2028} d\n \n\t \r",
            "'s 'S 'll 'LL 've x'd 'q",
            " ",
            "   ",
            "!",
        ];
        for text in texts {
            let cpts: Vec<char> = text.chars().collect();
            let flags: Vec<Flags> = cpts.iter().map(|&c| Flags::of(c)).collect();
            let n = [cpts.len()];
            assert_eq!(split::gpt2(&cpts, &flags, &n), engine_pieces(GPT2, text), "gpt2 {text:?}");
            assert_eq!(
                split::llama3(&cpts, &flags, &n, 3, false),
                engine_pieces(LLAMA3, text),
                "llama3 {text:?}"
            );
            assert_eq!(
                split::llama3(&cpts, &flags, &n, 1, false),
                engine_pieces(QWEN2, text),
                "qwen2 {text:?}"
            );
            assert_eq!(
                split::llama3(&cpts, &flags, &n, 1, true),
                engine_pieces(QWEN35, text),
                "qwen35 {text:?}"
            );
        }
    }
}
