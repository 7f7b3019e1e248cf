//! `amx-bench gguf FILE`: for a GGUF model file, where the runtime would put each tensor
//! (the AMX buffer type or host memory) and why, and the repack time and packed size of
//! each tensor that goes to AMX.
//!
//! Each tensor gets the op that consumes it in a transformer (by its role, as an engine
//! knows it): 1-D tensors (norms, biases) `MUL`, `token_embd` `GET_ROWS`, other 2-D
//! tensors `MUL_MAT` against 32 rows of f32 activations, 3-D expert stacks `MUL_MAT_ID`
//! with top-8 routing. Placement then asks the buffer types about that op, AMX first,
//! host memory as the fallback; nothing is decided by name or type list.
//!
//! A tensor whose packed form would exceed [`MAX_PACK_AMPLIFICATION`] times its source
//! bytes is refused before anything is allocated for it (padding can turn a 16 MiB file
//! into an 8 GiB request otherwise).

use std::fmt::Write as _;
use std::time::Instant;

use amx_core::formats::Format;
use amx_core::pack;
use amx_runtime::buffer::amx::AmxBufferType;
use amx_runtime::buffer::host::host;
use amx_runtime::graph::Graph;
use amx_runtime::placement::place;
use amx_runtime::tensor::DType;

use amx_gguf::GgufFile;

/// Rows of activations the probe ops use.
const ROWS: usize = 32;

/// The most packed bytes per source byte that [`report`] repacks; a tensor whose packed
/// size exceeds this multiple of its ggml bytes is refused before allocating.
///
/// Why 4: packing pads N to 16-row panels, K to the 32-value group (F16, BF16; the
/// quantized formats' groups are their blocks, so K needs no padding), each panel to 64
/// bytes, and adds a 64-byte header. Over real shapes (K a multiple of the block, N >= 16,
/// any number of stacked matrices) the worst ratio is 2.44, MXFP4 with N = 17 and K = 32
/// (289 bytes become 704: two panels of 320 bytes and the header); every format stays
/// under 2 from N = 33 on. 4 also admits N >= 8 (worst 2.82, MXFP4 N = 8) and F16/BF16
/// rows of at least 16 values (worst 3.88, N = 17, K = 16), and leaves room for a
/// larger header. The refused shapes are padding, not weights: an F16 row of 1 value
/// takes 2 bytes and packs to 64, times 16 rows per panel for a single-row matrix, a
/// ratio of 512 (an F16 `[1, 1, 2^23]` stack of 16 MiB would ask for 8 GiB).
/// `tests::real_shapes_stay_within_the_bound` checks the figures against
/// [`pack::packed_size`].
pub const MAX_PACK_AMPLIFICATION: usize = 4;

/// The packed size of tensor `name` (`e` stacked matrices of `n` rows of `k` values in
/// `format`, `src_bytes` ggml bytes), or an error naming the tensor and both sizes when
/// it exceeds [`MAX_PACK_AMPLIFICATION`] times `src_bytes` (or cannot be computed).
pub fn bounded_packed_size(
    name: &str,
    format: Format,
    [k, n, e]: [usize; 3],
    src_bytes: usize,
) -> Result<usize, String> {
    let packed = pack::packed_size(format, n, k, e).map_err(|err| format!("{name}: {err}"))?;
    let bound = src_bytes.saturating_mul(MAX_PACK_AMPLIFICATION);
    if packed > bound {
        return Err(format!(
            "{name}: refusing to repack: {} [{k}, {n}, {e}] is {src_bytes} bytes and would \
             pack to {packed} bytes, more than {MAX_PACK_AMPLIFICATION} x its size (padding \
             to 16-row panels and 64-byte groups)",
            format.name()
        ));
    }
    Ok(packed)
}

/// One tensor's line: name, type, shape, where it goes and, for AMX, the repack figures.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorLine {
    /// Tensor name.
    pub name: String,
    /// Where placement put it (`AMX` or the host buffer type's name).
    pub buft: String,
    /// Repack seconds and packed bytes, for tensors placed in AMX.
    pub repack: Option<(f64, usize)>,
}

