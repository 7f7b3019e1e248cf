//! The persistent worker threads: the caller publishes one job, every worker runs it once
//! with its index and its own scratch, the caller waits for all of them.
//!
//! No allocation per job: the job is a borrowed closure, published through a mutex; the
//! workers' scratch vectors grow only when a job needs more than they hold.

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::tile_state;

/// What every worker runs: `(worker index, the worker's scratch)`.
pub(crate) type JobFn<'a> = dyn Fn(usize, &mut Vec<u8>) + Sync + 'a;

/// The published job. A raw pointer with its lifetime erased: valid from the moment
/// [`Workers::run`] publishes it until every worker has reported back, which `run` waits
/// for before returning.
#[derive(Clone, Copy)]
struct JobPtr(*const JobFn<'static>);

// SAFETY: the pointee is `Sync` (so callable from any thread), and the pointer is only
// dereferenced while `Workers::run` keeps the closure alive.
unsafe impl Send for JobPtr {}

struct State {
    /// Incremented for every job; a worker runs each generation once.
    generation: u64,
    job: Option<JobPtr>,
    /// Workers that have not finished the current job yet.
    remaining: usize,
    /// The first panic payload of the current job.
    panic: Option<Box<dyn Any + Send>>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Workers wait here for a job.
    work: Condvar,
    /// The caller waits here for the workers.
    done: Condvar,
}

/// Nothing panics while holding the lock (jobs run outside it), so a poisoned lock still
/// holds consistent state.
fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A set of persistent worker threads that run one job at a time.
pub(crate) struct Workers {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `threads` workers (at least one).
    pub(crate) fn start(threads: usize) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                remaining: 0,
                panic: None,
                shutdown: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut workers = Workers { shared, handles: Vec::with_capacity(threads.max(1)) };
        for index in 0..threads.max(1) {
            let shared = Arc::clone(&workers.shared);
            let handle = std::thread::Builder::new()
                .name(format!("amx-pool-{index}"))
                .spawn(move || worker_main(index, &shared))?;
            // On error `workers` drops here, which stops the threads already started.
            workers.handles.push(handle);
        }
        Ok(workers)
    }

    /// Number of workers.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Runs `job` once on every worker (index `0..len`) and returns when all are done.
    /// A panic in the job is resumed here once every worker has finished.
    pub(crate) fn run(&mut self, job: &JobFn<'_>) {
        let ptr: *const JobFn<'_> = job;
        // SAFETY: only the lifetime bound of the trait object changes (same layout). The
        // pointer is dereferenced by workers only for the current generation, and this
        // function does not return (nor unwind: nothing below panics) before every
        // worker has finished that generation, so `job` outlives every use.
        let ptr = unsafe { std::mem::transmute::<*const JobFn<'_>, *const JobFn<'static>>(ptr) };
        let shared = &*self.shared;
        let mut st = lock(&shared.state);
        st.job = Some(JobPtr(ptr));
        st.generation = st.generation.wrapping_add(1);
        st.remaining = self.handles.len();
        shared.work.notify_all();
        while st.remaining > 0 {
            st = shared.done.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.job = None;
        let panic = st.panic.take();
        drop(st);
        if let Some(payload) = panic {
            panic::resume_unwind(payload);
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.work.notify_all();
        for handle in self.handles.drain(..) {
            // A worker never panics outside `catch_unwind`; nothing to report.
            let _ = handle.join();
        }
    }
}

fn worker_main(index: usize, shared: &Shared) {
    let mut scratch = Vec::new();
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = lock(&shared.state);
            loop {
                if st.shutdown {
                    return;
                }
                if st.generation != seen
                    && let Some(job) = st.job
                {
                    seen = st.generation;
                    break job;
                }
                st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `job` was published for generation `seen`, which `Workers::run` keeps
            // alive until this worker decrements `remaining` below.
            let f = unsafe { &*job.0 };
            f(index, &mut scratch);
        }));
        // The worker is about to block until the next job: give the tiles back now, so a
        // sleeping worker carries no tile data through context switches.
        tile_state::release_thread();
        let mut st = lock(&shared.state);
        if let Err(payload) = result
            && st.panic.is_none()
        {
            st.panic = Some(payload);
        }
        st.remaining -= 1;
        if st.remaining == 0 {
            shared.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_worker_runs_each_job_once() {
        let mut w = Workers::start(3).expect("threads");
        assert_eq!(w.len(), 3);
        let hits: [AtomicUsize; 3] = Default::default();
        for round in 1..=50 {
            w.run(&|i, _| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            for h in &hits {
                assert_eq!(h.load(Ordering::Relaxed), round);
            }
        }
    }

    #[test]
    fn scratch_is_kept_per_worker() {
        let mut w = Workers::start(2).expect("threads");
        w.run(&|i, s| s.resize(100 + i, 7));
        let seen: [AtomicUsize; 2] = Default::default();
        w.run(&|i, s| seen[i].store(s.len(), Ordering::Relaxed));
        assert_eq!(seen.map(|s| s.into_inner()), [100, 101]);
    }

    #[test]
    fn a_panicking_job_is_resumed_in_the_caller_and_the_pool_survives() {
        let mut w = Workers::start(2).expect("threads");
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            w.run(&|i, _| assert!(i != 1, "worker one fails"));
        }));
        assert!(caught.is_err());
        let ran = AtomicUsize::new(0);
        w.run(&|_, _| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.into_inner(), 2);
    }

    #[test]
    fn zero_threads_means_one() {
        let w = Workers::start(0).expect("threads");
        assert_eq!(w.len(), 1);
    }
}
