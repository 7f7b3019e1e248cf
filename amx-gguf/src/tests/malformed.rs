//! Reader tests on malformed byte images: every kind of bad input gives its error.

use super::*;

fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    put_u32(&mut b, version);
    put_u64(&mut b, n_tensors);
    put_u64(&mut b, n_kv);
    b
}

#[test]
fn bad_magic_and_versions() {
    let mut b = header(3, 0, 0);
    b[0] = b'g';
    assert_eq!(GgufFile::parse(b).unwrap_err(), GgufError::BadMagic { found: *b"gGUF" });
    for version in [0, 1, 4, 0xffff_ffff] {
        assert_eq!(
            GgufFile::parse(header(version, 0, 0)).unwrap_err(),
            GgufError::UnsupportedVersion { version }
        );
    }
    assert_eq!(
        GgufFile::parse(header(0x0300_0000, 0, 0)).unwrap_err(),
        GgufError::BigEndian { version: 0x0300_0000 }
    );
    let f = GgufFile::parse(header(3, 0, 0)).unwrap();
    assert!(f.metadata().is_empty() && f.tensors().is_empty());
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    let e = GgufFile::parse(header(3, u64::MAX, 0)).unwrap_err();
    assert!(matches!(e, GgufError::AbsurdCount { offset: 8, count: u64::MAX, .. }), "{e}");
    let e = GgufFile::parse(header(3, 0, 1 << 40)).unwrap_err();
    assert!(matches!(e, GgufError::AbsurdCount { offset: 16, .. }), "{e}");
    // One key whose string length is huge.
    let mut b = header(3, 0, 1);
    put_u64(&mut b, u64::MAX - 3);
    b.extend_from_slice(&[b'k'; 16]);
    assert!(matches!(GgufFile::parse(b).unwrap_err(), GgufError::AbsurdCount { offset: 24, .. }));
    // An array of u64 with a count that needs 8 bytes more than are left.
    let mut b = header(3, 0, 1);
    put_str(&mut b, b"k");
    put_u32(&mut b, 9);
    put_u32(&mut b, 10);
    put_u64(&mut b, 3);
    b.extend_from_slice(&[0; 16]);
    let e = GgufFile::parse(b).unwrap_err();
    assert_eq!(
        e,
        GgufError::AbsurdCount { what: "array element", offset: 41, count: 3, remaining: 16 }
    );
}

/// A file with one key `k` of type `ty` followed by `payload`.
fn one_kv(key: &[u8], ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = header(3, 0, 1);
    put_str(&mut b, key);
    put_u32(&mut b, ty);
    b.extend_from_slice(payload);
    b
}

#[test]
fn malformed_values() {
    let e = GgufFile::parse(one_kv(b"k\xff", 4, &[0; 4])).unwrap_err();
    assert_eq!(e, GgufError::InvalidUtf8 { offset: 32 });
    let mut s = Vec::new();
    put_str(&mut s, b"\xc3\x28");
    let e = GgufFile::parse(one_kv(b"k", 8, &s)).unwrap_err();
    assert_eq!(e, GgufError::InvalidUtf8 { offset: 45 });
    let e = GgufFile::parse(one_kv(b"k", 13, &[0; 8])).unwrap_err();
    assert_eq!(e, GgufError::UnknownValueType { offset: 33, type_id: 13 });
    let e = GgufFile::parse(one_kv(b"k", 7, &[2])).unwrap_err();
    assert_eq!(e, GgufError::InvalidBool { offset: 37, value: 2 });
    let w = Writer::new().kv("k", Value::U8(1)).kv("k", Value::U8(2));
    assert_eq!(parse(&w).unwrap_err(), GgufError::DuplicateKey { key: "k".into() });
}

#[test]
fn nesting_depth_is_capped() {
    let nest = |depth: usize| {
        let mut a = Array::U8(vec![1]);
        for _ in 1..depth {
            a = Array::Array(vec![a]);
        }
        Writer::new().kv("k", Value::Array(a))
    };
    assert!(parse(&nest(MAX_ARRAY_DEPTH)).is_ok());
    assert!(matches!(parse(&nest(MAX_ARRAY_DEPTH + 1)), Err(GgufError::NestingTooDeep { .. })));
    // A deep chain that would exhaust the stack if followed.
    let mut b = one_kv(b"k", 9, &[]);
    for _ in 0..100_000 {
        put_u32(&mut b, 9);
        put_u64(&mut b, 1);
    }
    assert!(matches!(GgufFile::parse(b), Err(GgufError::NestingTooDeep { .. })));
}

