//! What the CPU and the OS support: CPUID leaves 1 and 7, and XCR0 read with `xgetbv`.
//!
//! A CPUID bit says the CPU implements an instruction set; the matching XCR0 bits say the
//! OS saves and restores the register state it needs. Both must be set before the
//! instructions can be used, which is what the `*_usable` helpers check. AMX on Linux
//! needs one more step, the per-process permission in [`crate::permission`]; the
//! [`crate::token::Amx`] token checks all three.
//!
//! On targets other than `x86_64` every flag reads false, and so under Miri, which cannot
//! run CPUID or `xgetbv`: code behind detection then takes its portable paths.

use core::fmt;

/// XCR0 bit 1: SSE state (XMM registers).
pub const XCR0_SSE: u64 = 1 << 1;
/// XCR0 bit 2: AVX state (upper halves of the YMM registers).
pub const XCR0_AVX: u64 = 1 << 2;
/// XCR0 bit 5: AVX-512 opmask registers k0..k7.
pub const XCR0_OPMASK: u64 = 1 << 5;
/// XCR0 bit 6: upper 256 bits of ZMM0..ZMM15.
pub const XCR0_ZMM_HI256: u64 = 1 << 6;
/// XCR0 bit 7: ZMM16..ZMM31.
pub const XCR0_HI16_ZMM: u64 = 1 << 7;
/// XCR0 bit 17: AMX tile configuration (XTILECFG).
pub const XCR0_XTILECFG: u64 = 1 << 17;
/// XCR0 bit 18: AMX tile data (XTILEDATA).
pub const XCR0_XTILEDATA: u64 = 1 << 18;
/// The XCR0 bits AVX-512 needs: 1, 2, 5, 6 and 7.
pub const XCR0_AVX512_MASK: u64 =
    XCR0_SSE | XCR0_AVX | XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM;
/// The XCR0 bits AMX needs: 17 and 18.
pub const XCR0_AMX_MASK: u64 = XCR0_XTILECFG | XCR0_XTILEDATA;

// Bits of `Features::flags` (also the low bits of the cache word in `x86.rs`).
const AMX_TILE: u16 = 1 << 0;
const AMX_INT8: u16 = 1 << 1;
const AMX_BF16: u16 = 1 << 2;
const AMX_FP16: u16 = 1 << 3;
const AVX512F: u16 = 1 << 4;
const AVX512BW: u16 = 1 << 5;
const AVX512VL: u16 = 1 << 6;
const AVX512VNNI: u16 = 1 << 7;
const AVX512BF16: u16 = 1 << 8;
const OSXSAVE: u16 = 1 << 9;
const AVX512VBMI: u16 = 1 << 10;
const AVX512_BASE: u16 = AVX512F | AVX512BW | AVX512VL;

/// The raw CPUID registers [`Features`] is decoded from (the registers of the leaves that
/// the CPU does not implement read as zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuidRegisters {
    /// Leaf 1, ECX: bit 27 OSXSAVE.
    pub leaf1_ecx: u32,
    /// Leaf 7 subleaf 0, EBX: bit 16 AVX-512F, bit 30 AVX-512BW, bit 31 AVX-512VL.
    pub leaf7_ebx: u32,
    /// Leaf 7 subleaf 0, ECX: bit 1 AVX-512VBMI, bit 11 AVX-512VNNI.
    pub leaf7_ecx: u32,
    /// Leaf 7 subleaf 0, EDX: bit 22 AMX-BF16, bit 24 AMX-TILE, bit 25 AMX-INT8.
    pub leaf7_edx: u32,
    /// Leaf 7 subleaf 1, EAX: bit 5 AVX-512BF16, bit 21 AMX-FP16.
    pub leaf7_1_eax: u32,
}

/// The CPU and OS features this crate cares about, read once with [`Features::detect`]
/// (or [`Features::cached`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Features {
    flags: u16,
    xcr0: u64,
}

const fn bit(reg: u32, n: u32) -> bool {
    (reg >> n) & 1 == 1
}

const fn flag_if(on: bool, flag: u16) -> u16 {
    if on { flag } else { 0 }
}

impl Features {
    /// No feature at all: what every non-`x86_64` target reports, and Miri.
    pub const NONE: Features = Features { flags: 0, xcr0: 0 };

