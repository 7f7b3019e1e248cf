//! The 64-byte header at the start of every packed buffer, and the checked view of a
//! packed buffer that kernels and `unpack` read through.

use crate::formats::Format;

use super::PackError;
use super::checksum::{self, BodySum};
use super::layout::{PANEL_ROWS, PackedLayout};

/// Bytes of the header; the first panel starts right after it.
pub const HEADER_BYTES: usize = 64;

/// The first 8 bytes of every packed buffer.
pub const MAGIC: [u8; 8] = *b"AMXPACK\0";

/// The layout version this build writes and reads. Bump it whenever a byte moves.
/// Version 3 added the body checksum (bytes 56..64) and widened the header checksum to
/// cover it.
pub const LAYOUT_VERSION: u16 = 3;

/// Where the header checksum is stored, and where the body checksum is.
const HEADER_SUM: core::ops::Range<usize> = 48..56;
const BODY_SUM: core::ops::Range<usize> = 56..64;

fn u64_at(b: &[u8; HEADER_BYTES], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// FNV-1a (64-bit) over `parts` in order.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The header checksum, stored in bytes 48..56: FNV-1a 64 of every other header byte
/// (0..48, then the body checksum 56..64). A header whose fields were changed after
/// packing (a flipped format id or dimension that happens to give the same size, a
/// flipped body checksum) is refused instead of being read as another weight.
fn header_checksum(h: &[u8; HEADER_BYTES]) -> u64 {
    fnv1a(&[&h[..HEADER_SUM.start], &h[BODY_SUM]])
}

/// Layout version 2's header checksum (FNV-1a 64 of bytes 0..48, at 48..56; 56..64
/// zero): a buffer packed by an older build is then named by its version, not reported
/// as corrupt.
fn checksum_v2(h: &[u8; HEADER_BYTES]) -> u64 {
    fnv1a(&[&h[..HEADER_SUM.start]])
}

/// [`header_checksum`], for the tests that forge headers.
#[cfg(test)]
pub(crate) fn checksum_for_tests(h: &[u8; HEADER_BYTES]) -> u64 {
    header_checksum(h)
}

/// Writes the header of `layout`, whose panels sum to `body`, into `dst`.
pub(crate) fn write(layout: &PackedLayout, body: &BodySum, dst: &mut [u8; HEADER_BYTES]) {
    *dst = [0; HEADER_BYTES];
    dst[0..8].copy_from_slice(&MAGIC);
    dst[8..10].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    dst[10..12].copy_from_slice(&(PANEL_ROWS as u16).to_le_bytes());
    dst[12..16].copy_from_slice(&layout.format().ggml_type().to_le_bytes());
    dst[16..24].copy_from_slice(&(layout.n() as u64).to_le_bytes());
    dst[24..32].copy_from_slice(&(layout.k() as u64).to_le_bytes());
    dst[32..40].copy_from_slice(&(layout.matrices() as u64).to_le_bytes());
    dst[40..48].copy_from_slice(&(layout.total_bytes() as u64).to_le_bytes());
    dst[BODY_SUM].copy_from_slice(&body.value().to_le_bytes());
    let sum = header_checksum(dst);
    dst[HEADER_SUM].copy_from_slice(&sum.to_le_bytes());
}

/// Reads and checks a header, in this order: length, magic, header checksum (before any
/// other field is believed, so a flipped bit reads as a failed checksum and not as, say,
/// another layout version), version, rows per panel, format, shape, and that the
/// recorded total size is the one the shape gives and is present. Returns the layout and
/// the stored body checksum.
fn read(bytes: &[u8]) -> Result<(PackedLayout, u64), PackError> {
    let Some(h) = bytes.first_chunk::<HEADER_BYTES>() else {
        return Err(PackError::Truncated { needed: HEADER_BYTES, actual: bytes.len() });
    };
    if h[0..8] != MAGIC {
        return Err(PackError::BadMagic);
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    let (stored, computed) = (u64_at(h, HEADER_SUM.start), header_checksum(h));
    if stored != computed {
        if version < LAYOUT_VERSION && stored == checksum_v2(h) {
            return Err(PackError::UnsupportedVersion {
                found: version,
                supported: LAYOUT_VERSION,
            });
        }
        return Err(PackError::HeaderChecksum { stored, computed });
    }
    if version != LAYOUT_VERSION {
        return Err(PackError::UnsupportedVersion { found: version, supported: LAYOUT_VERSION });
    }
    let rows = u16::from_le_bytes([h[10], h[11]]);
    if usize::from(rows) != PANEL_ROWS {
        return Err(PackError::BadHeader);
    }
    let ggml_type = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    let format =
        Format::from_ggml_type(ggml_type).map_err(|_| PackError::UnknownFormat { ggml_type })?;
    let dim = |at| usize::try_from(u64_at(h, at)).map_err(|_| PackError::Overflow);
    let (n, k, matrices) = (dim(16)?, dim(24)?, dim(32)?);
    let layout = PackedLayout::new(format, n, k, matrices)?;
    if u64_at(h, 40) != layout.total_bytes() as u64 {
        return Err(PackError::BadHeader);
    }
    if bytes.len() < layout.total_bytes() {
        return Err(PackError::Truncated { needed: layout.total_bytes(), actual: bytes.len() });
    }
    Ok((layout, u64_at(h, BODY_SUM.start)))
}

/// A packed buffer whose header has been checked: the only way kernels and `unpack` read
/// packed bytes, so a buffer of another format, shape or layout version is an error, never
/// numbers.
#[derive(Clone, Copy, Debug)]
pub struct PackedRef<'a> {
    layout: PackedLayout,
    bytes: &'a [u8],
    /// The body of the whole buffer this view was parsed from (for a matrix of a stack,
    /// the stack's), and the body checksum its header records.
    body: &'a [u8],
    body_sum: u64,
}

impl<'a> PackedRef<'a> {
    /// Checks the header of `bytes` (its 64 bytes only: cheap enough for every GEMM call)
    /// and returns a view of the packed buffer. The body is not read: see
    /// [`PackedRef::verify_body`] and [`super::verify`]. Bytes past the size recorded in
    /// the header are ignored (a caller's allocation may be rounded up).
    ///
    /// Errors, in the order checked: [`PackError::Truncated`], [`PackError::BadMagic`],
    /// [`PackError::HeaderChecksum`] (before any other field is read),
    /// [`PackError::UnsupportedVersion`], [`PackError::BadHeader`],
    /// [`PackError::UnknownFormat`], the shape errors of [`PackedLayout::new`], and
    /// [`PackError::Truncated`] when the buffer is shorter than its header says.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PackError> {
        let (layout, body_sum) = read(bytes)?;
        let bytes = &bytes[..layout.total_bytes()];
        Ok(Self { layout, bytes, body: &bytes[HEADER_BYTES..], body_sum })
    }

    /// Checks the body checksum that the header records against the body's bytes: one
    /// read of the whole buffer (of the whole stack for a view from
    /// [`PackedRef::matrix`]). [`super::unpack`] and [`super::verify`] call it; the GEMM
    /// does not (it checks the header only).
    ///
    /// Errors: [`PackError::BodyChecksum`] when the panels were changed after packing.
    pub fn verify_body(&self) -> Result<(), PackError> {
        let computed = checksum::sum(self.body, 0).value();
        if computed != self.body_sum {
            return Err(PackError::BodyChecksum { stored: self.body_sum, computed });
        }
        Ok(())
    }

    /// [`PackedRef::parse`], then checks that the buffer holds `matrices` weights of
    /// `n x k` in `format`: [`PackError::FormatMismatch`] or [`PackError::ShapeMismatch`]
    /// otherwise.
    pub fn parse_expecting(
        bytes: &'a [u8],
        format: Format,
        n: usize,
        k: usize,
        matrices: usize,
    ) -> Result<Self, PackError> {
        let packed = Self::parse(bytes)?;
        packed.expect(format, n, k, matrices)?;
        Ok(packed)
    }

    /// Checks that this buffer holds `matrices` weights of `n x k` in `format`:
    /// [`PackError::FormatMismatch`] or [`PackError::ShapeMismatch`] otherwise.
    pub fn expect(
        &self,
        format: Format,
        n: usize,
        k: usize,
        matrices: usize,
    ) -> Result<(), PackError> {
        let l = self.layout;
        if l.format() != format {
            return Err(PackError::FormatMismatch { expected: format, found: l.format() });
        }
        if (l.matrices(), l.n(), l.k()) != (matrices, n, k) {
            return Err(PackError::ShapeMismatch {
                expected: (matrices, n, k),
                found: (l.matrices(), l.n(), l.k()),
            });
        }
        Ok(())
    }

    /// The buffer's layout (format, shape, sizes).
    pub const fn layout(&self) -> &PackedLayout {
        &self.layout
    }

    /// The whole buffer, header included, exactly `layout().total_bytes()` long.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// A view of matrix `e` of a stack (MoE experts) as a buffer of one matrix: its panels
    /// are panels `0..panels_per_matrix` of the view. `None` when `e` is past the stack.
    /// Only panel access reads the view's bytes; its header was checked for the stack.
    pub fn matrix(&self, e: usize) -> Option<PackedRef<'a>> {
        let l = self.layout;
        if e >= l.matrices() {
            return None;
        }
        let single = PackedLayout::new(l.format(), l.n(), l.k(), 1).ok()?;
        // The view starts `HEADER_BYTES` before matrix e's first panel, so that its panel
        // p is the stack's panel `e * panels_per_matrix + p`.
        let start = e * l.panels_per_matrix() * l.panel_bytes();
        let bytes = self.bytes.get(start..start + single.total_bytes())?;
        Some(PackedRef { layout: single, bytes, body: self.body, body_sum: self.body_sum })
    }

    /// The bytes of panel `panel` (global index over all matrices), or `None` past the end.
    pub fn panel(&self, panel: usize) -> Option<&'a [u8]> {
        if panel >= self.layout.panels() {
            return None;
        }
        let at = self.layout.panel_offset(panel).ok()?;
        self.bytes.get(at..at + self.layout.panel_bytes())
    }
}
