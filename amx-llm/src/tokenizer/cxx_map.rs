//! The order in which llama.cpp's `std::unordered_map<std::string, llama_token>
//! token_to_id` (libstdc++, filled with the tokens in id order) lists its entries.
//!
//! llama.cpp finds the EOT, EOM and fill-in-the-middle tokens by walking that map and
//! taking the first token with one of a list of names; when a vocabulary has two of the
//! names, the map's order picks, and the pick becomes a control token (split out of text
//! with `parse_special`). This module replays libstdc++'s hashtable: its string hash
//! (`std::_Hash_bytes`, seed `0xc70f6907`), its bucket counts as the map grows one insertion
//! at a time, and where each node goes in the single list the map iterates.

/// `(elements present when the insertion that rehashes comes, new bucket count)`: libstdc++'s
/// prime rehash policy for a map grown one insertion at a time (printed by g++ 12).
const REHASH: &[(usize, usize)] = &[
    (0, 13),
    (13, 29),
    (29, 59),
    (59, 127),
    (127, 257),
    (257, 541),
    (541, 1109),
    (1109, 2357),
    (2357, 5087),
    (5087, 10273),
    (10273, 20753),
    (20753, 42043),
    (42043, 85229),
    (85229, 172933),
    (172933, 351061),
    (351061, 712697),
    (712697, 1447153),
    (1447153, 2938679),
    (2938679, 5967347),
];

/// libstdc++'s `std::hash<std::string>` on 64-bit targets (`_Hash_bytes`, a MurmurHash2
/// variant).
pub(super) fn hash(bytes: &[u8]) -> u64 {
    const MUL: u64 = (0xc6a4_a793 << 32) + 0x5bd1_e995;
    let shift_mix = |v: u64| v ^ (v >> 47);
    let len = bytes.len();
    let mut h = 0xc70f_6907u64 ^ (len as u64).wrapping_mul(MUL);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let data = shift_mix(u64::from_le_bytes(w).wrapping_mul(MUL)).wrapping_mul(MUL);
        h ^= data;
        h = h.wrapping_mul(MUL);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // `load_bytes`: the tail read little-endian.
        let data = rest.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        h ^= data;
        h = h.wrapping_mul(MUL);
    }
    shift_mix(shift_mix(h).wrapping_mul(MUL))
}

/// A list position: the map's `_M_before_begin` or a node (a token id).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Before {
    Head,
    Node(usize),
}

/// Puts node `x` into the list right after `before`.
fn link_after(before: Before, x: usize, head: &mut Option<usize>, next: &mut [Option<usize>]) {
    match before {
        Before::Head => {
            next[x] = *head;
            *head = Some(x);
        }
        Before::Node(y) => {
            next[x] = next[y];
            next[y] = Some(x);
        }
    }
}

/// The ids of `texts` (token `i` has text `texts[i]`, all distinct) in the order the map
/// iterates them; `None` past the sizes whose bucket counts are known here.
pub(super) fn iteration_order(texts: &[String]) -> Option<Vec<u32>> {
    let n = texts.len();
    if n > REHASH.last().map_or(0, |r| r.1) {
        return None;
    }
    let hashes: Vec<u64> = texts.iter().map(|t| hash(t.as_bytes())).collect();
    let mut next: Vec<Option<usize>> = vec![None; n];
    let mut head: Option<usize> = None;
    let mut buckets: Vec<Option<Before>> = Vec::new();
    let mut n_buckets = 1u64;
    let mut rehash = REHASH.iter().peekable();
    for i in 0..n {
        if let Some(&&(at, count)) = rehash.peek()
            && at == i
        {
            rehash.next();
            n_buckets = count as u64;
            buckets = vec![None; count];
            // `_M_rehash_aux`: the list walked from the head, each node moved to the front
            // of its bucket (a new bucket goes to the front of the list).
            let mut p = head.take();
            let mut first_bucket = 0usize;
            while let Some(x) = p {
                let after = next[x];
                let b = (hashes[x] % n_buckets) as usize;
                match buckets[b] {
                    None => {
                        next[x] = head;
                        head = Some(x);
                        buckets[b] = Some(Before::Head);
                        if next[x].is_some() {
                            buckets[first_bucket] = Some(Before::Node(x));
                        }
                        first_bucket = b;
                    }
                    Some(before) => link_after(before, x, &mut head, &mut next),
                }
                p = after;
            }
        }
        // `_M_insert_bucket_begin`.
        let b = (hashes[i] % n_buckets) as usize;
        match buckets[b] {
            Some(before) => link_after(before, i, &mut head, &mut next),
            None => {
                next[i] = head;
                head = Some(i);
                if let Some(after) = next[i] {
                    buckets[(hashes[after] % n_buckets) as usize] = Some(Before::Node(i));
                }
                buckets[b] = Some(Before::Head);
            }
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut p = head;
    while let Some(x) = p {
        order.push(x as u32);
        p = next[x];
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_libstdcxx() {
        // std::hash<std::string> values printed by a g++ 12 program.
        assert_eq!(hash(b""), HASHES[0]);
        assert_eq!(hash(b"a"), HASHES[1]);
        assert_eq!(hash(b"<|im_end|>"), HASHES[2]);
        assert_eq!(hash("▁<PRE>".as_bytes()), HASHES[3]);
    }

    /// Checked beyond this against g++ 12 on the whole token lists of SmolLM2 (49152),
    /// Qwen2 (151936) and Gemma 3 (262144): the same order throughout.
    #[test]
    fn order_is_libstdcxx() {
        let texts: Vec<String> = (0..40).map(|i| format!("t{}", i * 7)).collect();
        assert_eq!(iteration_order(&texts).unwrap(), ORDER_40);
    }

    const HASHES: [u64; 4] =
        [6142509188972423790, 4993892634952068459, 2038672007907099973, 19297942182329791];
    #[rustfmt::skip]
    const ORDER_40: [u32; 40] = [38, 37, 35, 32, 31, 30, 39, 10, 6, 9, 13, 11, 8, 20, 5, 4, 12, 15, 36, 33, 2, 14, 16, 3, 1, 18, 7, 0, 17, 24, 19, 21, 34, 29, 27, 23, 25, 26, 22, 28];
}
