//! [`Field`]: how one field of a source block is stored in a 16-row packed panel. Each
//! format lists its fields ([`super::FormatSpec::FIELDS`]); `pack` moves the bytes and the
//! kernels read them by this description.

/// How one field of a source block is stored for a 16-row panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Quantized values: `len / 4` chunks of 64 bytes; chunk `c` holds, for row `r` at
    /// bytes `4r..4r+4`, the source bytes `offset + 4c .. offset + 4c + 4` of row `r`.
    /// This is the VNNI order of an AMX B tile row and of one zmm of 16 i32 lanes.
    Quads,
    /// Scales and other per-row data: 16 copies of `len` bytes, row after row.
    PerRow,
}

/// One field of a source block: `len` bytes at `offset` of the group's source bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub offset: usize,
    pub len: usize,
    pub kind: Kind,
}

/// A [`Kind::Quads`] field.
pub(crate) const fn quads(offset: usize, len: usize) -> Field {
    Field { offset, len, kind: Kind::Quads }
}

/// A [`Kind::PerRow`] field.
pub(crate) const fn per_row(offset: usize, len: usize) -> Field {
    Field { offset, len, kind: Kind::PerRow }
}
