//! Feeds arbitrary bytes to the packed-buffer reader and to `unpack`: never a panic, and
//! whatever parses unpacks into a destination of the size its header gives.
#![no_main]

use amx_core::pack::{PackedRef, unpack, unpack_panels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packed) = PackedRef::parse(data) else { return };
    let layout = *packed.layout();
    let mut dst = vec![0u8; layout.source_bytes()];
    unpack(&packed, &mut dst).expect("parsed buffer must unpack");
    // A wrong destination size is an error, not a panic.
    let mut short = vec![0u8; layout.source_bytes().saturating_sub(1)];
    assert!(unpack(&packed, &mut short).is_err() || layout.source_bytes() == 0);
    let mut none = [0u8; 0];
    let _ = unpack_panels(&packed, layout.panels()..layout.panels() + 1, &mut none);
});
