//! The threads of a pool: the calling thread runs share 0 of each job, persistent worker
//! threads run shares 1.., then everyone waits for everyone.
//!
//! Waiting spins for up to [`SPIN`] before blocking on a condition variable: waking a
//! blocked thread costs tens of microseconds on a virtual machine (a round trip through
//! two blocked workers measured 75 us here), which is several percent of a 2 ms matmul,
//! while back-to-back matmuls arrive well within the spin window. Each thread spins on its
//! own core only while it would otherwise be idle, and for a bounded time.
//!
//! A job may run on fewer shares than there are threads ([`Workers::run_shares`]): only
//! the workers it needs are told about it (each worker waits on a condition variable of
//! its own), and a job of one share runs on the calling thread without publishing
//! anything, so no worker wakes up for it.
//!
//! A *helped* job ([`Workers::run_helped`]) does not wait for workers that have not
//! started it: its closure claims work items from counters of its own, so the calling
//! thread runs whatever no worker has claimed, then withdraws the job and waits only for
//! the workers that entered it (which are running). A worker that wakes late, on a machine
//! where another process holds its core, finds the job withdrawn and costs the caller
//! nothing; a worker that is there takes its part.
//!
//! No allocation per job: the job is a borrowed closure published through a mutex; the
//! scratch vectors (one per thread) grow only when a job needs more than they hold.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::tile_state;

/// Identities of pools (for [`is_worker_of`]) and of threads (for [`thread_tag`]): 0 is
/// never handed out.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The pool this thread is a worker of (0: none). A worker serves one pool for life.
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
    /// This thread's tag, handed out on first use.
    static TAG: Cell<u64> = const { Cell::new(0) };
}

/// A tag unique to the calling thread (never 0), to record which thread holds a pool.
pub(crate) fn thread_tag() -> u64 {
    TAG.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// Whether the calling thread is a worker thread of the pool whose workers are `id`.
pub(crate) fn is_worker_of(id: u64) -> bool {
    WORKER_OF.with(Cell::get) == id
}

/// What every thread of the pool runs: `(share index, the thread's scratch)`.
pub(crate) type JobFn<'a> = dyn Fn(usize, &mut Vec<u8>) + Sync + 'a;

/// How long a waiting thread spins before it blocks.
pub(crate) const SPIN: Duration = Duration::from_micros(100);

/// Spins until `ready()` or [`SPIN`] has passed; returns the last answer.
pub(crate) fn spin_until(ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return ready();
        }
    }
}

/// The published job. A raw pointer with its lifetime erased: valid from the moment
/// [`Workers::run`] publishes it until every worker has reported back, which `run` waits
/// for before returning.
#[derive(Clone, Copy)]
struct JobPtr(*const JobFn<'static>);

// SAFETY: the pointee is `Sync` (so callable from any thread), and the pointer is only
// dereferenced while `Workers::run` keeps the closure alive.
unsafe impl Send for JobPtr {}

struct State {
    job: Option<JobPtr>,
    /// The first panic payload of the current job's workers.
    panic: Option<Box<dyn Any + Send>>,
    /// Worker `i` is blocked on `work[i - 1]` (set and cleared by the worker under the
    /// lock): only those are notified, since a notification is a system call whether or
    /// not anyone waits, and a spinning worker sees the job without one.
    blocked: Box<[bool]>,
    /// The caller is blocked on `done` (set and cleared by it under the lock): only then
    /// does a finishing worker notify it.
    caller_blocked: bool,
}

struct Shared {
    /// Bumped (under `state`'s lock) to publish a job; a worker runs each value once.
    generation: AtomicU64,
    /// Shares of the current job (set under `state`'s lock before `generation` is
    /// bumped): workers `1..shares` run it, the others sit it out.
    shares: AtomicUsize,
    /// Workers that entered the current job (set to 0 when it is published, counted under
    /// `state`'s lock while the job is published).
    entered: AtomicUsize,
    /// Workers that entered the current job and have finished it.
    left: AtomicUsize,
    shutdown: AtomicBool,
    /// Workers that have begun running (see [`Workers::start`]).
    started: AtomicUsize,
    state: Mutex<State>,
    /// Worker `i` blocks on `work[i - 1]` for a job, so that a job of `s` shares wakes
    /// workers `1..s` only.
    work: Box<[Condvar]>,
    /// The caller blocks here for the workers.
    done: Condvar,
    counters: Arc<Counters>,
}

/// What a set of workers did, since it started (read by `Pool::counters`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Jobs run ([`Workers::run_shares`] calls).
    pub(crate) jobs: AtomicU64,
    /// Jobs published to the workers (jobs of more than one share).
    pub(crate) published: AtomicU64,
    /// Shares run by workers, over all jobs.
    pub(crate) worker_shares: AtomicU64,
}

