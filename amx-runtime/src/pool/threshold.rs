//! How many shares a job gets: a minimum amount of work per share, so that a job too
//! small to pay for handing work to another thread runs on the calling thread alone (and
//! wakes no worker).
//!
//! Work is counted in multiply-accumulates: `M x N x K` for a matmul, the sum over the
//! weights for a call with several, `T x top_k x N x K` for a grouped (MoE) call, and one
//! per value (`M x K`) for preparing activations alone. A job of `w` MACs on a pool of `t`
//! threads with threshold `min` runs on `clamp(w / min, 1, t)` shares; `min = 0` always
//! uses every thread.

use std::io;

/// The default minimum work per share, in multiply-accumulates: a job of `w` MACs on `t`
/// threads runs on `clamp(w / min, 1, t)` shares ([`crate::pool::Pool::min_share_macs`]).
///
/// Measured with `amx-bench bench --decode --min-share-macs W` (SmolLM2-135M's
/// matmuls at M = 1 in Q4_1, one thread against a pool of two side by side, Sapphire
/// Rapids guest, machine otherwise idle; speedup of two threads, three alternating runs
/// for the last two values):
///
/// | W | 576x576 | 192x576 | 1536x576 | 576x1536 | layer | layer, fused |
/// |---|---|---|---|---|---|---|
/// | 2^14 | 1.04-1.09 | 0.64-0.70 | 1.38-1.45 | 1.34-1.39 | 1.17-1.21 | 1.30-1.31 |
/// | 2^15 | 1.07-1.11 | 0.69-0.72 | 1.46-1.49 | 1.39-1.41 | 1.13-1.17 | 1.29-1.32 |
/// | 2^16 | 1.09-1.13 | 1.00 | 1.45-1.50 | 1.38-1.41 | 1.14-1.30 | 1.35-1.47 |
/// | 2^17 | 1.10-1.12 | 1.00 | 1.45-1.49 | 1.38-1.40 | 1.11-1.25 | 1.24-1.30 |
/// | 2^18 | 1.00 | 1.00 | 1.43-1.47 | 1.37-1.40 | 0.79-1.04 | 1.24-1.33 |
///
/// Below 2^16 the 192 x 576 projection (110,592 MACs, about 2 us) is split and loses to
/// one thread; from 2^18 the 576 x 576 ones stop splitting. 2^16 keeps every shape at
/// 1.0x or more and gave the best whole layers. A job of more than one share costs its
/// caller the publication (a lock and a wake-up call per worker) whether or not a worker
/// joins in time: a spinning worker joins within a microsecond, a blocked one takes about
/// 75 us to wake (the pool's module docs), by which time a small job is done and withdrawn.
pub const DEFAULT_MIN_SHARE_MACS: u64 = 1 << 16;

/// The environment variable that sets the threshold of every pool made afterwards
/// (a decimal number of MACs; `0`: always use every thread). Read by `Pool::try_new`.
pub const MIN_SHARE_MACS_VAR: &str = "AMX_RS_POOL_MIN_SHARE_MACS";

/// Shares for a job of `macs` multiply-accumulates on `threads` threads with at least
/// `min` MACs per share (`min = 0`: every thread).
pub(crate) fn shares(macs: u64, min: u64, threads: usize) -> usize {
    let threads = threads.max(1);
    match macs.checked_div(min) {
        None => threads,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).clamp(1, threads),
    }
}

/// The threshold from the value of [`MIN_SHARE_MACS_VAR`] (`None`: unset, the default).
///
/// Errors: [`io::ErrorKind::InvalidInput`] naming the variable and its value when the value
/// is not a decimal number.
pub(crate) fn from_env_value(value: Option<&str>) -> io::Result<u64> {
    match value {
        None => Ok(DEFAULT_MIN_SHARE_MACS),
        Some(v) => v.trim().parse().map_err(|_| {
            let what = format!(
                "{MIN_SHARE_MACS_VAR}={v:?} is not a number of multiply-accumulates (a \
                 decimal integer, 0 for every thread always)"
            );
            io::Error::new(io::ErrorKind::InvalidInput, what)
        }),
    }
}

/// The threshold the environment asks for ([`from_env_value`]).
pub(crate) fn from_env() -> io::Result<u64> {
    match std::env::var(MIN_SHARE_MACS_VAR) {
        Ok(v) => from_env_value(Some(&v)),
        Err(std::env::VarError::NotPresent) => from_env_value(None),
        Err(std::env::VarError::NotUnicode(v)) => from_env_value(Some(&v.to_string_lossy())),
    }
}

/// `a x b x c` multiply-accumulates, saturating (a count past `u64` uses every thread).
pub(crate) fn macs(a: usize, b: usize, c: usize) -> u64 {
    let [a, b, c] = [a, b, c].map(|v| u64::try_from(v).unwrap_or(u64::MAX));
    a.saturating_mul(b).saturating_mul(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_shapes_of_smollm2_under_the_default() {
        let min = DEFAULT_MIN_SHARE_MACS;
        for (n, k, want) in [(192, 576, 1), (576, 576, 2), (1536, 576, 2), (576, 1536, 2)] {
            assert_eq!(shares(macs(1, n, k), min, 2), want, "{n} x {k}");
        }
        assert_eq!(shares(macs(1, 1536, 576), min, 16), 13);
    }

    #[test]
    fn shares_are_clamped_and_zero_means_every_thread() {
        assert_eq!(shares(0, 100, 4), 1);
        assert_eq!(shares(99, 100, 4), 1);
        assert_eq!(shares(250, 100, 4), 2);
        assert_eq!(shares(u64::MAX, 1, 4), 4);
        assert_eq!(shares(5, 0, 4), 4);
        assert_eq!(shares(5, 0, 0), 1);
        assert_eq!(macs(usize::MAX, usize::MAX, 2), u64::MAX);
    }

    #[test]
    fn env_values() {
        assert_eq!(from_env_value(None).ok(), Some(DEFAULT_MIN_SHARE_MACS));
        assert_eq!(from_env_value(Some(" 4096 ")).ok(), Some(4096));
        assert_eq!(from_env_value(Some("0")).ok(), Some(0));
        let e = from_env_value(Some("lots")).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("AMX_RS_POOL_MIN_SHARE_MACS=\"lots\""), "{e}");
    }
}
