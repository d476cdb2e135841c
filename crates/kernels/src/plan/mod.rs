//! A network compiled, for one input shape, into a plan: the list of kernel calls with
//! every activation at a fixed place, run by one call.
//!
//! Layers describe themselves to a [`PlanBuilder`] (the TypeScript module tree does this
//! through the wasm glue): values are flat `f32` buffers, steps are [`Op`]s that read whole
//! values and write whole values or channel slices of them (an Inception block's four
//! branches write side by side into one value: its concatenation, with no copy). `build`
//! then
//! - groups the steps into *stages*: a step's stage is one past the last stage that wrote
//!   anything it reads, so the steps of a stage are independent (the four 1×1 convs and the
//!   pool that read an Inception block's input share one);
//! - places every intermediate value in one arena, reusing memory between values whose
//!   lifetimes (in stages) do not overlap, so a forward allocates nothing;
//! - splits every step into tasks that write disjoint parts of its output, as many as
//!   keep the threads busy (one per step on one thread).
//!
//! Running a plan runs the stages in order; within a stage any thread may run any task
//! (see `exec`), and since a task's arithmetic does not depend on which tasks exist, the
//! results are bit-identical for every thread count.

mod exec;
mod ops;
pub(crate) use ops::conv_scratch_floats;
pub mod profile;
mod schedule;
#[cfg(test)]
mod tests;

use std::sync::Mutex;

pub use exec::{threads, WorkerFailed};
#[cfg(feature = "threads")]
pub use exec::team;
pub use ops::{Op, Slice};

use crate::alloc::OutOfMemory;
use crate::workspace::Workspace;

/// A value of a plan being built: an index into the builder's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// The plan's one input.
pub const INPUT: ValueId = ValueId(0);

/// Which parts of a value have been written so far (each element must be written once,
/// and completely, before anything reads it).
#[derive(Clone, Debug, Default)]
enum Written {
    #[default]
    Nothing,
    Whole,
    /// Channel ranges of a value seen as `channels` channels.
    Channels { channels: usize, ranges: Vec<(usize, usize)> },
}

impl Written {
    fn complete(&self) -> bool {
        match self {
            Written::Nothing => false,
            Written::Whole => true,
            Written::Channels { channels, ranges } => ranges.iter().map(|(lo, hi)| hi - lo).sum::<usize>() == *channels,
        }
    }
}

#[derive(Clone, Debug)]
struct ValueInfo {
    len: usize,
    written: Written,
    read: bool,
}

/// Collects values and steps; [`PlanBuilder::build`] checks and schedules them.
#[derive(Debug)]
pub struct PlanBuilder {
    values: Vec<ValueInfo>,
    steps: Vec<Op>,
    kept: Vec<ValueId>,
}

/// Why a step or a plan was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// Sizes or data flow that do not fit: a message naming the op and the offending sizes.
    Invalid(String),
    /// Preparing a layer for this input size (its packed weights) needed memory there is not.
    OutOfMemory(OutOfMemory),
}

impl From<String> for BuildError {
    fn from(message: String) -> Self {
        BuildError::Invalid(message)
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Invalid(message) => f.write_str(message),
            BuildError::OutOfMemory(e) => e.fmt(f),
        }
    }
}

impl PlanBuilder {
    /// A plan whose input ([`INPUT`]) holds `input_len` floats.
    pub fn new(input_len: usize) -> Self {
        let input = ValueInfo { len: input_len, written: Written::Whole, read: false };
        Self { values: vec![input], steps: Vec::new(), kept: Vec::new() }
    }

    /// A new intermediate value of `len` floats.
    pub fn value(&mut self, len: usize) -> ValueId {
        self.values.push(ValueInfo { len, written: Written::Nothing, read: false });
        ValueId(self.values.len() - 1)
    }

    pub fn len_of(&self, v: ValueId) -> Option<usize> {
        self.values.get(v.0).map(|i| i.len)
    }

