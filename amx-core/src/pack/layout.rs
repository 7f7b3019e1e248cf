//! Where every byte of a packed buffer goes: the field tables of the formats (each
//! format's `FormatSpec::FIELDS`) laid out in panels, and the sizes of panels, matrices
//! and whole buffers.

use crate::formats::Format;
use crate::formats::field::{Field, Kind, per_row};

use super::PackError;
use super::header::HEADER_BYTES;

/// Rows per panel: one AMX tile's 16 output columns, one zmm register of 16 i32 lanes.
pub const PANEL_ROWS: usize = 16;

/// Every panel starts at a multiple of this many bytes from the start of the buffer.
pub const PANEL_ALIGN: usize = 64;

/// Field `i` of `table`, or an empty per-row field past the end (so that code generated
/// for a fixed number of fields can skip the missing ones at compile time).
const fn field_at(table: &[Field], i: usize) -> Field {
    if i < table.len() { table[i] } else { per_row(0, 0) }
}

/// Whether field `i` of `table` is a quads field.
pub(crate) const fn field_is_quads(table: &[Field], i: usize) -> bool {
    matches!(field_at(table, i).kind, Kind::Quads)
}

/// Offset of field `i` of `table` in the group.
pub(crate) const fn field_offset(table: &[Field], i: usize) -> usize {
    field_at(table, i).offset
}

/// Length of field `i` of `table` (0 past the end).
pub(crate) const fn field_len(table: &[Field], i: usize) -> usize {
    field_at(table, i).len
}

/// Offset of field `i` inside its region (quads or per-row) of one group of a panel:
/// 16 times the lengths of the earlier fields of the same kind.
pub(crate) const fn field_base(table: &[Field], i: usize) -> usize {
    let quads = field_is_quads(table, i);
    let mut base = 0;
    let mut j = 0;
    while j < i && j < table.len() {
        if matches!(table[j].kind, Kind::Quads) == quads {
            base += PANEL_ROWS * table[j].len;
        }
        j += 1;
    }
    base
}

/// Values per group for F16 and BF16 (their ggml block is one value): 32 values is one
/// 64-byte row of a BF16 tile (16 VNNI pairs).
pub const FLOAT_GROUP_VALUES: usize = 32;

const _: () = assert!(
    Format::F16.group_values() == FLOAT_GROUP_VALUES
        && Format::BF16.group_values() == FLOAT_GROUP_VALUES
);

/// Values one packed group covers (the block size; 32 for F16/BF16).
pub const fn group_values(format: Format) -> usize {
    format.group_values()
}

/// Packed bytes one row contributes per group.
pub const fn group_bytes(format: Format) -> usize {
    format.group_bytes()
}

/// Total quads bytes one row contributes per group (the rest of the group is per-row data).
pub(crate) const fn quad_bytes(format: Format) -> usize {
    let f = format.fields();
    let mut sum = 0;
    let mut i = 0;
    while i < f.len() {
        if matches!(f[i].kind, Kind::Quads) {
            sum += f[i].len;
        }
        i += 1;
    }
    sum
}

/// The geometry of one packed buffer: format, shape and every size derived from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedLayout {
    format: Format,
    n: usize,
    k: usize,
    matrices: usize,
    groups: usize,
    /// 16 rows' quads bytes of one group ([`quad_bytes`], a loop over the format's
    /// fields, computed once here: the kernels ask for group offsets per panel).
    group_quads: usize,
    panels_per_matrix: usize,
    panel_bytes: usize,
    source_bytes: usize,
    total_bytes: usize,
}

const fn round_up(x: usize, to: usize) -> Option<usize> {
    match x.checked_add(to - 1) {
        Some(v) => Some(v / to * to),
        None => None,
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Err(PackError::Overflow),
        }
    };
}

