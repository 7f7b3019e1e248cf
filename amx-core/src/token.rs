//! Zero-sized capability tokens (in the style of `pulp`): holding one proves that the
//! CPU, the OS and (for AMX) the Linux permission allow a family of instructions, so the
//! calls that need them can be safe functions taking the token.
//!
//! Tokens are `Copy`, `Send` and `Sync`: CPUID, XCR0 and the AMX permission are the same
//! for every thread of a process, so a token obtained on one thread is valid on all.

use crate::detect::{Features, XCR0_AMX_MASK, XCR0_AVX512_MASK};
use crate::permission::{self, PermissionError};
use crate::tile::{TileConfig, TileConfigError};
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// Why [`Amx::try_new`] refused: the first check that failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmxUnavailable {
    /// Not an `x86_64` target.
    NotX86_64,
    /// CPUID does not report this feature (`"amx-tile"`, `"amx-int8"` or `"amx-bf16"`).
    CpuLacks {
        /// The missing feature.
        feature: &'static str,
    },
    /// CPUID.1:ECX.OSXSAVE is clear: the OS does not use XSAVE, XCR0 cannot be read.
    OsLacksXsave,
    /// The OS did not enable AMX state: XCR0 bits 17 and 18 are not both set.
    Xcr0Disabled {
        /// The XCR0 value read.
        xcr0: u64,
    },
    /// The Linux tile-data permission request failed.
    Permission(PermissionError),
}

impl fmt::Display for AmxUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AmxUnavailable::NotX86_64 => f.write_str("AMX needs an x86_64 target"),
            AmxUnavailable::CpuLacks { feature } => {
                write!(f, "the CPU does not report {feature} in CPUID")
            }
            AmxUnavailable::OsLacksXsave => {
                f.write_str("the OS has not enabled XSAVE (CPUID OSXSAVE is clear)")
            }
            AmxUnavailable::Xcr0Disabled { xcr0 } => write!(
                f,
                "the OS has not enabled AMX state: XCR0 = {xcr0:#x}, bits 17 and 18 must both be set"
            ),
            AmxUnavailable::Permission(e) => write!(f, "AMX permission: {e}"),
        }
    }
}

impl core::error::Error for AmxUnavailable {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            AmxUnavailable::Permission(e) => Some(e),
            _ => None,
        }
    }
}

/// Set once every check of [`Amx::try_new`] has passed in this process: none of them can
/// change afterwards (CPUID and XCR0 are fixed, the permission is never taken back).
static AMX_GRANTED: AtomicBool = AtomicBool::new(false);

/// Proof that AMX-TILE, AMX-INT8 and AMX-BF16 can be used in this process: CPUID reports
/// them, XCR0 bits 17 and 18 are set, and the Linux tile-data permission is granted.
#[derive(Clone, Copy, Debug)]
pub struct Amx {
    _private: (),
}

impl Amx {
    /// Runs the three checks (CPUID, XCR0, then the permission request, which is per
    /// process and idempotent) and returns the token when all agree. Outside Linux on
    /// `x86_64` the permission step answers [`PermissionError::UnsupportedOs`], so the
    /// token is refused there.
    ///
    /// Once the permission has been granted the answer is remembered, so later calls make
    /// no system call (the permission lasts as long as the process).
    pub fn try_new() -> Result<Amx, AmxUnavailable> {
        if !cfg!(target_arch = "x86_64") {
            return Err(AmxUnavailable::NotX86_64);
        }
        if AMX_GRANTED.load(Ordering::Relaxed) {
            return Ok(Amx { _private: () });
        }
        let f = Features::cached();
        for (present, feature) in
            [(f.amx_tile(), "amx-tile"), (f.amx_int8(), "amx-int8"), (f.amx_bf16(), "amx-bf16")]
        {
            if !present {
                return Err(AmxUnavailable::CpuLacks { feature });
            }
        }
        if !f.osxsave() {
            return Err(AmxUnavailable::OsLacksXsave);
        }
        if f.xcr0() & XCR0_AMX_MASK != XCR0_AMX_MASK {
            return Err(AmxUnavailable::Xcr0Disabled { xcr0: f.xcr0() });
        }
        permission::request_tile_data().map_err(AmxUnavailable::Permission)?;
        AMX_GRANTED.store(true, Ordering::Relaxed);
        Ok(Amx { _private: () })
    }

