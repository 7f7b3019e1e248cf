extern crate std;
use super::*;
use std::{format, println};

const FULL_XCR0: u64 = XCR0_AVX512_MASK | XCR0_AMX_MASK | 1;
const OSXSAVE_BIT: u32 = 1 << 27;

fn with(regs: CpuidRegisters) -> Features {
    Features::from_registers(regs, FULL_XCR0)
}

/// Registers with only bit `n` of register `which` set (0: leaf 1 ECX, 1: leaf 7
/// EBX, 2: leaf 7 ECX, 3: leaf 7 EDX, 4: leaf 7.1 EAX).
fn one_bit(which: usize, n: u32) -> CpuidRegisters {
    let mut r = [0u32; 5];
    r[which] = 1 << n;
    CpuidRegisters {
        leaf1_ecx: r[0],
        leaf7_ebx: r[1],
        leaf7_ecx: r[2],
        leaf7_edx: r[3],
        leaf7_1_eax: r[4],
    }
}

#[test]
fn each_cpuid_bit_decodes_to_its_flag() {
    type Get = fn(&Features) -> bool;
    // Bit positions from the Intel SDM, CPUID leaf 1 and leaf 7.
    let cases: [(usize, u32, Get); 11] = [
        (3, 24, Features::amx_tile),
        (3, 25, Features::amx_int8),
        (3, 22, Features::amx_bf16),
        (4, 21, Features::amx_fp16),
        (1, 16, Features::avx512f),
        (1, 30, Features::avx512bw),
        (1, 31, Features::avx512vl),
        (2, 11, Features::avx512_vnni),
        (2, 1, Features::avx512_vbmi),
        (4, 5, Features::avx512_bf16),
        (0, 27, Features::osxsave),
    ];
    for (i, &(which, n, _)) in cases.iter().enumerate() {
        let f = with(one_bit(which, n));
        for (j, (_, _, get)) in cases.iter().enumerate() {
            assert_eq!(get(&f), i == j, "register {which} bit {n}: flag {j}");
        }
    }
    // Neighbouring bits do not leak into any flag.
    let noise = CpuidRegisters {
        leaf1_ecx: !OSXSAVE_BIT,
        leaf7_ebx: !((1 << 16) | (1 << 30) | (1 << 31)),
        leaf7_ecx: !((1 << 11) | (1 << 1)),
        leaf7_edx: !((1 << 22) | (1 << 24) | (1 << 25)),
        leaf7_1_eax: !((1 << 5) | (1 << 21)),
    };
    assert_eq!(Features::from_registers(noise, FULL_XCR0), Features::NONE);
}

#[test]
fn xcr0_kept_only_with_osxsave() {
    let regs = CpuidRegisters { leaf7_edx: 1 << 24, ..Default::default() };
    assert_eq!(Features::from_registers(regs, FULL_XCR0).xcr0(), 0);
    let regs = CpuidRegisters { leaf1_ecx: OSXSAVE_BIT, ..regs };
    assert_eq!(Features::from_registers(regs, 0x6_02e7).xcr0(), 0x6_02e7);
}

fn amx_avx512_regs() -> CpuidRegisters {
    CpuidRegisters {
        leaf1_ecx: OSXSAVE_BIT,
        leaf7_ebx: (1 << 16) | (1 << 30) | (1 << 31),
        leaf7_ecx: 1 << 11,
        leaf7_edx: (1 << 22) | (1 << 24) | (1 << 25),
        leaf7_1_eax: (1 << 5) | (1 << 21),
    }
}