    /// Appends a step after checking that its sizes agree with its values, that what it
    /// reads is completely written, and that what it writes has not been read yet and
    /// is not written twice.
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn push(&mut self, op: Op) -> Result<(), BuildError> {
        op.check_sizes(&|v| self.len_of(v))?;
        // A convolution on small maps runs as one GEMM over the batch into a value of its own,
        // then moves into place (see `Conv2d::batches`).
        if let Op::Conv { layer, n, h, w, relu, src, dst } = &op {
            op.prepare().map_err(BuildError::OutOfMemory)?;
            if layer.batches(*n, *h, *w) {
                let (c, hw) = (layer.spec().c_out, self.len_of(dst.value).unwrap_or(0) / (n * dst.channels));
                let tmp = self.value(c * n * hw);
                self.push(Op::ConvBatch { layer: layer.clone(), n: *n, h: *h, w: *w, relu: *relu, src: *src, dst: tmp })?;
                return self.push(Op::Unbatch { n: *n, c, hw, pixel_major: layer.batch_is_dense(*h, *w), src: tmp, dst: *dst });
            }
        }
        op.prepare().map_err(BuildError::OutOfMemory)?;
        for v in op.reads() {
            if !self.values[v.0].written.complete() {
                return Err(format!("{}: reads value {} before it is completely written", op.name(), v.0).into());
            }
        }
        let (dst, channels) = op.writes();
        if dst == INPUT || op.reads().contains(&dst) {
            return Err(format!("{}: cannot write over its own input", op.name()).into());
        }
        let info = &mut self.values[dst.0];
        if info.read {
            return Err(format!("{}: writes value {} after it was read", op.name(), dst.0).into());
        }
        info.written = match (std::mem::take(&mut info.written), channels) {
            (Written::Nothing, None) => Written::Whole,
            (Written::Nothing, Some((total, lo, hi))) => Written::Channels { channels: total, ranges: vec![(lo, hi)] },
            (Written::Channels { channels, mut ranges }, Some((total, lo, hi))) if channels == total && ranges.iter().all(|&(a, b)| hi <= a || b <= lo) => {
                ranges.push((lo, hi));
                Written::Channels { channels, ranges }
            }
            (before, _) => {
                info.written = before;
                return Err(format!("{}: value {} is already written there", op.name(), dst.0).into());
            }
        };
        for v in op.reads() {
            self.values[v.0].read = true;
        }
        self.steps.push(op);
        Ok(())
    }

    /// Marks `v` as a secondary output, readable after a run with [`Plan::kept`]
    /// (its memory is never reused); returns its index.
    pub fn keep(&mut self, v: ValueId) -> Result<usize, BuildError> {
        self.check_result(v, "a kept output")?;
        let v = if v == INPUT { self.copy_of(v)? } else { v };
        self.kept.push(v);
        Ok(self.kept.len() - 1)
    }

    /// A new value holding a copy of `v`.
    fn copy_of(&mut self, v: ValueId) -> Result<ValueId, BuildError> {
        let len = self.values[v.0].len;
        let copy = self.value(len);
        self.push(Op::CopyChannels { n: 1, c: 1, hw: len, src: v, dst: Slice::whole(copy, 1) })?;
        Ok(copy)
    }

    fn check_result(&self, v: ValueId, what: &str) -> Result<(), BuildError> {
        match self.values.get(v.0) {
            None => Err(format!("{what}: no value {}", v.0).into()),
            Some(i) if !i.written.complete() => Err(format!("{what}: value {} is not completely written", v.0).into()),
            Some(_) => Ok(()),
        }
    }

