//! Special tokens: which ids are BOS, EOS, end-of-generation..., and splitting special-token
//! strings out of the text before tokenizing it (llama.cpp's `tokenizer_st_partition`).

use std::collections::BTreeSet;

use amx_gguf::GgufFile;

use super::error::TokenizerError;
use super::vocab::{self, Vocab, attr};
use super::{cxx_map, cxx_sort};

/// A piece of the text to tokenize: raw text (a byte range of the input) or a special token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fragment {
    /// `text[start..end]`.
    Text { start: usize, end: usize },
    /// A special token found in the text.
    Token(u32),
}

/// Splits every occurrence of a special token out of `text`, longest tokens first, as
/// llama.cpp does: `specials` is the candidate list in that order. Control and unknown
/// tokens are split only with `parse_special`; user-defined ones always are.
pub(super) fn partition(
    text: &str,
    vocab: &Vocab,
    specials: &[u32],
    parse_special: bool,
) -> Vec<Fragment> {
    let mut fragments = if text.is_empty() {
        Vec::new()
    } else {
        vec![Fragment::Text { start: 0, end: text.len() }]
    };
    for &id in specials {
        let a = vocab.attr(id);
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let needle = vocab.texts[id as usize].as_str();
        // Most special tokens never occur: look once before rebuilding the list.
        if !text.contains(needle) {
            continue;
        }
        let mut next = Vec::with_capacity(fragments.len() + 2);
        for f in fragments {
            let Fragment::Text { start, end } = f else {
                next.push(f);
                continue;
            };
            let mut pos = start;
            while let Some(found) = text[pos..end].find(needle) {
                let m = pos + found;
                let mut left_end = m;
                if a & attr::LSTRIP != 0 {
                    while left_end > pos && text.as_bytes()[left_end - 1].is_ascii_whitespace_c() {
                        left_end -= 1;
                    }
                }
                if left_end > pos {
                    next.push(Fragment::Text { start: pos, end: left_end });
                }
                next.push(Fragment::Token(id));
                pos = m + needle.len();
                if a & attr::RSTRIP != 0 {
                    while pos < end && text.as_bytes()[pos].is_ascii_whitespace_c() {
                        pos += 1;
                    }
                }
            }
            if pos < end {
                next.push(Fragment::Text { start: pos, end });
            }
        }
        fragments = next;
    }
    fragments
}

/// C's `isspace` in the "C" locale (which, unlike [`u8::is_ascii_whitespace`], includes `\v`).
trait CSpace {
    fn is_ascii_whitespace_c(&self) -> bool;
}

impl CSpace for u8 {
    fn is_ascii_whitespace_c(&self) -> bool {
        matches!(self, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
    }
}

/// The special-token candidates for [`partition`]: control, user-defined and unknown
/// tokens, longest string first. Tokens of one length stay in the order libstdc++'s
/// `std::sort` leaves them in llama.cpp (it decides which of two overlapping tokens of that
/// length is split out first).
pub(super) fn special_candidates(vocab: &Vocab) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..vocab.len() as u32)
        .filter(|&id| vocab.attr(id) & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
        .collect();
    let len = |id: u32| vocab.texts[id as usize].len();
    cxx_sort::sort(&mut ids, |&a, &b| len(a) > len(b));
    ids
}

/// Token strings llama.cpp takes for end-of-generation whatever their type.
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

const EOT_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_NAMES: &[&str] = &["<|eom_id|>"];
const FIM_PRE_NAMES: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_NAMES: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_NAMES: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_NAMES: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_NAMES: &[&str] =
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_NAMES: &[&str] = &["<|file_sep|>"];

/// The special ids: BOS, EOS, unknown, and those that decide end-of-generation or get the
/// control attribute as in llama.cpp.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SpecialIds {
    pub(super) bos: Option<u32>,
    pub(super) eos: Option<u32>,
    pub(super) unk: Option<u32>,
    pub(super) eot: Option<u32>,
    pub(super) eom: Option<u32>,
    pub(super) fim_pre: Option<u32>,
    pub(super) fim_suf: Option<u32>,
    pub(super) fim_mid: Option<u32>,
    pub(super) fim_pad: Option<u32>,
    pub(super) fim_rep: Option<u32>,
    pub(super) fim_sep: Option<u32>,
}