    /// Decodes raw CPUID registers and XCR0. `xcr0` is ignored (stored as 0) unless
    /// `regs.leaf1_ecx` has OSXSAVE set, since without it `xgetbv` cannot be executed.
    pub const fn from_registers(regs: CpuidRegisters, xcr0: u64) -> Features {
        let osxsave = bit(regs.leaf1_ecx, 27);
        let flags = flag_if(bit(regs.leaf7_edx, 24), AMX_TILE)
            | flag_if(bit(regs.leaf7_edx, 25), AMX_INT8)
            | flag_if(bit(regs.leaf7_edx, 22), AMX_BF16)
            | flag_if(bit(regs.leaf7_1_eax, 21), AMX_FP16)
            | flag_if(bit(regs.leaf7_ebx, 16), AVX512F)
            | flag_if(bit(regs.leaf7_ebx, 30), AVX512BW)
            | flag_if(bit(regs.leaf7_ebx, 31), AVX512VL)
            | flag_if(bit(regs.leaf7_ecx, 11), AVX512VNNI)
            | flag_if(bit(regs.leaf7_ecx, 1), AVX512VBMI)
            | flag_if(bit(regs.leaf7_1_eax, 5), AVX512BF16)
            | flag_if(osxsave, OSXSAVE);
        Features { flags, xcr0: if osxsave { xcr0 } else { 0 } }
    }

    /// Reads CPUID and (when OSXSAVE is set) XCR0 on the running CPU. Costs a handful of
    /// CPUID instructions (slow under a hypervisor); [`Features::cached`] does it once.
    pub fn detect() -> Features {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            x86::detect()
        }
        #[cfg(any(not(target_arch = "x86_64"), miri))]
        {
            Features::NONE
        }
    }

    /// [`Features::detect`] run once per process and cached (CPUID and XCR0 do not change
    /// while a process runs). Threads racing on the first call all store the same value.
    pub fn cached() -> Features {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            x86::cached()
        }
        #[cfg(any(not(target_arch = "x86_64"), miri))]
        {
            Features::NONE
        }
    }

    const fn has(&self, flag: u16) -> bool {
        self.flags & flag == flag
    }

    const fn xcr0_has(&self, mask: u64) -> bool {
        self.xcr0 & mask == mask
    }

    /// `CPUID.(7,0):EDX[24]` AMX-TILE.
    pub const fn amx_tile(&self) -> bool {
        self.has(AMX_TILE)
    }
    /// `CPUID.(7,0):EDX[25]` AMX-INT8.
    pub const fn amx_int8(&self) -> bool {
        self.has(AMX_INT8)
    }
    /// `CPUID.(7,0):EDX[22]` AMX-BF16.
    pub const fn amx_bf16(&self) -> bool {
        self.has(AMX_BF16)
    }
    /// `CPUID.(7,1):EAX[21]` AMX-FP16.
    pub const fn amx_fp16(&self) -> bool {
        self.has(AMX_FP16)
    }
    /// `CPUID.(7,0):EBX[16]` AVX-512F.
    pub const fn avx512f(&self) -> bool {
        self.has(AVX512F)
    }
    /// `CPUID.(7,0):EBX[30]` AVX-512BW.
    pub const fn avx512bw(&self) -> bool {
        self.has(AVX512BW)
    }
    /// `CPUID.(7,0):EBX[31]` AVX-512VL.
    pub const fn avx512vl(&self) -> bool {
        self.has(AVX512VL)
    }
    /// `CPUID.(7,0):ECX[11]` AVX-512VNNI.
    pub const fn avx512_vnni(&self) -> bool {
        self.has(AVX512VNNI)
    }
    /// `CPUID.(7,0):ECX[1]` AVX-512VBMI (`vpermb`, `vpermt2b`: byte permutes across
    /// the whole register).
    pub const fn avx512_vbmi(&self) -> bool {
        self.has(AVX512VBMI)
    }
    /// `CPUID.(7,1):EAX[5]` AVX-512BF16.
    pub const fn avx512_bf16(&self) -> bool {
        self.has(AVX512BF16)
    }
    /// `CPUID.1:ECX[27]` OSXSAVE: the OS uses XSAVE and `xgetbv` may be executed.
    pub const fn osxsave(&self) -> bool {
        self.has(OSXSAVE)
    }
    /// The raw XCR0 value (0 when OSXSAVE is clear).
    pub const fn xcr0(&self) -> u64 {
        self.xcr0
    }

    /// The OS enables AMX state: XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA) both set.
    pub const fn xcr0_amx_enabled(&self) -> bool {
        self.xcr0_has(XCR0_AMX_MASK)
    }
    /// The OS enables AVX-512 state: XCR0 bits 1, 2, 5, 6 and 7 all set.
    pub const fn xcr0_avx512_enabled(&self) -> bool {
        self.xcr0_has(XCR0_AVX512_MASK)
    }

    /// AMX-TILE in CPUID and AMX state enabled in XCR0. On Linux the process still needs
    /// [`crate::permission::request_tile_data`] before the first tile instruction.
    pub const fn amx_tile_usable(&self) -> bool {
        self.amx_tile() && self.xcr0_amx_enabled()
    }
    /// [`Features::amx_tile_usable`] and AMX-INT8 (`tdpb[su][su]d`).
    pub const fn amx_int8_usable(&self) -> bool {
        self.amx_tile_usable() && self.amx_int8()
    }
    /// [`Features::amx_tile_usable`] and AMX-BF16 (`tdpbf16ps`).
    pub const fn amx_bf16_usable(&self) -> bool {
        self.amx_tile_usable() && self.amx_bf16()
    }
    /// [`Features::amx_tile_usable`] and AMX-FP16 (`tdpfp16ps`).
    pub const fn amx_fp16_usable(&self) -> bool {
        self.amx_tile_usable() && self.amx_fp16()
    }
    /// AVX-512F, BW and VL in CPUID and AVX-512 state enabled in XCR0.
    pub const fn avx512_usable(&self) -> bool {
        self.has(AVX512_BASE) && self.xcr0_avx512_enabled()
    }
    /// [`Features::avx512_usable`] and AVX-512VNNI.
    pub const fn avx512_vnni_usable(&self) -> bool {
        self.avx512_usable() && self.avx512_vnni()
    }
    /// [`Features::avx512_usable`] and AVX-512VBMI.
    pub const fn avx512_vbmi_usable(&self) -> bool {
        self.avx512_usable() && self.avx512_vbmi()
    }
    /// [`Features::avx512_usable`] and AVX-512BF16.
    pub const fn avx512_bf16_usable(&self) -> bool {
        self.avx512_usable() && self.avx512_bf16()
    }
}

