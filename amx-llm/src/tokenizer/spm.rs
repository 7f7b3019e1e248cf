//! SentencePiece-style merging, as llama.cpp's `llm_tokenizer_spm_session`: starting from
//! single characters, the adjacent pair that forms the highest-scoring token merges first
//! (ties: the leftmost); what is left that is not a token falls back to byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::symbols::{Symbol, symbols};
use super::vocab::Vocab;

/// A candidate merge; the heap's greatest is the highest score, then the leftmost.
///
/// Scores compare as llama.cpp's `llm_bigram_spm::comparator` compares them, with `<`:
/// `-0.0` and `0.0` are the same score (the leftmost merges first), which `f32::total_cmp`
/// would tell apart (Gemma 3's `▁t` scores `-0.0`, its byte tokens `0.0`).
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // `partial_cmp` is `None` only for a NaN score, which llama.cpp's `<` also takes
        // for a tie.
        let by_score = self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal);
        by_score.then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

/// The token of byte `b`: `<0xXX>`, else the one-byte string (llama.cpp's `byte_to_token`
/// for SentencePiece vocabularies).
pub(super) fn byte_token(vocab: &Vocab, b: u8) -> Option<u32> {
    vocab.id(&format!("<0x{b:02X}>")).or_else(|| {
        let mut buf = [0u8; 4];
        b.is_ascii().then(|| vocab.id(char::from(b).encode_utf8(&mut buf))).flatten()
    })
}

/// Appends the ids of `text` (spaces already escaped to `▁`) to `out`. A byte with no byte
/// token becomes `unk` if there is one (llama.cpp would throw).
pub(super) fn encode(text: &str, vocab: &Vocab, unk: Option<u32>, out: &mut Vec<u32>) {
    let mut symbols = symbols(text);
    let mut queue = BinaryHeap::new();
    let try_add = |queue: &mut BinaryHeap<Bigram>,
                   symbols: &[Symbol],
                   left: Option<usize>,
                   right: Option<usize>| {
        let (Some(l), Some(r)) = (left, right) else { return };
        let (ls, rs) = (&symbols[l], &symbols[r]);
        let size = ls.len + rs.len;
        if let Some(id) = vocab.id(&text[ls.start..ls.start + size]) {
            queue.push(Bigram { score: vocab.scores[id as usize], left: l, right: r, size });
        }
    };
    for i in 1..symbols.len() {
        try_add(&mut queue, &symbols, Some(i - 1), Some(i));
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        symbols[b.left].len += r.len;
        symbols[b.right].len = 0;
        symbols[b.left].next = r.next;
        if let Some(n) = r.next {
            symbols[n].prev = Some(b.left);
        }
        try_add(&mut queue, &symbols, l.prev, Some(b.left));
        try_add(&mut queue, &symbols, Some(b.left), r.next);
    }
    // Every merge formed a token, so a final symbol is a token or a single character.
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(k) = i {
        let s = symbols[k];
        let piece = &text[s.start..s.start + s.len];
        if let Some(id) = vocab.id(piece) {
            out.push(id);
        } else {
            out.extend(piece.bytes().filter_map(|b| byte_token(vocab, b).or(unk)));
        }
        i = s.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[(&str, f32)]) -> Vocab {
        let texts: Vec<String> = tokens.iter().map(|t| t.0.to_owned()).collect();
        let scores: Vec<f32> = tokens.iter().map(|t| t.1).collect();
        Vocab::new(&texts, Some(&scores), None).unwrap()
    }

    #[test]
    fn highest_score_merges_first() {
        let v = vocab(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("ab", -2.0), ("bc", -1.0)]);
        let mut out = Vec::new();
        encode("abc", &v, None, &mut out);
        // "bc" outscores "ab", and "a" + "bc" is not a token.
        assert_eq!(out, [0, 4]);
        let v =
            vocab(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("ab", -1.0), ("bc", -2.0), ("abc", -5.0)]);
        out.clear();
        encode("abc", &v, None, &mut out);
        // "ab" first, then "ab" + "c" is a token.
        assert_eq!(out, [5]);
    }

    #[test]
    fn byte_fallback() {
        let mut tokens = vec![("<unk>", 0.0), ("a", 0.0)];
        let hex: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        tokens.extend(hex.iter().map(|h| (h.as_str(), 0.0)));
        let v = vocab(&tokens);
        let mut out = Vec::new();
        encode("aé", &v, Some(0), &mut out);
        assert_eq!(out, [1, 2 + 0xC3, 2 + 0xA9]);
    }
}
