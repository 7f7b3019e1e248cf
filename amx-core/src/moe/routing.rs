//! Routing: a counting sort of the expert ids, so that each expert's tokens are one run.

use core::ops::Range;

use crate::gemm::GemmError;

/// Bytes of the routing arrays for `tokens x top_k` ids over `experts` experts: E + 1
/// run offsets and one entry per routed row (u32 each).
///
/// Errors: [`GemmError::Overflow`] when the size does not fit `usize`.
pub const fn routing_bytes(
    tokens: usize,
    top_k: usize,
    experts: usize,
) -> Result<usize, GemmError> {
    match tokens.checked_mul(top_k) {
        Some(rows) => routing_bytes_for(rows, experts),
        None => Err(GemmError::Overflow),
    }
}

/// [`routing_bytes`] for `rows` routed rows.
const fn routing_bytes_for(rows: usize, experts: usize) -> Result<usize, GemmError> {
    let (Some(offsets), Some(entries)) = (offsets_bytes(experts), rows.checked_mul(4)) else {
        return Err(GemmError::Overflow);
    };
    match offsets.checked_add(entries) {
        Some(b) => Ok(b),
        None => Err(GemmError::Overflow),
    }
}

/// Bytes of the E + 1 run offsets.
const fn offsets_bytes(experts: usize) -> Option<usize> {
    match experts.checked_add(1) {
        Some(e) => e.checked_mul(4),
        None => None,
    }
}

fn get(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

fn set(b: &mut [u8], i: usize, v: u32) {
    b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

/// The routed rows sorted by expert: expert e's rows are entries
/// `offset(e)..offset(e + 1)`, each the position `t * top_k + s` of its id (in increasing
/// order within an expert).
#[derive(Clone, Copy, Debug)]
pub struct Routing<'w> {
    offsets: &'w [u8],
    entries: &'w [u8],
    experts: usize,
}

impl<'w> Routing<'w> {
    /// Sorts `ids` (each below `experts`) into `ws` (at least [`routing_bytes`] for
    /// `ids.len()` rows).
    ///
    /// Errors: [`GemmError::ExpertOutOfRange`], [`GemmError::WorkspaceTooSmall`],
    /// [`GemmError::Overflow`] (more routed rows than `u32` counts, or a workspace size
    /// that does not fit `usize`).
    pub fn new(ids: &[u32], experts: usize, ws: &'w mut [u8]) -> Result<Self, GemmError> {
        let needed = routing_bytes_for(ids.len(), experts)?;
        if ws.len() < needed {
            return Err(GemmError::WorkspaceTooSmall { needed, actual: ws.len() });
        }
        if u32::try_from(ids.len()).is_err() {
            return Err(GemmError::Overflow);
        }
        if let Some((index, &id)) = ids.iter().enumerate().find(|(_, id)| **id as usize >= experts)
        {
            return Err(GemmError::ExpertOutOfRange { index, id, experts });
        }
        // `needed` fits, so E + 1 offsets and the entries do too.
        let (offsets, rest) = ws.split_at_mut(4 * (experts + 1));
        let entries = &mut rest[..4 * ids.len()];
        offsets.fill(0);
        // Counts into offsets[e + 1], then a prefix sum gives each run's start.
        for &id in ids {
            let e = id as usize + 1;
            set(offsets, e, get(offsets, e) + 1);
        }
        for e in 1..=experts {
            set(offsets, e, get(offsets, e) + get(offsets, e - 1));
        }
        // Fill each run in order, using offsets[e] as the cursor, then shift back.
        for (pos, &id) in ids.iter().enumerate() {
            let e = id as usize;
            let at = get(offsets, e);
            set(entries, at as usize, pos as u32);
            set(offsets, e, at + 1);
        }
        for e in (1..=experts).rev() {
            set(offsets, e, get(offsets, e - 1));
        }
        set(offsets, 0, 0);
        Ok(Self { offsets, entries, experts })
    }

    /// Experts.
    pub const fn experts(&self) -> usize {
        self.experts
    }

    /// Routed rows (entries).
    pub const fn len(&self) -> usize {
        self.entries.len() / 4
    }

    /// Whether no row is routed.
    pub const fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The run of expert `e`: the entries routed to it. `None` when `e >= experts`.
    pub fn run(&self, e: usize) -> Option<Range<usize>> {
        (e < self.experts).then(|| get(self.offsets, e) as usize..get(self.offsets, e + 1) as usize)
    }

    /// Entry `i`: the position `t * top_k + s` of the routed row. `None` when
    /// `i >= len`.
    pub fn entry(&self, i: usize) -> Option<usize> {
        (i < self.len()).then(|| get(self.entries, i) as usize)
    }
}