impl SpecialIds {
    /// Replaces the defaults (dropping those past the `n` tokens) by the metadata's
    /// `tokenizer.ggml.*_token_id` values; a value past the vocabulary keeps the default,
    /// as in llama.cpp.
    ///
    /// Errors: [`TokenizerError::Metadata`] for a value that is not an integer.
    pub(super) fn read(&mut self, file: &GgufFile, n: usize) -> Result<(), TokenizerError> {
        let in_range = |id: Option<u32>| id.filter(|&id| (id as usize) < n);
        for id in [&mut self.bos, &mut self.eos, &mut self.unk] {
            *id = in_range(*id);
        }
        let slots = [
            ("bos", &mut self.bos),
            ("eos", &mut self.eos),
            ("unknown", &mut self.unk),
            ("eot", &mut self.eot),
            ("eom", &mut self.eom),
            ("fim_pre", &mut self.fim_pre),
            ("fim_suf", &mut self.fim_suf),
            ("fim_mid", &mut self.fim_mid),
            ("fim_pad", &mut self.fim_pad),
            ("fim_rep", &mut self.fim_rep),
            ("fim_sep", &mut self.fim_sep),
        ];
        for (name, id) in slots {
            if let Some(v) =
                in_range(vocab::opt_id(file, &format!("tokenizer.ggml.{name}_token_id"))?)
            {
                *id = Some(v);
            }
        }
        // The deprecated keys, read after the new ones as llama.cpp does.
        for (name, id) in [
            ("prefix", &mut self.fim_pre),
            ("suffix", &mut self.fim_suf),
            ("middle", &mut self.fim_mid),
        ] {
            if let Some(v) =
                in_range(vocab::opt_id(file, &format!("tokenizer.ggml.{name}_token_id"))?)
            {
                *id = Some(v);
            }
        }
        Ok(())
    }
}

/// Fills the ids the metadata left unset from token strings (llama.cpp's auto-detection;
/// where several strings qualify, the first in the order llama.cpp's `token_to_id` map
/// lists them, [`cxx_map`]), marking each found token as control; then returns the
/// end-of-generation set, adjusting attributes as llama.cpp does.
pub(super) fn detect(vocab: &mut Vocab, ids: &mut SpecialIds) -> BTreeSet<u32> {
    let slots: [(&mut Option<u32>, &[&str]); 8] = [
        (&mut ids.eot, EOT_NAMES),
        (&mut ids.eom, EOM_NAMES),
        (&mut ids.fim_pre, FIM_PRE_NAMES),
        (&mut ids.fim_suf, FIM_SUF_NAMES),
        (&mut ids.fim_mid, FIM_MID_NAMES),
        (&mut ids.fim_pad, FIM_PAD_NAMES),
        (&mut ids.fim_rep, FIM_REP_NAMES),
        (&mut ids.fim_sep, FIM_SEP_NAMES),
    ];
    // llama.cpp's map order, computed only when some slot has two candidates.
    let mut order: Option<Vec<u32>> = None;
    for (slot, names) in slots {
        if slot.is_none() {
            let found: Vec<u32> = names.iter().filter_map(|n| vocab.id(n)).collect();
            *slot = if found.len() > 1 {
                let order = order.get_or_insert_with(|| {
                    cxx_map::iteration_order(&vocab.texts).unwrap_or_default()
                });
                order.iter().copied().find(|id| found.contains(id)).or(found.iter().copied().min())
            } else {
                found.first().copied()
            };
            if let Some(id) = *slot {
                vocab.attrs[id as usize] |= attr::CONTROL;
            }
        }
    }
    // Control tokens named "unused" are unused.
    for (text, a) in vocab.texts.iter().zip(vocab.attrs.iter_mut()) {
        if *a & attr::CONTROL != 0 && text.contains("unused") {
            *a |= attr::UNUSED;
        }
    }
    let mut eog = BTreeSet::new();
    eog.extend(ids.fim_pad);
    eog.extend(ids.fim_rep);
    eog.extend(ids.fim_sep);
    for name in EOG_NAMES {
        if let Some(id) = vocab.id(name) {
            eog.insert(id);
            vocab.attrs[id as usize] |= attr::CONTROL;
        }
    }
    // gpt-oss: these are always rendered.
    for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(id) = vocab.id(name) {
            vocab.attrs[id as usize] = attr::USER_DEFINED;
        }
    }
    eog.extend(ids.eos);
    eog.extend(ids.eot);
    eog.extend(ids.eom);
    let in_eog = |eog: &BTreeSet<u32>, vocab: &Vocab, name: &str| {
        vocab.id(name).filter(|id| eog.contains(id))
    };
    // o200k_harmony and solar-open: "<|end|>" ends a message, not the generation.
    let has = |eog: &BTreeSet<u32>, vocab: &Vocab, n: &str| in_eog(eog, vocab, n).is_some();
    if let Some(end) = in_eog(&eog, vocab, "<|end|>") {
        let call = has(&eog, vocab, "<|call|>") || has(&eog, vocab, "<|calls|>");
        if call && (has(&eog, vocab, "<|return|>") || has(&eog, vocab, "<|flush|>")) {
            eog.remove(&end);
            vocab.attrs[end as usize] = attr::USER_DEFINED;
        }
    }
    // gemma4 and plamo have a normal "</s>".
    if let Some(s) = in_eog(&eog, vocab, "</s>")
        && (has(&eog, vocab, "<|tool_response>") || has(&eog, vocab, "<|plamo:eos|>"))
    {
        eog.remove(&s);
        vocab.attrs[s as usize] = attr::NORMAL;
    }
    eog
}

