use std::sync::Arc;

use amx_core::formats::Format;

use super::*;
use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::buffer::Buffer;
use crate::buffer::host::host;
use crate::op::{Op, RopeMode};
use crate::tensor::{DType, TensorDesc, f32_from_bytes, f32_to_bytes, i32_to_bytes};
use crate::test_util::{op_in, q8_0, t, values};

/// A source: its description and plain bytes.
type Src = (TensorDesc, Vec<u8>);

fn f(name: &str, dims: &[usize], seed: u64) -> Src {
    let n = dims.iter().product();
    (t(name, DType::F32, dims), f32_to_bytes(&values(n, seed)))
}

fn ids(name: &str, v: &[i32]) -> Src {
    (t(name, DType::I32, &[v.len()]), i32_to_bytes(v))
}

fn rope(mode: RopeMode, n_dims: usize, freq_scale: f32) -> Op {
    Op::Rope { mode, n_dims, freq_base: 10_000.0, freq_scale }
}

/// Every op computed by rows, with a result of `rows` rows (odd widths, broadcasts,
/// block and F32 tables, both ROPE modes with partial `n_dims`).
fn cases(rows: usize) -> Vec<(Op, Vec<Src>)> {
    let w = 37;
    let x = f("x", &[w, rows], 1);
    let pos: Vec<i32> = (0..rows as i32).map(|i| 5 + i).collect();
    let far: Vec<i32> = (0..rows as i32).map(|i| 100_000 + 7 * i).collect();
    let picks: Vec<i32> = (0..rows as i32).map(|i| (i * 3) % 7).collect();
    let q8 = (t("emb", DType::Block(Format::Q8_0), &[64, 7]), q8_0(7, 64, 9));
    vec![
        (Op::Add, vec![x.clone(), f("b", &[w], 2)]),
        (Op::Mul, vec![x.clone(), f("b", &[w, rows], 3)]),
        (Op::Div, vec![x.clone(), f("b", &[1, rows], 4)]),
        // Broadcasts of the general form (2 result rows per step row).
        (Op::Add, vec![f("x", &[w, 2, rows], 12), f("b", &[w, 2, 1], 13)]),
        (Op::Mul, vec![f("x", &[w, 2, rows], 14), f("b", &[1, 1, rows], 15)]),
        (Op::Silu, vec![x.clone()]),
        (Op::Gelu, vec![x.clone()]),
        (Op::Scale { s: 0.7 }, vec![x.clone()]),
        (Op::SoftMax, vec![x.clone()]),
        (Op::RmsNorm { eps: 1e-6 }, vec![x.clone()]),
        (Op::SumRows, vec![x.clone()]),
        (Op::Reshape { ne: [w, 1, rows, 1] }, vec![x]),
        (Op::Transpose, vec![f("m", &[rows, 5], 5)]),
        (Op::GetRows, vec![q8, ids("tok", &picks)]),
        (Op::GetRows, vec![f("tab", &[w, 7], 6), ids("tok", &picks)]),
        (rope(RopeMode::Normal, 6, 1.0), vec![f("x", &[8, 3, rows], 7), ids("pos", &pos)]),
        (rope(RopeMode::Neox, 8, 0.25), vec![f("x", &[8, 3, rows], 8), ids("pos", &pos)]),
        (rope(RopeMode::Neox, 130, 1.0), vec![f("x", &[132, 2, rows], 10), ids("pos", &far)]),
        (rope(RopeMode::Normal, 130, 0.5), vec![f("x", &[130, 2, rows], 11), ids("pos", &far)]),
    ]
}

