//! Prints what this CPU and OS support for AMX and AVX-512, the Linux AMX permission, and
//! whether the capability tokens are granted. Always exits 0.
//!
//! Run: `cargo run --example detect -p amx-core`. The last lines are stable for scripts:
//! `amx: available` or `amx: unavailable (<reason>)`, and the same for `avx512-vnni:`.

use amx_core::detect::{Features, XCR0_XTILECFG, XCR0_XTILEDATA};
use amx_core::permission;
use amx_core::token::{Amx, Avx512Vnni};

fn yes_no(on: bool) -> &'static str {
    if on { "yes" } else { "no" }
}

fn set_clear(xcr0: u64, bit: u64) -> &'static str {
    if xcr0 & bit != 0 { "set" } else { "clear" }
}

fn main() {
    let f = Features::detect();
    println!("cpuid amx-tile: {}", yes_no(f.amx_tile()));
    println!("cpuid amx-int8: {}", yes_no(f.amx_int8()));
    println!("cpuid amx-bf16: {}", yes_no(f.amx_bf16()));
    println!("cpuid amx-fp16: {}", yes_no(f.amx_fp16()));
    println!("cpuid avx512f: {}", yes_no(f.avx512f()));
    println!("cpuid avx512bw: {}", yes_no(f.avx512bw()));
    println!("cpuid avx512vl: {}", yes_no(f.avx512vl()));
    println!("cpuid avx512vnni: {}", yes_no(f.avx512_vnni()));
    println!("cpuid avx512bf16: {}", yes_no(f.avx512_bf16()));
    println!("cpuid osxsave: {}", yes_no(f.osxsave()));
    let xcr0 = f.xcr0();
    println!(
        "xcr0: {xcr0:#018x} (bit 17 xtilecfg {}, bit 18 xtiledata {})",
        set_clear(xcr0, XCR0_XTILECFG),
        set_clear(xcr0, XCR0_XTILEDATA)
    );
    println!("usable amx-int8: {}", yes_no(f.amx_int8_usable()));
    println!("usable amx-bf16: {}", yes_no(f.amx_bf16_usable()));
    println!("usable avx512-vnni: {}", yes_no(f.avx512_vnni_usable()));
    println!("features: {f}");

    match permission::request_tile_data() {
        Ok(()) => println!("permission request: granted"),
        Err(e) => println!("permission request: refused ({e})"),
    }
    match permission::tile_data_permitted() {
        Ok(true) => println!("permission check: granted"),
        Ok(false) => println!("permission check: not granted"),
        Err(e) => println!("permission check: error ({e})"),
    }

    match Amx::try_new() {
        Ok(_) => println!("amx: available"),
        Err(e) => println!("amx: unavailable ({e})"),
    }
    match Avx512Vnni::try_new() {
        Ok(_) => println!("avx512-vnni: available"),
        Err(e) => println!("avx512-vnni: unavailable ({e})"),
    }
}
