//! A `#![no_std]` binary that links amx-core: building it proves amx-core needs neither `std`
//! nor `alloc`. It runs on the C runtime's `main` (no Rust std start-up code).
#![no_std]
#![no_main]

use amx_core::formats::{Format, dequantize};

// The C library provides the process start-up (`__libc_start_main` calls `main`) and
// `memcpy`/`memset`, which `core` expects from the platform.
#[link(name = "c")]
unsafe extern "C" {}

/// The prebuilt `core` of this target is compiled for unwinding and names this symbol;
/// with `panic = "abort"` nothing ever unwinds, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// The C entry point. Exercises detection, the permission request and one dequantization so
/// that their code is linked, and returns 0 when the dequantized block is right.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let features = amx_core::detect::Features::detect();
    let _ = amx_core::token::Amx::try_new();
    // One Q8_0 block: d = 1.0 (f16 0x3C00), values 0..32.
    let mut block = [0u8; 34];
    block[0] = 0x00;
    block[1] = 0x3C;
    let mut i = 0;
    while i < 32 {
        block[2 + i] = i as u8;
        i += 1;
    }
    let mut out = [0f32; 32];
    match dequantize(Format::Q8_0, &block, &mut out) {
        Ok(()) if out[31] == 31.0 && core::hint::black_box(features) == features => 0,
        _ => 1,
    }
}
