//! One tensor's description from the file header: name, ggml dims, ggml type, offset.

use crate::error::GgufError;
use crate::types::type_layout;

/// One tensor's description from the file header.
///
/// The dims are ggml's, in file order: `ne0` (values per row: `k` of a matmul weight)
/// varies fastest, then `ne1` (rows: `n`), `ne2` (stacked matrices: experts), `ne3`; see
/// the [crate docs](crate#dims-which-is-n-and-which-is-k).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name.
    pub name: String,
    /// The number of dimensions stored (0 to 4).
    pub n_dims: u32,
    /// The dimensions `ne0..ne3` in ggml order (`ne0` varies fastest); unstored ones are 1.
    pub ne: [u64; 4],
    /// The ggml type id (`GGML_TYPE_*`; [`TensorInfo::type_name`] names it).
    pub ggml_type: u32,
    /// The offset of the tensor's bytes from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// `ne0`: values per row (`k` of a matmul weight).
    pub fn ne0(&self) -> u64 {
        self.ne[0]
    }

    /// `ne1`: rows (`n` of a matmul weight: its outputs).
    pub fn ne1(&self) -> u64 {
        self.ne[1]
    }

    /// `ne2`: stacked matrices (the experts of a MoE weight; 1 for a plain weight).
    pub fn ne2(&self) -> u64 {
        self.ne[2]
    }

    /// `ne3`: the outermost dim (1 for weights).
    pub fn ne3(&self) -> u64 {
        self.ne[3]
    }

    /// The ggml name of the tensor's type (`"F32"`, `"Q4_K"`, `"IQ2_XXS"`, ...), for every
    /// type ggml defines ([`amx_core::formats::ggml_type_name`]), including the ones whose
    /// size this reader does not know; `None` for an id ggml does not define.
    pub fn type_name(&self) -> Option<&'static str> {
        amx_core::formats::ggml_type_name(self.ggml_type)
    }

    /// The number of elements, `None` if it overflows `u64`.
    pub fn n_elements(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// The tensor's size in bytes, computed from its type's [`TypeLayout`](crate::TypeLayout):
    /// rows of `ne0` values, `ne0` a whole number of blocks.
    ///
    /// Errors: [`GgufError::UnknownTensorType`] for a type this reader cannot size,
    /// [`GgufError::RowNotWholeBlocks`], [`GgufError::TensorSizeOverflow`].
    pub fn byte_size(&self) -> Result<u64, GgufError> {
        let layout = type_layout(self.ggml_type).ok_or_else(|| GgufError::UnknownTensorType {
            name: self.name.clone(),
            ggml_type: self.ggml_type,
        })?;
        if !self.ne[0].is_multiple_of(layout.block_values) {
            return Err(GgufError::RowNotWholeBlocks {
                name: self.name.clone(),
                ne0: self.ne[0],
                block_values: layout.block_values,
            });
        }
        let blocks_per_row = self.ne[0] / layout.block_values;
        [layout.block_bytes, self.ne[1], self.ne[2], self.ne[3]]
            .iter()
            .try_fold(blocks_per_row, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| GgufError::TensorSizeOverflow {
                name: self.name.clone(),
                ne: self.ne,
                ggml_type: self.ggml_type,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::TensorInfo;

    fn info(ne: [u64; 4], ggml_type: u32) -> TensorInfo {
        TensorInfo { name: "t".into(), n_dims: 3, ne, ggml_type, offset: 0 }
    }

    #[test]
    fn dims_and_type_names() {
        // A stack of 8 experts of 1536 rows (n) of 576 values (k), Q4_K.
        let t = info([576, 1536, 8, 1], 12);
        assert_eq!((t.ne0(), t.ne1(), t.ne2(), t.ne3()), (576, 1536, 8, 1));
        assert_eq!(t.type_name(), Some("Q4_K"));
        // ggml names types this reader cannot size, but not ids ggml lacks.
        assert_eq!(info([256, 1, 1, 1], 16).type_name(), Some("IQ2_XXS"));
        assert_eq!(info([1, 1, 1, 1], 1000).type_name(), None);
    }

    #[test]
    fn byte_sizes() {
        // 576 / 256 is not whole: Q4_K rows are 256-value blocks.
        assert!(info([576, 1536, 8, 1], 12).byte_size().is_err());
        assert_eq!(info([512, 3, 2, 1], 12).byte_size(), Ok(2 * 144 * 3 * 2));
        assert_eq!(info([5, 2, 1, 1], 0).byte_size(), Ok(40));
    }
}
