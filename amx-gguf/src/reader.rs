//! The bounds-checked byte cursor and the parsing of the GGUF header, metadata and tensor
//! infos. Every read checks the remaining length first; every count is checked against
//! the bytes left before anything is allocated for it, and what is reserved for it up
//! front never exceeds the bytes left ([`reserve`]).

use crate::MAX_ARRAY_DEPTH;
use crate::error::GgufError;
use crate::tensor::TensorInfo;
use crate::value::{Array, Value, ValueType};

/// The most items [`reserve`] sets aside for a count whose items take more memory than
/// their smallest encoding (key-value pairs, tensor infos, strings, arrays): a 13-byte
/// key-value pair is 56 bytes in memory, so reserving a whole checked count would still
/// be 4 times the bytes left. Past this many items a vector grows with the items actually
/// parsed, so memory stays proportional to the bytes read, not to what a count claims.
pub(crate) const MAX_RESERVED_ITEMS: usize = 1024;

/// A vector with room for `count` items, at most [`MAX_RESERVED_ITEMS`] of them.
pub(crate) fn reserve<T>(count: usize) -> Vec<T> {
    Vec::with_capacity(count.min(MAX_RESERVED_ITEMS))
}

/// A read position in the file's bytes.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The current offset from the start of the file.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what,
                offset: self.pos as u64,
                needed: n as u64,
                file_len: self.bytes.len() as u64,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A u64 length or count of items taking at least `min_size` bytes each, checked to
    /// fit in the rest of the file.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_size: usize,
    ) -> Result<usize, GgufError> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        let remaining = self.remaining();
        match usize::try_from(count) {
            Ok(c) if c <= remaining / min_size.max(1) => Ok(c),
            _ => Err(GgufError::AbsurdCount { what, offset, count, remaining: remaining as u64 }),
        }
    }

    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let len = self.count(what, 1)?;
        let offset = self.pos as u64;
        let bytes = self.take(len, what)?;
        match core::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 { offset }),
        }
    }

    fn value_type(&mut self) -> Result<ValueType, GgufError> {
        let offset = self.pos as u64;
        let type_id = self.u32("value type")?;
        ValueType::from_id(type_id).ok_or(GgufError::UnknownValueType { offset, type_id })
    }

    fn bool(&mut self) -> Result<bool, GgufError> {
        let offset = self.pos as u64;
        match self.array::<1>("bool value")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(GgufError::InvalidBool { offset, value }),
        }
    }

    /// One value of type `ty`; `depth` is the array nesting level it sits at.
    fn value(&mut self, ty: ValueType, depth: usize) -> Result<Value, GgufError> {
        const W: &str = "metadata value";
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(W)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(W)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(W)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(W)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(W)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(W)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(W)?)),
            ValueType::Bool => Value::Bool(self.bool()?),
            ValueType::String => Value::String(self.string("string value")?),
            ValueType::Array => Value::Array(self.array_value(depth + 1)?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(W)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(W)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(W)?)),
        })
    }

    /// An array (element type, count, elements) at nesting level `depth` (1 = top level).
    fn array_value(&mut self, depth: usize) -> Result<Array, GgufError> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(GgufError::NestingTooDeep { offset: self.pos as u64 });
        }
        let ty = self.value_type()?;
        let n = self.count("array element", ty.min_encoded_size())?;
        const W: &str = "array element";
        // The fixed-size types take as many bytes in memory as in the file, so their
        // checked count is reserved whole; the others go through `reserve`.
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(<$t>::from_le_bytes(self.array(W)?));
                }
                Array::$variant(v)
            }};
        }
        Ok(match ty {
            ValueType::U8 => Array::U8(self.take(n, W)?.to_vec()),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let mut v: Vec<bool> = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.bool()?);
                }
                Array::Bool(v)
            }
            ValueType::String => {
                let mut v = reserve(n);
                for _ in 0..n {
                    v.push(self.string("string element")?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = reserve(n);
                for _ in 0..n {
                    v.push(self.array_value(depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }

    /// Magic and version; returns the version.
    pub(crate) fn header(&mut self) -> Result<u32, GgufError> {
        let found = self.array::<4>("magic")?;
        if &found != b"GGUF" {
            return Err(GgufError::BadMagic { found });
        }
        let version = self.u32("version")?;
        match version {
            2 | 3 => Ok(version),
            v if matches!(v.swap_bytes(), 2 | 3) => Err(GgufError::BigEndian { version }),
            _ => Err(GgufError::UnsupportedVersion { version }),
        }
    }

    /// One metadata key-value pair.
    pub(crate) fn key_value(&mut self) -> Result<(String, Value), GgufError> {
        let key = self.string("metadata key")?;
        let ty = self.value_type()?;
        let value = self.value(ty, 0)?;
        Ok((key, value))
    }

    /// One tensor info (name, dims, type, offset); dims beyond `n_dims` are 1.
    pub(crate) fn tensor_info(&mut self) -> Result<TensorInfo, GgufError> {
        let name = self.string("tensor name")?;
        let n_dims = self.u32("tensor n_dims")?;
        if n_dims > 4 {
            return Err(GgufError::TooManyDims { name, n_dims });
        }
        let mut ne = [1u64; 4];
        for d in ne.iter_mut().take(n_dims as usize) {
            *d = self.u64("tensor dimension")?;
        }
        let ggml_type = self.u32("tensor type")?;
        let offset = self.u64("tensor offset")?;
        Ok(TensorInfo { name, n_dims, ne, ggml_type, offset })
    }
}

/// The smallest encoded size of one key-value pair: key length, value type, one byte.
pub(crate) const MIN_KV_SIZE: usize = 8 + 4 + 1;
/// The smallest encoded size of one tensor info: name length, n_dims, type, offset.
pub(crate) const MIN_TENSOR_INFO_SIZE: usize = 8 + 4 + 4 + 8;
