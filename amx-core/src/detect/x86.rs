//! CPUID and XCR0 reads on x86_64, and the process-wide cache behind
//! [`Features::cached`].

use super::{CpuidRegisters, Features};
use core::arch::x86_64::{__cpuid_count, CpuidResult};
use core::sync::atomic::{AtomicU64, Ordering};

// `__cpuid_count` is an `unsafe fn` up to Rust 1.86 (MSRV 1.85) and safe afterwards.
#[allow(unused_unsafe)]
fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    // SAFETY: every x86_64 CPU implements CPUID; it reads registers only. Leaves above
    // the maximum return data of the highest basic leaf, never a fault; callers check
    // the maximum leaf before trusting the result.
    unsafe { __cpuid_count(leaf, subleaf) }
}

/// Reads XCR0.
///
/// # Safety
/// CPUID.1:ECX.OSXSAVE (bit 27) must be set; otherwise `xgetbv` raises #UD.
unsafe fn xgetbv0() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: the caller guarantees OSXSAVE, so `xgetbv` with ECX = 0 is defined; it
    // only writes EAX and EDX, touches no memory and no flags.
    unsafe {
        core::arch::asm!(
            "xgetbv",
            in("ecx") 0u32,
            out("eax") lo,
            out("edx") hi,
            options(nomem, nostack, preserves_flags, pure),
        );
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

pub(super) fn detect() -> Features {
    let max_leaf = cpuid(0, 0).eax;
    let mut regs = CpuidRegisters::default();
    if max_leaf >= 1 {
        regs.leaf1_ecx = cpuid(1, 0).ecx;
    }
    if max_leaf >= 7 {
        let leaf7 = cpuid(7, 0);
        regs.leaf7_ebx = leaf7.ebx;
        regs.leaf7_ecx = leaf7.ecx;
        regs.leaf7_edx = leaf7.edx;
        // Leaf 7 subleaf 0 EAX: the highest valid subleaf.
        if leaf7.eax >= 1 {
            regs.leaf7_1_eax = cpuid(7, 1).eax;
        }
    }
    let xcr0 = if (regs.leaf1_ecx >> 27) & 1 == 1 {
        // SAFETY: OSXSAVE was just checked in CPUID.1:ECX[27].
        unsafe { xgetbv0() }
    } else {
        0
    };
    Features::from_registers(regs, xcr0)
}

// The process-wide cache behind `Features::cached`. Encoding: `CACHE_FLAGS` bit 63 is set once the cache is filled, and its bits 0..16
// hold `Features::flags` (bit 0 AMX-TILE, 1 AMX-INT8, 2 AMX-BF16, 3 AMX-FP16,
// 4 AVX-512F, 5 AVX-512BW, 6 AVX-512VL, 7 AVX-512VNNI, 8 AVX-512BF16, 9 OSXSAVE, 10 AVX-512VBMI).
// `CACHE_XCR0` holds the full 64-bit XCR0; it is written before `CACHE_FLAGS` is
// published with `Release`, and read after `CACHE_FLAGS` is read with `Acquire`.

const FILLED: u64 = 1 << 63;
static CACHE_FLAGS: AtomicU64 = AtomicU64::new(0);
static CACHE_XCR0: AtomicU64 = AtomicU64::new(0);

pub(super) fn cached() -> Features {
    let word = CACHE_FLAGS.load(Ordering::Acquire);
    if word & FILLED != 0 {
        return Features {
            flags: (word & 0xFFFF) as u16,
            xcr0: CACHE_XCR0.load(Ordering::Relaxed),
        };
    }
    let f = Features::detect();
    CACHE_XCR0.store(f.xcr0, Ordering::Relaxed);
    CACHE_FLAGS.store(FILLED | u64::from(f.flags), Ordering::Release);
    f
}
