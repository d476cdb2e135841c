//! Packed GEMM: `C[m×n] = A[m×k] · B[k×n]`, then `+ bias[row]` and an optional ReLU in
//! the epilogue.
//!
//! In NCHW a convolution is `out[c_out × (oh·ow)] = W[c_out × k] · cols[k × (oh·ow)]`, so
//! the weights are `A` (packed once, when the layer is built) and the activations are `B`,
//! read in place with a row stride: a 1×1 convolution passes its input straight in, with
//! no im2col and no copy. Only the last `n % NR` columns are copied, into one zero-padded
//! panel per call, so that every microkernel call reads a full `NR`-wide row.
//!
//! `C` is written with a row stride too, so a convolution can write straight into its
//! channel slice of a larger (concatenated) output.

mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

/// Rows of `A` per microkernel tile. 4×8 was the fastest tile measured on this machine
/// kind (38–41 GFLOP/s in cache, `../shared/TOOLCHAIN.md`): two `f32x4` columns × four
/// rows = 8 accumulators, which leaves x64's 16 vector registers room for the `B` loads
/// and `A` splats; 16-accumulator tiles (4×16, 8×8) spill and measured 26–31 GFLOP/s.
pub const MR: usize = 4;
/// Columns of `B` per microkernel tile (two `f32x4` vectors).
pub const NR: usize = 8;

/// Kernel selection: one microkernel per build. The scalar kernel is compiled everywhere
/// (it is the native build's kernel and the oracle the tests compare against); the
/// simd128 kernel replaces it in wasm builds with `+simd128`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128::f32_gemm_4x8__simd128 as microkernel;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use scalar::f32_gemm_4x8__scalar as microkernel;

/// Columns of `B` swept per pass over all row panels of `A`: a `k × NC` block of `B`
/// (≤ 64 Ki floats = 256 KiB) stays in L2 while every `A` panel streams over it.
const B_BLOCK_FLOATS: usize = 64 * 1024;

/// `A` (`m × k`, row-major) packed into panels of `MR` rows: panel `p` holds, for each
/// `kk`, the `MR` values `A[p·MR + r][kk]` side by side (rows past `m` are zero), so the
/// microkernel reads `A` strictly sequentially.
#[derive(Clone, Debug)]
pub struct PackedA {
    m: usize,
    k: usize,
    data: Vec<f32>,
}

impl PackedA {
    /// Packs a row-major `m × k` matrix.
    pub fn pack(a: &[f32], m: usize, k: usize) -> Self {
        assert_eq!(a.len(), m * k, "PackedA::pack: a.len() != m*k");
        let panels = m.div_ceil(MR);
        let mut data = vec![0.0; panels * k * MR];
        for (i, row) in a.chunks_exact(k.max(1)).enumerate().take(m) {
            let (p, r) = (i / MR, i % MR);
            let panel = &mut data[p * k * MR..(p + 1) * k * MR];
            for (kk, &v) in row.iter().enumerate() {
                panel[kk * MR + r] = v;
            }
        }
        Self { m, k, data }
    }

    /// The row-major `m × k` matrix this was packed from.
    pub fn unpack(&self) -> Vec<f32> {
        let mut a = vec![0.0; self.m * self.k];
        for i in 0..self.m {
            let (p, r) = (i / MR, i % MR);
            for kk in 0..self.k {
                a[i * self.k + kk] = self.data[(p * self.k + kk) * MR + r];
            }
        }
        a
    }

    pub fn m(&self) -> usize {
        self.m
    }

    pub fn k(&self) -> usize {
        self.k
    }
}

/// What the epilogue does to each finished tile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One value per row of `C` (per output channel), added after the dot products.
    pub bias: Option<&'a [f32]>,
    /// `max(x, 0)` after the bias.
    pub relu: bool,
}

/// A row-major matrix view with a row stride (`ld ≥ cols`).
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
}

/// A mutable row-major matrix view with a row stride (`ld ≥ cols`).
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
}

fn check_view(len: usize, rows: usize, cols: usize, ld: usize, what: &str) {
    assert!(ld >= cols, "gemm: {what}.ld < {what}.cols");
    if rows > 0 && cols > 0 {
        assert!(len >= (rows - 1) * ld + cols, "gemm: {what} is shorter than its view");
    }
}

