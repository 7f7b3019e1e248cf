//! [`GgufFile`]: a parsed GGUF file, its bytes (mapped, read or handed over), metadata and
//! tensor infos, and the checks that every tensor lies in the file.

use std::collections::HashMap;
use std::path::Path;

use crate::DEFAULT_ALIGNMENT;
use crate::error::GgufError;
use crate::reader::{Cursor, MAX_RESERVED_ITEMS, MIN_KV_SIZE, MIN_TENSOR_INFO_SIZE, reserve};
use crate::source::{self, Bytes};
use crate::tensor::TensorInfo;
use crate::types::GGML_TYPE_F32;
use crate::value::{Value, ValueType};

/// A parsed GGUF file: its bytes, metadata and tensor infos.
///
/// Made by [`GgufFile::open`] (a memory map of the file), [`GgufFile::read`] (a copy in
/// memory) or [`GgufFile::parse`] (bytes the caller holds). Metadata values and tensor
/// infos are parsed and copied out once; tensor bytes are borrowed from the file's bytes
/// ([`GgufFile::tensor_bytes`]), so a mapped file's weights are read from the page cache
/// without a copy.
#[derive(Debug)]
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    alignment: u32,
    data_offset: u64,
    pub(crate) metadata: Vec<(String, Value)>,
    pub(crate) key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufFile {
    /// Maps the file at `path` read-only and parses it; tensor bytes are then slices of
    /// the map (zero-copy).
    ///
    /// **The file must not be modified or truncated while the returned `GgufFile`
    /// lives** (by this process or any other): a write would change bytes handed out as
    /// `&[u8]`, a truncation would make reading them kill the process with `SIGBUS`. Use
    /// [`GgufFile::read`] for a file that may change.
    ///
    /// Only a regular file is mapped (symbolic links are followed): a directory, device,
    /// FIFO or socket is [`GgufError::NotARegularFile`], so `/dev/zero` cannot be mapped.
    /// The map is the file's size at open time; every length and count inside is then
    /// checked against it (see [`GgufFile::parse`]). A map that fails is
    /// [`GgufError::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        Self::from_bytes(source::map_regular_file(path.as_ref())?)
    }

    /// Reads the file at `path` into memory and parses it: the checks of
    /// [`GgufFile::open`] without a map, so the file may change afterwards, at the cost
    /// of a copy of the whole file.
    ///
    /// At most the file's size at open time is read, into a buffer reserved for that
    /// size before reading.
    pub fn read(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        Self::parse(source::read_regular_file(path.as_ref())?)
    }

    /// Parses a whole GGUF file held in `bytes`.
    ///
    /// Every count (tensors, keys, array elements, string bytes) is checked against the
    /// bytes left before anything is allocated for it ([`GgufError::AbsurdCount`]), and
    /// every tensor of a known type is checked to lie in the file: its offset inside the
    /// data section ([`GgufError::TensorOffsetOutOfBounds`]), then its bytes
    /// ([`GgufError::TensorOutOfBounds`]).
    pub fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::from_bytes(Bytes::Owned(bytes))
    }

    fn from_bytes(bytes: Bytes) -> Result<GgufFile, GgufError> {
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

    /// Whether the bytes are a memory map of the file ([`GgufFile::open`] of a non-empty
    /// file), rather than a copy in memory.
    pub fn is_mapped(&self) -> bool {
        match self.bytes {
            Bytes::Mapped(_) => true,
            Bytes::Owned(_) => false,
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

    /// The bytes of tensor `name`, sized from its ggml type and dims: a slice of the map
    /// for a file from [`GgufFile::open`] (no copy).
    ///
    /// Errors: [`GgufError::MissingTensor`]; [`GgufError::UnknownTensorType`] for a type
    /// this reader cannot size (its name is still in [`TensorInfo::type_name`]).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.tensor(name)?;
        let (start, end) = self.byte_range(info, info.byte_size()?)?;
        Ok(&self.bytes[start..end])
    }

    /// The values of `F32` tensor `name`, in storage order (`ne0` fastest), copied out
    /// (the data section's alignment may be 1, so the bytes are not viewed as `f32`).
    ///
    /// Errors: those of [`GgufFile::tensor_bytes`]; [`GgufError::WrongTensorType`] for a
    /// tensor of another type.
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
