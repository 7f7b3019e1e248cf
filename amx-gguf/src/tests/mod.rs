//! Reader tests on byte images built by the test writer: well-formed files here,
//! malformed ones in [`malformed`].

use crate::writer::{Writer, put_str, put_u32, put_u64};
use crate::*;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Metadata covering every value type, nesting, empty arrays and non-ASCII strings.
fn all_values() -> Vec<(&'static str, Value)> {
    vec![
        ("general.architecture", Value::String("amx-test".into())),
        ("t.u8", Value::U8(255)),
        ("t.i8", Value::I8(-128)),
        ("t.u16", Value::U16(65535)),
        ("t.i16", Value::I16(-32768)),
        ("t.u32", Value::U32(0xdead_beef)),
        ("t.i32", Value::I32(i32::MIN)),
        ("t.f32", Value::F32(-1.5e-7)),
        ("t.bool.t", Value::Bool(true)),
        ("t.bool.f", Value::Bool(false)),
        ("t.str", Value::String("h\u{e9}llo \u{1f600}".into())),
        ("t.str.empty", Value::String(String::new())),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(1e300)),
        ("", Value::U8(0)),
        ("a.u8", Value::Array(Array::U8(vec![1, 2, 3]))),
        ("a.i8", Value::Array(Array::I8(vec![-1, 127]))),
        ("a.u16", Value::Array(Array::U16(vec![7]))),
        ("a.i16", Value::Array(Array::I16(vec![-7, 8]))),
        ("a.u32", Value::Array(Array::U32(vec![1, u32::MAX]))),
        ("a.i32", Value::Array(Array::I32(vec![-5]))),
        ("a.f32", Value::Array(Array::F32(vec![0.25, -0.0, f32::INFINITY]))),
        ("a.bool", Value::Array(Array::Bool(vec![true, false, true]))),
        ("a.str", Value::Array(Array::String(vec!["a".into(), String::new(), "\u{3b1}".into()]))),
        ("a.u64", Value::Array(Array::U64(vec![u64::MAX, 0]))),
        ("a.i64", Value::Array(Array::I64(vec![i64::MAX]))),
        ("a.f64", Value::Array(Array::F64(vec![-2.5]))),
        ("a.empty", Value::Array(Array::F32(vec![]))),
        (
            "a.nested",
            Value::Array(Array::Array(vec![
                Array::U32(vec![1, 2]),
                Array::String(vec!["x".into()]),
                Array::Array(vec![Array::Bool(vec![]), Array::I8(vec![3])]),
            ])),
        ),
    ]
}

const Q4_0: u32 = 2;
const BF16: u32 = 30;
const Q8_K: u32 = 15; // a real ggml type this reader cannot size (ggml only quantizes activations to it)

/// A file with every value type and tensors of several types (the last one sized, so the
/// file ends exactly where its data does).
fn sample() -> Writer {
    let mut w = Writer::new();
    for (k, v) in all_values() {
        w = w.kv(k, v);
    }
    w.tensor("f32", &[3, 2], GGML_TYPE_F32, f32_bytes(&[1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]))
        .tensor("q4_0", &[64, 3], Q4_0, (0..108).map(|i| i as u8).collect())
        .tensor("scalar", &[], GGML_TYPE_F32, f32_bytes(&[42.0]))
        .tensor("unknown", &[256], Q8_K, vec![9; 84])
        .tensor("f64", &[2, 1, 1, 2], GGML_TYPE_F64, vec![5; 32])
        .tensor("i8", &[5], GGML_TYPE_I8, vec![1, 2, 3, 4, 5])
        .tensor("bf16", &[4, 1, 2], BF16, (0..16).collect())
}

fn parse(w: &Writer) -> Result<GgufFile, GgufError> {
    GgufFile::parse(w.build().0)
}