    /// The token without any check.
    ///
    /// # Safety
    /// The caller guarantees what [`Amx::try_new`] checks: the CPU reports AMX-TILE,
    /// AMX-INT8 and AMX-BF16; XCR0 bits 17 and 18 are set; and this process holds the
    /// Linux tile-data permission ([`permission::request_tile_data`] returned `Ok`).
    pub const unsafe fn new_unchecked() -> Amx {
        Amx { _private: () }
    }

    /// Loads `cfg` as this thread's tile configuration (`ldtilecfg`), zeroing all tiles.
    /// Safe: the token proves the instruction exists and is permitted, and a
    /// [`TileConfig`] is always a configuration `ldtilecfg` accepts.
    ///
    /// Because this (and [`Amx::release`]) is safe, `unsafe` code that remembers which
    /// configuration its thread holds (to skip `ldtilecfg`) must not trust that memory
    /// across calls into code it does not control: the tile shapes its loads and stores
    /// rely on may have changed. Re-check with [`Amx::store_config`] or reload.
    #[inline]
    pub fn load_config(self, cfg: &TileConfig) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `self` proves AMX is permitted in this process.
            unsafe { crate::tile::ldtilecfg(cfg) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = cfg; // A token cannot exist here (its contract cannot be met).
    }

    /// This thread's current tile configuration (`sttilecfg`): `Ok(None)` when no
    /// configuration is loaded, an error when one is loaded that [`TileConfig`] cannot
    /// represent (loaded by other code with different rules).
    pub fn store_config(self) -> Result<Option<TileConfig>, TileConfigError> {
        #[repr(C, align(64))]
        struct Raw([u8; 64]);
        #[allow(unused_mut)]
        let mut raw = Raw([0; 64]);
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `self` proves AMX is permitted; `sttilecfg` writes exactly the 64
            // bytes of `raw`, a local aligned buffer whose contents are then validated.
            unsafe {
                core::arch::asm!(
                    "sttilecfg [{dst}]",
                    dst = in(reg) &raw mut raw,
                    options(nostack, preserves_flags),
                );
            }
        }
        if raw.0 == [0; 64] {
            return Ok(None);
        }
        TileConfig::from_bytes(&raw.0).map(Some)
    }

    /// Releases this thread's tile state (`tilerelease`); call it when the thread is done
    /// with AMX so the OS stops saving 8 KiB of tile data on each context switch.
    #[inline]
    pub fn release(self) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `self` proves AMX is permitted in this process.
            unsafe { crate::tile::tilerelease() }
        }
    }
}

/// Why [`Avx512Vnni::try_new`] refused: the first check that failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Avx512Unavailable {
    /// Not an `x86_64` target.
    NotX86_64,
    /// CPUID does not report this feature (`"avx512f"`, `"avx512bw"`, `"avx512vl"` or
    /// `"avx512vnni"`).
    CpuLacks {
        /// The missing feature.
        feature: &'static str,
    },
    /// CPUID.1:ECX.OSXSAVE is clear: the OS does not use XSAVE, XCR0 cannot be read.
    OsLacksXsave,
    /// The OS did not enable AVX-512 state: XCR0 bits 1, 2, 5, 6 and 7 not all set.
    Xcr0Disabled {
        /// The XCR0 value read.
        xcr0: u64,
    },
}

impl fmt::Display for Avx512Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Avx512Unavailable::NotX86_64 => f.write_str("AVX-512 needs an x86_64 target"),
            Avx512Unavailable::CpuLacks { feature } => {
                write!(f, "the CPU does not report {feature} in CPUID")
            }
            Avx512Unavailable::OsLacksXsave => {
                f.write_str("the OS has not enabled XSAVE (CPUID OSXSAVE is clear)")
            }
            Avx512Unavailable::Xcr0Disabled { xcr0 } => write!(
                f,
                "the OS has not enabled AVX-512 state: XCR0 = {xcr0:#x}, bits 1, 2, 5, 6 and 7 must all be set"
            ),
        }
    }
}

impl core::error::Error for Avx512Unavailable {}

