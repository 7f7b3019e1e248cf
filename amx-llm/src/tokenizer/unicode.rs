//! Code point classes as llama.cpp's `unicode.cpp` sees them, and GPT-2's byte-to-unicode
//! mapping.

use super::unicode_data::{CATEGORY_RANGES, WHITESPACE};

/// `\p{N}`.
pub(super) const NUMBER: u8 = 0x02;
/// `\p{L}`.
pub(super) const LETTER: u8 = 0x04;
/// `\p{M}`.
pub(super) const ACCENT_MARK: u8 = 0x10;
/// `\p{P}`.
pub(super) const PUNCTUATION: u8 = 0x20;
/// `\p{S}`.
pub(super) const SYMBOL: u8 = 0x40;

/// The class of one code point: its category bit and whether it is whitespace. The
/// default value (no bits) is what llama.cpp's splitters see past the end of a chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Flags {
    /// One category bit (`UNDEFINED` = 1 for unassigned code points).
    pub(super) category: u8,
    /// In llama.cpp's whitespace set (`\s`).
    pub(super) whitespace: bool,
}

impl Flags {
    /// The flags of `c`.
    pub(super) fn of(c: char) -> Flags {
        let cp = c as u32;
        // The table starts at 0, so the partition point is at least 1.
        let i = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
        let category = CATEGORY_RANGES.get(i.wrapping_sub(1)).map_or(1, |&(_, f)| f);
        Flags { category, whitespace: WHITESPACE.binary_search(&cp).is_ok() }
    }

    pub(super) fn is_letter(self) -> bool {
        self.category & LETTER != 0
    }

    pub(super) fn is_number(self) -> bool {
        self.category & NUMBER != 0
    }

    pub(super) fn is_accent_mark(self) -> bool {
        self.category & ACCENT_MARK != 0
    }

    /// Any bit set: false only past the end of a chunk (llama.cpp's `as_uint() != 0`).
    pub(super) fn is_some(self) -> bool {
        self.category != 0 || self.whitespace
    }
}

/// GPT-2's map from bytes to printable code points: printable Latin-1 bytes map to
/// themselves, the rest to U+0100.. in byte order.
pub(super) const BYTE_CHARS: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    let mut b = 0;
    while b < 256 {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        // Every value is below U+0144, a valid scalar value.
        table[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\u{FFFD}',
        };
        b += 1;
    }
    table
};

/// The byte GPT-2's map sends to `c`, if any (the inverse of [`BYTE_CHARS`]).
pub(super) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cp as u8),
        // The non-printable bytes in order: 0x00..=0x20, 0x7F..=0xA0, 0xAD.
        0x100..=0x120 => Some((cp - 0x100) as u8),
        0x121..=0x142 => Some((cp - 0x121 + 0x7F) as u8),
        0x143 => Some(0xAD),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(BYTE_CHARS[usize::from(b)]), Some(b));
        }
        assert_eq!(BYTE_CHARS[usize::from(b' ')], 'Ġ');
        assert_eq!(BYTE_CHARS[usize::from(b'\n')], 'Ċ');
    }

    #[test]
    fn classes() {
        assert!(Flags::of('a').is_letter());
        assert!(Flags::of('é').is_letter());
        assert!(Flags::of('7').is_number());
        assert!(Flags::of(' ').whitespace);
        assert!(Flags::of('\u{3000}').whitespace);
        assert!(!Flags::of('x').whitespace);
        assert_eq!(Flags::of('\u{10FFFF}').category, 1);
        assert!(Flags::of('\u{0301}').is_accent_mark());
        assert_eq!(Flags::of('!').category, PUNCTUATION);
        assert_eq!(Flags::of('$').category, SYMBOL);
    }
}
