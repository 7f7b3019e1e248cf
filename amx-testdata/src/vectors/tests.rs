//! Loader tests on synthetic vector files and the NMSE edge cases.

use super::*;

#[test]
fn nmse_values() {
    assert_eq!(nmse(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
    // err = 1, norm = 1 + 4 + 4.
    assert_eq!(nmse(&[1.0, 3.0, 2.0], &[1.0, 2.0, 2.0]), 1.0 / 9.0);
    assert_eq!(nmse(&[0.0, 0.0], &[3.0, 4.0]), 1.0);
    assert_eq!(nmse(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    assert_eq!(nmse(&[], &[]), 0.0);
    assert_eq!(nmse(&[0.0, -0.0], &[0.0, 0.0]), 0.0);
    assert_eq!(nmse(&[0.0, 1e-30], &[0.0, 0.0]), f64::INFINITY);
    assert!(nmse(&[f32::NAN], &[1.0]).is_nan());
    assert!(nmse(&[1.0], &[f32::NAN]).is_nan());
    // f64 accumulation: squares of f32::MAX do not overflow.
    assert_eq!(nmse(&[f32::MAX], &[f32::MAX]), 0.0);
    assert!((nmse(&[0.0], &[f32::MAX]) - 1.0).abs() < 1e-15);
}

use amx_gguf::Value;
use amx_gguf::writer::Writer;

const Q8_0: u32 = 8;
const F16: u32 = 1;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A Q8_0 vector with m = 2, n = 3, k = 32; `edit` changes the metadata and tensor
/// list before the file is built.
fn synthetic(
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(&str, Vec<u64>, u32, Vec<u8>)>),
) -> Result<Vector, VectorError> {
    let mut kvs: Vec<(String, Value)> = vec![
        ("amx.test.type".into(), Value::String("q8_0".into())),
        ("amx.test.m".into(), Value::U32(2)),
        ("amx.test.n".into(), Value::U32(3)),
        ("amx.test.k".into(), Value::U32(32)),
        ("amx.test.nmse_max".into(), Value::F32(5e-4)),
        ("amx.test.flavour".into(), Value::String("plain".into())),
        ("amx.test.seed".into(), Value::U64(7)),
    ];
    let x: Vec<f32> = (0..64).map(|i| i as f32 * 0.5).collect();
    let mut tensors = vec![
        ("w", vec![32, 3], Q8_0, (0..102).map(|i| i as u8).collect()),
        ("w_deq", vec![32, 3], GGML_TYPE_F32, f32_bytes(&[0.25; 96])),
        ("x", vec![32, 2], GGML_TYPE_F32, f32_bytes(&x)),
        ("y", vec![3, 2], GGML_TYPE_F32, f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
    ];
    edit(&mut kvs, &mut tensors);
    let mut w = Writer::new();
    for (k, v) in kvs {
        w = w.kv(&k, v);
    }
    for (name, dims, ty, data) in tensors {
        w = w.tensor(name, &dims, ty, data);
    }
    let file = GgufFile::parse(w.build().0)
        .map_err(|source| VectorError::Gguf { path: "mem.gguf".into(), source })?;
    Vector::from_gguf("mem.gguf", &file)
}

fn set(kvs: &mut [(String, Value)], key: &str, value: Value) {
    kvs.iter_mut().find(|(k, _)| k == key).unwrap().1 = value;
}

#[test]
fn synthetic_vector_loads() {
    let v = synthetic(|_, _| {}).unwrap();
    assert_eq!(v.format, Format::Q8_0);
    assert_eq!((v.m, v.n, v.k), (2, 3, 32));
    assert_eq!(v.nmse_max, 5e-4);
    assert_eq!(v.flavour, "plain");
    assert_eq!(v.seed, Some(7));
    assert_eq!(v.nmse_activation_rounding, None);
    assert_eq!(v.w, (0..102).map(|i| i as u8).collect::<Vec<_>>());
    assert_eq!(v.w_deq.as_deref(), Some(&[0.25; 96][..]));
    assert_eq!(v.x[63], 31.5);
    assert_eq!(v.y, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(v.file_name(), "mem.gguf");
    let v = synthetic(|_, t| {
        t.remove(1);
    })
    .unwrap();
    assert_eq!(v.w_deq, None);
}

#[test]
fn synthetic_vector_errors() {
    let e = synthetic(|k, _| set(k, "amx.test.type", Value::String("Q9_9".into())));
    assert!(matches!(e, Err(VectorError::UnknownFormat { ref name, .. }) if name == "Q9_9"));
    let e = synthetic(|k, _| set(k, "amx.test.m", Value::U32(0)));
    assert!(matches!(e, Err(VectorError::ZeroDimension { key: "amx.test.m", .. })));
    let e = synthetic(|k, _| set(k, "amx.test.nmse_max", Value::F32(f32::NAN)));
    assert!(matches!(e, Err(VectorError::BadNmseMax { .. })));
    let e = synthetic(|k, _| set(k, "amx.test.seed", Value::U32(7)));
    assert!(matches!(e, Err(VectorError::Gguf { source: GgufError::WrongValueType { .. }, .. })));
    let e = synthetic(|k, _| {
        k.retain(|(key, _)| key != "amx.test.flavour");
    });
    assert!(matches!(
        e,
        Err(VectorError::Gguf { source: GgufError::MissingKey { ref key }, .. })
            if key == "amx.test.flavour"
    ));
    // x stored transposed: (m, k) instead of (k, m).
    let e = synthetic(|_, t| t[2].1 = vec![2, 32]);
    assert_eq!(
        e.unwrap_err(),
        VectorError::BadShape {
            path: "mem.gguf".into(),
            tensor: "x",
            expected: [32, 2, 1, 1],
            found: [2, 32, 1, 1]
        }
    );
    // A weight of another type than amx.test.type says.
    let e = synthetic(|_, t| {
        t[0].2 = F16;
        t[0].3 = vec![0; 192];
    });
    assert!(matches!(
        e,
        Err(VectorError::Gguf {
            source: GgufError::WrongTensorType { expected: Q8_0, found: F16, .. },
            ..
        })
    ));
    let e = synthetic(|_, t| {
        t.remove(3);
    });
    assert!(matches!(e, Err(VectorError::Gguf { source: GgufError::MissingTensor { .. }, .. })));
}

#[test]
fn load_dir_errors() {
    let e = load_dir("/nonexistent/amx-rs/vectors").unwrap_err();
    assert!(matches!(e, VectorError::Io { kind: std::io::ErrorKind::NotFound, .. }), "{e}");
    assert_eq!(e.to_string(), "vector folder /nonexistent/amx-rs/vectors does not exist");
    let e = Vector::load("/nonexistent/amx-rs/v.gguf").unwrap_err();
    assert!(matches!(e, VectorError::Gguf { source: GgufError::Io { .. }, .. }), "{e}");
}

/// An empty folder (or one without `.gguf` files) used to load as zero vectors, which
/// every check then "passed".
#[test]
fn a_folder_without_vectors_is_an_error() {
    let dir = crate::test_dir::TestDir::new("no-vectors");
    for (i, e) in [load_dir(dir.path()).unwrap_err(), vector_paths(dir.path()).unwrap_err()]
        .into_iter()
        .enumerate()
    {
        assert_eq!(e, VectorError::NoVectors { path: dir.path().to_path_buf() }, "{i}");
        let msg = e.to_string();
        assert!(msg.contains("no vector") && msg.contains(&*dir.path().to_string_lossy()));
    }
    std::fs::write(dir.path().join("notes.txt"), b"not a vector").unwrap();
    assert!(matches!(load_dir(dir.path()), Err(VectorError::NoVectors { .. })));
    // A file given as the folder cannot be listed.
    let file = dir.path().join("notes.txt");
    let e = vector_paths(&file).unwrap_err();
    assert!(matches!(e, VectorError::Io { ref path, .. } if *path == file), "{e}");
}

/// A vector's own `nmse_max` used to be trusted whatever it said.
#[test]
fn nmse_max_is_capped() {
    assert_eq!(NMSE_MAX_CAP, 1e-2);
    for (asked, used) in [(1e9, NMSE_MAX_CAP), (0.5, NMSE_MAX_CAP), (1e-2, 1e-2), (5e-4, 5e-4)] {
        let v = synthetic(|k, _| set(k, "amx.test.nmse_max", Value::F32(asked))).unwrap();
        assert_eq!((v.nmse_max, v.nmse_max_requested), (used, asked));
    }
}
