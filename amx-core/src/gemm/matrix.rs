//! Checked views of the f32 operands: activations (M x K) and outputs (M x N), each with
//! any row stride.

use core::marker::PhantomData;

use super::GemmError;

fn check(rows: usize, cols: usize, stride: usize, len: usize) -> Result<(), GemmError> {
    if stride < cols {
        return Err(GemmError::StrideTooSmall { cols, stride });
    }
    let needed = match rows {
        0 => 0,
        r => (r - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(cols))
            .ok_or(GemmError::Overflow)?,
    };
    if len < needed {
        return Err(GemmError::MatrixTooShort { rows, cols, stride, needed, actual: len });
    }
    Ok(())
}

/// Activations: `rows` rows of `cols` f32 values, row `i` starting at `i * stride`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<'a> MatRef<'a> {
    /// A view of `data` as `rows x cols` with row stride `stride` (in values).
    ///
    /// Errors: [`GemmError::StrideTooSmall`], [`GemmError::MatrixTooShort`].
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Result<Self, GemmError> {
        check(rows, cols, stride, data.len())?;
        Ok(Self { data, rows, cols, stride })
    }

    /// Rows (M).
    pub const fn rows(&self) -> usize {
        self.rows
    }
    /// Values per row (K).
    pub const fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between row starts, in values.
    pub const fn stride(&self) -> usize {
        self.stride
    }
    /// Row `i`, exactly `cols` values; `None` when `i >= rows`.
    pub fn row(&self, i: usize) -> Option<&'a [f32]> {
        if i >= self.rows {
            return None;
        }
        // `i < rows`, so the row lies inside the data `new` checked: no overflow.
        self.data.get(i * self.stride..i * self.stride + self.cols)
    }

    /// Row `i` for the crate's kernels, which index rows below `rows` only.
    pub(crate) fn row_in(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.stride..i * self.stride + self.cols]
    }
}

/// Outputs: `rows` rows of `cols` f32 values, row `i` starting at `i * stride`.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<'a> MatMut<'a> {
    /// A view of `data` as `rows x cols` with row stride `stride` (in values). Values
    /// between rows (when `stride > cols`) are never written.
    ///
    /// Errors: [`GemmError::StrideTooSmall`], [`GemmError::MatrixTooShort`].
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Result<Self, GemmError> {
        check(rows, cols, stride, data.len())?;
        Ok(Self { data, rows, cols, stride })
    }

    /// Rows (M).
    pub const fn rows(&self) -> usize {
        self.rows
    }
    /// Values per row (N).
    pub const fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between row starts, in values.
    pub const fn stride(&self) -> usize {
        self.stride
    }

    /// Writes value (`row`, `col`); out-of-range positions are ignored (callers index
    /// within the view they made).
    pub fn set(&mut self, row: usize, col: usize, v: f32) {
        if row < self.rows && col < self.cols {
            self.data[row * self.stride + col] = v;
        }
    }

    /// Turns the view into a [`SharedOut`] that keeps the exclusive borrow for `'a`.
    pub(crate) fn into_shared(self) -> SharedOut<'a> {
        SharedOut {
            ptr: self.data.as_mut_ptr(),
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
            _borrow: PhantomData,
        }
    }

    /// A shared handle for threads that each write a disjoint part of this output (see
    /// [`super::gemm_range_shared`]). The handle borrows `self` mutably for its lifetime.
    pub fn share(&mut self) -> SharedOut<'_> {
        let (rows, cols, stride) = (self.rows, self.cols, self.stride);
        MatMut { data: &mut *self.data, rows, cols, stride }.into_shared()
    }
}

/// An output that several threads write at once, each a disjoint (rows x panels) block.
/// Made by [`MatMut::share`]; writing through it is `unsafe` (the caller keeps the blocks
/// disjoint), everything else about it is checked.
#[derive(Clone, Copy, Debug)]
pub struct SharedOut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    stride: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: `SharedOut` is a pointer to an exclusively borrowed output, and its safe API
// neither writes nor reads values. Writes go through `unsafe` functions
// (`gemm_range_shared`) whose contract makes concurrent writers touch disjoint values;
// the crate's safe wrappers keep that contract: `gemm_range` holds `&mut MatMut`, and
// `moe::Grouped` writes only the work items its atomic counter hands out, each once, and
// reads only under `&mut self`.
unsafe impl Send for SharedOut<'_> {}
// SAFETY: sharing `&SharedOut` across threads allows only the same (metadata-only) safe
// API; every value access is an `unsafe` call under the disjointness contract above.
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    /// Rows (M).
    pub const fn rows(&self) -> usize {
        self.rows
    }
    /// Values per row (N).
    pub const fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between row starts, in values.
    pub const fn stride(&self) -> usize {
        self.stride
    }
    /// Rows `start..start + count` as their own output (clipped to the rows there are).
    pub(crate) fn rows_from(&self, start: usize, count: usize) -> SharedOut<'a> {
        let start = start.min(self.rows);
        SharedOut { ptr: self.at(start, 0), rows: count.min(self.rows - start), ..*self }
    }

    /// Pointer to value (row, col). The caller keeps `row < rows` and `col <= cols`.
    pub(crate) fn at(&self, row: usize, col: usize) -> *mut f32 {
        self.ptr.wrapping_add(row * self.stride + col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows past the end (and indices whose offset would overflow) are `None`, not a
    /// panic.
    #[test]
    fn row_outside_the_view_is_none() {
        let data = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let m = MatRef::new(&data, 2, 2, 3).unwrap();
        assert_eq!((m.row(0), m.row(1)), (Some(&data[0..2]), Some(&data[3..5])));
        for i in [2, 3, usize::MAX / 3 + 1, usize::MAX] {
            assert_eq!(m.row(i), None, "row {i}");
        }
        let empty = MatRef::new(&[], 0, 4, 4).unwrap();
        assert_eq!(empty.row(0), None);
    }
}
