//! Starts from a valid packed buffer, lets the fuzzer overwrite header bytes and cut the
//! buffer, and checks that the reader either refuses or returns a layout consistent with
//! the buffer (never a panic, never a view past the end); an edited header is refused
//! unless it carries a matching header checksum, and `verify` accepts nothing `parse`
//! refuses.
#![no_main]

use amx_core::formats::Format;
use amx_core::pack::{HEADER_BYTES, PackError, PackedRef, pack, packed_size, verify};
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
    let original = buf.clone();
    for (at, value) in input.edits {
        let at = usize::from(at) % HEADER_BYTES;
        buf[at] = value;
    }
    let len = buf.len().saturating_sub(usize::from(input.cut));
    let parsed = PackedRef::parse(&buf[..len]);
    if parsed.is_err() {
        assert!(verify(&buf[..len]).is_err(), "verify accepted what parse refused");
    }
    if len >= HEADER_BYTES && buf[..8] == original[..8] && buf[48..56] == original[48..56] {
        // Magic and header checksum untouched: any other edited byte fails the checksum
        // (FNV-1a 64 differs for every single-byte change and, but for a 2^-64 chance,
        // for more), never a field error.
        if buf[..HEADER_BYTES] != original[..HEADER_BYTES] {
            assert!(
                matches!(parsed, Err(PackError::HeaderChecksum { .. })),
                "edited header gave {parsed:?}"
            );
        }
    }
    if let Ok(packed) = parsed {
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