/// The strip attributes llama.cpp sets by model name (`general.name`, lowercased) and
/// pre-tokenizer name, after the special-token list is built.
pub(super) fn strip_attributes(
    vocab: &mut Vocab,
    specials: &[u32],
    model_name: &str,
    pre: &str,
    arch: &str,
) {
    let set = |vocab: &mut Vocab, name: &str, bit: u16, on: bool| {
        if let Some(id) = vocab.id(name) {
            let a = &mut vocab.attrs[id as usize];
            *a = if on { *a | bit } else { *a & !bit };
        }
    };
    let name = model_name.to_ascii_lowercase();
    if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].iter().any(|p| pre.contains(p))
        || ["nomic-bert-moe", "jina-bert-v3"].iter().any(|a| arch.contains(a))
    {
        set(vocab, "<mask>", attr::LSTRIP, true);
    } else if name.contains("phi-3") || name.contains("phi3") {
        for &id in specials {
            vocab.attrs[id as usize] |= attr::RSTRIP;
        }
        set(vocab, "</s>", attr::RSTRIP, true);
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            set(vocab, t, attr::RSTRIP, false);
        }
    } else if name.contains("modern-bert") {
        set(vocab, "[MASK]", attr::LSTRIP, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[(&str, i32)]) -> Vocab {
        let texts: Vec<String> = tokens.iter().map(|t| t.0.to_owned()).collect();
        let types: Vec<i32> = tokens.iter().map(|t| t.1).collect();
        Vocab::new(&texts, None, Some(&types)).unwrap()
    }

    #[test]
    fn longest_special_first_and_parse_special() {
        // 0: "<a>" control, 1: "<a><a>" control, 2: "\n\n" user-defined, 3: "x" normal.
        let v = vocab(&[("<a>", 3), ("<a><a>", 3), ("\n\n", 4), ("x", 1)]);
        let specials = special_candidates(&v);
        assert_eq!(specials, [1, 0, 2]);
        let text = "x<a><a><a>x\n\n";
        let f = partition(text, &v, &specials, true);
        assert_eq!(
            f,
            [
                Fragment::Text { start: 0, end: 1 },
                Fragment::Token(1),
                Fragment::Token(0),
                Fragment::Text { start: 10, end: 11 },
                Fragment::Token(2),
            ]
        );
        // Without parse_special only user-defined tokens are split out.
        let f = partition(text, &v, &specials, false);
        assert_eq!(f, [Fragment::Text { start: 0, end: 11 }, Fragment::Token(2)]);
        assert!(partition("", &v, &specials, true).is_empty());
    }
}
