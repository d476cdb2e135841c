//! The one place that knows whether work is spread over threads: with the `threads`
//! feature, rayon's pool; without it, a plain loop. Kernels split their output into
//! disjoint chunks and describe the work per chunk, so results never depend on the
//! thread count.

/// Runs `f(index, chunk)` for every `chunk_len`-sized chunk of `data` (the last may be
/// shorter), in parallel with the `threads` feature.
pub fn for_each_chunk<T: Send>(data: &mut [T], chunk_len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let chunk_len = chunk_len.max(1);
    #[cfg(feature = "threads")]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c));
    }
    #[cfg(not(feature = "threads"))]
    data.chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c));
}
