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
        let l = packed.layout();
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        // What parsed is what the (edited) header says.
        assert_eq!(l.format().ggml_type(), u32::from_le_bytes(buf[12..16].try_into().expect("4")));
        assert_eq!((l.n() as u64, l.k() as u64), (u64_at(16), u64_at(24)));
        assert_eq!((l.matrices() as u64, l.total_bytes() as u64), (u64_at(32), u64_at(40)));
        assert!(packed.layout().total_bytes() <= len);
        assert_eq!(packed.bytes().len(), packed.layout().total_bytes());
        for p in 0..packed.layout().panels() {
            assert!(packed.panel(p).is_some());
        }
        assert!(packed.panel(packed.layout().panels()).is_none());
    }
});
