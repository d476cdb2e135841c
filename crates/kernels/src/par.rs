//! The one place that knows whether work is spread over threads: with the `threads`
//! feature, rayon's pool; without it, a plain loop. Kernels split their output into
//! disjoint chunks and describe the work per chunk, so results never depend on the
//! thread count.
//!
//! Handing work to the pool is not free: in wasm a parallel region wakes the workers and
//! puts the caller to sleep through `memory.atomic.wait/notify`, measured at tens of
//! microseconds per region in Node 20 — about what a million multiply-adds take. So
//! kernels open one region per layer where they can, and only for work above
//! [`MIN_PARALLEL_WORK`].

/// Work (multiply-adds, or elements moved) below which a kernel stays on the calling
/// thread.
#[cfg_attr(not(feature = "threads"), allow(dead_code))]
pub const MIN_PARALLEL_WORK: usize = 1 << 20;

/// Threads that share the work (1 without the `threads` feature).
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
}

/// Chunk length that splits `items` items of `item_len` into about 4 tasks per thread
/// (enough to balance uneven tasks), in whole items.
pub fn task_len(items: usize, item_len: usize) -> usize {
    items.div_ceil(4 * threads()).max(1) * item_len
}

/// Runs `f(index, chunk)` for every `chunk_len`-sized chunk of `data` (the last may be
/// shorter): in parallel when `work ≥ MIN_PARALLEL_WORK` and the `threads` feature is on.
pub fn for_each_chunk<T: Send>(data: &mut [T], chunk_len: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let chunk_len = chunk_len.max(1);
    #[cfg(feature = "threads")]
    if work >= MIN_PARALLEL_WORK {
        use rayon::prelude::*;
        data.par_chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c));
        return;
    }
    let _ = work;
    data.chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c));
}

/// As [`for_each_chunk`] over two slices cut into the same number of chunks, pairwise.
pub fn for_each_chunk2<T: Send, U: Send>(
    a: &mut [T],
    a_len: usize,
    b: &mut [U],
    b_len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T], &mut [U]) + Sync + Send,
) {
    let (a_len, b_len) = (a_len.max(1), b_len.max(1));
    #[cfg(feature = "threads")]
    if work >= MIN_PARALLEL_WORK {
        use rayon::prelude::*;
        a.par_chunks_mut(a_len).zip(b.par_chunks_mut(b_len)).enumerate().for_each(|(i, (x, y))| f(i, x, y));
        return;
    }
    let _ = work;
    a.chunks_mut(a_len).zip(b.chunks_mut(b_len)).enumerate().for_each(|(i, (x, y))| f(i, x, y));
}
