//! How work is cut into tasks for the threads: shared by the plans (which split steps)
//! and the kernels that know their own parts (a convolution's strips, panels, blocks).

/// Work (multiply-adds, or elements touched) worth a task of its own: a task costs a few
/// atomic operations (well under a microsecond) to hand out, so ~32 k multiply-adds
/// (~1 µs at the GEMM's speed) keeps that overhead below a few per cent.
const MIN_TASK_WORK: usize = 1 << 15;

/// Tasks for `items` independent items of `item_work` each on `threads` threads: 4 per
/// thread (so uneven tasks balance), never so small that handing them out dominates, and
/// one on one thread (each kernel blocks for its cache itself).
pub fn split(items: usize, item_work: usize, threads: usize) -> usize {
    if threads <= 1 || items <= 1 {
        return items.min(1);
    }
    let worth = (items * item_work / MIN_TASK_WORK).max(1);
    (4 * threads).min(items).min(worth)
}

/// Item range of task `t` of `tasks` over `items`: contiguous, sizes differ by at most one.
pub fn share(items: usize, t: usize, tasks: usize) -> core::ops::Range<usize> {
    (t * items / tasks)..((t + 1) * items / tasks)
}
