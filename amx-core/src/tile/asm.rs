//! The AMX instructions as `asm!` wrappers (Intel syntax).
//!
//! Tile register numbers are const generics, so each call names its registers at compile
//! time (`tileloadd::<1>(..)`); a number above 7, or a dot product naming one register
//! twice, is a compile error.
//!
//! Memory and ordering: tile registers are invisible to the compiler, so what keeps
//! `tileloadd` -> `tdp*` -> `tilestored` in program order is that none of these blocks is
//! `pure`: non-pure `asm!` blocks have side effects and are never removed, duplicated
//! away or reordered relative to each other. `nomem` only tells the compiler that the
//! block does not touch *Rust-visible* memory, which is true for `tilezero`, the dot
//! products and `tilerelease`. `tileloadd` reads memory (`readonly`); `tilestored` and
//! `sttilecfg` write it (no memory option at all).
//!
//! Common contract of every function here ("AMX is permitted"): the CPU reports
//! AMX-TILE (and AMX-INT8 or AMX-BF16 for those dot products), XCR0 bits 17 and 18 are
//! set, and this process was granted the Linux tile-data permission. An existing
//! [`Amx`](crate::token::Amx) token proves all of it.

use super::TileConfig;
use core::arch::asm;

const fn check_tile(t: u8) {
    assert!(t < 8, "AMX tile register numbers are 0..=7");
}

const fn check_dot(c: u8, a: u8, b: u8) {
    assert!(c < 8 && a < 8 && b < 8, "AMX tile register numbers are 0..=7");
    assert!(c != a && c != b && a != b, "tdp* needs three different tile registers");
}

/// `ldtilecfg`: loads `cfg` as this thread's tile configuration and zeroes all tiles.
/// The safe form is [`Amx::load_config`](crate::token::Amx::load_config).
///
/// # Safety
/// AMX is permitted (see the module docs; an `Amx` token exists). `cfg` itself is always
/// valid: [`TileConfig`] cannot hold a configuration `ldtilecfg` refuses.
#[inline(always)]
pub unsafe fn ldtilecfg(cfg: &TileConfig) {
    // SAFETY: the caller guarantees AMX is permitted; `cfg` is a valid, readable,
    // 64-byte configuration that `ldtilecfg` accepts.
    //
    // Not `nomem`: the instruction reads all 64 bytes behind the pointer, and with `nomem`
    // the compiler could treat the stores that built `*cfg` as dead and drop or sink them
    // (ggml's GCC build lost its rows/colsb stores to dead-store elimination this way and
    // faulted). `readonly` plus a pointer to the whole `TileConfig` makes every earlier
    // store to all 64 bytes visible to the instruction.
    unsafe {
        asm!(
            "ldtilecfg [{cfg}]",
            cfg = in(reg) core::ptr::from_ref(cfg),
            options(readonly, nostack, preserves_flags),
        );
    }
}

/// `sttilecfg`: stores this thread's current tile configuration into `dst`.
/// The safe, checking form is [`Amx::store_config`](crate::token::Amx::store_config).
///
/// # Safety
/// AMX is permitted, and the configuration current on this thread was loaded from a
/// [`TileConfig`] (by [`ldtilecfg`] or `Amx::load_config`) and not released since, so the
/// stored bytes form a valid `TileConfig` (with no configuration, `sttilecfg` stores 64
/// zero bytes, which is not one).
#[inline(always)]
pub unsafe fn sttilecfg(dst: &mut TileConfig) {
    // SAFETY: the caller guarantees AMX is permitted and that the stored bytes are a
    // valid `TileConfig`; `dst` is 64 writable bytes. Writes memory: no memory option.
    unsafe {
        asm!(
            "sttilecfg [{dst}]",
            dst = in(reg) core::ptr::from_mut(dst),
            options(nostack, preserves_flags),
        );
    }
}

/// `tilerelease`: returns the tile state to its initial (unconfigured) state, so the OS
/// no longer saves 8 KiB of tile data on context switches. The safe form is
/// [`Amx::release`](crate::token::Amx::release).
///
/// # Safety
/// AMX is permitted.
#[inline(always)]
pub unsafe fn tilerelease() {
    // SAFETY: the caller guarantees AMX is permitted; `tilerelease` has no other
    // precondition and touches no Rust-visible memory.
    unsafe { asm!("tilerelease", options(nomem, nostack, preserves_flags)) }
}

/// `tileloadd tmm{T}`: loads tile `T` row by row, row *i* from the `colsb` bytes at
/// `base + i * stride`.
///
/// # Safety
/// - AMX is permitted.
/// - The configuration loaded on this thread configures tile `T` with `rows` rows of
///   `colsb` bytes.
/// - For every `i` in `0..rows`, the `colsb` bytes at `base + i * stride` are valid for
///   reads (any alignment) and not written concurrently.
#[inline(always)]
pub unsafe fn tileloadd<const T: u8>(base: *const u8, stride: usize) {
    const { check_tile(T) };
    // SAFETY: the caller guarantees permission, the configuration of tile T and that
    // every row read is readable. Reads memory only: `readonly`.
    unsafe {
        asm!(
            "tileloadd tmm{t}, [{base} + {stride}*1]",
            t = const T,
            base = in(reg) base,
            stride = in(reg) stride,
            options(readonly, nostack, preserves_flags),
        );
    }
}

