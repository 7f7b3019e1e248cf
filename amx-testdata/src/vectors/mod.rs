//! The GGUF test vectors: a weight `w` in a ggml block format, its reference
//! dequantization `w_deq` (gguf-py's), activations `x` and the float64 reference output
//! `y` (stored as F32), plus the metadata that says how close a kernel must get.
//!
//! Shapes, in ggml order (`ne0` varies fastest, so a tensor with dims `(a, b)` is `b`
//! rows of `a` values):
//!
//! | tensor  | type                  | dims     | meaning                       |
//! |---------|-----------------------|----------|-------------------------------|
//! | `w`     | the format's ggml type | `(k, n)` | N rows of K weights           |
//! | `w_deq` | F32 (optional)        | `(k, n)` | `w` dequantized by gguf-py    |
//! | `x`     | F32                   | `(k, m)` | M rows of K activations       |
//! | `y`     | F32                   | `(n, m)` | M rows of N outputs, Y = X W^T |
//!
//! Metadata: `amx.test.type` (format name, e.g. `"Q4_0"`, `"IQ4_XS"`, `"BF16"`),
//! `amx.test.m`/`n`/`k` (u32, non-zero), `amx.test.nmse_max` (f32), `amx.test.flavour`
//! (string); optional `amx.test.seed` (u64) and `amx.test.nmse_activation_rounding` (f32).
//!
//! A vector does not choose how loose its check is: the bound used is
//! `min(amx.test.nmse_max, NMSE_MAX_CAP)` ([`NMSE_MAX_CAP`] = 1e-2), so a file asking for
//! `nmse_max = 1e9` cannot make a broken kernel pass.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use amx_core::formats::Format;

use amx_gguf::{GGML_TYPE_F32, GgufError, GgufFile};

mod error;
#[cfg(test)]
mod tests;

pub use error::VectorError;

/// The loosest NMSE bound a vector may set: [`Vector::nmse_max`] is
/// `min(amx.test.nmse_max, NMSE_MAX_CAP)`. The repository's vectors ask for 5e-4 to 4.1e-3
/// (the coarsest formats on outlier data); an NMSE of 1e-2 is a 10 % RMS error, which no
/// correct kernel of any format comes near, so a larger request can only hide a bug.
pub const NMSE_MAX_CAP: f32 = 1e-2;

/// One test vector, loaded and shape-checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Vector {
    /// The file it came from.
    pub path: PathBuf,
    /// The weight format (`amx.test.type`).
    pub format: Format,
    /// Rows of `x` and `y` (`amx.test.m`).
    pub m: usize,
    /// Rows of `w`, columns of `y` (`amx.test.n`).
    pub n: usize,
    /// Values per row of `w` and `x` (`amx.test.k`).
    pub k: usize,
    /// The largest NMSE against `y` a kernel may have to pass:
    /// `min(amx.test.nmse_max, NMSE_MAX_CAP)`.
    pub nmse_max: f32,
    /// `amx.test.nmse_max` as stored (larger than [`Vector::nmse_max`] when capped).
    pub nmse_max_requested: f32,
    /// What kind of data the vector holds, e.g. `"plain"` or `"outliers"`.
    pub flavour: String,
    /// The generator's seed (`amx.test.seed`), if stored.
    pub seed: Option<u64>,
    /// The NMSE that quantizing the activations alone causes
    /// (`amx.test.nmse_activation_rounding`), if stored.
    pub nmse_activation_rounding: Option<f32>,
    /// The weight bytes exactly as in the file: `n` rows of `format.row_bytes(k)` bytes.
    pub w: Vec<u8>,
    /// gguf-py's dequantization of `w`, `n` rows of `k` values, if stored.
    pub w_deq: Option<Vec<f32>>,
    /// The activations, `m` rows of `k` values.
    pub x: Vec<f32>,
    /// The reference output, `m` rows of `n` values.
    pub y: Vec<f32>,
}

