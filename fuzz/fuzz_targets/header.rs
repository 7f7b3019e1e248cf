//! Starts from a valid packed buffer, lets the fuzzer overwrite header bytes and cut the
//! buffer, and checks that the reader either refuses or returns a layout consistent with
//! the buffer (never a panic, never a view past the end).
#![no_main]

use amx_core::formats::Format;
use amx_core::pack::{HEADER_BYTES, PackedRef, pack, packed_size};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    n: u8,
    edits: Vec<(u8, u8)>,
    cut: u16,
}

fuzz_target!(|input: Input| {
    let format = Format::ALL[usize::from(input.format) % Format::ALL.len()];
    let (n, k) = (usize::from(input.n % 20) + 1, format.block_values().max(32));
    let src = vec![0x5Au8; n * k / format.block_values() * format.block_bytes()];
    let mut buf = vec![0u8; packed_size(format, n, k, 1).expect("valid shape")];
    pack(format, n, k, 1, &src, &mut buf).expect("valid pack");
    for (at, value) in input.edits {
        let at = usize::from(at) % HEADER_BYTES;
        buf[at] = value;
    }
    let len = buf.len().saturating_sub(usize::from(input.cut));
    if let Ok(packed) = PackedRef::parse(&buf[..len]) {
        assert!(packed.layout().total_bytes() <= len);
        assert_eq!(packed.bytes().len(), packed.layout().total_bytes());
        for p in 0..packed.layout().panels() {
            assert!(packed.panel(p).is_some());
        }
        assert!(packed.panel(packed.layout().panels()).is_none());
    }
});
