//! The Linux permission for AMX tile data, requested with `arch_prctl` as a raw syscall.
//!
//! Linux (5.16 and later) keeps the large AMX tile-data state (XCR0 bit 18, about 8 KiB
//! per thread) disabled until a process asks for it with
//! `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; a tile instruction executed
//! before that kills the process with `SIGILL`. The permission is **per process**: one
//! successful request covers every thread, present and future. The request is
//! **idempotent**: asking again once granted succeeds again and changes nothing.
//!
//! The kernel refuses with `EINVAL` when it is older than 5.16, when the CPU has no AMX,
//! or under valgrind (which does not know the request); with `ENOSPC` when a thread's
//! `sigaltstack` is too small for the larger signal frame. Every refusal is an ordinary
//! [`PermissionError`] meaning "AMX unavailable", never a crash.
//!
//! On targets other than Linux on `x86_64` both functions return
//! [`PermissionError::UnsupportedOs`].

use core::fmt;

/// `arch_prctl` code reading the permitted dynamic XSAVE features into a `u64` bitmask.
pub const ARCH_GET_XCOMP_PERM: u64 = 0x1022;
/// `arch_prctl` code requesting permission for one dynamic XSAVE feature.
pub const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
/// The XSAVE feature number of AMX tile data (XCR0 bit 18).
pub const XFEATURE_XTILEDATA: u64 = 18;
/// `errno` value `EINVAL`: what an old kernel, a CPU without AMX, or valgrind answers.
pub const EINVAL: i32 = 22;

/// Why the AMX tile-data permission could not be requested or read.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionError {
    /// The kernel refused the `arch_prctl` call; `errno` is the negated return value.
    Refused {
        /// The `errno` value, e.g. [`EINVAL`] (22).
        errno: i32,
    },
    /// Not Linux on `x86_64`: there is no such permission to ask for here.
    UnsupportedOs,
}

const fn errno_name(errno: i32) -> &'static str {
    match errno {
        1 => "EPERM",
        12 => "ENOMEM",
        14 => "EFAULT",
        22 => "EINVAL: kernel older than 5.16, CPU without AMX, or an emulator such as valgrind",
        28 => "ENOSPC: a thread's sigaltstack is too small for the AMX signal frame",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        _ => "unexpected errno",
    }
}

impl fmt::Display for PermissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PermissionError::Refused { errno } => write!(
                f,
                "the kernel refused arch_prctl for AMX tile data with errno {errno} ({})",
                errno_name(errno)
            ),
            PermissionError::UnsupportedOs => {
                f.write_str("AMX tile-data permission exists only on Linux on x86_64")
            }
        }
    }
}

impl core::error::Error for PermissionError {}

/// Asks Linux for permission to use AMX tile data in this process
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`).
///
/// Per process and idempotent: call it once (or every time; repeats are cheap syscalls
/// that succeed again). `Ok(())` means the permission is granted for every thread.
pub fn request_tile_data() -> Result<(), PermissionError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        linux::request(XFEATURE_XTILEDATA)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err(PermissionError::UnsupportedOs)
    }
}

/// Whether this process already holds the AMX tile-data permission
/// (`arch_prctl(ARCH_GET_XCOMP_PERM)`, bit 18 of the returned mask). Requests nothing.
pub fn tile_data_permitted() -> Result<bool, PermissionError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        linux::permitted_mask().map(|mask| mask & (1 << XFEATURE_XTILEDATA) != 0)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err(PermissionError::UnsupportedOs)
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux {
    use super::{ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM, PermissionError};
    use core::arch::asm;

    /// `SYS_arch_prctl` on x86_64.
    const SYS_ARCH_PRCTL: u64 = 158;

    /// A negative raw syscall return is `-errno`.
    fn check(ret: i64) -> Result<(), PermissionError> {
        if ret < 0 {
            let errno = i32::try_from(ret.unsigned_abs()).unwrap_or(i32::MAX);
            Err(PermissionError::Refused { errno })
        } else {
            Ok(())
        }
    }

    pub(super) fn request(feature: u64) -> Result<(), PermissionError> {
        let ret: i64;
        // SAFETY: ARCH_REQ_XCOMP_PERM only changes the process's permitted XSAVE set (at
        // worst it fails with -errno); it reads and writes no user memory. `syscall`
        // clobbers rcx and r11 (declared) and may change flags (not declared preserved);
        // it does not touch the user stack.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL as i64 => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") feature,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        check(ret)
    }

    pub(super) fn permitted_mask() -> Result<u64, PermissionError> {
        let mut mask: u64 = 0;
        let ret: i64;
        // SAFETY: ARCH_GET_XCOMP_PERM writes one u64 through the pointer in rsi, which
        // points to `mask`, a live, writable, aligned local; nothing else is written.
        // rcx and r11 are clobbered by `syscall` (declared); flags are not preserved.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL as i64 => ret,
                in("rdi") ARCH_GET_XCOMP_PERM,
                in("rsi") &raw mut mask,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        check(ret).map(|()| mask)
    }

    #[cfg(test)]
    mod tests {
        use super::check;
        use crate::permission::PermissionError;

        #[test]
        fn negative_returns_are_errno() {
            assert_eq!(check(0), Ok(()));
            assert_eq!(check(5), Ok(()));
            assert_eq!(check(-22), Err(PermissionError::Refused { errno: 22 }));
            assert_eq!(check(-1), Err(PermissionError::Refused { errno: 1 }));
            assert_eq!(check(i64::MIN), Err(PermissionError::Refused { errno: i32::MAX }));
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::detect::host;
    use std::format;

    #[test]
    fn display_names_the_errno() {
        let s = format!("{}", PermissionError::Refused { errno: EINVAL });
        assert!(s.contains("errno 22 (EINVAL"), "{s}");
        let s = format!("{}", PermissionError::Refused { errno: 28 });
        assert!(s.contains("errno 28 (ENOSPC"), "{s}");
        let s = format!("{}", PermissionError::Refused { errno: 4242 });
        assert!(s.contains("errno 4242 (unexpected errno)"), "{s}");
        let s = format!("{}", PermissionError::UnsupportedOs);
        assert!(s.contains("only on Linux"), "{s}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "the request is a raw syscall in asm")]
    fn request_is_idempotent_and_granted_on_amx_hosts() {
        let first = request_tile_data();
        let second = request_tile_data();
        let third = request_tile_data();
        assert_eq!(first, second);
        assert_eq!(second, third);
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(first, Err(PermissionError::UnsupportedOs));
            return;
        }
        if !host::has_amx() {
            let why = format!("this CPU has no AMX (request answered {first:?})");
            crate::test_util::skip(crate::test_util::Need::Amx, &why);
            return;
        }
        assert_eq!(first, Ok(()));
        assert_eq!(tile_data_permitted(), Ok(true));
    }
}
