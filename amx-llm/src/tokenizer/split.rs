//! llama.cpp's hand-written splitters for the GPT-2 and Llama-3 family regexes
//! (`unicode_regex_split_custom_*`): llama.cpp never runs those regexes through a regex
//! engine, so matching its ids means matching these loops, quirks included.
//!
//! Each splitter cuts every chunk (a run of code points, given by its length) into pieces
//! and appends the pieces' lengths; nothing looks across a chunk's ends.

use super::unicode::Flags;

/// A chunk's code points and their classes, read as llama.cpp's splitters read them: a
/// position past the end has no code point and empty flags.
struct Chunk<'a> {
    cpts: &'a [char],
    flags: &'a [Flags],
}

impl Chunk<'_> {
    fn cpt(&self, pos: usize) -> Option<char> {
        self.cpts.get(pos).copied()
    }

    fn flags(&self, pos: usize) -> Flags {
        self.flags.get(pos).copied().unwrap_or_default()
    }

    /// The length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `pos`,
    /// if one starts there. With `ignore_case`, letters match either case (llama.cpp
    /// lowercases with its table; no non-ASCII code point lowercases to these letters).
    fn contraction(&self, pos: usize, ignore_case: bool) -> Option<usize> {
        let lower =
            |c: Option<char>| c.map(|c| if ignore_case { c.to_ascii_lowercase() } else { c });
        if self.cpt(pos) != Some('\'') || pos + 1 >= self.cpts.len() {
            return None;
        }
        let next = lower(self.cpt(pos + 1));
        if matches!(next, Some('s' | 't' | 'm' | 'd')) {
            return Some(2);
        }
        if pos + 2 < self.cpts.len() {
            let pair = (next, lower(self.cpt(pos + 2)));
            if matches!(
                pair,
                (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
            ) {
                return Some(3);
            }
        }
        None
    }
}

/// Appends piece lengths; a piece ends where the next one starts.
struct Pieces<'a> {
    out: &'a mut Vec<usize>,
    prev_end: usize,
}

impl Pieces<'_> {
    fn cut(&mut self, end: usize) {
        if end > self.prev_end {
            self.out.push(end - self.prev_end);
        }
        self.prev_end = end;
    }
}

/// Runs `split_chunk` over every chunk of `cpts` (lengths in `offsets`).
fn for_chunks(
    cpts: &[char],
    flags: &[Flags],
    offsets: &[usize],
    mut split_chunk: impl FnMut(&Chunk<'_>, &mut Pieces<'_>),
) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let end = (start + len).min(cpts.len());
        let chunk = Chunk { cpts: &cpts[start..end], flags: &flags[start..end] };
        let mut pieces = Pieces { out: &mut out, prev_end: 0 };
        split_chunk(&chunk, &mut pieces);
        start = end;
    }
    out
}

