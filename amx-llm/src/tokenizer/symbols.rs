//! The symbols both merge algorithms (BPE, SentencePiece) start from: one per character
//! of the text, linked to its neighbours.

/// A symbol: a byte range of the text, linked to its neighbours; merged-away symbols
/// have `len == 0`.
#[derive(Clone, Copy)]
pub(super) struct Symbol {
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) prev: Option<usize>,
    pub(super) next: Option<usize>,
}

/// One symbol per character of `text`, in order.
pub(super) fn symbols(text: &str) -> Vec<Symbol> {
    let mut symbols = Vec::with_capacity(text.len());
    for (i, (start, c)) in text.char_indices().enumerate() {
        let end = start + c.len_utf8();
        symbols.push(Symbol {
            start,
            len: c.len_utf8(),
            prev: i.checked_sub(1),
            next: (end < text.len()).then_some(i + 1),
        });
    }
    symbols
}
