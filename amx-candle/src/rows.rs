//! An input tensor's layout as amx-rs rows: `M` rows of `K` values, evenly spaced.
//!
//! amx-rs takes any row stride, so more than contiguous inputs work without a copy: a
//! narrowed last dimension (a slice of a fused QKV output) or a batch of rows cut from a
//! larger tensor. What cannot be rows of contiguous values at one stride (a transposed
//! input, a broadcast, a permuted batch) is an error asking for `.contiguous()`.

use candle_core::Layout;

use crate::AdapterError;

/// Where an input's rows are in its storage, in f32 values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rows {
    /// Index of the first value of row 0.
    pub offset: usize,
    /// Number of rows (the product of the leading dimensions).
    pub m: usize,
    /// Distance between row starts.
    pub stride: usize,
}

/// The rows of an input with layout `layout` against weights with `k` values per row.
///
/// Errors: [`AdapterError::InputRank`], [`AdapterError::InputK`],
/// [`AdapterError::LastDimStride`], [`AdapterError::UnevenRows`].
pub(crate) fn rows_of(layout: &Layout, k: usize) -> Result<Rows, AdapterError> {
    let dims = layout.dims();
    let strides = layout.stride();
    let Some((&last, batch)) = dims.split_last() else {
        return Err(AdapterError::InputRank);
    };
    if last != k {
        return Err(AdapterError::InputK { expected: k, found: last });
    }
    let last_stride = strides.last().copied().unwrap_or(1);
    if last > 1 && last_stride != 1 {
        return Err(AdapterError::LastDimStride { stride: last_stride });
    }
    let m = batch.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
    let offset = layout.start_offset();
    if m == 0 {
        return Ok(Rows { offset, m, stride: k });
    }
    // Innermost leading dimension of size > 1 sets the row stride; each further one out
    // must step over exactly the rows inside it. Dimensions of size 1 have no stride that
    // matters.
    let mut stride = None;
    let mut expected = 0;
    for (dim, (&size, &step)) in batch.iter().zip(strides).enumerate().rev() {
        if size == 1 {
            continue;
        }
        match stride {
            None => stride = Some(step),
            Some(_) if step != expected => {
                return Err(AdapterError::UnevenRows { dim, stride: step, expected });
            }
            Some(_) => {}
        }
        expected = step.saturating_mul(size);
    }
    Ok(Rows { offset, m, stride: stride.unwrap_or(k) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Shape;

    fn contiguous(dims: &[usize]) -> Layout {
        Layout::contiguous(Shape::from(dims.to_vec()))
    }

    #[test]
    fn contiguous_inputs_of_any_rank() {
        assert_eq!(rows_of(&contiguous(&[64]), 64), Ok(Rows { offset: 0, m: 1, stride: 64 }));
        assert_eq!(rows_of(&contiguous(&[5, 64]), 64), Ok(Rows { offset: 0, m: 5, stride: 64 }));
        assert_eq!(
            rows_of(&contiguous(&[2, 3, 1, 64]), 64),
            Ok(Rows { offset: 0, m: 6, stride: 64 })
        );
        assert_eq!(rows_of(&contiguous(&[0, 64]), 64), Ok(Rows { offset: 0, m: 0, stride: 64 }));
    }

    #[test]
    fn narrowed_and_offset_inputs_are_strided_rows() {
        // [4, 3, 96] narrowed to columns 32..96 of the last dimension.
        let l = contiguous(&[4, 3, 96]).narrow(2, 32, 64).expect("narrow");
        assert_eq!(rows_of(&l, 64), Ok(Rows { offset: 32, m: 12, stride: 96 }));
        // Rows 2..5 of a [8, 64] matrix.
        let l = contiguous(&[8, 64]).narrow(0, 2, 3).expect("narrow");
        assert_eq!(rows_of(&l, 64), Ok(Rows { offset: 128, m: 3, stride: 64 }));
    }

    #[test]
    fn refused_layouts() {
        assert_eq!(rows_of(&contiguous(&[]), 64), Err(AdapterError::InputRank));
        assert_eq!(
            rows_of(&contiguous(&[3, 32]), 64),
            Err(AdapterError::InputK { expected: 64, found: 32 })
        );
        let t = contiguous(&[64, 5]).transpose(0, 1).expect("transpose");
        assert_eq!(rows_of(&t, 64), Err(AdapterError::LastDimStride { stride: 5 }));
        // [2, 3, 64] with the two leading dimensions swapped: rows not evenly spaced.
        let p = contiguous(&[2, 3, 64]).transpose(0, 1).expect("transpose");
        assert_eq!(
            rows_of(&p, 64),
            Err(AdapterError::UnevenRows { dim: 0, stride: 64, expected: 384 })
        );
        // A batch broadcast over one row: stride 0 is evenly spaced, amx-rs refuses it as a
        // stride smaller than the row (checked where the matrix view is made).
        let b = contiguous(&[1, 64]).broadcast_as((4, 64)).expect("broadcast");
        assert_eq!(rows_of(&b, 64), Ok(Rows { offset: 0, m: 4, stride: 0 }));
    }
}
