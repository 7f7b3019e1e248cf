//! Byte-pair merging of one pre-tokenized piece, as llama.cpp's `llm_tokenizer_bpe_session`:
//! the adjacent pair whose merge comes first in `tokenizer.ggml.merges` merges first (ties:
//! the leftmost), until no adjacent pair has a merge.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::symbols::{Symbol, symbols};
use super::vocab::Vocab;

/// Merge ranks, keyed by `"left right"` (the merge's own string).
#[derive(Debug, Default)]
pub(super) struct Merges {
    ranks: HashMap<String, u32>,
}

impl Merges {
    /// Ranks merges by their order; a merge listed twice keeps its first rank, and a string
    /// with no space after its first character can never apply (llama.cpp's reading).
    pub(super) fn new(merges: &[String]) -> Merges {
        let mut ranks = HashMap::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            let split = m.char_indices().skip(1).find(|&(_, c)| c == ' ');
            if split.is_some() {
                // Ranks past u32 cannot occur: GGUF arrays that long do not fit in memory.
                ranks.entry(m.clone()).or_insert(u32::try_from(rank).unwrap_or(u32::MAX));
            }
        }
        Merges { ranks }
    }

    /// The rank of merging `left` and `right`, using `key` as scratch space.
    fn rank(&self, key: &mut String, left: &str, right: &str) -> Option<u32> {
        key.clear();
        key.push_str(left);
        key.push(' ');
        key.push_str(right);
        self.ranks.get(key.as_str()).copied()
    }
}

/// A candidate merge: ordered by rank, then by position (a max-heap of `Reverse`).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    left_len: usize,
    right_len: usize,
}

/// Appends the ids of `word` (one pre-tokenized, byte-encoded piece) to `out`.
///
/// With `ignore_merges`, a piece that is a token is that token. A final symbol that is not
/// a token becomes the tokens of its single bytes, where they exist (llama.cpp drops the rest).
pub(super) fn encode_word(
    word: &str,
    vocab: &Vocab,
    merges: &Merges,
    ignore_merges: bool,
    out: &mut Vec<u32>,
) {
    if word.is_empty() {
        return;
    }
    if ignore_merges && let Some(id) = vocab.id(word) {
        out.push(id);
        return;
    }
    let mut symbols = symbols(word);
    let mut key = String::new();
    let mut queue = BinaryHeap::new();
    let text = |s: &Symbol| &word[s.start..s.start + s.len];
    let push = |queue: &mut BinaryHeap<Reverse<Bigram>>,
                key: &mut String,
                symbols: &[Symbol],
                left: Option<usize>,
                right: Option<usize>| {
        let (Some(l), Some(r)) = (left, right) else { return };
        let (ls, rs) = (&symbols[l], &symbols[r]);
        if let Some(rank) = merges.rank(key, text(ls), text(rs)) {
            queue.push(Reverse(Bigram {
                rank,
                left: l,
                right: r,
                left_len: ls.len,
                right_len: rs.len,
            }));
        }
    };
    for i in 1..symbols.len() {
        push(&mut queue, &mut key, &symbols, Some(i - 1), Some(i));
    }
    while let Some(Reverse(b)) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        // A stale candidate: one side has merged since (its text, hence its length, changed).
        if l.len == 0 || r.len == 0 || l.len != b.left_len || r.len != b.right_len {
            continue;
        }
        symbols[b.left].len += r.len;
        symbols[b.right].len = 0;
        symbols[b.left].next = r.next;
        if let Some(n) = r.next {
            symbols[n].prev = Some(b.left);
        }
        push(&mut queue, &mut key, &symbols, l.prev, Some(b.left));
        push(&mut queue, &mut key, &symbols, Some(b.left), r.next);
    }
    let mut byte = [0u8; 4];
    for s in symbols.iter().filter(|s| s.len > 0) {
        let t = text(s);
        if let Some(id) = vocab.id(t) {
            out.push(id);
            continue;
        }
        for &b in t.as_bytes() {
            // A byte of its own is a string only when it is ASCII.
            if b.is_ascii()
                && let Some(id) = vocab.id(char::from(b).encode_utf8(&mut byte))
            {
                out.push(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[&str]) -> Vocab {
        let tokens: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        Vocab::new(&tokens, None, None).unwrap()
    }

    fn merges(m: &[&str]) -> Merges {
        Merges::new(&m.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn merges_apply_in_rank_order() {
        let v = vocab(&["a", "b", "c", "ab", "bc", "abc"]);
        let mut out = Vec::new();
        // "b c" ranks first: a + bc, and no merge "a bc" exists.
        encode_word("abc", &v, &merges(&["b c", "a b", "ab c"]), false, &mut out);
        assert_eq!(out, [0, 4]);
        out.clear();
        encode_word("abc", &v, &merges(&["a b", "b c", "ab c"]), false, &mut out);
        assert_eq!(out, [5]);
    }

    #[test]
    fn leftmost_wins_ties_and_ignore_merges() {
        let v = vocab(&["a", "aa", "aaa"]);
        let mut out = Vec::new();
        encode_word("aaa", &v, &merges(&["a a"]), false, &mut out);
        assert_eq!(out, [1, 0]);
        out.clear();
        encode_word("aaa", &v, &merges(&["a a"]), true, &mut out);
        assert_eq!(out, [2]);
    }

    #[test]
    fn unknown_symbols_fall_back_to_ascii_bytes() {
        let v = vocab(&["x", "y"]);
        let mut out = Vec::new();
        encode_word("xé y", &v, &merges(&[]), false, &mut out);
        assert_eq!(out, [0, 1]);
    }
}
