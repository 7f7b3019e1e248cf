//! The fuzz seed corpus of the `unpack` target must hold valid packed buffers of the
//! current layout version, or the fuzzer starts from nothing useful: this test notices
//! when a layout change leaves them stale.

use std::path::PathBuf;

use amx_core::pack::{PackedRef, unpack};

#[test]
fn unpack_seeds_parse_and_unpack() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/unpack");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/unpack exists") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("seed reads");
        let packed = PackedRef::parse(&bytes).unwrap_or_else(|e| {
            panic!("{}: {e} (regenerate the seed for this layout)", path.display())
        });
        let mut out = vec![0u8; packed.layout().source_bytes()];
        unpack(&packed, &mut out).expect("seed unpacks");
        seen += 1;
    }
    assert!(seen >= 5, "expected the unpack seeds, found {seen}");
}
