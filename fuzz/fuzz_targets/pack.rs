//! Packs fuzzer-chosen bytes as a fuzzer-chosen format and shape: packing must either
//! refuse with an error or succeed, and unpacking must give back the exact source bytes.
#![no_main]

use amx_core::formats::Format;
use amx_core::pack::{PackedRef, pack, packed_size, unpack};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    n: u8,
    blocks: u8,
    matrices: u8,
    k_extra: u8,
    src: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let format = Format::ALL[usize::from(input.format) % Format::ALL.len()];
    let n = usize::from(input.n % 40);
    let matrices = usize::from(input.matrices % 4);
    // Mostly whole blocks; sometimes a K that is not a multiple of the block.
    let k = usize::from(input.blocks % 5) * format.block_values() + usize::from(input.k_extra % 3);
    let mut dst = vec![0u8; packed_size(format, n, k, matrices).unwrap_or(0).min(1 << 22)];
    match pack(format, n, k, matrices, &input.src, &mut dst) {
        Ok(layout) => {
            assert_eq!(layout.source_bytes(), input.src.len());
            let packed = PackedRef::parse_expecting(&dst, format, n, k, matrices).expect("own header");
            let mut back = vec![0u8; input.src.len()];
            unpack(&packed, &mut back).expect("unpack of own buffer");
            assert!(back == input.src, "round trip differs");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
