//! A small GGUF reader (versions 2 and 3, little-endian), std only.
//!
//! [`GgufFile`] holds the whole file in memory, its metadata key-value pairs (in file
//! order, looked up by key) and its tensor infos; [`GgufFile::tensor_bytes`] hands out
//! a tensor's bytes after sizing it from its ggml type and checking it lies in the file.
//!
//! Layout (all little-endian): `"GGUF"`, u32 version, u64 tensor count, u64 key-value
//! count, the key-value pairs (u64-length string key, u32 value type, value), the tensor
//! infos (name, u32 n_dims, n_dims u64 dims `ne0..`, u32 ggml type, u64 offset), padding
//! to `general.alignment` (default 32), then the data section; tensor offsets are
//! relative to the data section and multiples of the alignment.
//!
//! The reader is meant for untrusted files: [`GgufFile::open`] reads only regular files
//! and at most their size, every read is bounds-checked, every count is
//! checked against the bytes left before anything is allocated for it (and what is
//! reserved for a count never exceeds the bytes left), array nesting is
//! capped at [`MAX_ARRAY_DEPTH`], and every tensor of a known type is checked to lie
//! inside the file when the file is parsed. Bad input is a [`GgufError`], never a panic.

mod error;
mod open;
mod reader;
mod types;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod writer;

use std::collections::HashMap;
use std::path::Path;

pub use error::GgufError;
pub use types::{
    GGML_TYPE_F32, GGML_TYPE_F64, GGML_TYPE_I8, GGML_TYPE_I16, GGML_TYPE_I32, GGML_TYPE_I64,
    TypeLayout, type_layout, type_name,
};
pub use value::{Array, Value, ValueType};

use reader::{Cursor, MAX_RESERVED_ITEMS, MIN_KV_SIZE, MIN_TENSOR_INFO_SIZE, reserve};

/// The data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u32 = 32;

/// The deepest array nesting accepted (an array of arrays is depth 2).
pub const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor's description from the file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name.
    pub name: String,
    /// The number of dimensions stored (0 to 4).
    pub n_dims: u32,
    /// The dimensions `ne0..ne3` in ggml order (`ne0` varies fastest); unstored ones are 1.
    pub ne: [u64; 4],
    /// The ggml type id (`GGML_TYPE_*`).
    pub ggml_type: u32,
    /// The offset of the tensor's bytes from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The number of elements, `None` if it overflows `u64`.
    pub fn n_elements(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// The tensor's size in bytes, computed from its type's [`TypeLayout`]: rows of
    /// `ne0` values, `ne0` a whole number of blocks.
    pub fn byte_size(&self) -> Result<u64, GgufError> {
        let layout = type_layout(self.ggml_type).ok_or_else(|| GgufError::UnknownTensorType {
            name: self.name.clone(),
            ggml_type: self.ggml_type,
        })?;
        if !self.ne[0].is_multiple_of(layout.block_values) {
            return Err(GgufError::RowNotWholeBlocks {
                name: self.name.clone(),
                ne0: self.ne[0],
                block_values: layout.block_values,
            });
        }
        let blocks_per_row = self.ne[0] / layout.block_values;
        [layout.block_bytes, self.ne[1], self.ne[2], self.ne[3]]
            .iter()
            .try_fold(blocks_per_row, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| GgufError::TensorSizeOverflow {
                name: self.name.clone(),
                ne: self.ne,
                ggml_type: self.ggml_type,
            })
    }
}

/// A parsed GGUF file: its bytes, metadata and tensor infos.
#[derive(Clone, Debug)]
pub struct GgufFile {
    bytes: Vec<u8>,
    version: u32,
    alignment: u32,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

macro_rules! getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $t:ty) => {
        $(#[$doc])*
        pub fn $fn(&self, key: &str) -> Result<$t, GgufError> {
            match self.value(key)? {
                Value::$variant(v) => Ok(*v),
                other => Err(self.wrong_type(key, ValueType::$variant, other)),
            }
        }
    };
}