/// `c = epilogue(a · b)`. `scratch` holds the zero-padded tail panel of `b`; it only
/// grows, so a steady state allocates nothing.
pub fn gemm(a: &PackedA, b: MatRef, c: MatMut, ep: Epilogue, scratch: &mut Vec<f32>) {
    let (m, k, n) = (a.m, a.k, b.cols);
    assert_eq!(b.rows, k, "gemm: b.rows != a.k");
    assert_eq!((c.rows, c.cols), (m, n), "gemm: c is not a.m × b.cols");
    check_view(b.data.len(), b.rows, b.cols, b.ld, "b");
    check_view(c.data.len(), c.rows, c.cols, c.ld, "c");
    if let Some(bias) = ep.bias {
        assert_eq!(bias.len(), m, "gemm: bias.len() != m");
    }
    if m == 0 || n == 0 {
        return;
    }

    let n_full = n - n % NR;
    let n_tail = n - n_full;
    if n_tail > 0 {
        scratch.clear();
        scratch.resize(k * NR, 0.0);
        for kk in 0..k {
            let row = &b.data[kk * b.ld + n_full..kk * b.ld + n];
            scratch[kk * NR..kk * NR + n_tail].copy_from_slice(row);
        }
    }

    let nc = (B_BLOCK_FLOATS / k.max(1)).max(NR) / NR * NR;
    let tail: &[f32] = scratch;
    // One row panel of C (rows p·MR.., `rows` starts at its first row) over columns
    // [jc, jc_end): the unit of work, sequential or spread over threads.
    let panel = |p: usize, rows: &mut [f32], jc: usize, jc_end: usize| {
        let row0 = p * MR;
        let mr = MR.min(m - row0);
        let mut bias = [0.0f32; MR];
        if let Some(b) = ep.bias {
            bias[..mr].copy_from_slice(&b[row0..row0 + mr]);
        }
        let a_panel = &a.data[p * k * MR..(p + 1) * k * MR];
        debug_assert!(rows.len() >= (mr - 1) * c.ld + n);
        for j in (jc..jc_end).step_by(NR) {
            let nr = NR.min(n - j);
            let (b_ptr, ldb) = if nr == NR { (b.data[j..].as_ptr(), b.ld) } else { (tail.as_ptr(), NR) };
            // SAFETY: the asserts above bound every access: the A panel holds k·MR
            // floats; B rows kk < k start at kk·ldb and the kernel reads NR floats from
            // each — inside b (full tiles: j + NR ≤ n, checked view) or the k·NR tail
            // panel; C rows r < mr, columns j..j + nr lie inside `rows`, which holds
            // (mr − 1)·ld + n floats (the c view is checked, and panels split it at
            // multiples of MR·ld).
            unsafe {
                microkernel(k, a_panel.as_ptr(), b_ptr, ldb, rows.as_mut_ptr().add(j), c.ld, mr, nr, &bias, ep.relu);
            }
        }
    };
    let panel_len = MR * c.ld;
    for jc in (0..n).step_by(nc) {
        let jc_end = (jc + nc).min(n);
        if m * n * k >= PARALLEL_MIN_MACS {
            crate::par::for_each_chunk(c.data, panel_len, |p, rows| panel(p, rows, jc, jc_end));
        } else {
            c.data.chunks_mut(panel_len).enumerate().for_each(|(p, rows)| panel(p, rows, jc, jc_end));
        }
    }
}

/// Below this many multiply-adds a GEMM stays on the calling thread: handing work to the
/// pool costs a few microseconds, about what 64 k multiply-adds take.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// Writes an `MR × NR` tile of finished accumulators (bias already added) to `c`,
/// applying ReLU and clipping to `mr × nr`. Shared by every microkernel so edge tiles
/// follow one code path.
///
/// # Safety
/// `c` must be valid for writes at `c + r·ldc + j` for `r < mr`, `j < nr`.
#[inline(always)]
unsafe fn store_tile(acc: &[[f32; NR]; MR], c: *mut f32, ldc: usize, mr: usize, nr: usize) {
    for (r, row) in acc.iter().enumerate().take(mr) {
        core::ptr::copy_nonoverlapping(row.as_ptr(), c.add(r * ldc), nr);
    }
}

#[cfg(test)]
mod tests;