/// `Ok(None)` for a missing key or tensor, the value or other errors unchanged.
fn optional<T>(r: Result<T, GgufError>) -> Result<Option<T>, GgufError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(GgufError::MissingKey { .. } | GgufError::MissingTensor { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Vector {
    /// Loads and checks the vector file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Vector, VectorError> {
        let path = path.as_ref();
        match GgufFile::open(path) {
            Ok(file) => Self::from_gguf(path, &file),
            Err(source) => Err(VectorError::Gguf { path: path.to_path_buf(), source }),
        }
    }

    /// Checks and copies out the vector held in `file`; `path` is recorded and named in
    /// errors.
    pub fn from_gguf(path: impl AsRef<Path>, file: &GgufFile) -> Result<Vector, VectorError> {
        let path = path.as_ref().to_path_buf();
        let gguf = |source| VectorError::Gguf { path: path.clone(), source };

        let name = file.get_str("amx.test.type").map_err(gguf)?;
        let format = Format::from_name(name).ok_or_else(|| VectorError::UnknownFormat {
            path: path.clone(),
            name: name.to_owned(),
        })?;
        let dim = |key: &'static str| -> Result<u64, VectorError> {
            match file.get_u32(key).map_err(gguf)? {
                0 => Err(VectorError::ZeroDimension { path: path.clone(), key }),
                d => Ok(u64::from(d)),
            }
        };
        let (m, n, k) = (dim("amx.test.m")?, dim("amx.test.n")?, dim("amx.test.k")?);
        let nmse_max_requested = file.get_f32("amx.test.nmse_max").map_err(gguf)?;
        if !(nmse_max_requested.is_finite() && nmse_max_requested >= 0.0) {
            return Err(VectorError::BadNmseMax { path: path.clone(), value: nmse_max_requested });
        }
        let nmse_max = nmse_max_requested.min(NMSE_MAX_CAP);
        let flavour = file.get_str("amx.test.flavour").map_err(gguf)?.to_owned();
        let seed = optional(file.get_u64("amx.test.seed")).map_err(gguf)?;
        let nmse_activation_rounding =
            optional(file.get_f32("amx.test.nmse_activation_rounding")).map_err(gguf)?;

        let check = |tensor: &'static str, ggml_type: u32, ne: [u64; 2]| {
            let info = file.tensor(tensor).map_err(gguf)?;
            if info.ggml_type != ggml_type {
                return Err(gguf(GgufError::WrongTensorType {
                    name: tensor.to_owned(),
                    expected: ggml_type,
                    found: info.ggml_type,
                }));
            }
            let expected = [ne[0], ne[1], 1, 1];
            if info.ne != expected {
                return Err(VectorError::BadShape {
                    path: path.clone(),
                    tensor,
                    expected,
                    found: info.ne,
                });
            }
            Ok(())
        };
        check("w", format.ggml_type(), [k, n])?;
        let w = file.tensor_bytes("w").map_err(gguf)?.to_vec();
        let w_deq = match optional(file.tensor("w_deq")).map_err(gguf)? {
            None => None,
            Some(_) => {
                check("w_deq", GGML_TYPE_F32, [k, n])?;
                Some(file.tensor_f32("w_deq").map_err(gguf)?)
            }
        };
        check("x", GGML_TYPE_F32, [k, m])?;
        let x = file.tensor_f32("x").map_err(gguf)?;
        check("y", GGML_TYPE_F32, [n, m])?;
        let y = file.tensor_f32("y").map_err(gguf)?;

        // The tensors were sized from these dims and found in memory, so they fit a usize.
        let [m, n, k] = [m, n, k].map(|d| d as usize);
        Ok(Vector {
            path,
            format,
            m,
            n,
            k,
            nmse_max,
            nmse_max_requested,
            flavour,
            seed,
            nmse_activation_rounding,
            w,
            w_deq,
            x,
            y,
        })
    }

    /// The file name, for messages.
    pub fn file_name(&self) -> Cow<'_, str> {
        match self.path.file_name() {
            Some(name) => name.to_string_lossy(),
            None => self.path.to_string_lossy(),
        }
    }
}

/// The `*.gguf` entries of `dir` (not recursing), sorted by file name. Entries that are
/// not regular files are listed too, so that loading them reports what they are.
///
/// Errors: [`VectorError::Io`] when `dir` cannot be listed (it does not exist, is not a
/// directory, ...), [`VectorError::NoVectors`] when it holds no `*.gguf` entry.
pub fn vector_paths(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, VectorError> {
    let dir = dir.as_ref();
    let io = |e: std::io::Error| VectorError::Io {
        path: dir.to_path_buf(),
        kind: e.kind(),
        message: e.to_string(),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "gguf") {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(VectorError::NoVectors { path: dir.to_path_buf() });
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(paths)
}

/// Loads every `*.gguf` file in `dir` ([`vector_paths`]), stopping at the first that
/// does not load. The checks (`verify`, the main job) load each file on its own instead,
/// so that one bad file is one failure.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<Vector>, VectorError> {
    vector_paths(dir)?.iter().map(Vector::load).collect()
}

/// Normalised mean squared error of `got` against the reference `want`:
/// `sum((g - w)^2) / sum(w^2)`, accumulated in f64.
///
/// Edge cases, chosen so that `nmse(..) <= bound` is the pass test:
/// - lengths differ: `f64::INFINITY`;
/// - the reference is all zeros (or empty): `0.0` if `got` is all zeros too (an exact
///   match), else `f64::INFINITY`;
/// - a NaN in either input gives NaN, which fails every `<=` comparison (so compare with
///   `nmse(..) <= bound`, never `!(nmse(..) > bound)`).
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        let d = f64::from(g) - f64::from(w);
        err += d * d;
        norm += f64::from(w) * f64::from(w);
    }
    if norm == 0.0 {
        return if err == 0.0 { 0.0 } else { f64::INFINITY };
    }
    err / norm
}
