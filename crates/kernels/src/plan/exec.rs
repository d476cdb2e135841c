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

use crate::conv::Workspace;

/// Threads a run uses.
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
}

/// Runs `task(step, index, workspace)` for every task of every step of every stage, stage
/// after stage. `workspaces` has one entry per thread.
pub fn run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], task: impl Fn(usize, usize, &mut Workspace) + Sync) {
    #[cfg(feature = "threads")]
    if workspaces.len() > 1 {
        return threaded::run(stages, tasks, workspaces, task);
    }
    let mut ws = workspaces[0].lock().expect("workspace lock");
    for stage in stages {
        for &step in stage {
            for t in 0..tasks[step] {
                task(step, t, &mut ws);
            }
        }
    }
}

#[cfg(feature = "threads")]
mod threaded {
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use crate::conv::Workspace;

    pub fn run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], task: impl Fn(usize, usize, &mut Workspace) + Sync) {
        let barrier = Barrier::new(workspaces.len());
        rayon::broadcast(|ctx| {
            let mut ws = workspaces[ctx.index()].lock().expect("workspace lock");
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
                            task(step, i, &mut ws);
                            break;
                        }
                        i -= tasks[step];
                    }
                }
                barrier.wait();
            }
        });
    }

    /// A spinning barrier for threads that are all running (the broadcast's threads):
    /// the last to arrive resets the stage's task counter `next`, then bumps the
    /// generation the others spin on. The Release/Acquire pair on `generation` publishes
    /// every write of the stage (and the reset) to the next one.
    struct Barrier {
        next: AtomicUsize,
        arrived: AtomicUsize,
        generation: AtomicU32,
        threads: usize,
    }

    impl Barrier {
        fn new(threads: usize) -> Self {
            Self { next: AtomicUsize::new(0), arrived: AtomicUsize::new(0), generation: AtomicU32::new(0), threads }
        }

        fn wait(&self) {
            let gen = self.generation.load(Ordering::Acquire);
            if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
                self.arrived.store(0, Ordering::Relaxed);
                self.next.store(0, Ordering::Relaxed);
                self.generation.store(gen.wrapping_add(1), Ordering::Release);
                return;
            }
            let mut spins = 0u32;
            while self.generation.load(Ordering::Acquire) == gen {
                spins = spins.saturating_add(1);
                if spins < SPINS_BEFORE_YIELD {
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Spins (~tens of µs) before yielding the core: stages of a forward follow each
    /// other within microseconds, and a thread that went to sleep would cost a wake-up.
    const SPINS_BEFORE_YIELD: u32 = 1 << 16;
}