/// One line: each CPUID flag as `+name` or `-name`, XCR0 in hex, and whether the OS
/// enables AMX and AVX-512 state, e.g.
/// `+amx-tile +amx-int8 +amx-bf16 -amx-fp16 +avx512f ... +osxsave xcr0=0x602e7 (amx state on, avx512 state on)`.
impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: [(&str, bool); 11] = [
            ("amx-tile", self.amx_tile()),
            ("amx-int8", self.amx_int8()),
            ("amx-bf16", self.amx_bf16()),
            ("amx-fp16", self.amx_fp16()),
            ("avx512f", self.avx512f()),
            ("avx512bw", self.avx512bw()),
            ("avx512vl", self.avx512vl()),
            ("avx512vnni", self.avx512_vnni()),
            ("avx512vbmi", self.avx512_vbmi()),
            ("avx512bf16", self.avx512_bf16()),
            ("osxsave", self.osxsave()),
        ];
        for (name, on) in names {
            write!(f, "{}{} ", if on { '+' } else { '-' }, name)?;
        }
        let on_off = |on: bool| if on { "on" } else { "off" };
        write!(
            f,
            "xcr0={:#x} (amx state {}, avx512 state {})",
            self.xcr0,
            on_off(self.xcr0_amx_enabled()),
            on_off(self.xcr0_avx512_enabled())
        )
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86;

/// Test support: what the host's `/proc/cpuinfo` lists, an oracle independent of CPUID
/// decoding (it is the kernel's view, which also accounts for XCR0).
#[cfg(test)]
pub(crate) mod host {
    extern crate std;
    use std::string::String;

    /// The first `flags` line of `/proc/cpuinfo`, or `None` where there is none (and
    /// under Miri, whose isolation forbids the read and whose detection reports nothing).
    pub(crate) fn cpuinfo_flags() -> Option<String> {
        if cfg!(miri) {
            return None;
        }
        let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("flags"))?;
        Some(String::from(line.split_once(':')?.1))
    }

    /// Whether `/proc/cpuinfo` lists `flag` (false when the file is unreadable).
    pub(crate) fn lists(flag: &str) -> bool {
        cpuinfo_flags().is_some_and(|flags| flags.split_whitespace().any(|f| f == flag))
    }

    /// Whether the host lists `amx_tile`, `amx_int8` and `amx_bf16`.
    pub(crate) fn has_amx() -> bool {
        lists("amx_tile") && lists("amx_int8") && lists("amx_bf16")
    }
}

#[cfg(test)]
mod tests;