#[test]
fn malformed_tensors() {
    let t = |name: &str, dims: &[u64], ty: u32, len: usize| {
        Writer::new().tensor("a", &[8], GGML_TYPE_F32, vec![0; 32]).tensor(
            name,
            dims,
            ty,
            vec![0; len],
        )
    };
    assert_eq!(
        parse(&t("a", &[8], GGML_TYPE_F32, 32)).unwrap_err(),
        GgufError::DuplicateTensor { name: "a".into() }
    );
    assert_eq!(
        parse(&t("b", &[1, 1, 1, 1, 1], GGML_TYPE_F32, 4)).unwrap_err(),
        GgufError::TooManyDims { name: "b".into(), n_dims: 5 }
    );
    assert_eq!(
        parse(&t("b", &[33], Q4_0, 18)).unwrap_err(),
        GgufError::RowNotWholeBlocks { name: "b".into(), ne0: 33, block_values: 32 }
    );
    let e = parse(&t("b", &[1 << 62, 4], GGML_TYPE_F32, 4)).unwrap_err();
    assert_eq!(
        e,
        GgufError::TensorSizeOverflow {
            name: "b".into(),
            ne: [1 << 62, 4, 1, 1],
            ggml_type: GGML_TYPE_F32
        }
    );
    let msg = e.to_string();
    assert!(["\"b\"", "F32", "4611686018427387904, 4, 1, 1"].iter().all(|s| msg.contains(s)));
    // One byte short: the file ends 1 byte before the tensor does.
    let (mut bytes, _) = t("b", &[8], GGML_TYPE_F32, 32).build();
    let len = bytes.len() as u64;
    bytes.pop();
    assert_eq!(
        GgufFile::parse(bytes).unwrap_err(),
        GgufError::TensorOutOfBounds {
            name: "b".into(),
            start: len - 32,
            size: 32,
            file_len: len - 1
        }
    );
    let mut w = t("b", &[8], GGML_TYPE_F32, 32);
    w.offsets = Some(vec![0, 48]);
    assert_eq!(
        parse(&w).unwrap_err(),
        GgufError::MisalignedTensor { name: "b".into(), offset: 48, alignment: 32 }
    );
    w.offsets = Some(vec![0, 64]);
    assert!(
        matches!(parse(&w), Err(GgufError::TensorOutOfBounds { start, .. }) if start % 32 == 0)
    );
    // A tensor of unknown type parses if its start is in the file, but cannot be read.
    let f = parse(&t("b", &[256], Q8_K, 84)).unwrap();
    assert_eq!(
        f.tensor_bytes("b").unwrap_err(),
        GgufError::UnknownTensorType { name: "b".into(), ggml_type: Q8_K }
    );
    let mut w = t("b", &[256], Q8_K, 84);
    w.offsets = Some(vec![0, 1 << 20]);
    assert!(
        matches!(parse(&w), Err(GgufError::TensorOffsetOutOfBounds { offset, .. }) if offset == 1 << 20)
    );
}

