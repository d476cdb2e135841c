//! Running a plan's stages: on the calling thread, or (feature `threads`) on every thread
//! of rayon's pool at once.
//!
//! Threaded, the whole forward is one rayon `broadcast`: every pool thread walks the same
//! stages, takes the next task of the current stage from a shared counter until none is
//! left, then waits at a barrier for the others. Handing work to rayon's pool wakes
//! sleeping threads through `memory.atomic.wait/notify` — tens of microseconds per
//! parallel region in wasm — so one region per forward instead of one per layer (GoogLeNet
//! has ~60 stages and ~80 steps) removes that cost; a barrier between stages, where the
//! threads are already awake, costs well under a microsecond.

use std::sync::Mutex;

use super::profile::Probe;
use crate::conv::Workspace;

/// Threads a run uses.
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
}

/// Runs `task(step, index, workspace)` for every task of every step of every stage, stage
/// after stage: on every thread, one per entry of `workspaces`, or all on the calling
/// thread when there is one entry or `serial`. Returns each thread's profile (empty
/// without the `profile` feature).
pub fn run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], serial: bool, task: impl Fn(usize, usize, &mut Workspace) + Sync) -> Vec<Probe> {
    #[cfg(feature = "threads")]
    if workspaces.len() > 1 && !serial {
        return threaded::run(stages, tasks, workspaces, task);
    }
    #[cfg(not(feature = "threads"))]
    let _ = serial; // always one thread
    let mut ws = workspaces[0].lock().expect("workspace lock");
    let mut probe = Probe::new(stages.len());
    for stage in stages {
        for &step in stage {
            for t in 0..tasks[step] {
                let start = probe.task_start();
                task(step, t, &mut ws);
                probe.task_end(start);
            }
        }
        probe.stage_end();
    }
    vec![probe]
}

#[cfg(feature = "threads")]
mod threaded {
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    use super::Probe;
    use crate::conv::Workspace;

    pub fn run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], task: impl Fn(usize, usize, &mut Workspace) + Sync) -> Vec<Probe> {
        let barrier = Barrier::new(workspaces.len());
        rayon::broadcast(|ctx| {
            let mut ws = workspaces[ctx.index()].lock().expect("workspace lock");
            let mut probe = Probe::new(stages.len());
            for stage in stages {
                let total: usize = stage.iter().map(|&s| tasks[s]).sum();
                loop {
                    let mut i = barrier.next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    // Task i of the stage: step by step, in program order.
                    for &step in stage {
                        if i < tasks[step] {
                            let start = probe.task_start();
                            task(step, i, &mut ws);
                            probe.task_end(start);
                            break;
                        }
                        i -= tasks[step];
                    }
                }
                barrier.wait();
                probe.stage_end();
            }
            probe
        })
    }

    /// A barrier for the broadcast's threads: the last to arrive resets the stage's task
    /// counter `next`, then bumps the generation the others wait on. They spin first
    /// (stages follow each other within microseconds, and every thread is awake), then
    /// sleep on a condition variable (in wasm: `memory.atomic.wait32`) so that a thread the
    /// OS descheduled — a shared or busy machine — does not leave the others burning their
    /// cores until it returns. The release store / acquire loads of `generation` publish
    /// every write of the stage (and the reset) to the next one.
    struct Barrier {
        next: AtomicUsize,
        arrived: AtomicUsize,
        generation: AtomicU32,
        sleepers: AtomicU32,
        lock: Mutex<()>,
        wake: Condvar,
        threads: usize,
    }

    impl Barrier {
        fn new(threads: usize) -> Self {
            let (next, arrived) = (AtomicUsize::new(0), AtomicUsize::new(0));
            Self { next, arrived, generation: AtomicU32::new(0), sleepers: AtomicU32::new(0), lock: Mutex::new(()), wake: Condvar::new(), threads }
        }

        fn wait(&self) {
            let gen = self.generation.load(Ordering::Acquire);
            if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
                self.arrived.store(0, Ordering::Relaxed);
                self.next.store(0, Ordering::Relaxed);
                // SeqCst on the generation and `sleepers` (here and in the sleeper): each side
                // stores then loads the other's word, which only SeqCst keeps from both
                // missing the other's store (a sleeper that would never be woken).
                self.generation.store(gen.wrapping_add(1), Ordering::SeqCst);
                if self.sleepers.load(Ordering::SeqCst) > 0 {
                    // Taking the lock orders this notify after a sleeper's check below.
                    let _guard = self.lock.lock().expect("barrier lock");
                    self.wake.notify_all();
                }
                return;
            }
            for _ in 0..SPINS {
                if self.generation.load(Ordering::Acquire) != gen {
                    return;
                }
                core::hint::spin_loop();
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let mut guard = self.lock.lock().expect("barrier lock");
            while self.generation.load(Ordering::SeqCst) == gen {
                guard = self.wake.wait(guard).expect("barrier lock");
            }
            drop(guard);
            self.sleepers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Spins before sleeping, ~1 ms in wasm: longer than the uneven end of most stages
    /// (a waking thread costs more here: with 2^16 spins, ~50 µs, GoogLeNet at 2 threads
    /// took 64 ms instead of 40), far shorter than an OS time slice.
    const SPINS: u32 = 1 << 20;
}