/// A ggml type as messages name it: `"Q2_K (ggml type 10)"`, or `"ggml type id 77 (not a
/// ggml type)"`.
pub fn type_label(ggml_type: u32) -> String {
    match amx_core::formats::ggml_type_name(ggml_type) {
        Some(name) => format!("{name} (ggml type {ggml_type})"),
        None => format!("ggml type id {ggml_type} (not a ggml type)"),
    }
}

fn dtype(ggml_type: u32) -> Option<DType> {
    match ggml_type {
        0 => Some(DType::F32),
        26 => Some(DType::I32),
        t => Format::from_ggml_type(t).ok().map(DType::Block),
    }
}

/// Places every tensor of `file` and repacks those that go to AMX. Returns the
/// placement report (text, with the reasons) and one line per tensor.
///
/// Errors (as text): a tensor the graph or placement refuses, and a tensor placed in
/// AMX whose packed size exceeds [`MAX_PACK_AMPLIFICATION`] times its source bytes
/// (see [`bounded_packed_size`]; checked before allocating).
pub fn report(file: &GgufFile) -> Result<(String, Vec<TensorLine>), String> {
    let mut graph = Graph::new();
    let mut skipped = String::new();
    for t in file.tensors() {
        let dims: Vec<usize> =
            t.ne[..t.n_dims.max(1) as usize].iter().map(|&d| d as usize).collect();
        let Some(dt) = dtype(t.ggml_type) else {
            let _ = writeln!(skipped, "{}: {} is not handled here: host memory", t.name, {
                type_label(t.ggml_type)
            });
            continue;
        };
        let w = graph.weight(&t.name, dt, &dims).map_err(|e| e.to_string())?;
        let node = format!("use.{}", t.name);
        let x_name = format!("x.{}", t.name);
        let ids_name = format!("ids.{}", t.name);
        let probe = match dims.as_slice() {
            [k] => {
                graph.input(&x_name, DType::F32, &[*k, ROWS]).and_then(|x| graph.mul(&node, x, w))
            }
            [_, _] if t.name.contains("token_embd") => graph
                .input(&ids_name, DType::I32, &[ROWS])
                .and_then(|ids| graph.get_rows(&node, w, ids)),
            [k, _] => graph
                .input(&x_name, DType::F32, &[*k, ROWS])
                .and_then(|x| graph.mul_mat(&node, w, x)),
            [k, _, e] => {
                let top_k = (*e).min(8);
                graph.input(&x_name, DType::F32, &[*k, 1, ROWS]).and_then(|x| {
                    graph
                        .input(&ids_name, DType::I32, &[top_k, ROWS])
                        .and_then(|ids| graph.mul_mat_id(&node, w, x, ids))
                })
            }
            _ => Ok(w),
        };
        if let Err(e) = probe {
            let _ = writeln!(skipped, "{}: no probe op ({e}): host memory", t.name);
        }
    }
    let amx = std::sync::Arc::new(AmxBufferType::new());
    let placement = place(&graph, |_, _| vec![amx.clone(), host()]).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for d in placement.decisions() {
        let name = d.desc.name.to_string();
        let buft = d.buft.name().to_string();
        let repack = if d.buft.is_host() {
            None
        } else {
            let info = file.tensor(&name).map_err(|e| e.to_string())?;
            let DType::Block(format) = d.desc.dtype else {
                return Err(format!("{name}: not a block format"));
            };
            let (k, n, e) = (d.desc.ne[0], d.desc.ne[1], d.desc.ne[2]);
            let src = file.tensor_bytes(&info.name).map_err(|e| e.to_string())?;
            let size = bounded_packed_size(&name, format, [k, n, e], src.len())?;
            let mut dst = vec![0u8; size];
            let t = Instant::now();
            pack::pack(format, n, k, e, src, &mut dst).map_err(|e| e.to_string())?;
            Some((t.elapsed().as_secs_f64(), dst.len()))
        };
        lines.push(TensorLine { name, buft, repack });
    }
    Ok((format!("{placement}{skipped}"), lines))
}

#[cfg(test)]
mod tests;
