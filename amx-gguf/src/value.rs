//! GGUF metadata values: the 13 value types, scalar values and (possibly nested) arrays.

/// A GGUF metadata value type, with its id as stored in the file.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// `uint8` (id 0).
    U8 = 0,
    /// `int8` (id 1).
    I8 = 1,
    /// `uint16` (id 2).
    U16 = 2,
    /// `int16` (id 3).
    I16 = 3,
    /// `uint32` (id 4).
    U32 = 4,
    /// `int32` (id 5).
    I32 = 5,
    /// `float32` (id 6).
    F32 = 6,
    /// `bool`, one byte 0 or 1 (id 7).
    Bool = 7,
    /// `string`: u64 length, then UTF-8 bytes (id 8).
    String = 8,
    /// `array`: u32 element type, u64 count, elements (id 9).
    Array = 9,
    /// `uint64` (id 10).
    U64 = 10,
    /// `int64` (id 11).
    I64 = 11,
    /// `float64` (id 12).
    F64 = 12,
}

impl ValueType {
    /// All value types, in id order.
    pub const ALL: [ValueType; 13] = [
        Self::U8,
        Self::I8,
        Self::U16,
        Self::I16,
        Self::U32,
        Self::I32,
        Self::F32,
        Self::Bool,
        Self::String,
        Self::Array,
        Self::U64,
        Self::I64,
        Self::F64,
    ];

    /// The type with that id, if there is one.
    pub fn from_id(id: u32) -> Option<ValueType> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The id stored in the file.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The lower-case name used in the GGUF spec (`"uint32"`, `"string"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F64 => "float64",
        }
    }

    /// The fewest bytes one value of this type takes in the file: its size for the
    /// fixed-size types, 8 (the length) for a string, 12 (type and count) for an array.
    pub const fn min_encoded_size(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `float32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `array`.
    Array(Array),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float64`.
    F64(f64),
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }
}

/// A metadata array: all elements have one type, kept in a typed vector (so an array of
/// 100k token ids costs 4 bytes per id, not a `Value` each). Arrays may nest.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// Array of `uint8`.
    U8(Vec<u8>),
    /// Array of `int8`.
    I8(Vec<i8>),
    /// Array of `uint16`.
    U16(Vec<u16>),
    /// Array of `int16`.
    I16(Vec<i16>),
    /// Array of `uint32`.
    U32(Vec<u32>),
    /// Array of `int32`.
    I32(Vec<i32>),
    /// Array of `float32`.
    F32(Vec<f32>),
    /// Array of `bool`.
    Bool(Vec<bool>),
    /// Array of `string`.
    String(Vec<String>),
    /// Array of arrays (each inner array has its own element type).
    Array(Vec<Array>),
    /// Array of `uint64`.
    U64(Vec<u64>),
    /// Array of `int64`.
    I64(Vec<i64>),
    /// Array of `float64`.
    F64(Vec<f64>),
}

impl Array {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::String(v) => v.len(),
            Self::Array(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