#[test]
fn round_trip_metadata_and_tensors() {
    let w = sample();
    let f = parse(&w).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), DEFAULT_ALIGNMENT);
    let want: Vec<(String, Value)> = all_values().into_iter().map(|(k, v)| (k.into(), v)).collect();
    assert_eq!(f.metadata(), &want[..]);
    assert_eq!(f.data_offset(), (w.build().1 as u64).next_multiple_of(32));
    assert_eq!(f.tensors().len(), w.tensors.len());
    for t in &w.tensors {
        let info = f.tensor(&t.name).unwrap();
        assert_eq!(info.ggml_type, t.ggml_type);
        assert_eq!(info.n_dims as usize, t.dims.len());
        for (i, d) in info.ne.iter().enumerate() {
            assert_eq!(*d, t.dims.get(i).copied().unwrap_or(1), "{} ne{i}", t.name);
        }
        assert_eq!(info.offset % 32, 0);
        if t.ggml_type == Q8_K {
            assert!(matches!(
                f.tensor_bytes(&t.name),
                Err(GgufError::UnknownTensorType { ggml_type: Q8_K, .. })
            ));
        } else {
            assert_eq!(f.tensor_bytes(&t.name).unwrap(), &t.data[..], "{}", t.name);
        }
    }
    assert_eq!(f.tensor_f32("f32").unwrap(), [1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]);
    assert_eq!(f.tensor_f32("scalar").unwrap(), [42.0]);
    assert_eq!(f.tensor("scalar").unwrap().n_elements(), Some(1));
    assert_eq!(f.tensor("f64").unwrap().n_elements(), Some(4));
}

#[test]
fn typed_getters() {
    let f = parse(&sample()).unwrap();
    assert_eq!(f.get_u8("t.u8"), Ok(255));
    assert_eq!(f.get_i8("t.i8"), Ok(-128));
    assert_eq!(f.get_u16("t.u16"), Ok(65535));
    assert_eq!(f.get_i16("t.i16"), Ok(-32768));
    assert_eq!(f.get_u32("t.u32"), Ok(0xdead_beef));
    assert_eq!(f.get_i32("t.i32"), Ok(i32::MIN));
    assert_eq!(f.get_f32("t.f32"), Ok(-1.5e-7));
    assert_eq!(f.get_bool("t.bool.t"), Ok(true));
    assert_eq!(f.get_bool("t.bool.f"), Ok(false));
    assert_eq!(f.get_str("t.str"), Ok("h\u{e9}llo \u{1f600}"));
    assert_eq!(f.get_u64("t.u64"), Ok(u64::MAX));
    assert_eq!(f.get_i64("t.i64"), Ok(i64::MIN));
    assert_eq!(f.get_f64("t.f64"), Ok(1e300));
    assert_eq!(f.get_array("a.u32"), Ok(&Array::U32(vec![1, u32::MAX])));
    assert_eq!(f.get_array("a.nested").map(Array::len), Ok(3));
    assert_eq!(f.get_u8_array("a.u8"), Ok(&[1u8, 2, 3][..]));
    assert_eq!(f.get_i8_array("a.i8"), Ok(&[-1i8, 127][..]));
    assert_eq!(f.get_u16_array("a.u16"), Ok(&[7u16][..]));
    assert_eq!(f.get_i16_array("a.i16"), Ok(&[-7i16, 8][..]));
    assert_eq!(f.get_u32_array("a.u32"), Ok(&[1, u32::MAX][..]));
    assert_eq!(f.get_i32_array("a.i32"), Ok(&[-5][..]));
    assert_eq!(f.get_u64_array("a.u64"), Ok(&[u64::MAX, 0][..]));
    assert_eq!(f.get_i64_array("a.i64"), Ok(&[i64::MAX][..]));
    assert_eq!(f.get_f32_array("a.f32"), Ok(&[0.25, -0.0, f32::INFINITY][..]));
    assert_eq!(f.get_f32_array("a.empty"), Ok(&[][..]));
    assert_eq!(f.get_f64_array("a.f64"), Ok(&[-2.5][..]));
    assert_eq!(f.get_bool_array("a.bool"), Ok(&[true, false, true][..]));
    let strs = f.get_str_array("a.str").unwrap();
    assert_eq!(strs, ["a", "", "\u{3b1}"]);
    // The wrong element type names the key and both element types.
    let e = f.get_str_array("a.f32").unwrap_err();
    assert_eq!(
        e,
        GgufError::WrongArrayType {
            key: "a.f32".into(),
            expected: ValueType::String,
            found: ValueType::F32
        }
    );
    assert_eq!(
        e.to_string(),
        "GGUF metadata key \"a.f32\" is an array of float32, expected an array of string"
    );
    // Not an array at all, or no such key.
    assert_eq!(
        f.get_u32_array("t.u32"),
        Err(GgufError::WrongValueType {
            key: "t.u32".into(),
            expected: ValueType::Array,
            found: ValueType::U32
        })
    );
    assert_eq!(f.get_i32_array("nope"), Err(GgufError::MissingKey { key: "nope".into() }));
    assert_eq!(
        f.get_u32("t.u64"),
        Err(GgufError::WrongValueType {
            key: "t.u64".into(),
            expected: ValueType::U32,
            found: ValueType::U64
        })
    );
    assert_eq!(f.get_str("nope"), Err(GgufError::MissingKey { key: "nope".into() }));
    assert_eq!(
        f.get_f32("t.str").unwrap_err().to_string(),
        "GGUF metadata key \"t.str\" is string, expected float32"
    );
    assert!(f.get("nope").is_none());
    assert_eq!(f.tensor_bytes("nope"), Err(GgufError::MissingTensor { name: "nope".into() }));
    assert_eq!(
        f.tensor_f32("q4_0"),
        Err(GgufError::WrongTensorType {
            name: "q4_0".into(),
            expected: GGML_TYPE_F32,
            found: Q4_0
        })
    );
}

