//! Feeds arbitrary bytes to the packed-buffer reader and to `unpack`: never a panic;
//! whatever parses unpacks panel by panel into a destination of the size its header gives
//! (`unpack_panels` checks the header only), `unpack` agrees with it exactly when the body
//! checksum holds (`verify`), and packing what came out then unpacking again gives the
//! same bytes.
#![no_main]

use amx_core::pack::{PackError, PackedRef, pack, source_range, unpack, unpack_panels, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packed) = PackedRef::parse(data) else { return };
    let layout = *packed.layout();
    assert!(layout.total_bytes() <= data.len());
    let mut dst = vec![0u8; layout.source_bytes()];
    unpack_panels(&packed, 0..layout.panels(), &mut dst).expect("parsed buffer must unpack");
    let mut whole = vec![0x5Au8; layout.source_bytes()];
    match (verify(data), unpack(&packed, &mut whole)) {
        (Ok(_), Ok(())) => assert!(whole == dst, "unpack and unpack_panels differ"),
        (Err(PackError::BodyChecksum { stored, computed }), Err(e)) => {
            assert_eq!(e, PackError::BodyChecksum { stored, computed });
            assert!(whole.iter().all(|&b| b == 0x5A), "unpack wrote before verifying");
        }
        (v, u) => panic!("verify {v:?} and unpack {u:?} disagree"),
    }

    for p in 0..layout.panels() {
        let range = source_range(&layout, p..p + 1);
        let mut part = vec![0u8; range.len()];
        unpack_panels(&packed, p..p + 1, &mut part).expect("one panel must unpack");
        assert!(part == dst[range], "panel {p} unpacks differently alone");
    }

    // Panel bytes need not be what `pack` writes (padding, F16 residues), but whatever
    // `unpack` gives packs and unpacks back to itself.
    let (f, n, k, e) = (layout.format(), layout.n(), layout.k(), layout.matrices());
    let mut again = vec![0u8; layout.total_bytes()];
    pack(f, n, k, e, &dst, &mut again).expect("unpacked bytes must pack");
    let repacked = PackedRef::parse_expecting(&again, f, n, k, e).expect("own header");
    verify(&again).expect("own body checksum");
    let mut back = vec![0u8; dst.len()];
    unpack(&repacked, &mut back).expect("unpack of own buffer");
    assert!(back == dst, "unpack -> pack -> unpack is not stable");

    // A wrong destination size or panel range is an error, not a panic.
    let mut short = vec![0u8; layout.source_bytes() - 1];
    assert!(unpack(&packed, &mut short).is_err());
    let mut none = [0u8; 0];
    let past = layout.panels()..layout.panels() + 1;
    assert!(unpack_panels(&packed, past, &mut none).is_err());
});