/// Nothing panics while holding the lock (jobs run outside it), so a poisoned lock still
/// holds consistent state.
fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The calling thread plus persistent worker threads, running one job at a time.
pub(crate) struct Workers {
    /// This set of workers' identity (see [`is_worker_of`]).
    id: u64,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// The calling thread's scratch (share 0).
    scratch: Vec<u8>,
}

impl Workers {
    /// A pool of `threads` shares (at least one): the caller and `threads - 1` workers.
    pub(crate) fn start(threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let mut work = Vec::new();
        work.try_reserve_exact(threads - 1).map_err(|e| {
            let what = format!("no memory for the state of {} worker threads: {e}", threads - 1);
            io::Error::new(io::ErrorKind::OutOfMemory, what)
        })?;
        work.resize_with(threads - 1, Condvar::new);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            shares: AtomicUsize::new(0),
            entered: AtomicUsize::new(0),
            left: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            started: AtomicUsize::new(0),
            state: Mutex::new(State {
                job: None,
                panic: None,
                blocked: vec![false; threads - 1].into_boxed_slice(),
                caller_blocked: false,
            }),
            work: work.into_boxed_slice(),
            done: Condvar::new(),
            counters: Arc::new(Counters::default()),
        });
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut handles = Vec::new();
        handles.try_reserve_exact(threads - 1).map_err(|e| {
            let what = format!("no memory for the handles of {} worker threads: {e}", threads - 1);
            io::Error::new(io::ErrorKind::OutOfMemory, what)
        })?;
        let mut workers = Workers { id, shared, handles, scratch: Vec::new() };
        for index in 1..threads {
            let shared = Arc::clone(&workers.shared);
            let handle = std::thread::Builder::new()
                .name(format!("amx-pool-{index}"))
                .spawn(move || worker_main(id, index, &shared))?;
            // On error `workers` drops here, which stops the threads already started.
            workers.handles.push(handle);
        }
        // A thread's start allocates (its name for the stack-overflow handler). Waiting
        // for every worker to begin keeps that inside `start`: otherwise, on a loaded
        // machine, a worker could begin during the caller's first jobs, and an engine's
        // steady state would see allocations that are not its own.
        while workers.shared.started.load(Ordering::Acquire) < threads - 1 {
            std::thread::yield_now();
        }
        Ok(workers)
    }

    /// This set of workers' identity: [`is_worker_of`] it is true on its threads.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of shares (threads, the caller included).
    pub(crate) fn len(&self) -> usize {
        self.handles.len() + 1
    }

    /// The counters of these workers, to read without holding them.
    pub(crate) fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.shared.counters)
    }

    /// Runs `job` once per share (index `0..len`, 0 on this thread) and returns when all
    /// are done. A panic in the job is resumed here once every share has finished.
    pub(crate) fn run(&mut self, job: &JobFn<'_>) {
        self.run_shares(self.len(), job);
    }

    /// Runs `job` once per share `0..shares` (`shares` clamped to `1..=len`; 0 on this
    /// thread, the others on workers `1..shares`) and returns when all are done. Workers
    /// `shares..` are not woken; with one share nothing is published at all. A panic in
    /// the job is resumed here once every share has finished.
    pub(crate) fn run_shares(&mut self, shares: usize, job: &JobFn<'_>) {
        self.run_job(shares, job, true);
    }

    /// Runs `job` on this thread (share 0) and on those of workers `1..shares` that start
    /// it before this thread has finished its call: `job` must claim its work itself
    /// (counters shared by its calls) and return when none is left, so that the calls
    /// made cover the work whoever makes them. Returns once this thread's call and every
    /// worker call that started are done; workers that had not started by then skip the
    /// job. A panic in the job is resumed here once those calls are done.
    pub(crate) fn run_helped(&mut self, shares: usize, job: &JobFn<'_>) {
        self.run_job(shares, job, false);
    }

    /// [`Workers::run_shares`] (`every`: wait for every worker of `shares` to run `job`)
    /// or [`Workers::run_helped`].
    fn run_job(&mut self, shares: usize, job: &JobFn<'_>, every: bool) {
        let shared = &*self.shared;
        let spawned = shares.clamp(1, self.len()) - 1;
        shared.counters.jobs.fetch_add(1, Ordering::Relaxed);
        if spawned > 0 {
            let ptr: *const JobFn<'_> = job;
            // SAFETY: only the lifetime bound of the trait object changes (same layout).
            // Workers take the pointer only under the state lock while it is published,
            // counting themselves in `entered` there, and dereference it until they count
            // themselves in `left`; this function withdraws it (under the lock) and then
            // waits until `left` equals `entered` before it returns or unwinds (the share
            // run here is wrapped in `catch_unwind`; nothing else panics), so `job`
            // outlives every use.
            let ptr =
                unsafe { std::mem::transmute::<*const JobFn<'_>, *const JobFn<'static>>(ptr) };
            let mut st = lock(&shared.state);
            st.job = Some(JobPtr(ptr));
            shared.shares.store(spawned + 1, Ordering::Relaxed);
            // Every worker of the previous job has left (this function waited for it), and
            // none can enter it any more (withdrawn), so the counts restart here.
            shared.entered.store(0, Ordering::Relaxed);
            shared.left.store(0, Ordering::Relaxed);
            shared.generation.fetch_add(1, Ordering::Release);
            shared.counters.published.fetch_add(1, Ordering::Relaxed);
            for (cv, blocked) in shared.work[..spawned].iter().zip(&st.blocked[..spawned]) {
                if *blocked {
                    cv.notify_one();
                }
            }
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(|| job(0, &mut self.scratch)));
        tile_state::release_thread();
        if spawned > 0 {
            let left = |n: usize| move || shared.left.load(Ordering::Acquire) == n;
            if every {
                self.wait_done(left(spawned));
            }
            let entered = {
                let mut st = lock(&shared.state);
                st.job = None;
                // Changed only under the lock while the job is published: final now.
                shared.entered.load(Ordering::Relaxed)
            };
            self.wait_done(left(entered));
        }
        let theirs = lock(&shared.state).panic.take();
        if let Err(payload) = mine {
            panic::resume_unwind(payload);
        }
        if let Some(payload) = theirs {
            panic::resume_unwind(payload);
        }
    }

    /// Spins, then blocks on `done`, until `finished()`. Workers signal `done` under the
    /// lock after each exit, so no signal is lost between the check and the wait.
    fn wait_done(&self, finished: impl Fn() -> bool) {
        let shared = &*self.shared;
        if !spin_until(&finished) {
            let mut st = lock(&shared.state);
            while !finished() {
                st.caller_blocked = true;
                st = shared.done.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            st.caller_blocked = false;
        }
    }
}

