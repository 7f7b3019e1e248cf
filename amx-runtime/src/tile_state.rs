//! AMX tile state: the permission once per process, the tile configuration per thread,
//! and `tilerelease` when a thread is done.
//!
//! # The permission: once per process
//!
//! [`amx`] runs amx-core's checks (CPUID, XCR0, then the Linux
//! `arch_prctl(ARCH_REQ_XCOMP_PERM)` request) the first time it is called and caches the
//! answer, refusal included, for the life of the process: no matmul ever makes that system
//! call again (ggml makes it per matmul per thread). The runtime resolves [`Path::Auto`]
//! through [`resolve_path`], which asks [`amx`], so a machine whose kernel refuses the
//! permission is asked once, not once per call.
//!
//! # The configuration: `ldtilecfg` only when it differs
//!
//! The AMX kernel of amx-core reads the thread's live configuration (`sttilecfg`) at entry
//! and runs `ldtilecfg` only when it is not already the kernel's own: back-to-back matmuls
//! on one thread load it once. The check reads the hardware, not a flag, so code outside
//! this crate that loads another configuration or releases the tiles cannot fool it.
//! [`ensure_config`] does the same for callers that use tiles themselves, and counts what
//! it did ([`thread_stats`]), which is how the tests show the skipping.
//!
//! # Release: when a thread goes idle or exits
//!
//! A thread that has used tiles keeps 8 KiB of tile data in its XSAVE area until it runs
//! `tilerelease`; the kernel saves and restores that state at every context switch. Every
//! place in this crate that runs an AMX kernel records it on the thread
//! ([`mark_used`]); [`release_thread`] then runs `tilerelease` on that thread (and nothing
//! on a thread that never used tiles). Every thread of a pool, the calling thread
//! included, calls it as soon as its share of a job is done, before it waits for the next
//! one (see [`crate::pool`] for why that point and what it costs). A thread-local destructor releases
//! on thread exit when the thread still holds tiles, which covers engine threads that ran
//! [`crate::pool::Part`]s and never called [`release_thread`].

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use amx_core::formats::Format;
use amx_core::gemm::{GemmError, Path, amx_min_rows};
use amx_core::tile::TileConfig;
use amx_core::token::{Amx, AmxUnavailable};

/// The process-wide answer of [`Amx::try_new`], asked once.
static AMX: OnceLock<Result<Amx, AmxUnavailable>> = OnceLock::new();

/// Releases done by thread-exit destructors, process-wide.
static EXIT_RELEASES: AtomicU64 = AtomicU64::new(0);

/// The AMX token when this process may use AMX. The first call checks the CPU and the OS
/// and requests the Linux tile-data permission; every later call returns the cached
/// answer without a system call.
pub fn amx() -> Option<Amx> {
    amx_status().ok()
}

/// [`amx`] with the reason when AMX is unavailable (cached as well).
pub fn amx_status() -> Result<Amx, AmxUnavailable> {
    *AMX.get_or_init(Amx::try_new)
}

/// The concrete path for `m` rows of `format` weights: [`Path::Auto`] resolved as
/// amx-core does, but asking the cached [`amx`] answer first so that a refused permission
/// is never requested again; a forced path is checked for availability.
///
/// Errors: [`GemmError::PathUnavailable`] for a forced path this machine lacks.
pub fn resolve_path(format: Format, m: usize, path: Path) -> Result<Path, GemmError> {
    match path {
        Path::Auto if m >= amx_min_rows(format) && amx().is_some() && Path::Amx.available() => {
            Ok(Path::Amx)
        }
        Path::Auto if Path::Vnni.available() => Ok(Path::Vnni),
        Path::Auto => Ok(Path::Scalar),
        Path::Amx if amx().is_none() => Err(GemmError::PathUnavailable { path }),
        p => p.resolve(format, m),
    }
}

/// The path given to amx-core's grouped (MoE) kernel: `Auto` (each expert by its own
/// rows) when this process may use AMX, else the best other path, from the cached answer
/// of [`amx`] so that a refused permission is not requested again.
///
/// Errors: as [`resolve_path`].
pub(crate) fn grouped_path(format: Format) -> Result<Path, GemmError> {
    if amx().is_some() { Ok(Path::Auto) } else { resolve_path(format, 0, Path::Auto) }
}

/// What this thread did with its tile state (counters since the thread started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadStats {
    /// Whether the thread is recorded as holding tile state (it ran an AMX kernel or
    /// [`ensure_config`] loaded a configuration, and has not released since).
    pub holds_tiles: bool,
    /// `tilerelease`s run by [`release_thread`] on this thread.
    pub releases: u64,
    /// `ldtilecfg`s run by [`ensure_config`] on this thread.
    pub config_loads: u64,
    /// [`ensure_config`] calls that found the configuration already loaded.
    pub config_skips: u64,
}

/// Per-thread record; its destructor releases the tiles of a thread that exits while
/// still holding them.
struct ThreadTiles {
    used: Cell<bool>,
    releases: Cell<u64>,
    loads: Cell<u64>,
    skips: Cell<u64>,
}

