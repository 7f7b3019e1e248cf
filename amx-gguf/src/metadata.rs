//! The metadata getters of [`GgufFile`]: by key, typed, with errors that name the key and
//! the type found. No getter converts between types: a `uint64` value is not a `uint32`,
//! whatever its size.

use crate::error::GgufError;
use crate::file::GgufFile;
use crate::value::{Array, Value, ValueType};

fn wrong_type(key: &str, expected: ValueType, found: &Value) -> GgufError {
    GgufError::WrongValueType { key: key.to_owned(), expected, found: found.value_type() }
}

/// A getter of one scalar type: `$variant` is the `Value` variant and the `ValueType`.
macro_rules! getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $t:ty) => {
        $(#[$doc])*
        ///
        /// Errors: [`GgufError::MissingKey`], [`GgufError::WrongValueType`].
        pub fn $fn(&self, key: &str) -> Result<$t, GgufError> {
            match self.value(key)? {
                Value::$variant(v) => Ok(*v),
                other => Err(wrong_type(key, ValueType::$variant, other)),
            }
        }
    };
}

/// A getter of the elements of an array of one element type.
macro_rules! array_getter {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $t:ty) => {
        $(#[$doc])*
        ///
        /// Errors: [`GgufError::MissingKey`], [`GgufError::WrongValueType`] for a value
        /// that is not an array, [`GgufError::WrongArrayType`] for an array of other
        /// elements.
        pub fn $fn(&self, key: &str) -> Result<&[$t], GgufError> {
            match self.get_array(key)? {
                Array::$variant(v) => Ok(v),
                other => Err(GgufError::WrongArrayType {
                    key: key.to_owned(),
                    expected: ValueType::$variant,
                    found: other.elem_type(),
                }),
            }
        }
    };
}

impl GgufFile {
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
    ///
    /// Errors: [`GgufError::MissingKey`], [`GgufError::WrongValueType`].
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.value(key)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(key, ValueType::String, other)),
        }
    }

    /// The `array` value of `key` (any element type; the `get_*_array` getters check it).
    ///
    /// Errors: [`GgufError::MissingKey`], [`GgufError::WrongValueType`].
    pub fn get_array(&self, key: &str) -> Result<&Array, GgufError> {
        match self.value(key)? {
            Value::Array(a) => Ok(a),
            other => Err(wrong_type(key, ValueType::Array, other)),
        }
    }

    array_getter!(/// The elements of the `uint8` array `key`.
        get_u8_array, U8, u8);
    array_getter!(/// The elements of the `int8` array `key`.
        get_i8_array, I8, i8);
    array_getter!(/// The elements of the `uint16` array `key`.
        get_u16_array, U16, u16);
    array_getter!(/// The elements of the `int16` array `key`.
        get_i16_array, I16, i16);
    array_getter!(/// The elements of the `uint32` array `key`.
        get_u32_array, U32, u32);
    array_getter!(/// The elements of the `int32` array `key` (e.g. `tokenizer.ggml.token_type`).
        get_i32_array, I32, i32);
    array_getter!(/// The elements of the `uint64` array `key`.
        get_u64_array, U64, u64);
    array_getter!(/// The elements of the `int64` array `key`.
        get_i64_array, I64, i64);
    array_getter!(/// The elements of the `float32` array `key` (e.g. `tokenizer.ggml.scores`).
        get_f32_array, F32, f32);
    array_getter!(/// The elements of the `float64` array `key`.
        get_f64_array, F64, f64);
    array_getter!(/// The elements of the `bool` array `key`.
        get_bool_array, Bool, bool);
    array_getter!(/// The elements of the `string` array `key` (e.g. `tokenizer.ggml.tokens`).
        get_str_array, String, String);
}
