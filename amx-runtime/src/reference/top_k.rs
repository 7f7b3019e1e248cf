//! TOP_K: the indices of each row's largest values.

/// Indices of the `k` largest values of `row`, largest first, ties to the lower index
/// (NaN sorts above every number, so it is never silently skipped), written as I32 bit
/// patterns into `out`; `idx` is scratch of `row.len()`.
pub(super) fn top_k_into(row: &[f32], idx: &mut [usize], out: &mut [f32]) {
    for (i, x) in idx.iter_mut().enumerate() {
        *x = i;
    }
    // A total order (value, then index), so the unstable sort is deterministic and
    // needs no buffer.
    idx.sort_unstable_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
    for (o, &i) in out.iter_mut().zip(idx.iter()) {
        *o = f32::from_bits(i as u32);
    }
}
