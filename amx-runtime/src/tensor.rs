//! Tensor descriptions: a name, an element type and a shape in ggml order.
//!
//! Shapes follow ggml: `ne[0]` varies fastest, so a weight of N rows of K values is
//! `[K, N, 1, 1]` and a batch of M activation rows of K values is `[K, M, 1, 1]`.

use std::fmt;
use std::sync::Arc;

use amx_core::formats::Format;

/// The element type of a tensor.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float, 4 bytes per value (activations, norms, biases, router weights).
    F32,
    /// 32-bit signed integer, 4 bytes per value (token ids, expert ids).
    I32,
    /// A ggml block format (quantized weights, F16, BF16), bytes as in a GGUF file.
    Block(Format),
}

impl DType {
    /// The ggml type's name ([`amx_core::formats::ggml_type_name`]: `"F32"`, `"I32"`, or
    /// the format's, `"Q4_0"`, `"BF16"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::I32 => "I32",
            DType::Block(f) => f.name(),
        }
    }

    /// The `GGML_TYPE_*` id (0 for F32, 26 for I32, the format's for a block format).
    pub fn ggml_type(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::I32 => 26,
            DType::Block(f) => f.ggml_type(),
        }
    }

    /// Bytes of one row of `k` values, or `None` when `k` is not a whole number of blocks
    /// or the size overflows.
    pub fn row_bytes(self, k: usize) -> Option<usize> {
        match self {
            DType::F32 | DType::I32 => k.checked_mul(4),
            DType::Block(f) => f.row_bytes(k).ok(),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Index of a tensor in a [`crate::graph::Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// A tensor's name, element type and shape (`ne`, ggml order, unused dimensions 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorDesc {
    /// The name (as in a GGUF file for weights, `blk.0.attn_q.weight`; the node name for
    /// results).
    pub name: Arc<str>,
    /// The element type.
    pub dtype: DType,
    /// Values along each dimension, `ne[0]` fastest.
    pub ne: [usize; 4],
}

impl TensorDesc {
    /// A description with `dims` (1 to 4 values, the rest set to 1). Returns `None` for
    /// no dimension, more than 4, a zero dimension, or a size that does not fit in memory
    /// (or, for block formats, `ne[0]` not a whole number of blocks).
    pub fn new(name: impl Into<Arc<str>>, dtype: DType, dims: &[usize]) -> Option<TensorDesc> {
        if dims.is_empty() || dims.len() > 4 || dims.contains(&0) {
            return None;
        }
        let mut ne = [1; 4];
        ne[..dims.len()].copy_from_slice(dims);
        let desc = TensorDesc { name: name.into(), dtype, ne };
        desc.nbytes().map(|_| desc)
    }

    /// Number of values.
    pub fn elements(&self) -> usize {
        self.ne.iter().product()
    }

    /// Number of rows (`ne[1] * ne[2] * ne[3]`).
    pub fn rows(&self) -> usize {
        self.ne[1] * self.ne[2] * self.ne[3]
    }

    /// Bytes of the tensor stored plainly (ggml layout, rows back to back), or `None` when
    /// that overflows or `ne[0]` is not a whole number of blocks.
    pub fn nbytes(&self) -> Option<usize> {
        let rows = self.ne[1].checked_mul(self.ne[2])?.checked_mul(self.ne[3])?;
        self.dtype.row_bytes(self.ne[0])?.checked_mul(rows)
    }

    /// Dimensions used, trailing ones dropped (at least one): `[256, 32]` for a 2D tensor.
    pub fn dims(&self) -> &[usize] {
        let used = self.ne.iter().rposition(|&d| d != 1).map_or(1, |i| i + 1);
        &self.ne[..used]
    }
}

impl fmt::Display for TensorDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} {}", self.name, self.dims(), self.dtype)
    }
}

/// The bytes as f32 values: in place when [`f32_view`] can, else a copy.
pub fn f32_in_place_or_copied(bytes: &[u8]) -> std::borrow::Cow<'_, [f32]> {
    match f32_view(bytes) {
        Some(v) => std::borrow::Cow::Borrowed(v),
        None => std::borrow::Cow::Owned(f32_from_bytes(bytes)),
    }
}

/// The bytes as f32 values in place (no copy), or `None` when they do not start on a
/// 4-byte boundary, are not a whole number of values, or the target is big-endian (the
/// ggml layout is little-endian). Buffers of this crate start on 64-byte boundaries, so
/// on x86-64 their bytes always have such a view.
pub fn f32_view(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32, and `align_to` only puts values in the
    // middle part that are correctly aligned for f32.
    let (head, mid, tail) = unsafe { bytes.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(mid)
}

/// [`f32_view`], writable.
pub fn f32_view_mut(bytes: &mut [u8]) -> Option<&mut [f32]> {
    if cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: as in `f32_view`; writes through the view are plain f32 stores into the
    // same bytes, and every f32 is 4 valid bytes.
    let (head, mid, tail) = unsafe { bytes.align_to_mut::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(mid)
}

/// Little-endian f32 values from bytes (a whole number of 4-byte values).
pub fn f32_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Little-endian i32 values from bytes (a whole number of 4-byte values).
pub fn i32_from_bytes(bytes: &[u8]) -> Vec<i32> {
    bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The little-endian bytes of f32 values.
pub fn f32_to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The little-endian bytes of i32 values.
pub fn i32_to_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_sizes_and_display() {
        let w = TensorDesc::new("w", DType::Block(Format::Q4_0), &[256, 32]).unwrap();
        assert_eq!(w.ne, [256, 32, 1, 1]);
        assert_eq!(w.rows(), 32);
        assert_eq!(w.elements(), 256 * 32);
        assert_eq!(w.nbytes(), Some(8 * 18 * 32));
        assert_eq!(w.dims(), &[256, 32]);
        assert_eq!(w.to_string(), "w [256, 32] Q4_0");
        // Every dtype by its ggml name and id.
        for d in [DType::F32, DType::I32, DType::Block(Format::Q4_K), DType::Block(Format::BF16)] {
            assert_eq!(amx_core::formats::ggml_type_name(d.ggml_type()), Some(d.name()));
        }
        let x = TensorDesc::new("x", DType::F32, &[7]).unwrap();
        assert_eq!((x.nbytes(), x.dims()), (Some(28), &[7][..]));
        let e = TensorDesc::new("e", DType::F32, &[1, 1, 3]).unwrap();
        assert_eq!(e.dims(), &[1, 1, 3]);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(TensorDesc::new("a", DType::F32, &[]).is_none());
        assert!(TensorDesc::new("a", DType::F32, &[1, 2, 3, 4, 5]).is_none());
        assert!(TensorDesc::new("a", DType::F32, &[4, 0]).is_none());
        assert!(TensorDesc::new("a", DType::Block(Format::Q4_K), &[128, 2]).is_none());
        assert!(TensorDesc::new("a", DType::F32, &[usize::MAX, 2]).is_none());
    }

    #[test]
    fn byte_conversions_round_trip() {
        let v = [1.5f32, -0.0, f32::INFINITY];
        assert_eq!(f32_from_bytes(&f32_to_bytes(&v)), v);
        let i = [0i32, -7, i32::MAX];
        assert_eq!(i32_from_bytes(&i32_to_bytes(&i)), i);
    }
}