/// An offset near 2^64 used to read "size overflows 64 bits"; it names the tensor, its
/// offset and the data section instead.
#[test]
fn absurd_offsets_name_the_tensor_the_offset_and_the_data_size() {
    let base = Writer::new().tensor("a", &[8], GGML_TYPE_F32, vec![0; 32]).tensor(
        "b",
        &[8],
        GGML_TYPE_F32,
        vec![0; 32],
    );
    let (bytes, header_end) = base.build();
    let data_offset = (header_end as u64).next_multiple_of(32);
    let data_len = bytes.len() as u64 - data_offset;
    assert_eq!(data_len, 64);
    for offset in [u64::MAX - 31, 1 << 40, 96] {
        let mut w = Writer::new().tensor("a", &[8], GGML_TYPE_F32, vec![0; 32]).tensor(
            "b",
            &[8],
            GGML_TYPE_F32,
            vec![0; 32],
        );
        w.offsets = Some(vec![0, offset]);
        let e = parse(&w).unwrap_err();
        assert_eq!(
            e,
            GgufError::TensorOffsetOutOfBounds { name: "b".into(), offset, data_offset, data_len }
        );
        let msg = e.to_string();
        let want =
            ["\"b\"".to_string(), offset.to_string(), data_offset.to_string(), "64 bytes".into()];
        assert!(want.iter().all(|s| msg.contains(s.as_str())), "{msg}");
        assert!(!msg.contains("overflow"), "{msg}");
    }
    // A size that would overflow when added to the start is out of bounds, not an
    // overflow: 2^64 - 1 one-byte values at offset 32.
    let mut w = Writer::new().tensor("a", &[8], GGML_TYPE_F32, vec![0; 32]).tensor(
        "b",
        &[u64::MAX],
        GGML_TYPE_I8,
        vec![0; 32],
    );
    w.offsets = Some(vec![0, 32]);
    let e = parse(&w).unwrap_err();
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref name, size: u64::MAX, .. } if name == "b"),
        "{e}"
    );
}

/// A way of opening a file from disk.
type Opener = fn(&str) -> Result<GgufFile, GgufError>;

/// Both ways of opening a file from disk: a memory map and a copy.
const OPENERS: [(&str, Opener); 2] =
    [("open", |p| GgufFile::open(p)), ("read", |p| GgufFile::read(p))];

/// Only regular files are mapped or read: a directory is refused by kind, naming the path.
#[test]
fn directories_are_not_read() {
    let dir = std::env::temp_dir();
    for (how, open) in OPENERS {
        let e = open(dir.to_str().expect("a UTF-8 temp dir")).unwrap_err();
        assert_eq!(
            e,
            GgufError::NotARegularFile { path: dir.clone(), kind: "a directory" },
            "{how}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&*dir.to_string_lossy()) && msg.contains("a directory"), "{msg}");
    }
}

/// `/dev/zero` used to be read until memory ran out (and could be mapped without end).
#[cfg(target_os = "linux")]
#[test]
fn dev_zero_is_refused_before_reading() {
    for (how, open) in OPENERS {
        let e = open("/dev/zero").unwrap_err();
        assert_eq!(
            e,
            GgufError::NotARegularFile { path: "/dev/zero".into(), kind: "a character device" },
            "{how}"
        );
        assert_eq!(e.to_string(), "/dev/zero is a character device, not a regular file");
    }
}

/// Reads and maps stop at the size the file had when opened: `/proc/self/status` is a
/// regular file of size 0 that yields text, and is read as an empty file (the old reader
/// read its text and reported a bad magic).
#[cfg(target_os = "linux")]
#[test]
fn reads_are_bounded_by_the_file_size() {
    for (how, open) in OPENERS {
        let e = open("/proc/self/status").unwrap_err();
        assert_eq!(
            e,
            GgufError::Truncated { what: "magic", offset: 0, needed: 4, file_len: 0 },
            "{how}"
        );
    }
}

#[test]
fn errors_display_their_numbers() {
    let (mut bytes, header_end) = Writer::new().kv("k", Value::U32(7)).build();
    assert_eq!(header_end, 41);
    bytes.truncate(40);
    let e = GgufFile::parse(bytes).unwrap_err();
    assert_eq!(
        e,
        GgufError::Truncated { what: "metadata value", offset: 37, needed: 4, file_len: 40 }
    );
    let msg = e.to_string();
    assert!(["offset 37", "4 bytes", "40"].iter().all(|s| msg.contains(s)), "{msg}");
    let e =
        GgufError::TensorOutOfBounds { name: "w".into(), start: 512, size: 1024, file_len: 600 };
    let msg = e.to_string();
    assert!(["\"w\"", "512", "1024", "600"].iter().all(|s| msg.contains(s)), "{msg}");
    for (how, open) in OPENERS {
        let e = open("/nonexistent/amx-rs/file.gguf").unwrap_err();
        assert!(
            matches!(e, GgufError::Io { kind: std::io::ErrorKind::NotFound, .. }),
            "{how}: {e}"
        );
    }
}