/// Proof that AVX-512F, BW, VL and VNNI can be used: CPUID reports them and XCR0 enables
/// the AVX-512 state ([`Features::avx512_vnni_usable`]).
#[derive(Clone, Copy, Debug)]
pub struct Avx512Vnni {
    _private: (),
}

impl Avx512Vnni {
    /// Checks CPUID and XCR0 and returns the token when both allow AVX-512 VNNI.
    pub fn try_new() -> Result<Avx512Vnni, Avx512Unavailable> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Avx512Unavailable::NotX86_64);
        }
        let f = Features::cached();
        for (present, feature) in [
            (f.avx512f(), "avx512f"),
            (f.avx512bw(), "avx512bw"),
            (f.avx512vl(), "avx512vl"),
            (f.avx512_vnni(), "avx512vnni"),
        ] {
            if !present {
                return Err(Avx512Unavailable::CpuLacks { feature });
            }
        }
        if !f.osxsave() {
            return Err(Avx512Unavailable::OsLacksXsave);
        }
        if f.xcr0() & XCR0_AVX512_MASK != XCR0_AVX512_MASK {
            return Err(Avx512Unavailable::Xcr0Disabled { xcr0: f.xcr0() });
        }
        Ok(Avx512Vnni { _private: () })
    }

    /// The token without any check.
    ///
    /// # Safety
    /// The caller guarantees [`Features::avx512_vnni_usable`]: the CPU reports AVX-512F,
    /// BW, VL and VNNI, and XCR0 bits 1, 2, 5, 6 and 7 are set.
    pub const unsafe fn new_unchecked() -> Avx512Vnni {
        Avx512Vnni { _private: () }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::detect::host;
    use std::{format, println};

    const fn assert_send_sync_copy<T: Send + Sync + Copy + 'static>() {}
    const _: () = assert_send_sync_copy::<Amx>();
    const _: () = assert_send_sync_copy::<Avx512Vnni>();
    const _: () = assert!(core::mem::size_of::<Amx>() == 0);
    const _: () = assert!(core::mem::size_of::<Avx512Vnni>() == 0);

    #[test]
    fn amx_token_agrees_with_the_host() {
        let token = Amx::try_new();
        if !host::has_amx() {
            let why = format!("this CPU has no AMX (try_new answered {token:?})");
            crate::test_util::skip(crate::test_util::Need::Amx, &why);
            assert!(token.is_err());
            return;
        }
        let token = token.expect("/proc/cpuinfo lists AMX, so the token must be granted");
        assert_eq!(permission::tile_data_permitted(), Ok(true));
        // The token works on another thread (a permission is per process).
        std::thread::spawn(move || {
            let cfg = TileConfig::new().with_tile(0, 16, 64).expect("valid shape");
            token.load_config(&cfg);
            assert_eq!(token.store_config(), Ok(Some(cfg)));
            token.release();
            assert_eq!(token.store_config(), Ok(None));
        })
        .join()
        .expect("thread using the token");
    }

    #[test]
    fn avx512_vnni_token_agrees_with_the_host() {
        let token = Avx512Vnni::try_new();
        if host::cpuinfo_flags().is_none() {
            println!("skipped: no /proc/cpuinfo on this host");
            return;
        }
        let listed =
            ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"].iter().all(|f| host::lists(f));
        assert_eq!(token.is_ok(), listed, "{token:?}");
    }

    #[test]
    fn errors_say_what_failed_with_numbers() {
        let e = AmxUnavailable::Xcr0Disabled { xcr0: 0x2e7 };
        assert!(format!("{e}").contains("XCR0 = 0x2e7, bits 17 and 18"), "{e}");
        let e = AmxUnavailable::CpuLacks { feature: "amx-int8" };
        assert_eq!(format!("{e}"), "the CPU does not report amx-int8 in CPUID");
        let e = AmxUnavailable::Permission(PermissionError::Refused { errno: 22 });
        assert!(format!("{e}").contains("errno 22 (EINVAL"), "{e}");
        let source = core::error::Error::source(&e).map(|s| format!("{s}"));
        assert!(source.is_some_and(|s| s.contains("errno 22")));
        let e = Avx512Unavailable::Xcr0Disabled { xcr0: 0x7 };
        assert!(format!("{e}").contains("XCR0 = 0x7, bits 1, 2, 5, 6 and 7"), "{e}");
    }
}
