//! ROPE: rotary position embeddings with ggml's angles (normal and NeoX pairs,
//! `freq_base`, `freq_scale`, the first `n_dims` values of each head), one token (all its
//! heads) at a time. A token's cosines and sines are computed once for all its heads,
//! or read from a [`RopeTable`] made once for many calls.

use crate::op::RopeMode;

/// The parameters of [`crate::op::Op::Rope`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rope {
    pub(crate) mode: RopeMode,
    pub(crate) n_dims: usize,
    pub(crate) freq_base: f32,
    pub(crate) freq_scale: f32,
}

/// Pairs whose cosines and sines are computed at a time, on the stack, when no table is
/// given (any `n_dims`, no allocation).
const CHUNK: usize = 64;

impl Rope {
    /// The cosine and sine of each pair's angle at position `p`, pair 0 first.
    #[inline(always)]
    fn angles(&self, p: usize) -> impl Iterator<Item = (f32, f32)> + use<> {
        // Angles in f64 then rounded: positions up to millions keep their precision.
        let p = p as f64 * f64::from(self.freq_scale);
        // The frequencies base^(-2i / n_dims), one multiplication apart.
        let step = f64::from(self.freq_base).powf(-2.0 / self.n_dims as f64);
        let mut freq = 1.0f64;
        (0..self.n_dims / 2).map(move |_| {
            let theta = p * freq;
            freq *= step;
            (theta.cos() as f32, theta.sin() as f32)
        })
    }

    /// Rotates `token` (heads of `d` values) at position `p`: with its row of `table`
    /// (the cosines then the sines of its `n_dims / 2` pairs, from [`RopeTable::rows`]) when
    /// given, else with angles computed here. The same bits either way.
    #[inline(always)]
    pub(crate) fn token(&self, token: &mut [f32], d: usize, p: usize, table: Option<&[f32]>) {
        let half = self.n_dims / 2;
        if let Some(row) = table {
            let (cos, sin) = row.split_at(half);
            self.rotate(token, d, 0, cos, sin);
            return;
        }
        let (mut cos, mut sin) = ([0f32; CHUNK], [0f32; CHUNK]);
        let mut angles = self.angles(p);
        let mut first = 0;
        while first < half {
            let n = CHUNK.min(half - first);
            for ((c, s), (ac, as_)) in cos[..n].iter_mut().zip(&mut sin[..n]).zip(&mut angles) {
                (*c, *s) = (ac, as_);
            }
            self.rotate(token, d, first, &cos[..n], &sin[..n]);
            first += n;
        }
    }

    /// Turns pairs `first..first + cos.len()` of every head of `token` by the angles
    /// whose cosines and sines are `cos` and `sin`.
    #[inline(always)]
    fn rotate(&self, token: &mut [f32], d: usize, first: usize, cos: &[f32], sin: &[f32]) {
        let (half, n) = (self.n_dims / 2, cos.len());
        for head in token.chunks_exact_mut(d) {
            match self.mode {
                // Pair i is (2i, 2i + 1).
                RopeMode::Normal => {
                    let pairs = head[2 * first..2 * (first + n)].chunks_exact_mut(2);
                    for ((pair, &c), &s) in pairs.zip(cos).zip(sin) {
                        let (x0, x1) = (pair[0], pair[1]);
                        pair[0] = x0 * c - x1 * s;
                        pair[1] = x0 * s + x1 * c;
                    }
                }
                // Pair i is (i, i + n_dims / 2).
                RopeMode::Neox => {
                    let (lo, hi) = head[..self.n_dims].split_at_mut(half);
                    let (lo, hi) = (&mut lo[first..first + n], &mut hi[first..first + n]);
                    for (((a, b), &c), &s) in lo.iter_mut().zip(hi).zip(cos).zip(sin) {
                        let (x0, x1) = (*a, *b);
                        *a = x0 * c - x1 * s;
                        *b = x0 * s + x1 * c;
                    }
                }
            }
        }
    }
}

/// The cosines and sines of positions `0..positions()` for one set of ROPE angles
/// (`n_dims`, `freq_base`, `freq_scale`; the mode only pairs values differently), grown on
/// demand: the layers of a model share them, so a prefill step computes each position's
/// angles once instead of once per ROPE op.
pub(crate) struct RopeTable {
    /// The angles' parameters, as bits (`n_dims`, `freq_base`, `freq_scale`).
    key: (usize, u32, u32),
    /// Per position, `n_dims / 2` cosines then as many sines.
    values: Vec<f32>,
}

/// The parameters and length, not the values (up to millions of them).
impl std::fmt::Debug for RopeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n_dims, base, scale) = self.key;
        f.debug_struct("RopeTable")
            .field("n_dims", &n_dims)
            .field("freq_base", &f32::from_bits(base))
            .field("freq_scale", &f32::from_bits(scale))
            .field("positions", &self.positions())
            .finish()
    }
}

impl RopeTable {
    /// An empty table for `rope`'s angles.
    pub(crate) fn new(rope: &Rope) -> RopeTable {
        RopeTable { key: Self::key_of(rope), values: Vec::new() }
    }

    fn key_of(rope: &Rope) -> (usize, u32, u32) {
        (rope.n_dims, rope.freq_base.to_bits(), rope.freq_scale.to_bits())
    }

    /// Whether this table holds `rope`'s angles.
    pub(crate) fn is_for(&self, rope: &Rope) -> bool {
        self.key == Self::key_of(rope)
    }

    /// Positions held.
    pub(crate) fn positions(&self) -> usize {
        self.values.len() / self.key.0
    }

    /// Grows the table to hold positions `0..positions` (computing the new ones only).
    pub(crate) fn grow_to(&mut self, rope: &Rope, positions: usize) {
        let (n, have) = (rope.n_dims, self.positions());
        if positions <= have {
            return;
        }
        self.values.resize(positions * n, 0.0);
        for (p, row) in self.values[have * n..].chunks_exact_mut(n).enumerate() {
            let (cos, sin) = row.split_at_mut(n / 2);
            for ((c, s), (ac, as_)) in cos.iter_mut().zip(sin).zip(rope.angles(have + p)) {
                (*c, *s) = (ac, as_);
            }
        }
    }

    /// Every position's row (`n_dims` values each, position 0 first), for
    /// [`Rope::token`] to index.
    pub(crate) fn rows(&self) -> &[f32] {
        &self.values
    }
}