    /// Schedules the plan with `output` as its result (written straight into the buffer
    /// passed to [`Plan::run`]), split for `threads` threads.
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn build(mut self, output: ValueId, threads: usize) -> Result<Plan, BuildError> {
        self.check_result(output, "the output")?;
        // The output buffer is the caller's, so it can be neither the input nor a kept value.
        let output = if output == INPUT || self.kept.contains(&output) { self.copy_of(output)? } else { output };
        let schedule = schedule::Schedule::new(&self.values.iter().map(|v| v.len).collect::<Vec<_>>(), &self.steps, output, &self.kept);
        let tasks = self.steps.iter().map(|s| s.tasks(threads)).collect();
        let scratch_floats = self.steps.iter().map(Op::scratch_floats).max().unwrap_or(0);
        Ok(Plan {
            scratch_floats,
            input_len: self.values[0].len,
            output_len: self.values[output.0].len,
            steps: self.steps,
            tasks,
            kept: self.kept,
            schedule,
        })
    }
}

/// A scheduled plan. Immutable: run it any number of times.
#[derive(Debug)]
pub struct Plan {
    /// The most scratch one thread's workspace may grow by in one step (an upper bound).
    scratch_floats: usize,
    input_len: usize,
    output_len: usize,
    steps: Vec<Op>,
    /// Tasks per step.
    tasks: Vec<usize>,
    kept: Vec<ValueId>,
    schedule: schedule::Schedule,
}

/// Why a run failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    OutOfMemory(OutOfMemory),
    WorkerFailed(exec::WorkerFailed),
}

/// What runs need besides a plan: the arena (sized by the largest plan run lately) and one
/// scratch workspace per thread. Both grow to what a run needs, so a steady state allocates
/// nothing; after a run that needed far more than the next (see [`Context::trim`]) they
/// shrink again.
#[derive(Debug, Default)]
pub struct Context {
    arena: Vec<f32>,
    workspaces: Vec<Mutex<Workspace>>,
    /// Bytes of scratch known to be obtainable (the largest headroom reserved so far).
    scratch_reserved: usize,
}

/// An arena at most this many floats (64 MiB) is never shrunk: re-growing it would cost
/// more than the memory it holds is worth.
const KEEP_ARENA_FLOATS: usize = 1 << 24;

impl Context {
    /// Bytes the arena holds.
    pub fn arena_bytes(&self) -> usize {
        self.arena.capacity() * size_of::<f32>()
    }

    /// Bytes the threads' scratch workspaces hold.
    pub fn scratch_bytes(&self) -> usize {
        self.workspaces.iter().map(|w| w.lock().map_or(0, |w| w.bytes())).sum()
    }

    /// Frees the arena and the workspaces (the next run makes them again).
    pub fn release(&mut self) {
        *self = Context::default();
    }

    /// Shrinks the arena to `floats` (and drops the workspaces) when it holds more than
    /// four times that and more than [`KEEP_ARENA_FLOATS`]: one outsized forward (a
    /// 1024×1024 batch) must not keep hundreds of MB for every later small one. Cheap
    /// to call after every run.
    pub fn trim(&mut self, floats: usize) {
        if self.arena.capacity() > KEEP_ARENA_FLOATS.max(4 * floats) {
            self.arena = Vec::new();
            self.workspaces.clear();
            self.scratch_reserved = 0;
        }
    }

    /// Makes sure a run of `plan` on `threads` threads will not run out of memory: the
    /// arena is grown fallibly, and room for the workspaces' growth (bounded per step by
    /// [`Op::scratch_floats`]) is proven by reserving it once and freeing it again, so the
    /// allocator has it at hand when the kernels ask.
    /// On failure the arena is freed (it may have grown before the scratch did not fit):
    /// a failed run holds no more memory than before it.
    fn reserve(&mut self, plan: &Plan, threads: usize) -> Result<(), OutOfMemory> {
        let headroom = plan.scratch_floats.saturating_mul(threads).saturating_mul(size_of::<f32>());
        let reserved = crate::alloc::grow_to(&mut self.arena, plan.schedule.arena_len, 0.0).and_then(|()| {
            if headroom > self.scratch_reserved {
                drop(crate::alloc::with_capacity::<u8>(headroom)?);
                self.scratch_reserved = headroom;
            }
            Ok(())
        });
        if reserved.is_err() {
            self.release();
            return reserved;
        }
        while self.workspaces.len() < threads {
            self.workspaces.push(Mutex::default());
        }
        Ok(())
    }
}

