//! Activation quantization: f32 rows into the forms the kernels read.
//!
//! - **Q8 rows** (VNNI path, every quantized format): per row, `k` int8 values in blocks
//!   of 32 with an f32 scale per block (`x ~ dx * q`, `dx = max|x| / 127`, `q = x * (1 /
//!   dx)` rounded to nearest even; a block with max|x| below ~3.7e-37, where `1 / dx`
//!   overflows, uses `q = x / dx`, so tiny and subnormal blocks keep their int8 precision
//!   while `dx` has its bits), then per block `dx` itself, `dx * sum(q)` per 32 values,
//!   `dx * sum(q)` per 16 values (the kernels' bias terms) and `sum(q)` per 16 values as
//!   i16 (the integer bias terms of the formats whose sub-block scales are integers). See
//!   [`Q8Layout`].
//! - **BF16 tiles** (AMX path): the rows rounded to BF16 (nearest even) and cut into
//!   16-row x 32-value tiles of 1 KiB, tile after tile, zero padded. See [`TileLayout`].
//!
//! A NaN in a block makes its scale NaN and an infinity makes it infinite, so non-finite
//! inputs reach exactly the outputs of their row.

pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(target_arch = "x86_64")]
use crate::detect::Features;

/// Quantizes one row `x` (`k` values, `k` a multiple of 32) into its Q8 record `out`
/// (`Q8Layout { k }.row_bytes()` bytes): AVX-512 where usable, else [`scalar::q8_row`];
/// both give the same bytes.
pub(crate) fn q8_row(x: &[f32], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if Features::cached().avx512_usable() {
        // SAFETY: the CPU and the OS support AVX-512 F/BW/VL.
        unsafe { x86::q8_row(x, out) };
        return;
    }
    scalar::q8_row(x, out);
}

/// Writes each row `(i, x)` of `rows` into its BF16 tiles in `out` (all tiles of
/// `layout`; values past `k` are left as they are): AVX-512 BF16 where usable, else
/// [`scalar::bf16_tile_rows`]; both give the same bytes.
pub(crate) fn bf16_tile_rows<'a>(
    layout: &TileLayout,
    rows: impl Iterator<Item = (usize, &'a [f32])>,
    out: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if Features::cached().avx512_bf16_usable() {
        // SAFETY: the CPU and the OS support AVX-512 F/BW/VL and AVX512-BF16.
        unsafe { x86::bf16_tile_rows(layout, rows, out) };
        return;
    }
    scalar::bf16_tile_rows(layout, rows, out);
}

/// Where the parts of one quantized row are, for `k` values (`k` a multiple of 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Q8Layout {
    /// Values per row.
    pub k: usize,
}

impl Q8Layout {
    /// Bytes of one row record, a multiple of 64: `k` int8 values, then `k / 32` f32 `dx`,
    /// `k / 32` f32 `dx * sum32`, `k / 16` f32 `dx * sum16`, `k / 16` i16 `sum16`.
    pub const fn row_bytes(&self) -> usize {
        (self.k + 4 * (self.k / 32) * 2 + 6 * (self.k / 16)).div_ceil(64) * 64
    }
    /// [`Q8Layout::row_bytes`], or `None` when it does not fit `usize` (callers size
    /// with this; `row_bytes` is for a `k` this accepted).
    pub fn checked_row_bytes(&self) -> Option<usize> {
        let arrays = (self.k / 32).checked_mul(8)?.checked_add((self.k / 16).checked_mul(6)?)?;
        self.k.checked_add(arrays)?.checked_next_multiple_of(64)
    }
    /// Offset of the `dx` array in a row record.
    pub const fn dx_offset(&self) -> usize {
        self.k
    }
    /// Offset of the per-32 `dx * sum` array.
    pub const fn sum32_offset(&self) -> usize {
        self.k + 4 * (self.k / 32)
    }
    /// Offset of the per-16 `dx * sum` array.
    pub const fn sum16_offset(&self) -> usize {
        self.k + 8 * (self.k / 32)
    }
    /// Offset of the per-16 integer `sum` array (i16: `|sum| <= 16 * 128`), whose entries
    /// `2b, 2b + 1` (the halves of block `b`) form one 32-bit word.
    pub const fn isum16_offset(&self) -> usize {
        self.k + 8 * (self.k / 32) + 4 * (self.k / 16)
    }
}

/// Rows and values of BF16 activation tiles: 16 rows by 32 values (64 bytes a row), 1 KiB
/// a tile, tile `(mt, kt)` at `(mt * k_tiles + kt) * 1024`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TileLayout {
    /// Row tiles (16 rows each), rounded up to an even count so that kernels can always
    /// take two (the extra rows are zeros).
    pub m_tiles: usize,
    /// Value tiles (32 values each).
    pub k_tiles: usize,
}

impl TileLayout {
    /// The tiles for `m` rows of `k` values.
    pub const fn new(m: usize, k: usize) -> Self {
        Self { m_tiles: m.div_ceil(32) * 2, k_tiles: k.div_ceil(32) }
    }
    /// Bytes of all tiles.
    #[cfg(test)]
    pub const fn bytes(&self) -> usize {
        self.m_tiles * self.k_tiles * 1024
    }
    /// Offset of tile `(mt, kt)`.
    pub const fn tile(&self, mt: usize, kt: usize) -> usize {
        (mt * self.k_tiles + kt) * 1024
    }
}

#[cfg(test)]
mod tests;