impl GgufFile {
    /// Reads and parses the file at `path`.
    ///
    /// Only a regular file is read (symbolic links are followed): a directory, device,
    /// FIFO or socket is [`GgufError::NotARegularFile`], so `/dev/zero` cannot be read
    /// until memory runs out. At most the file's size at open time is read, into a
    /// buffer reserved for that size; every length and count inside is then checked
    /// against the bytes left (see [`GgufFile::parse`]).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        Self::parse(open::read_regular_file(path.as_ref())?)
    }

    /// Parses a whole GGUF file held in `bytes`.
    ///
    /// Every count (tensors, keys, array elements, string bytes) is checked against the
    /// bytes left before anything is allocated for it ([`GgufError::AbsurdCount`]), and
    /// every tensor of a known type is checked to lie in the file: its offset inside the
    /// data section ([`GgufError::TensorOffsetOutOfBounds`]), then its bytes
    /// ([`GgufError::TensorOutOfBounds`]).
    pub fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        let mut cur = Cursor::new(&bytes);
        let version = cur.header()?;
        let n_tensors = cur.count("tensor", MIN_TENSOR_INFO_SIZE)?;
        let n_kv = cur.count("metadata key-value", MIN_KV_SIZE)?;

        // `reserve`: a checked count still claims more memory than bytes.
        let mut metadata = reserve(n_kv);
        let mut key_index = HashMap::with_capacity(n_kv.min(MAX_RESERVED_ITEMS));
        for i in 0..n_kv {
            let (key, value) = cur.key_value()?;
            if key_index.insert(key.clone(), i).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }

        let mut tensors = reserve(n_tensors);
        let mut tensor_index = HashMap::with_capacity(n_tensors.min(MAX_RESERVED_ITEMS));
        for i in 0..n_tensors {
            let info = cur.tensor_info()?;
            if tensor_index.insert(info.name.clone(), i).is_some() {
                return Err(GgufError::DuplicateTensor { name: info.name });
            }
            tensors.push(info);
        }

        let alignment = match key_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() => *a,
            Some(Value::U32(a)) => return Err(GgufError::BadAlignment { alignment: *a }),
            Some(other) => {
                return Err(GgufError::WrongValueType {
                    key: "general.alignment".to_owned(),
                    expected: ValueType::U32,
                    found: other.value_type(),
                });
            }
        };
        // The header ended inside the file, so this cannot overflow.
        let data_offset = (cur.pos() as u64).next_multiple_of(u64::from(alignment));

        let file = GgufFile {
            bytes,
            version,
            alignment,
            data_offset,
            metadata,
            key_index,
            tensors,
            tensor_index,
        };
        for info in &file.tensors {
            file.check_tensor(info)?;
        }
        Ok(file)
    }

    /// Checks a tensor's offset alignment and, for types of known size, that its bytes
    /// lie in the file (for other types, that its start does).
    fn check_tensor(&self, info: &TensorInfo) -> Result<(), GgufError> {
        let alignment = u64::from(self.alignment);
        if !info.offset.is_multiple_of(alignment) {
            return Err(GgufError::MisalignedTensor {
                name: info.name.clone(),
                offset: info.offset,
                alignment,
            });
        }
        let size = match info.byte_size() {
            Ok(size) => size,
            Err(GgufError::UnknownTensorType { .. }) => 0,
            Err(e) => return Err(e),
        };
        self.byte_range(info, size).map(|_| ())
    }

    /// The range in the file of `size` bytes at tensor `info`'s offset, checked to lie
    /// in the file: first the offset against the data section, then the end against the
    /// file (no sum is formed before it is known not to overflow).
    fn byte_range(&self, info: &TensorInfo, size: u64) -> Result<(usize, usize), GgufError> {
        let file_len = self.bytes.len() as u64;
        // The data section may start past the end of a file that holds no tensor data.
        let data_len = file_len.saturating_sub(self.data_offset);
        if info.offset > data_len {
            return Err(GgufError::TensorOffsetOutOfBounds {
                name: info.name.clone(),
                offset: info.offset,
                data_offset: self.data_offset,
                data_len,
            });
        }
        // offset <= data_len, so start <= max(file_len, data_offset): no overflow.
        let start = self.data_offset + info.offset;
        if start > file_len || size > file_len - start {
            return Err(GgufError::TensorOutOfBounds {
                name: info.name.clone(),
                start,
                size,
                file_len,
            });
        }
        // start + size <= file_len, which came from a usize.
        Ok((start as usize, (start + size) as usize))
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data-section alignment (`general.alignment`, default [`DEFAULT_ALIGNMENT`]).
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// Where the data section starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The metadata key-value pairs in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of metadata key `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The value of metadata key `key`, or [`GgufError::MissingKey`].
    pub fn value(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey { key: key.to_owned() })
    }

    fn wrong_type(&self, key: &str, expected: ValueType, found: &Value) -> GgufError {
        GgufError::WrongValueType { key: key.to_owned(), expected, found: found.value_type() }
    }

    getter!(/// The `uint8` value of `key`.
        get_u8, U8, u8);
    getter!(/// The `int8` value of `key`.
        get_i8, I8, i8);
    getter!(/// The `uint16` value of `key`.
        get_u16, U16, u16);
    getter!(/// The `int16` value of `key`.
        get_i16, I16, i16);
    getter!(/// The `uint32` value of `key` (no conversion from other integer types).
        get_u32, U32, u32);
    getter!(/// The `int32` value of `key`.
        get_i32, I32, i32);
    getter!(/// The `uint64` value of `key`.
        get_u64, U64, u64);
    getter!(/// The `int64` value of `key`.
        get_i64, I64, i64);
    getter!(/// The `float32` value of `key`.
        get_f32, F32, f32);
    getter!(/// The `float64` value of `key`.
        get_f64, F64, f64);
    getter!(/// The `bool` value of `key`.
        get_bool, Bool, bool);

    /// The `string` value of `key`.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.value(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(key, ValueType::String, other)),
        }
    }

    /// The `array` value of `key`.
    pub fn get_array(&self, key: &str) -> Result<&Array, GgufError> {
        match self.value(key)? {
            Value::Array(a) => Ok(a),
            other => Err(self.wrong_type(key, ValueType::Array, other)),
        }
    }

    /// The tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of tensor `name`, or [`GgufError::MissingTensor`].
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::MissingTensor { name: name.to_owned() })
    }

    /// The bytes of tensor `name`, sized from its ggml type and dims.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.tensor(name)?;
        let (start, end) = self.byte_range(info, info.byte_size()?)?;
        Ok(&self.bytes[start..end])
    }

    /// The values of `F32` tensor `name`, in storage order (`ne0` fastest).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let info = self.tensor(name)?;
        if info.ggml_type != GGML_TYPE_F32 {
            return Err(GgufError::WrongTensorType {
                name: info.name.clone(),
                expected: GGML_TYPE_F32,
                found: info.ggml_type,
            });
        }
        let bytes = self.tensor_bytes(name)?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}