/// Runs `task(step, index, workspace)` for every task of every step, stage after stage, on
/// the thread team when there is one (see `exec::run`): for runners other than [`Plan`]
/// (training graphs).
pub fn exec_run(stages: &[Vec<usize>], tasks: &[usize], workspaces: &[Mutex<Workspace>], task: impl Fn(usize, usize, &mut Workspace) + Sync) -> Result<Vec<profile::Probe>, WorkerFailed> {
    exec::run(stages, tasks, workspaces, false, task)
}

impl Plan {
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Floats of arena this plan needs.
    pub fn arena_len(&self) -> usize {
        self.schedule.arena_len
    }

    /// Number of stages (barriers between them when threaded).
    pub fn stages(&self) -> usize {
        self.schedule.stages.len()
    }

    /// Runs the plan on `input` into `output`. Everything the run needs is allocated
    /// first, fallibly: out of memory is reported before any step runs, with `output`
    /// and `ctx` as they were (no trap mid-run that would leave a half-written state). A
    /// worker that dies mid-run makes it fail (`output` is then partly written).
    pub fn run(&self, input: &[f32], output: &mut [f32], ctx: &mut Context) -> Result<(), RunError> {
        assert_eq!(input.len(), self.input_len, "plan: input length");
        assert_eq!(output.len(), self.output_len, "plan: output length");
        let threads = exec::threads();
        ctx.reserve(self, threads).map_err(RunError::OutOfMemory)?;
        let mem = ops::Mem::new(input, output, &mut ctx.arena, &self.schedule.homes, &self.schedule.lens);
        let id = self as *const Plan as usize;
        let serial = threads > 1 && profile::serial_turn(id);
        let result = exec::run(&self.schedule.stages, &self.tasks, &ctx.workspaces[..threads], serial, |step, task, ws| {
            // SAFETY: `Schedule` gives every value read in a stage a home no step of that
            // stage writes (lifetimes in the arena never overlap, reads follow all writes),
            // and the tasks of one step write disjoint parts of its output (`Op::run`).
            unsafe { self.steps[step].run(task, self.tasks[step], &mem, ws) }
        });
        let _probes = match result {
            Ok(probes) => probes,
            Err(failed) => {
                // A dead worker may hold its workspace's lock for good, and one merely
                // stalled might still write: the arena and the workspaces are given up
                // (leaked), and the next run makes new ones.
                std::mem::forget(std::mem::take(&mut ctx.arena));
                std::mem::forget(std::mem::take(&mut ctx.workspaces));
                ctx.scratch_reserved = 0;
                return Err(RunError::WorkerFailed(failed));
            }
        };
        #[cfg(feature = "profile")]
        if threads > 1 {
            profile::record(id, _probes, || self.stage_labels());
        }
        Ok(())
    }

    /// Each stage's steps, described with their task counts (for profiles).
    #[cfg(feature = "profile")]
    fn stage_labels(&self) -> Vec<Vec<String>> {
        let label = |s: usize| format!("{} ×{}", self.steps[s].label(), self.tasks[s]);
        self.schedule.stages.iter().map(|stage| stage.iter().map(|&s| label(s)).collect()).collect()
    }

    /// Kept output `k` of the last run with `ctx`.
    pub fn kept<'a>(&self, k: usize, ctx: &'a Context) -> &'a [f32] {
        let v = self.kept[k];
        let schedule::Home::Arena(at) = self.schedule.homes[v.0] else { unreachable!("kept values live in the arena") };
        &ctx.arena[at..at + self.schedule.lens[v.0]]
    }

    pub fn kept_len(&self, k: usize) -> Option<usize> {
        self.kept.get(k).map(|v| self.schedule.lens[v.0])
    }
}