fn op_of(op: Op, srcs: &[Src]) -> OpDesc {
    let h = host();
    let with: Vec<(&TensorDesc, &crate::buffer::Buft)> = srcs.iter().map(|s| (&s.0, &h)).collect();
    op_in(op, &with)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Each op split over 2 and 3 threads (rows not divisible by them, 1 row, 17 rows), with
/// and without a ROPE table, gives the single-threaded reference's bits.
#[test]
fn split_rows_give_the_reference_bits() {
    for threads in [2, 3] {
        let pool = Pool::new(threads);
        for rows in [1, 2, 5, 16, 17, 33] {
            for (op, srcs) in cases(rows) {
                let desc = op_of(op, &srcs);
                let bytes: Vec<&[u8]> = srcs.iter().map(|s| &s.1[..]).collect();
                let want = f32_from_bytes(&reference::compute(&desc, &bytes).unwrap());
                let scratch = Bump::new();
                let job = RowJob::new(&desc, &bytes, &scratch).unwrap().unwrap();
                assert!([rows, 2 * rows].contains(&job.rows()), "{op:?}");
                assert_eq!(job.rows() * job.width(), want.len(), "{op:?}");
                let mut got = vec![f32::NAN; want.len()];
                split(&pool, &desc, &job, &mut got).unwrap();
                assert_eq!(bits(&got), bits(&want), "{op:?}, {rows} rows, {threads} threads");
                if let Some((r, max)) = job.rope() {
                    let mut table = RopeTable::new(&r);
                    table.grow_to(&r, max / 2);
                    table.grow_to(&r, max + 1);
                    let mut got = vec![f32::NAN; want.len()];
                    split(&pool, &desc, &job.with_rope_table(&table), &mut got).unwrap();
                    assert_eq!(bits(&got), bits(&want), "{op:?} from a table, {rows} rows");
                }
            }
        }
    }
}

/// Through the backend: long steps on the workers, one-row steps on the calling thread
/// (no job at all), the reference's bits either way.
#[test]
fn long_steps_run_on_the_workers_and_short_ones_on_the_caller() {
    let pool = Arc::new(Pool::new(2));
    let cpu = CpuBackend::new().with_op_pool(pool.clone());
    let h = host();
    for (rows, on_workers) in [(1, false), (MIN_ROWS - 1, false), (MIN_ROWS, true), (512, true)] {
        for (op, srcs) in [
            (Op::RmsNorm { eps: 1e-5 }, vec![f("x", &[576, rows], 1)]),
            (rope(RopeMode::Neox, 64, 1.0), {
                let pos: Vec<i32> = (0..rows as i32).collect();
                vec![f("x", &[64, 9, rows], 2), ids("pos", &pos)]
            }),
        ] {
            let desc = op_of(op, &srcs);
            let bytes: Vec<&[u8]> = srcs.iter().map(|s| &s.1[..]).collect();
            let want = reference::compute(&desc, &bytes).unwrap();
            let bufs: Vec<Buffer> =
                srcs.iter().map(|(d, b)| Buffer::upload(&h, d.clone(), b).unwrap()).collect();
            let refs: Vec<&Buffer> = bufs.iter().collect();
            let before = pool.counters();
            let mut dst = Buffer::alloc(&h, desc.dst.clone()).unwrap();
            cpu.compute_into(&desc, &refs, &mut dst, &Bump::new()).unwrap();
            let after = pool.counters();
            assert_eq!(dst.host_bytes().unwrap(), &want[..], "{op:?}, {rows} rows");
            assert_eq!(after.jobs_on_workers > before.jobs_on_workers, on_workers, "{op:?} {rows}");
            if !on_workers {
                assert_eq!(after.jobs, before.jobs, "{op:?}, {rows} rows: no pool job");
            }
            let computed = cpu.compute(&desc, &refs).unwrap();
            assert_eq!(computed.output.host_bytes().unwrap(), &want[..], "{op:?}, {rows} rows");
        }
    }
}

/// A bad row id reports the error one thread would: the first bad row's.
#[test]
fn split_rows_report_the_first_error_in_row_order() {
    let pool = Pool::new(2);
    let mut picks: Vec<i32> = (0..17).map(|i| i % 7).collect();
    (picks[3], picks[15]) = (9, 11);
    let srcs = [f("tab", &[37, 7], 1), ids("tok", &picks)];
    let desc = op_of(Op::GetRows, &srcs);
    let bytes: Vec<&[u8]> = srcs.iter().map(|s| &s.1[..]).collect();
    let scratch = Bump::new();
    let job = RowJob::new(&desc, &bytes, &scratch).unwrap().unwrap();
    let mut out = vec![0.0; 37 * 17];
    let e = split(&pool, &desc, &job, &mut out).unwrap_err();
    assert!(matches!(e, ExecError::IndexOutOfRange { index: 9, len: 7, .. }), "{e}");
    let want = reference::compute(&desc, &bytes).unwrap_err();
    assert_eq!(e.to_string(), want.to_string());
}