/// `tileloaddt1 tmm{T}`: [`tileloadd`] with a hint that the data will not be reused
/// soon (loaded without polluting the caches as much).
///
/// # Safety
/// Exactly as for [`tileloadd`].
#[inline(always)]
pub unsafe fn tileloaddt1<const T: u8>(base: *const u8, stride: usize) {
    const { check_tile(T) };
    // SAFETY: as for `tileloadd`, guaranteed by the caller.
    unsafe {
        asm!(
            "tileloaddt1 tmm{t}, [{base} + {stride}*1]",
            t = const T,
            base = in(reg) base,
            stride = in(reg) stride,
            options(readonly, nostack, preserves_flags),
        );
    }
}

/// `tilestored tmm{T}`: stores tile `T` row by row, row *i* to the `colsb` bytes at
/// `base + i * stride`.
///
/// # Safety
/// - AMX is permitted.
/// - The configuration loaded on this thread configures tile `T` with `rows` rows of
///   `colsb` bytes.
/// - For every `i` in `0..rows`, the `colsb` bytes at `base + i * stride` are valid for
///   writes (any alignment) and not accessed concurrently.
#[inline(always)]
pub unsafe fn tilestored<const T: u8>(base: *mut u8, stride: usize) {
    const { check_tile(T) };
    // SAFETY: the caller guarantees permission, the configuration of tile T and that
    // every row written is writable. Writes memory: no memory option.
    unsafe {
        asm!(
            "tilestored [{base} + {stride}*1], tmm{t}",
            t = const T,
            base = in(reg) base,
            stride = in(reg) stride,
            options(nostack, preserves_flags),
        );
    }
}

/// `tilezero tmm{T}`: sets every byte of tile `T` to zero.
///
/// # Safety
/// AMX is permitted and the configuration loaded on this thread configures tile `T`.
#[inline(always)]
pub unsafe fn tilezero<const T: u8>() {
    const { check_tile(T) };
    // SAFETY: the caller guarantees permission and that tile T is configured; only tile
    // state changes (invisible to Rust, so `nomem`; non-`pure` keeps the order).
    unsafe { asm!("tilezero tmm{t}", t = const T, options(nomem, nostack, preserves_flags)) }
}

macro_rules! dot_product {
    ($(#[$doc:meta])* $name:ident, $mnemonic:literal, $feature:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        #[doc = concat!("- AMX is permitted, including ", $feature, ".")]
        /// - The configuration loaded on this thread configures tiles `C`, `A` and `B`
        ///   with `C.rows == A.rows`, `C.colsb == B.colsb` and `A.colsb == 4 * B.rows`
        ///   (all `colsb` are multiples of 4 by construction of [`TileConfig`]).
        #[inline(always)]
        pub unsafe fn $name<const C: u8, const A: u8, const B: u8>() {
            const { check_dot(C, A, B) };
            // SAFETY: the caller guarantees permission and compatible shapes; the three
            // registers are distinct (checked at compile time). Only tile state changes:
            // `nomem`; non-`pure` keeps it ordered with the loads and stores.
            unsafe {
                asm!(
                    concat!($mnemonic, " tmm{c}, tmm{a}, tmm{b}"),
                    c = const C,
                    a = const A,
                    b = const B,
                    options(nomem, nostack, preserves_flags),
                );
            }
        }
    };
}

dot_product!(
    /// `tdpbssd tmm{C}, tmm{A}, tmm{B}`: `C[m][n] += Σ_k A[m][k] * B[k/4][4n + k%4]`
    /// with `A` and `B` signed bytes and `C` `i32` (B in VNNI order: 4 consecutive k per
    /// 4-byte group).
    tdpbssd, "tdpbssd", "AMX-INT8"
);
dot_product!(
    /// `tdpbsud`: as [`tdpbssd`] with `A` signed and `B` unsigned bytes.
    tdpbsud, "tdpbsud", "AMX-INT8"
);
dot_product!(
    /// `tdpbusd`: as [`tdpbssd`] with `A` unsigned and `B` signed bytes.
    tdpbusd, "tdpbusd", "AMX-INT8"
);
dot_product!(
    /// `tdpbuud`: as [`tdpbssd`] with `A` and `B` unsigned bytes.
    tdpbuud, "tdpbuud", "AMX-INT8"
);
dot_product!(
    /// `tdpbf16ps tmm{C}, tmm{A}, tmm{B}`: `C[m][n] += Σ_k A[m][k] * B[k/2][2n + k%2]`
    /// with `A` and `B` bf16 and `C` f32 (B in VNNI order: pairs of consecutive k).
    /// Denormal inputs and outputs are flushed to zero; rounding is round-to-nearest-even.
    tdpbf16ps, "tdpbf16ps", "AMX-BF16"
);

#[cfg(test)]
mod tests;