/// Whitespace at `pos`: `\s+(?!\S)` (all but the last of a run followed by more text) or
/// `\s+`; `None` if `pos` is not whitespace.
fn trailing_whitespace(c: &Chunk<'_>, pos: usize, n: usize) -> Option<usize> {
    if n > 1 && c.cpt(pos + n).is_some() {
        Some(pos + n - 1)
    } else if n > 0 {
        Some(pos + n)
    } else {
        None
    }
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
pub(super) fn gpt2(cpts: &[char], flags: &[Flags], offsets: &[usize]) -> Vec<usize> {
    for_chunks(cpts, flags, offsets, |c, pieces| {
        let mut pos = 0;
        while pos < c.cpts.len() {
            if let Some(len) = c.contraction(pos, false) {
                pos += len;
                pieces.cut(pos);
                continue;
            }
            let space = c.cpt(pos) == Some(' ');
            let mut f = if space { c.flags(pos + 1) } else { c.flags(pos) };
            let run: Option<fn(Flags) -> bool> = if f.is_letter() {
                Some(Flags::is_letter)
            } else if f.is_number() {
                Some(Flags::is_number)
            } else if !(f.whitespace || f.is_letter() || f.is_number()) && f.is_some() {
                Some(|f: Flags| !(f.whitespace || f.is_letter() || f.is_number()) && f.is_some())
            } else {
                None
            };
            if let Some(in_run) = run {
                pos += usize::from(space);
                while in_run(f) {
                    pos += 1;
                    f = c.flags(pos);
                }
                pieces.cut(pos);
                continue;
            }
            let n = (pos..).take_while(|&p| c.flags(p).whitespace).count();
            pos = trailing_whitespace(c, pos, n).unwrap_or(pos + 1);
            pieces.cut(pos);
        }
    })
}

/// The Llama-3 regex family:
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// with `D = max_digits` (3 for Llama 3, 1 for Qwen2) and, with `marks`, `\p{M}` counted
/// with the letters (Qwen3.5).
pub(super) fn llama3(
    cpts: &[char],
    flags: &[Flags],
    offsets: &[usize],
    max_digits: usize,
    marks: bool,
) -> Vec<usize> {
    let wordy = move |f: Flags| f.is_letter() || (marks && f.is_accent_mark());
    let other = move |f: Flags| !(f.whitespace || wordy(f) || f.is_number());
    for_chunks(cpts, flags, offsets, |c, pieces| {
        let mut pos = 0;
        while pos < c.cpts.len() {
            if let Some(len) = c.contraction(pos, true) {
                pos += len;
                pieces.cut(pos);
                continue;
            }
            let cpt = c.cpt(pos);
            let f = c.flags(pos);
            let newline = matches!(cpt, Some('\r' | '\n'));
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(newline || f.is_number()) && (wordy(f) || wordy(c.flags(pos + 1))) {
                pos += 1;
                while wordy(c.flags(pos)) {
                    pos += 1;
                }
                pieces.cut(pos);
                continue;
            }
            // \p{N}{1,D}
            if f.is_number() {
                let mut ini = pos;
                while c.flags(pos).is_number() {
                    pos += 1;
                    if pos - ini >= max_digits {
                        pieces.cut(pos);
                        ini = pos;
                    }
                }
                pieces.cut(pos);
                continue;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*': llama.cpp tests the first code point's own flags
            // for "defined", so a lone trailing space is a piece of its own.
            let space = cpt == Some(' ');
            let mut f2 = if space { c.flags(pos + 1) } else { f };
            if other(f2) && f.is_some() {
                pos += usize::from(space);
                while other(f2) && f2.is_some() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                while matches!(c.cpt(pos), Some('\r' | '\n')) {
                    pos += 1;
                }
                pieces.cut(pos);
                continue;
            }
            let mut n = 0;
            let mut last_newline_end = None;
            while c.flags(pos + n).whitespace {
                if matches!(c.cpt(pos + n), Some('\r' | '\n')) {
                    last_newline_end = Some(pos + n + 1);
                }
                n += 1;
            }
            // \s*[\r\n]+
            if let Some(end) = last_newline_end {
                pos = end;
                pieces.cut(pos);
                continue;
            }
            pos = trailing_whitespace(c, pos, n).unwrap_or(pos + 1);
            pieces.cut(pos);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(
        text: &str,
        split: impl Fn(&[char], &[Flags], &[usize]) -> Vec<usize>,
    ) -> Vec<String> {
        let cpts: Vec<char> = text.chars().collect();
        let flags: Vec<Flags> = cpts.iter().map(|&c| Flags::of(c)).collect();
        let mut start = 0;
        split(&cpts, &flags, &[cpts.len()])
            .into_iter()
            .map(|len| {
                start += len;
                cpts[start - len..start].iter().collect()
            })
            .collect()
    }

    #[test]
    fn gpt2_pieces() {
        assert_eq!(
            pieces("Hello world's  12 ok!!\n\n  x ", gpt2),
            ["Hello", " world", "'s", " ", " 12", " ok", "!!", "\n\n ", " x", " "]
        );
    }

    #[test]
    fn llama3_pieces() {
        let l3 = |c: &[char], f: &[Flags], o: &[usize]| llama3(c, f, o, 3, false);
        assert_eq!(
            pieces("I'M 12345 a.b\n\n  x", l3),
            ["I", "'M", " ", "123", "45", " a", ".b", "\n\n", " ", " x"]
        );
        let q2 = |c: &[char], f: &[Flags], o: &[usize]| llama3(c, f, o, 1, false);
        assert_eq!(pieces("x 123", q2), ["x", " ", "1", "2", "3"]);
    }
}