/// Waits until `ready()`: spins for [`SPIN`], then yields the core between checks. For
/// waits on work that running threads have claimed (short, and never on a thread that
/// has not started).
pub(crate) fn wait_for(ready: impl Fn() -> bool) {
    while !spin_until(&ready) {
        std::thread::yield_now();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        {
            let _st = lock(&self.shared.state);
            self.shared.shutdown.store(true, Ordering::Release);
            for cv in &self.shared.work {
                cv.notify_one();
            }
        }
        for handle in self.handles.drain(..) {
            // A worker never panics outside `catch_unwind`; nothing to report.
            let _ = handle.join();
        }
    }
}

fn worker_main(pool: u64, index: usize, shared: &Shared) {
    WORKER_OF.with(|w| w.set(pool));
    shared.started.fetch_add(1, Ordering::Release);
    let mut scratch = Vec::new();
    let mut seen = 0u64;
    let work = &shared.work[index - 1];
    loop {
        // A hint only (the two loads may see different jobs); the answer is re-read
        // under the lock below.
        let ready = || {
            shared.shutdown.load(Ordering::Acquire)
                || (shared.generation.load(Ordering::Acquire) != seen
                    && index < shared.shares.load(Ordering::Acquire))
        };
        if !spin_until(ready) {
            let mut st = lock(&shared.state);
            while !ready() {
                st.blocked[index - 1] = true;
                st = work.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            st.blocked[index - 1] = false;
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        // Generation, shares and job are written together under the lock, so this is
        // one job's view; the job is there (`Some`) only while its caller accepts
        // workers, and entering is counted under the same lock.
        let job = {
            let st = lock(&shared.state);
            let generation = shared.generation.load(Ordering::Acquire);
            let mine = generation != seen && index < shared.shares.load(Ordering::Acquire);
            seen = generation;
            match st.job {
                Some(job) if mine => {
                    shared.entered.fetch_add(1, Ordering::Relaxed);
                    job
                }
                // Not this worker's job, or withdrawn already: skip it (a later job that
                // counts it has a later generation).
                _ => continue,
            }
        };
        shared.counters.worker_shares.fetch_add(1, Ordering::Relaxed);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: this worker entered the job under the lock while it was published;
            // `Workers::run_job` keeps the closure alive until this worker is counted in
            // `left` below.
            let f = unsafe { &*job.0 };
            f(index, &mut scratch);
        }));
        // The share is done: give the tiles back before waiting, so that an idle worker
        // carries no tile data through context switches.
        tile_state::release_thread();
        let mut st = lock(&shared.state);
        if let Err(payload) = result {
            st.panic.get_or_insert(payload);
        }
        shared.left.fetch_add(1, Ordering::Release);
        if st.caller_blocked {
            shared.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_share_runs_each_job_once() {
        let mut w = Workers::start(3).expect("threads");
        assert_eq!(w.len(), 3);
        let hits: [AtomicUsize; 3] = Default::default();
        for round in 1..=200 {
            w.run(&|i, _| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            for h in &hits {
                assert_eq!(h.load(Ordering::Relaxed), round);
            }
            if round % 50 == 0 {
                // Long enough for the workers to stop spinning and block.
                std::thread::sleep(SPIN * 5);
            }
        }
    }

    #[test]
    fn share_zero_runs_on_the_calling_thread() {
        let mut w = Workers::start(2).expect("threads");
        let me = std::thread::current().id();
        let ids = Mutex::new(Vec::new());
        w.run(&|i, _| ids.lock().expect("lock").push((i, std::thread::current().id() == me)));
        let mut ids = ids.into_inner().expect("lock");
        ids.sort_unstable();
        assert_eq!(ids, [(0, true), (1, false)]);
    }

    #[test]
    fn scratch_is_kept_per_share() {
        let mut w = Workers::start(2).expect("threads");
        w.run(&|i, s| s.resize(100 + i, 7));
        let seen: [AtomicUsize; 2] = Default::default();
        w.run(&|i, s| seen[i].store(s.len(), Ordering::Relaxed));
        assert_eq!(seen.map(|s| s.into_inner()), [100, 101]);
    }

    #[test]
    fn panics_are_resumed_in_the_caller_after_every_share_is_done() {
        let mut w = Workers::start(2).expect("threads");
        for failing in [0, 1] {
            let finished = AtomicUsize::new(0);
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                w.run(&|i, _| {
                    if i == failing {
                        panic!("share {i} fails");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }));
            assert!(caught.is_err());
            assert_eq!(finished.into_inner(), 1, "the other share finished before the resume");
        }
        let ran = AtomicUsize::new(0);
        w.run(&|_, _| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.into_inner(), 2);
    }

    #[test]
    fn a_job_of_fewer_shares_wakes_only_its_workers() {
        let mut w = Workers::start(4).expect("threads");
        let c = w.counters();
        for round in 0..200 {
            let shares = round % 5; // 0 and 1: the caller alone
            let hits: [AtomicUsize; 4] = Default::default();
            w.run_shares(shares, &|i, _| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            let want: Vec<usize> = (0..4).map(|i| usize::from(i < shares.max(1))).collect();
            assert_eq!(hits.map(|h| h.into_inner()).to_vec(), want, "round {round}");
            if round % 50 == 0 {
                std::thread::sleep(SPIN * 5);
            }
        }
        // Per 5 rounds: shares 0, 1 run alone; 2, 3, 4 publish and run 1 + 2 + 3 shares.
        assert_eq!(c.jobs.load(Ordering::Relaxed), 200);
        assert_eq!(c.published.load(Ordering::Relaxed), 120);
        assert_eq!(c.worker_shares.load(Ordering::Relaxed), 40 * 6);
    }

    /// Helped jobs: every item is claimed and run once, whatever mix of the caller and
    /// workers claimed them, and no worker call outlives `run_helped`.
    #[test]
    fn helped_jobs_cover_every_item_once_and_wait_for_entered_workers() {
        let mut w = Workers::start(3).expect("threads");
        for round in 0..300 {
            let items: [AtomicUsize; 64] = std::array::from_fn(|_| AtomicUsize::new(0));
            let next = AtomicUsize::new(0);
            let running = AtomicUsize::new(0);
            w.run_helped(1 + round % 3, &|_, _| {
                running.fetch_add(1, Ordering::SeqCst);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    if i.is_multiple_of(16) {
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    items[i].fetch_add(1, Ordering::Relaxed);
                }
                running.fetch_sub(1, Ordering::SeqCst);
            });
            assert_eq!(running.load(Ordering::SeqCst), 0, "a call outlived run_helped");
            assert!(items.iter().all(|c| c.load(Ordering::Relaxed) == 1), "round {round}");
            if round % 100 == 0 {
                std::thread::sleep(SPIN * 5);
            }
        }
        // One share: the caller alone, nothing published.
        let before = w.counters().published.load(Ordering::Relaxed);
        w.run_helped(1, &|i, _| assert_eq!(i, 0));
        assert_eq!(w.counters().published.load(Ordering::Relaxed), before);
    }

    /// A worker that starts late (its core taken) finds the helped job withdrawn: the
    /// caller did all the work and did not wait for it; the next job still reaches it.
    #[test]
    fn a_late_worker_skips_a_withdrawn_job() {
        let mut w = Workers::start(2).expect("threads");
        // Let the worker stop spinning and block: waking it takes far longer than the
        // caller's share below.
        std::thread::sleep(SPIN * 5);
        let c = w.counters();
        let mut late = 0;
        for _ in 0..50 {
            let ran_on_worker = AtomicUsize::new(0);
            let before = c.worker_shares.load(Ordering::Relaxed);
            w.run_helped(2, &|i, _| {
                if i != 0 {
                    ran_on_worker.fetch_add(1, Ordering::Relaxed);
                }
            });
            let entered = c.worker_shares.load(Ordering::Relaxed) - before;
            assert_eq!(entered as usize, ran_on_worker.into_inner());
            late += usize::from(entered == 0);
            std::thread::sleep(SPIN * 3); // the worker blocks again
        }
        // The caller's share is instant, so the blocked worker is usually too late.
        println!("{late} of 50 helped jobs ran without the worker");
        let hits: [AtomicUsize; 2] = Default::default();
        w.run(&|i, _| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.map(|h| h.into_inner()), [1, 1]);
    }

    #[test]
    fn one_thread_means_no_worker() {
        for threads in [0, 1] {
            let mut w = Workers::start(threads).expect("threads");
            assert_eq!((w.len(), w.handles.len()), (1, 0));
            let ran = AtomicUsize::new(0);
            w.run(&|i, _| {
                ran.fetch_add(i + 1, Ordering::Relaxed);
            });
            assert_eq!(ran.into_inner(), 1);
        }
    }
}