impl PackedLayout {
    /// The layout of `matrices` stacked weights of `n` rows by `k` values in `format`.
    ///
    /// Errors: [`PackError::EmptyShape`] when any dimension is 0,
    /// [`PackError::NotBlockMultiple`] when `k` is not a multiple of the format's block
    /// (any `k` is fine for F16 and BF16), [`PackError::Overflow`] when a size overflows.
    pub const fn new(
        format: Format,
        n: usize,
        k: usize,
        matrices: usize,
    ) -> Result<Self, PackError> {
        if n == 0 || k == 0 || matrices == 0 {
            return Err(PackError::EmptyShape { n, k, matrices });
        }
        let block = format.block_values();
        if !k.is_multiple_of(block) {
            return Err(PackError::NotBlockMultiple { format, k, block });
        }
        let gv = group_values(format);
        let groups = k.div_ceil(gv);
        let panels_per_matrix = n.div_ceil(PANEL_ROWS);
        let raw_panel = tri!(tri!(groups.checked_mul(PANEL_ROWS)).checked_mul(group_bytes(format)));
        let panel_bytes = tri!(round_up(raw_panel, PANEL_ALIGN));
        let panels = tri!(panels_per_matrix.checked_mul(matrices));
        let body = tri!(panels.checked_mul(panel_bytes));
        let total_bytes = tri!(body.checked_add(HEADER_BYTES));
        let row = tri!((k / block).checked_mul(format.block_bytes()));
        let source_bytes = tri!(tri!(n.checked_mul(matrices)).checked_mul(row));
        Ok(Self {
            format,
            n,
            k,
            matrices,
            groups,
            group_quads: PANEL_ROWS * quad_bytes(format),
            panels_per_matrix,
            panel_bytes,
            source_bytes,
            total_bytes,
        })
    }

    /// The weight format.
    pub const fn format(&self) -> Format {
        self.format
    }
    /// Rows (output columns) per matrix.
    pub const fn n(&self) -> usize {
        self.n
    }
    /// Values per row.
    pub const fn k(&self) -> usize {
        self.k
    }
    /// Stacked matrices (1 for a plain 2-D weight, E for MoE experts).
    pub const fn matrices(&self) -> usize {
        self.matrices
    }
    /// Groups (blocks) per row in the packed form, counting a padded last F16/BF16 group.
    pub const fn groups(&self) -> usize {
        self.groups
    }
    /// 16-row panels per matrix; the last one is padded with zero rows when `n % 16 != 0`.
    pub const fn panels_per_matrix(&self) -> usize {
        self.panels_per_matrix
    }
    /// Panels in the whole buffer (`matrices * panels_per_matrix`).
    pub const fn panels(&self) -> usize {
        self.matrices * self.panels_per_matrix
    }
    /// Bytes of one panel, a multiple of [`PANEL_ALIGN`].
    pub const fn panel_bytes(&self) -> usize {
        self.panel_bytes
    }
    /// Bytes of the whole packed buffer, header included.
    pub const fn total_bytes(&self) -> usize {
        self.total_bytes
    }
    /// Byte offset of panel `panel` (global index over all matrices) from the buffer start;
    /// `panel == panels()` gives the end of the buffer (where a range ending there stops).
    ///
    /// Errors: [`PackError::PanelRange`] (`panel..panel` outside the panels) when `panel >
    /// panels()`, so the offset always fits `usize`.
    pub const fn panel_offset(&self, panel: usize) -> Result<usize, PackError> {
        if panel > self.panels() {
            return Err(PackError::PanelRange { start: panel, end: panel, panels: self.panels() });
        }
        // panel <= panels(): at most `total_bytes`, which `new` checked.
        Ok(HEADER_BYTES + panel * self.panel_bytes)
    }
    /// Bytes of one source row in ggml form.
    pub const fn source_row_bytes(&self) -> usize {
        self.k / self.format.block_values() * self.format.block_bytes()
    }
    /// Bytes of the whole ggml source (`matrices * n` rows).
    pub const fn source_bytes(&self) -> usize {
        self.source_bytes
    }
    /// Byte offset of the quads of group `g` inside a panel.
    #[inline]
    pub(crate) const fn quads_offset(&self, g: usize) -> usize {
        g * self.group_quads
    }
    /// Byte offset of the per-row data of group `g` inside a panel.
    #[inline]
    pub(crate) const fn per_row_offset(&self, g: usize) -> usize {
        let q = self.groups * self.group_quads;
        q + g * (PANEL_ROWS * group_bytes(self.format) - self.group_quads)
    }
}

/// Bytes of the packed buffer for `matrices` weights of `n x k` in `format`: the size the
/// caller allocates before calling [`super::pack`]. Errors as [`PackedLayout::new`].
pub const fn packed_size(
    format: Format,
    n: usize,
    k: usize,
    matrices: usize,
) -> Result<usize, PackError> {
    match PackedLayout::new(format, n, k, matrices) {
        Ok(l) => Ok(l.total_bytes()),
        Err(e) => Err(e),
    }
}
