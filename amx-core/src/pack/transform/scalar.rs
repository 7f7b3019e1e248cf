//! The portable 16-row quads transpose: 4-byte moves.

use super::{Isa, PANEL_ROWS, Run};

/// The portable transposer.
pub(crate) struct Scalar;

impl Isa for Scalar {
    // Quads are stored row by row here, not chunk by chunk: summed after the panel.
    const FUSED_SUM: bool = false;
    type Acc = ();

    #[inline(always)]
    unsafe fn acc_begin(_run: &Run) {}

    #[inline(always)]
    unsafe fn acc_end(_run: &mut Run, _acc: (), _chunks: usize) {}

    #[inline(always)]
    unsafe fn sum(run: &mut Run, bytes: &[u8]) {
        run.update_portable(bytes);
    }

    #[inline(always)]
    unsafe fn pack(rows: &[*const u8; PANEL_ROWS], len: usize, out: *mut u8, _acc: &mut ()) {
        for (r, row) in rows.iter().enumerate() {
            for c in 0..len / 4 {
                // SAFETY: `4c + 4 <= len` bytes of the row are readable and
                // `64c + 4r + 4 <= 16 len` bytes of `out` writable (the trait's contract).
                unsafe {
                    let quad = row.add(4 * c).cast::<[u8; 4]>().read_unaligned();
                    out.add(64 * c + 4 * r).cast::<[u8; 4]>().write_unaligned(quad);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn unpack(input: *const u8, len: usize, rows: &[*mut u8; PANEL_ROWS]) {
        for (r, row) in rows.iter().enumerate() {
            for c in 0..len / 4 {
                // SAFETY: the mirror of `pack`: reads inside `16 len` bytes of `input`,
                // writes inside the row's `len` bytes (the trait's contract).
                unsafe {
                    let quad = input.add(64 * c + 4 * r).cast::<[u8; 4]>().read_unaligned();
                    row.add(4 * c).cast::<[u8; 4]>().write_unaligned(quad);
                }
            }
        }
    }
}
