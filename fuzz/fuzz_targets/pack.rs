//! Packs fuzzer-chosen bytes as a fuzzer-chosen format and shape: packing must either
//! refuse with an error or succeed, the packed bytes must not depend on what the
//! destination held, and unpacking must give back the exact source bytes.
#![no_main]

use amx_core::formats::Format;
use amx_core::pack::{PackedLayout, PackedRef, pack, packed_size, unpack};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    n: u8,
    blocks: u8,
    matrices: u8,
    k_extra: u8,
    /// Use `src` as it is (mostly a wrong length); otherwise it is repeated or cut to the
    /// shape's exact source length, so that most inputs reach the round trip.
    raw_length: bool,
    /// What the destination holds before packing.
    fill: u8,
    src: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let format = Format::ALL[usize::from(input.format) % Format::ALL.len()];
    let n = usize::from(input.n % 40);
    let matrices = usize::from(input.matrices % 4);
    // Mostly whole blocks; sometimes a K that is not a multiple of the block. F16 and BF16
    // (one value per block) take any K: up to 255 values, across several 32-value groups.
    let k = match format.block_values() {
        1 => usize::from(input.blocks),
        b => usize::from(input.blocks % 5) * b + usize::from(input.k_extra % 3),
    };
    let mut src = input.src;
    if !input.raw_length
        && let Ok(layout) = PackedLayout::new(format, n, k, matrices)
    {
        src = if src.is_empty() {
            vec![0; layout.source_bytes()]
        } else {
            src.iter().copied().cycle().take(layout.source_bytes()).collect()
        };
    }
    let size = packed_size(format, n, k, matrices).unwrap_or(0).min(1 << 22);
    let mut dst = vec![0u8; size];
    match pack(format, n, k, matrices, &src, &mut dst) {
        Ok(layout) => {
            assert_eq!(layout.source_bytes(), src.len());
            assert_eq!(layout.total_bytes(), size);
            let mut again = vec![input.fill; size];
            pack(format, n, k, matrices, &src, &mut again).expect("second pack");
            assert!(again == dst, "pack depends on the destination's prior contents");
            let packed =
                PackedRef::parse_expecting(&dst, format, n, k, matrices).expect("own header");
            let mut back = vec![0u8; src.len()];
            unpack(&packed, &mut back).expect("unpack of own buffer");
            assert!(back == src, "round trip differs");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