#[test]
fn amx_usable_needs_both_xcr0_bits() {
    let regs = amx_avx512_regs();
    let all = Features::from_registers(regs, 0x6_02e7);
    assert!(all.amx_tile_usable() && all.amx_int8_usable() && all.amx_bf16_usable());
    assert!(all.amx_fp16_usable());
    for xcr0 in [0x2_02e7, 0x4_02e7, 0x2e7] {
        let f = Features::from_registers(regs, xcr0);
        assert!(!f.amx_tile_usable(), "xcr0 {xcr0:#x}");
        assert!(!f.amx_int8_usable() && !f.amx_bf16_usable(), "xcr0 {xcr0:#x}");
    }
    let no_int8 = CpuidRegisters { leaf7_edx: regs.leaf7_edx & !(1 << 25), ..regs };
    let f = Features::from_registers(no_int8, 0x6_02e7);
    assert!(f.amx_tile_usable() && f.amx_bf16_usable() && !f.amx_int8_usable());
    let no_tile = CpuidRegisters { leaf7_edx: regs.leaf7_edx & !(1 << 24), ..regs };
    let f = Features::from_registers(no_tile, 0x6_02e7);
    assert!(!f.amx_tile_usable() && !f.amx_int8_usable() && !f.amx_bf16_usable());
}

#[test]
fn avx512_vnni_usable_needs_all_five_xcr0_bits() {
    let regs = amx_avx512_regs();
    let all = Features::from_registers(regs, 0xe7);
    assert!(all.avx512_usable() && all.avx512_vnni_usable() && all.avx512_bf16_usable());
    for missing in [1, 2, 5, 6, 7] {
        let f = Features::from_registers(regs, 0xe7 & !(1u64 << missing));
        assert!(!f.avx512_vnni_usable(), "xcr0 bit {missing} clear");
        assert!(!f.avx512_usable(), "xcr0 bit {missing} clear");
    }
    for (reg_bit, name) in [(16, "F"), (30, "BW"), (31, "VL")] {
        let r = CpuidRegisters { leaf7_ebx: regs.leaf7_ebx & !(1 << reg_bit), ..regs };
        let f = Features::from_registers(r, 0xe7);
        assert!(!f.avx512_vnni_usable(), "without AVX-512{name}");
    }
    let r = CpuidRegisters { leaf7_ecx: 0, ..regs };
    let f = Features::from_registers(r, 0xe7);
    assert!(f.avx512_usable() && !f.avx512_vnni_usable());
}

#[test]
fn display_lists_flags_and_xcr0() {
    let f = Features::from_registers(
        CpuidRegisters { leaf1_ecx: OSXSAVE_BIT, leaf7_edx: 1 << 24, ..Default::default() },
        0x6_0007,
    );
    let s = format!("{f}");
    assert!(s.starts_with("+amx-tile -amx-int8 -amx-bf16 -amx-fp16 -avx512f"), "{s}");
    assert!(s.contains("+osxsave xcr0=0x60007 (amx state on, avx512 state off)"), "{s}");
    let s = format!("{}", Features::NONE);
    assert!(s.ends_with("-osxsave xcr0=0x0 (amx state off, avx512 state off)"), "{s}");
}

#[test]
fn cached_matches_detect() {
    assert_eq!(Features::cached(), Features::detect());
    assert_eq!(Features::cached(), Features::detect());
}

#[test]
fn this_machine_agrees_with_proc_cpuinfo() {
    let f = Features::detect();
    println!("detected: {f}");
    if host::cpuinfo_flags().is_none() {
        println!("skipped: no /proc/cpuinfo flags line on this host");
        return;
    }
    // The kernel lists a flag only when the CPU has it and the OS enabled its state.
    let vnni = ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"];
    assert_eq!(f.avx512_vnni_usable(), vnni.iter().all(|flag| host::lists(flag)));
    assert_eq!(f.avx512f(), host::lists("avx512f"));
    assert_eq!(f.avx512_bf16(), host::lists("avx512_bf16"));
    assert_eq!(f.avx512_vbmi(), host::lists("avx512vbmi"));
    if !host::lists("amx_tile") {
        crate::test_util::skip(crate::test_util::Need::Amx, "this CPU has no AMX");
        return;
    }
    assert!(f.amx_tile_usable(), "{f}");
    assert_eq!(f.amx_int8_usable(), host::lists("amx_int8"), "{f}");
    assert_eq!(f.amx_bf16_usable(), host::lists("amx_bf16"), "{f}");
    assert_eq!(f.amx_fp16(), host::lists("amx_fp16"), "{f}");
    assert_eq!(f.xcr0() & XCR0_AMX_MASK, XCR0_AMX_MASK);
}
