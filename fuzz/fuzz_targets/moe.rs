//! The grouped MoE matmul on fuzzer-chosen expert ids (any u32, most of them out of range),
//! shapes and weight bytes: an out-of-range id is an error naming it, never a crash, an
//! accepted call writes every output row, and a call not yet run refuses to scatter.
#![no_main]

use amx_core::formats::Format;
use amx_core::gemm::{GemmError, MatMut, MatRef, Path};
use amx_core::moe::{Grouped, MoeShape, grouped_gemm, grouped_workspace_bytes};
use amx_core::pack::{pack, packed_size};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    format: u8,
    experts: u8,
    tokens: u8,
    top_k: u8,
    n: u8,
    ids: Vec<u32>,
    weights: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let format = Format::ALL[usize::from(input.format) % Format::ALL.len()];
    let experts = usize::from(input.experts % 6) + 1;
    let (tokens, top_k) = (usize::from(input.tokens % 20) + 1, usize::from(input.top_k % 4) + 1);
    let (n, k) = (usize::from(input.n % 33) + 1, format.block_values().max(32));
    if input.weights.is_empty() {
        return;
    }
    let w: Vec<u8> = input
        .weights
        .iter()
        .copied()
        .cycle()
        .take(experts * n * format.row_bytes(k).expect("k"))
        .collect();
    let mut packed = vec![0u8; packed_size(format, n, k, experts).expect("shape")];
    pack(format, n, k, experts, &w, &mut packed).expect("pack");
    // Mostly small ids so that many calls are accepted, some anything at all.
    let ids: Vec<u32> = (0..tokens * top_k)
        .map(|i| input.ids.get(i).copied().map_or(0, |v| if v & 1 == 0 { (v >> 1) % 8 } else { v }))
        .collect();
    let x = vec![0.25f32; tokens * k];
    let xr = MatRef::new(&x, tokens, k, k).expect("view");
    let shape = MoeShape { experts, n, k, tokens, top_k };
    let mut ws = vec![0u8; grouped_workspace_bytes(format, &shape, Path::Auto).expect("sizes")];
    // A NaN payload no kernel can produce (weights' NaN payloads come from f16/bf16 bits,
    // whose low 13 bits are zero once widened), so "still FILL" means "never written".
    const FILL: u32 = 0x7fc0_1234;
    let mut y = vec![f32::from_bits(FILL); tokens * top_k * n];
    let mut ym = MatMut::new(&mut y, tokens * top_k, n, n).expect("view");
    match grouped_gemm(&packed, format, &xr, (&ids, top_k), &mut ym, Path::Auto, &mut ws) {
        Ok(()) => {
            assert!(ids.iter().all(|&e| (e as usize) < experts));
            assert!(y.iter().all(|v| v.to_bits() != FILL), "an output value was never written");
            // The same call again on the used workspace: no stale result before it ran.
            let (mut call, _) =
                Grouped::new(&packed, format, &xr, &ids, top_k, Path::Auto, &mut ws)
                    .expect("again");
            let total = call.items();
            let mut ym = MatMut::new(&mut y, tokens * top_k, n, n).expect("view");
            assert_eq!(call.scatter(&mut ym), Err(GemmError::Unfinished { done: 0, total }));
        }
        Err(GemmError::ExpertOutOfRange { index, id, experts: e }) => {
            assert_eq!(e, experts);
            assert_eq!(ids[index], id);
            assert!(id as usize >= experts);
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
});
