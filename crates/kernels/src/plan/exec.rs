//! Running a plan's stages: on the calling thread, or (feature `threads`) on the calling
//! thread and the workers of a [`team`] at once.
//!
//! Threaded, every thread walks the same stages, takes the next task of the current stage
//! from a shared counter until none is left, then waits at a barrier for the others.
//! Waking a thread costs tens of microseconds in wasm (`memory.atomic.wait/notify`), so
//! the workers are woken once per forward instead of once per layer (GoogLeNet has ~60
//! stages and ~80 steps); a barrier between stages, where the threads are already awake,
//! costs well under a microsecond.

use std::sync::Mutex;

use super::profile::Probe;
use crate::workspace::Workspace;

/// A worker of the thread team died (a panic, or its thread was ended) or stopped making
/// progress: the run was abandoned and the team retired; later runs use one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerFailed;

/// Threads a run uses: the team's, or 1 (no team, or a retired one).
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    return team::threads();
    #[cfg(not(feature = "threads"))]
    1
}

/// Runs `task(step, index, workspace)` for every task of every step of every stage, stage
/// after stage: on every thread, one per entry of `workspaces`, or all on the calling
/// thread when there is one entry or `serial`. Returns each thread's profile (empty
/// without the `profile` feature).
pub fn run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], serial: bool, task: impl Fn(usize, usize, &mut Workspace) + Sync) -> Result<Vec<Probe>, WorkerFailed> {
    #[cfg(feature = "threads")]
    if workspaces.len() > 1 && !serial {
        return team::run(stages, tasks, workspaces, &task);
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
    Ok(vec![probe])
}

#[cfg(feature = "threads")]
pub mod team {
    //! The thread team: the calling thread (index 0) and `threads - 1` workers that stay in
    //! [`Team::work`] for good, waiting for the next forward. Whoever owns the threads
    //! (rayon's pool in wasm, `std::thread` in native tests) starts each worker in
    //! [`install`]'s `spawn`.
    //!
    //! A worker can die: a Rust panic (in wasm, `panic = "abort"` traps and ends that
    //! thread), or its Web Worker / `worker_threads` thread terminated. A forward must then
    //! fail, not hang: a panic in a worker marks the team dead at once (the panic hook);
    //! the loader marks it dead when it sees a worker's thread end ([`abandon`]); and a
    //! forward in which no thread took a new task for [`STALL_SLICES`] × [`SLICE`] (10 s)
    //! takes the missing worker for dead. The run returns [`WorkerFailed`], the team is
    //! retired and later runs use the calling thread alone. (A single task running 10 s —
    //! a part of one image's layer of ~400 GFLOP — would be taken for a dead worker.)

    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
    use std::time::Duration;

    use super::{Probe, WorkerFailed};
    use crate::workspace::Workspace;

    /// How long a waiting thread sleeps before it looks for a failure again.
    const SLICE: Duration = Duration::from_millis(100);
    /// Slices without a task taken after which a missing worker is taken for dead.
    const STALL_SLICES: u32 = 100;
    /// Spins before sleeping, ~1 ms in wasm: longer than the uneven end of most stages
    /// (a waking thread costs more here: with 2^16 spins, ~50 µs, GoogLeNet at 2 threads
    /// took 64 ms instead of 40), far shorter than an OS time slice.
    const SPINS: u32 = 1 << 20;

    /// The installed team. Teams are leaked, never freed: a worker that died (or a thread
    /// the loader never started) may still hold a reference to its team.
    static TEAM: Mutex<Option<&'static Team>> = Mutex::new(None);

    thread_local! {
        /// Set on a team's workers: the panic hook marks their team dead.
        static MEMBER_OF: Cell<Option<&'static Team>> = const { Cell::new(None) };
    }

    /// A forward's shared state, on the calling thread's stack while the workers use it.
    struct Job<'a> {
        stages: &'a [Vec<usize>],
        tasks: &'a [usize],
        workspaces: &'a [Mutex<Workspace>],
        task: &'a (dyn Fn(usize, usize, &mut Workspace) + Sync),
        /// What every thread writes during the forward, on cache lines of its own.
        shared: Shared,
        #[cfg(feature = "profile")]
        probes: Mutex<Vec<(usize, Probe)>>,
    }

    /// A forward's counters, aligned to a cache line (64 bytes), so that the job's
    /// read-only fields (read at every task: `stages`, `tasks`, `task`) do not share the
    /// line the threads' `fetch_add`s keep moving between cores. (rayon's `broadcast`,
    /// before the team, kept them apart the same way: the closure's captures on the
    /// caller's stack, the counters in their own struct.)
    #[repr(align(64))]
    struct Shared {
        /// The current stage's next task; also the progress the stall detector watches
        /// (it moves whenever a thread takes a task: no counter of its own to contend for).
        next: AtomicUsize,
        barrier: Barrier,
    }

    pub struct Team {
        threads: usize,
        /// Bumped for every forward; idle workers wait for it to change.
        epoch: AtomicU32,
        /// The current forward's [`Job`] (type-erased pointer), valid while it runs.
        job: AtomicUsize,
        /// Workers done with the current forward.
        left: AtomicUsize,
        /// Workers known dead (they panicked): they will never leave a forward.
        lost: AtomicUsize,
        dead: AtomicBool,
        /// One forward at a time (native tests run plans from several threads).
        running: Mutex<()>,
        lock: Mutex<()>,
        wake: Condvar,
    }

    /// Threads of the installed team, or 1 without one (or once it is retired).
    pub fn threads() -> usize {
        current().map_or(1, |t| t.threads)
    }

    fn current() -> Option<&'static Team> {
        TEAM.lock().unwrap_or_else(PoisonError::into_inner).filter(|t| !t.dead.load(Ordering::Acquire))
    }

    /// Starts a team of `threads` threads: the caller and `threads - 1` workers, each of
    /// which `spawn` must run on a thread of its own (it returns when the team is retired).
    /// Replaces (retires) a team installed before.
    pub fn install(threads: usize, mut spawn: impl FnMut(Box<dyn FnOnce() + Send>)) {
        assert!(threads >= 2, "a team has at least two threads");
        install_panic_hook();
        let team: &'static Team = Box::leak(Box::new(Team {
            threads,
            epoch: AtomicU32::new(0),
            job: AtomicUsize::new(0),
            left: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
            running: Mutex::new(()),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        if let Some(old) = TEAM.lock().unwrap_or_else(PoisonError::into_inner).replace(team) {
            old.retire();
        }
        for index in 1..threads {
            spawn(Box::new(move || team.work(index)));
        }
    }

    /// Retires the team (the loader saw a worker's thread end between forwards): later
    /// runs use the calling thread alone.
    pub fn abandon() {
        if let Some(t) = *TEAM.lock().unwrap_or_else(PoisonError::into_inner) {
            t.retire();
        }
    }

    fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if let Some(team) = MEMBER_OF.get() {
                    team.lost.fetch_add(1, Ordering::AcqRel);
                    team.retire();
                }
                // wasm32-unknown-unknown has no stderr for the message to go to, and the
                // formatting would add ~8 KB to the module.
                #[cfg(not(target_family = "wasm"))]
                previous(info);
                #[cfg(target_family = "wasm")]
                let _ = (&previous, info);
            }));
        });
    }

    /// Runs one forward on the team (see [`super::run`]). `Err` when a worker failed;
    /// every thread still alive has left the forward by the time this returns, or is
    /// about to (it sees the team dead at its next barrier).
    pub(super) fn run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], task: &(dyn Fn(usize, usize, &mut Workspace) + Sync)) -> Result<Vec<Probe>, WorkerFailed> {
        let team = current().ok_or(WorkerFailed)?;
        assert_eq!(workspaces.len(), team.threads, "one workspace per thread");
        let _running = team.running.lock().unwrap_or_else(PoisonError::into_inner);
        let job = Job {
            stages,
            tasks,
            workspaces,
            task,
            shared: Shared { next: AtomicUsize::new(0), barrier: Barrier::new(team.threads) },
            #[cfg(feature = "profile")]
            probes: Mutex::new(Vec::new()),
        };
        team.left.store(0, Ordering::Relaxed);
        team.job.store(&job as *const Job as usize, Ordering::Relaxed);
        // SeqCst: pairs with the workers' `sleeping` check (see `Team::work`).
        team.epoch.fetch_add(1, Ordering::SeqCst);
        {
            let _guard = team.lock.lock().unwrap_or_else(PoisonError::into_inner);
            team.wake.notify_all();
        }
        let mine = team.stages(&job, 0);
        team.await_workers();
        team.job.store(0, Ordering::Relaxed);
        let probe = mine?;
        if team.dead.load(Ordering::Acquire) {
            return Err(WorkerFailed);
        }
        #[cfg(feature = "profile")]
        let probes = {
            let mut probes = job.probes.into_inner().unwrap_or_else(PoisonError::into_inner);
            probes.push((0, probe));
            probes.sort_by_key(|(i, _)| *i);
            probes.into_iter().map(|(_, p)| p).collect()
        };
        #[cfg(not(feature = "profile"))]
        let probes = vec![probe];
        Ok(probes)
    }

    impl Team {
        /// Waits until every worker has left the forward: `job` must outlive their last
        /// look at it. They leave right after the last barrier; after a failure the live
        /// ones leave at their next barrier (they see `dead`), and the dead never do: then
        /// this waits for the live ones a while (each worker's part of a stage) and gives up.
        fn await_workers(&self) {
            let all = self.threads - 1;
            for _ in 0..SPINS / 16 {
                if self.left.load(Ordering::Acquire) == all {
                    return;
                }
                core::hint::spin_loop();
            }
            let mut patience = 0u32;
            let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            while self.left.load(Ordering::Acquire) + self.lost.load(Ordering::Acquire) < all {
                if self.dead.load(Ordering::Acquire) {
                    patience += 1;
                    if patience > 10 {
                        return;
                    }
                }
                guard = self.wake.wait_timeout(guard, SLICE).unwrap_or_else(PoisonError::into_inner).0;
            }
        }

        fn retire(&self) {
            self.dead.store(true, Ordering::Release);
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
        }

        /// A worker's life: wait for a forward, run its share, until the team is retired.
        fn work(&'static self, index: usize) {
            MEMBER_OF.set(Some(self));
            let mut seen = 0;
            loop {
                let mut spins = 0;
                loop {
                    if self.dead.load(Ordering::Acquire) {
                        return;
                    }
                    if self.epoch.load(Ordering::SeqCst) != seen {
                        break;
                    }
                    if spins < SPINS {
                        spins += 1;
                        core::hint::spin_loop();
                    } else {
                        // Re-checked under the lock the caller takes to notify: no lost wake-up.
                        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                        if self.epoch.load(Ordering::SeqCst) == seen && !self.dead.load(Ordering::Acquire) {
                            drop(self.wake.wait_timeout(guard, SLICE));
                        }
                    }
                }
                seen = self.epoch.load(Ordering::SeqCst);
                let job = self.job.load(Ordering::Relaxed) as *const Job;
                // SAFETY: the caller published `job` before bumping the epoch and keeps it
                // alive until every worker has counted itself out in `left` below.
                let result = unsafe { job.as_ref() }.map(|job| {
                    let result = self.stages(job, index);
                    #[cfg(feature = "profile")]
                    if let Ok(probe) = result {
                        job.probes.lock().unwrap_or_else(PoisonError::into_inner).push((index, probe));
                        return Ok(());
                    }
                    result.map(drop)
                });
                self.left.fetch_add(1, Ordering::AcqRel);
                {
                    let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                    self.wake.notify_all();
                }
                if matches!(result, Some(Err(_))) {
                    return;
                }
            }
        }

        /// Thread `index`'s part of a forward: every stage, tasks from the shared counter,
        /// then the barrier.
        fn stages(&self, job: &Job, index: usize) -> Result<Probe, WorkerFailed> {
            let mut ws = job.workspaces[index].lock().unwrap_or_else(PoisonError::into_inner);
            let mut probe = Probe::new(job.stages.len());
            for stage in job.stages {
                let total: usize = stage.iter().map(|&s| job.tasks[s]).sum();
                loop {
                    let mut i = job.shared.next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    // Task i of the stage: step by step, in program order.
                    for &step in stage {
                        if i < job.tasks[step] {
                            fault::maybe_panic(index);
                            let start = probe.task_start();
                            (job.task)(step, i, &mut ws);
                            probe.task_end(start);
                            break;
                        }
                        i -= job.tasks[step];
                    }
                }
                job.shared.barrier.wait(job, self)?;
                probe.stage_end();
            }
            Ok(probe)
        }
    }

    /// A barrier for one forward's threads: the last to arrive resets the stage's task
    /// counter, then bumps the generation the others wait on. They spin first (stages
    /// follow each other within microseconds, and every thread is awake), then sleep on a
    /// condition variable (in wasm: `memory.atomic.wait32`) in slices, looking for a dead
    /// team or a stall between them. The release store / acquire loads of `generation`
    /// publish every write of the stage (and the reset) to the next one.
    struct Barrier {
        arrived: AtomicUsize,
        generation: AtomicU32,
        sleepers: AtomicU32,
        lock: Mutex<()>,
        wake: Condvar,
        threads: usize,
    }

    impl Barrier {
        fn new(threads: usize) -> Self {
            Self { arrived: AtomicUsize::new(0), generation: AtomicU32::new(0), sleepers: AtomicU32::new(0), lock: Mutex::new(()), wake: Condvar::new(), threads }
        }

        fn wait(&self, job: &Job, team: &Team) -> Result<(), WorkerFailed> {
            let gen = self.generation.load(Ordering::Acquire);
            if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
                self.arrived.store(0, Ordering::Relaxed);
                job.shared.next.store(0, Ordering::Relaxed);
                // SeqCst on the generation and `sleepers` (here and in the sleeper): each side
                // stores then loads the other's word, which only SeqCst keeps from both
                // missing the other's store (a sleeper that would never be woken).
                self.generation.store(gen.wrapping_add(1), Ordering::SeqCst);
                if self.sleepers.load(Ordering::SeqCst) > 0 {
                    // Taking the lock orders this notify after a sleeper's check below.
                    let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                    self.wake.notify_all();
                }
                return Ok(());
            }
            for _ in 0..SPINS {
                if self.generation.load(Ordering::Acquire) != gen {
                    return Ok(());
                }
                core::hint::spin_loop();
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let result = self.sleep(gen, job, team);
            self.sleepers.fetch_sub(1, Ordering::AcqRel);
            result
        }

        fn sleep(&self, gen: u32, job: &Job, team: &Team) -> Result<(), WorkerFailed> {
            let (mut progress, mut stalled) = (job.shared.next.load(Ordering::Relaxed), 0);
            let mut guard: MutexGuard<()> = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            while self.generation.load(Ordering::SeqCst) == gen {
                if team.dead.load(Ordering::Acquire) {
                    return Err(WorkerFailed);
                }
                let (g, timeout) = self.wake.wait_timeout(guard, SLICE).unwrap_or_else(PoisonError::into_inner);
                guard = g;
                if timeout.timed_out() {
                    let now = job.shared.next.load(Ordering::Relaxed);
                    stalled = if now == progress { stalled + 1 } else { 0 };
                    progress = now;
                    if stalled >= STALL_SLICES {
                        drop(guard);
                        team.retire();
                        return Err(WorkerFailed);
                    }
                }
            }
            Ok(())
        }
    }

    /// Fault injection for the tests: makes a worker panic, or stop for good (as a thread
    /// that was ended), inside a forward.
    pub mod fault {
        use std::sync::atomic::{AtomicU32, Ordering};

        /// Tasks to go before the fault; 0: none armed.
        static COUNTDOWN: AtomicU32 = AtomicU32::new(0);
        static HANG: AtomicU32 = AtomicU32::new(0);

        /// The `n`-th task (`n ≥ 1`) a worker (not the calling thread) starts from now on panics.
        pub fn panic_in_worker_after(n: u32) {
            HANG.store(0, Ordering::SeqCst);
            COUNTDOWN.store(n, Ordering::SeqCst);
        }

        /// The `n`-th task a worker starts from now on never returns (the thread is lost).
        pub fn hang_in_worker_after(n: u32) {
            HANG.store(1, Ordering::SeqCst);
            COUNTDOWN.store(n, Ordering::SeqCst);
        }

        #[inline]
        pub(super) fn maybe_panic(index: usize) {
            if index > 0 && COUNTDOWN.load(Ordering::Relaxed) != 0 && COUNTDOWN.fetch_sub(1, Ordering::SeqCst) == 1 {
                if HANG.load(Ordering::SeqCst) == 1 {
                    loop {
                        std::thread::park();
                    }
                }
                panic!("inception-wasm: injected worker fault");
            }
        }
    }
}