#[test]
fn version_2_reads_like_3() {
    let mut w = sample();
    w.version = 2;
    let f = parse(&w).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.tensor_f32("scalar").unwrap(), [42.0]);
}

#[test]
fn custom_alignment() {
    for alignment in [1u32, 8, 64, 256] {
        let mut w = sample().kv("general.alignment", Value::U32(alignment));
        w.alignment = u64::from(alignment);
        let f = parse(&w).unwrap();
        assert_eq!(f.alignment(), alignment);
        assert_eq!(f.data_offset() % u64::from(alignment), 0);
        assert!(f.data_offset() - (w.build().1 as u64) < u64::from(alignment));
        for t in w.tensors.iter().filter(|t| t.ggml_type != Q8_K) {
            assert_eq!(f.tensor_bytes(&t.name).unwrap(), &t.data[..]);
        }
    }
}

#[test]
fn bad_alignment() {
    for bad in [0u32, 3, 48] {
        let w = Writer::new().kv("general.alignment", Value::U32(bad));
        assert_eq!(parse(&w).unwrap_err(), GgufError::BadAlignment { alignment: bad });
    }
    let w = Writer::new().kv("general.alignment", Value::U64(32));
    assert!(matches!(parse(&w), Err(GgufError::WrongValueType { found: ValueType::U64, .. })));
}

#[test]
fn every_truncation_is_an_error() {
    let (bytes, header_end) = sample().build();
    assert!(GgufFile::parse(bytes.clone()).is_ok());
    for len in 0..bytes.len() {
        let err = GgufFile::parse(bytes[..len].to_vec()).unwrap_err();
        if len < header_end {
            assert!(
                matches!(err, GgufError::Truncated { .. } | GgufError::AbsurdCount { .. }),
                "len {len}: {err}"
            );
        } else {
            assert!(
                matches!(
                    err,
                    GgufError::TensorOutOfBounds { .. } | GgufError::TensorOffsetOutOfBounds { .. }
                ),
                "len {len}: {err}"
            );
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let (bytes, _) = sample().build();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ok = 0;
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] = next() as u8;
        }
        if let Ok(f) = GgufFile::parse(b) {
            ok += 1;
            // Parsing validated every sized tensor, so its bytes must be available.
            for t in f.tensors() {
                if t.byte_size().is_ok() {
                    assert!(f.tensor_bytes(&t.name).is_ok(), "{}", t.name);
                }
            }
        }
    }
    // Most single-byte changes in tensor data or values still parse.
    assert!(ok > 100, "only {ok} mutants parsed");
}

mod files;
mod malformed;