impl Drop for ThreadTiles {
    fn drop(&mut self) {
        if self.used.get()
            && let Some(amx) = amx()
        {
            amx.release();
            EXIT_RELEASES.fetch_add(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static TILES: ThreadTiles = const {
        ThreadTiles {
            used: Cell::new(false),
            releases: Cell::new(0),
            loads: Cell::new(0),
            skips: Cell::new(0),
        }
    };
}

/// Records that this thread is about to run AMX code, so that [`release_thread`] and
/// thread exit release its tiles. The pool and [`crate::pool::Part::run`] call it before
/// every AMX kernel; call it yourself before running amx-core's AMX path directly.
pub fn mark_used() {
    // During thread teardown the record may be gone; the thread is exiting anyway.
    let _ = TILES.try_with(|t| t.used.set(true));
}

/// Runs `tilerelease` if this thread is recorded as holding tile state, and returns
/// whether it did. Cheap when the thread holds none (no instruction is executed).
pub fn release_thread() -> bool {
    TILES
        .try_with(|t| {
            if !t.used.replace(false) {
                return false;
            }
            if let Some(amx) = amx() {
                amx.release();
            }
            t.releases.set(t.releases.get() + 1);
            true
        })
        .unwrap_or(false)
}

/// Makes `cfg` this thread's tile configuration: `sttilecfg` first, and `ldtilecfg` only
/// when the loaded configuration differs (or none is loaded). Returns whether it loaded.
/// Either way the thread is recorded as holding tiles.
///
/// Errors: why AMX is unavailable (cached, see [`amx_status`]).
pub fn ensure_config(cfg: &TileConfig) -> Result<bool, AmxUnavailable> {
    let amx = amx_status()?;
    mark_used();
    let loaded = amx.store_config() != Ok(Some(*cfg));
    if loaded {
        amx.load_config(cfg);
    }
    let _ = TILES.try_with(|t| {
        let counter = if loaded { &t.loads } else { &t.skips };
        counter.set(counter.get() + 1);
    });
    Ok(loaded)
}

/// This thread's counters.
pub fn thread_stats() -> ThreadStats {
    TILES
        .try_with(|t| ThreadStats {
            holds_tiles: t.used.get(),
            releases: t.releases.get(),
            config_loads: t.loads.get(),
            config_skips: t.skips.get(),
        })
        .unwrap_or_default()
}

/// Releases done by the thread-exit destructor, in the whole process.
pub fn exit_releases() -> u64 {
    EXIT_RELEASES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TileConfig {
        TileConfig::new().with_tile(0, 16, 64).and_then(|c| c.with_tile(1, 8, 32)).expect("shape")
    }

    #[test]
    fn amx_is_asked_once_and_agrees_with_amx_core() {
        let first = amx_status();
        assert_eq!(first.is_ok(), Amx::try_new().is_ok());
        // The cached answer is returned again, refusal included.
        assert_eq!(amx_status().map(|_| ()), first.map(|_| ()));
    }

    #[test]
    fn auto_resolves_like_amx_core() {
        for format in Format::ALL {
            for m in [0, 1, 7, 8, 16, 17, 64] {
                assert_eq!(
                    resolve_path(format, m, Path::Auto),
                    Path::Auto.resolve(format, m),
                    "{format} m={m}"
                );
                for p in [Path::Amx, Path::Vnni, Path::Scalar] {
                    assert_eq!(resolve_path(format, m, p), p.resolve(format, m));
                }
            }
        }
    }

    #[test]
    fn config_is_loaded_once_and_released() {
        let Some(amx) = amx() else {
            let why = format!("AMX unavailable ({:?})", amx_status());
            crate::test_support::skip(crate::test_support::Need::Amx, &why);
            assert!(ensure_config(&config()).is_err());
            return;
        };
        std::thread::spawn(move || {
            assert_eq!(thread_stats(), ThreadStats::default());
            assert!(!release_thread(), "nothing to release on a fresh thread");
            assert_eq!(ensure_config(&config()), Ok(true));
            assert_eq!(amx.store_config(), Ok(Some(config())));
            assert_eq!(ensure_config(&config()), Ok(false), "same config: no ldtilecfg");
            let other = TileConfig::new().with_tile(2, 4, 16).expect("shape");
            assert_eq!(ensure_config(&other), Ok(true));
            assert_eq!(ensure_config(&config()), Ok(true));
            let s = thread_stats();
            assert_eq!((s.config_loads, s.config_skips, s.releases), (3, 1, 0));
            assert!(s.holds_tiles);
            assert!(release_thread());
            assert_eq!(amx.store_config(), Ok(None), "tilerelease leaves no configuration");
            assert!(!release_thread());
            let s = thread_stats();
            assert_eq!((s.releases, s.holds_tiles), (1, false));
            // Released tiles must be configured again.
            assert_eq!(ensure_config(&config()), Ok(true));
            assert!(release_thread());
        })
        .join()
        .expect("tile thread");
    }
}
