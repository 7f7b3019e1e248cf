//! A tiny GGUF writer for tests (feature `writer`): builds byte images to parse back. It
//! shares no code with the reader (only the [`Value`]/[`Array`] types it serialises), so a
//! mistake in one does not hide the same mistake in the other.
//!
//! It checks nothing and writes malformed files on request (wrong offsets through
//! [`Writer::offsets`], any dims, any type id, a file cut short by the caller): that is
//! what the reader's tests need, and why it is not offered to engines as a general
//! writer. It builds the test files of amx-gguf, amx-testdata and amx-bench.
//!
//! ```
//! use amx_gguf::writer::Writer;
//! use amx_gguf::{GGML_TYPE_F32, GgufFile, Value};
//!
//! let data: Vec<u8> = [1.0f32, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()).collect();
//! let (bytes, _) = Writer::new()
//!     .kv("general.name", Value::String("tiny".into()))
//!     .tensor("t", &[3], GGML_TYPE_F32, data)
//!     .build();
//! let file = GgufFile::parse(bytes).unwrap();
//! assert_eq!(file.get_str("general.name"), Ok("tiny"));
//! assert_eq!(file.tensor_f32("t").unwrap(), [1.0, 2.0, 3.0]);
//! ```

use crate::{Array, Value};

/// Appends `v`, little-endian.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v`, little-endian.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a GGUF string: u64 length, then the bytes (not checked to be UTF-8).
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The type id the GGUF spec gives each value variant.
fn type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn array_type_id(a: &Array) -> u32 {
    match a {
        Array::U8(_) => 0,
        Array::I8(_) => 1,
        Array::U16(_) => 2,
        Array::I16(_) => 3,
        Array::U32(_) => 4,
        Array::I32(_) => 5,
        Array::F32(_) => 6,
        Array::Bool(_) => 7,
        Array::String(_) => 8,
        Array::Array(_) => 9,
        Array::U64(_) => 10,
        Array::I64(_) => 11,
        Array::F64(_) => 12,
    }
}

/// Appends a value's payload (without its type id).
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s.as_bytes()),
        Value::Array(a) => put_array(out, a),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    put_u32(out, array_type_id(a));
    macro_rules! each {
        ($v:expr, $f:expr) => {{
            put_u64(out, $v.len() as u64);
            for x in $v {
                $f(out, x);
            }
        }};
    }
    match a {
        Array::U8(v) => each!(v, |o: &mut Vec<u8>, x: &u8| o.push(*x)),
        Array::I8(v) => each!(v, |o: &mut Vec<u8>, x: &i8| o.extend(x.to_le_bytes())),
        Array::U16(v) => each!(v, |o: &mut Vec<u8>, x: &u16| o.extend(x.to_le_bytes())),
        Array::I16(v) => each!(v, |o: &mut Vec<u8>, x: &i16| o.extend(x.to_le_bytes())),
        Array::U32(v) => each!(v, |o: &mut Vec<u8>, x: &u32| o.extend(x.to_le_bytes())),
        Array::I32(v) => each!(v, |o: &mut Vec<u8>, x: &i32| o.extend(x.to_le_bytes())),
        Array::F32(v) => each!(v, |o: &mut Vec<u8>, x: &f32| o.extend(x.to_le_bytes())),
        Array::Bool(v) => each!(v, |o: &mut Vec<u8>, x: &bool| o.push(u8::from(*x))),
        Array::String(v) => each!(v, |o: &mut Vec<u8>, x: &String| put_str(o, x.as_bytes())),
        Array::Array(v) => each!(v, |o: &mut Vec<u8>, x: &Array| put_array(o, x)),
        Array::U64(v) => each!(v, |o: &mut Vec<u8>, x: &u64| o.extend(x.to_le_bytes())),
        Array::I64(v) => each!(v, |o: &mut Vec<u8>, x: &i64| o.extend(x.to_le_bytes())),
        Array::F64(v) => each!(v, |o: &mut Vec<u8>, x: &f64| o.extend(x.to_le_bytes())),
    }
}

/// One tensor to write.
pub struct TestTensor {
    /// The name.
    pub name: String,
    /// The dims, `ne0` first (any number of them, written as given).
    pub dims: Vec<u64>,
    /// The ggml type id (written as given).
    pub ggml_type: u32,
    /// The bytes (not checked against the dims and type).
    pub data: Vec<u8>,
}

/// A GGUF image under construction.
pub struct Writer {
    /// The version field (3 unless changed).
    pub version: u32,
    /// The alignment used to lay out the data section (add a `general.alignment` key
    /// yourself when it is not 32).
    pub alignment: u64,
    /// The metadata key-value pairs, in file order.
    pub kvs: Vec<(String, Value)>,
    /// The tensors, in file order.
    pub tensors: Vec<TestTensor>,
    /// When set, these offsets are written in the tensor infos instead of the real ones.
    pub offsets: Option<Vec<u64>>,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// An empty version-3 image, alignment 32.
    pub fn new() -> Self {
        Self { version: 3, alignment: 32, kvs: Vec::new(), tensors: Vec::new(), offsets: None }
    }

    /// Adds a metadata key-value pair.
    pub fn kv(mut self, key: &str, value: Value) -> Self {
        self.kvs.push((key.to_owned(), value));
        self
    }

    /// Adds a tensor.
    pub fn tensor(mut self, name: &str, dims: &[u64], ggml_type: u32, data: Vec<u8>) -> Self {
        self.tensors.push(TestTensor {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ggml_type,
            data,
        });
        self
    }

    /// The file bytes and the offset where the header ends (before its padding).
    /// Tensor data is padded to the alignment between tensors, not after the last one.
    pub fn build(&self) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        put_u32(&mut out, self.version);
        put_u64(&mut out, self.tensors.len() as u64);
        put_u64(&mut out, self.kvs.len() as u64);
        for (k, v) in &self.kvs {
            put_str(&mut out, k.as_bytes());
            put_u32(&mut out, type_id(v));
            put_value(&mut out, v);
        }
        let mut real_offsets = Vec::new();
        let mut off = 0u64;
        for t in &self.tensors {
            real_offsets.push(off);
            off = (off + t.data.len() as u64).next_multiple_of(self.alignment);
        }
        let written = self.offsets.as_ref().unwrap_or(&real_offsets);
        for (t, off) in self.tensors.iter().zip(written) {
            put_str(&mut out, t.name.as_bytes());
            put_u32(&mut out, t.dims.len() as u32);
            for d in &t.dims {
                put_u64(&mut out, *d);
            }
            put_u32(&mut out, t.ggml_type);
            put_u64(&mut out, *off);
        }
        let header_end = out.len();
        let data_start = (header_end as u64).next_multiple_of(self.alignment) as usize;
        out.resize(data_start, 0);
        for (t, off) in self.tensors.iter().zip(&real_offsets) {
            out.resize(data_start + *off as usize, 0);
            out.extend_from_slice(&t.data);
        }
        (out, header_end)
    }
}
