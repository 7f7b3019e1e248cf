//! [`FormatError`]: what was wrong with a format id, a size or a buffer length.

use core::fmt;

use super::{Format, ggml_type_name};

/// What was wrong with a format id, a size or a buffer length.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// A `GGML_TYPE_*` id that ggml does not define, or a ggml type this crate does not
    /// handle; the message says which, by ggml's name ([`ggml_type_name`]).
    UnknownGgmlType {
        /// The id found.
        id: u32,
    },
    /// A number of values that is not a whole number of blocks.
    NotBlockMultiple {
        /// The format whose block size applies.
        format: Format,
        /// The number of values given.
        values: usize,
        /// The values per block of `format`.
        block: usize,
    },
    /// Source bytes that do not match the destination's number of values.
    LengthMismatch {
        /// The format of the source bytes.
        format: Format,
        /// Source bytes needed for the destination's values.
        expected: usize,
        /// Source bytes given.
        actual: usize,
    },
    /// A size computation overflowed `usize`.
    Overflow,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::UnknownGgmlType { id } => match ggml_type_name(id) {
                Some(name) => {
                    write!(f, "{name} (ggml type {id}) is not supported (supported: ")?;
                    for (i, format) in Format::ALL.into_iter().enumerate() {
                        let sep = if i == 0 { "" } else { ", " };
                        write!(f, "{sep}{format}={}", format.ggml_type())?;
                    }
                    f.write_str(")")
                }
                None => write!(f, "ggml type id {id} is not a ggml type"),
            },
            FormatError::NotBlockMultiple { format, values, block } => {
                write!(f, "{format}: {values} values is not a multiple of the block size {block}")
            }
            FormatError::LengthMismatch { format, expected, actual } => write!(
                f,
                "{format}: the destination needs {expected} bytes of source data, got {actual}"
            ),
            FormatError::Overflow => f.write_str("a buffer size computation overflowed usize"),
        }
    }
}

impl core::error::Error for FormatError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-capacity `fmt::Write` sink for checking Display output without `alloc`.
    struct Buf {
        bytes: [u8; 512],
        len: usize,
    }

    impl fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }

    fn render(x: &dyn fmt::Display) -> Buf {
        let mut buf = Buf { bytes: [0; 512], len: 0 };
        fmt::write(&mut buf, format_args!("{x}")).unwrap();
        buf
    }

    fn text(buf: &Buf) -> &str {
        core::str::from_utf8(&buf.bytes[..buf.len]).unwrap()
    }

    #[test]
    fn display_messages() {
        for format in Format::ALL {
            assert_eq!(text(&render(&format)), format.name());
        }
        let e = FormatError::NotBlockMultiple { format: Format::Q4_K, values: 100, block: 256 };
        let b = render(&e);
        assert_eq!(text(&b), "Q4_K: 100 values is not a multiple of the block size 256");
        let e = FormatError::LengthMismatch { format: Format::IQ4_XS, expected: 136, actual: 135 };
        let b = render(&e);
        assert_eq!(text(&b), "IQ4_XS: the destination needs 136 bytes of source data, got 135");
        let b = render(&FormatError::UnknownGgmlType { id: 77 });
        assert_eq!(text(&b), "ggml type id 77 is not a ggml type");
        let b = render(&FormatError::UnknownGgmlType { id: 4 });
        assert_eq!(text(&b), "ggml type id 4 is not a ggml type");
        let b = render(&FormatError::UnknownGgmlType { id: 9 });
        assert_eq!(
            text(&b),
            "Q8_1 (ggml type 9) is not supported (supported: F16=1, Q4_0=2, Q4_1=3, Q5_0=6, \
             Q5_1=7, Q8_0=8, Q2_K=10, Q3_K=11, Q4_K=12, Q5_K=13, Q6_K=14, IQ2_XXS=16, IQ2_XS=17, IQ3_XXS=18, \
             IQ1_S=19, IQ4_NL=20, IQ3_S=21, IQ2_S=22, IQ4_XS=23, IQ1_M=29, BF16=30, TQ1_0=34, TQ2_0=35, \
             MXFP4=39, NVFP4=40)"
        );
        let b = render(&FormatError::UnknownGgmlType { id: 0 });
        assert!(text(&b).starts_with("F32 (ggml type 0) is not supported "));
        let b = render(&FormatError::Overflow);
        assert!(text(&b).contains("overflow"));
    }
}
