//! Files on disk: `open` maps them and hands out slices of the map, `read` copies them;
//! both give the same metadata and tensor bytes.

use std::path::PathBuf;

use super::*;

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("amx-gguf-{tag}-{}.gguf", std::process::id()));
        std::fs::write(&path, bytes).expect("write a temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn open_maps_the_file_and_tensor_bytes_are_slices_of_the_map() {
    let w = sample();
    let (bytes, _) = w.build();
    let tmp = TempFile::new("map", &bytes);
    let mapped = GgufFile::open(&tmp.0).unwrap();
    let copied = GgufFile::read(&tmp.0).unwrap();
    assert!(mapped.is_mapped() && !copied.is_mapped());
    assert_eq!(mapped.bytes(), &bytes[..]);
    assert_eq!(copied.bytes(), &bytes[..]);
    assert_eq!(mapped.metadata(), copied.metadata());
    assert_eq!(mapped.tensors(), copied.tensors());
    let file = mapped.bytes().as_ptr_range();
    for t in w.tensors.iter().filter(|t| t.ggml_type != Q8_K) {
        let got = mapped.tensor_bytes(&t.name).unwrap();
        assert_eq!(got, &t.data[..], "{}", t.name);
        assert_eq!(copied.tensor_bytes(&t.name).unwrap(), &t.data[..], "{}", t.name);
        // Zero-copy: the tensor's bytes lie in the map, at the data section plus offset.
        let info = mapped.tensor(&t.name).unwrap();
        let at = (mapped.data_offset() + info.offset) as usize;
        assert_eq!(got.as_ptr(), mapped.bytes()[at..].as_ptr(), "{}", t.name);
        assert!(file.contains(&got.as_ptr()), "{}", t.name);
    }
    assert_eq!(mapped.tensor_f32("f32").unwrap(), [1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]);
}

/// An empty file has nothing to map: it is read as 0 bytes and is a truncated header.
#[test]
fn an_empty_file_is_truncated() {
    let tmp = TempFile::new("empty", b"");
    let e = GgufFile::open(&tmp.0).unwrap_err();
    assert_eq!(e, GgufError::Truncated { what: "magic", offset: 0, needed: 4, file_len: 0 });
}

/// A mapped file gets every check a parsed one does: here a tensor cut short.
#[test]
fn a_mapped_file_is_checked_like_bytes() {
    let (mut bytes, _) = sample().build();
    bytes.pop();
    let tmp = TempFile::new("short", &bytes);
    let e = GgufFile::open(&tmp.0).unwrap_err();
    assert_eq!(GgufFile::parse(bytes).unwrap_err(), e);
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref name, .. } if name == "bf16"), "{e}");
}

/// Engines share one file between threads (the map is read-only).
#[test]
fn a_file_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GgufFile>();
}
