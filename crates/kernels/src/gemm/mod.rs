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

use core::ops::Range;

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
/// grows, so a steady state allocates nothing. Large products are split by row panels
/// over the thread pool (one parallel region per call).
pub fn gemm(a: &PackedA, b: MatRef, c: MatMut, ep: Epilogue, scratch: &mut Vec<f32>) {
    let panels = 0..a.m.div_ceil(MR);
    check(a, &panels, &b, &c, &ep);
    if a.m == 0 || b.cols == 0 {
        return;
    }
    pack_tail(&b, scratch);
    let job = Job { a, b, ep, tail: scratch, ld: c.ld };
    let work = a.m * a.k * b.cols;
    let per_task = crate::par::task_len(panels.len(), 1);
    crate::par::for_each_chunk(c.data, per_task * MR * c.ld, work, |task, rows| {
        let first = task * per_task;
        job.run(first..(first + per_task).min(panels.end), rows);
    });
}

/// [`gemm`] for the rows of `a`'s row panels `panels` only (`c` holds just those rows),
/// on the calling thread: for callers that split the work themselves.
pub fn gemm_panels(a: &PackedA, panels: Range<usize>, b: MatRef, c: MatMut, ep: Epilogue, scratch: &mut Vec<f32>) {
    check(a, &panels, &b, &c, &ep);
    if panels.is_empty() || b.cols == 0 {
        return;
    }
    pack_tail(&b, scratch);
    Job { a, b, ep, tail: scratch, ld: c.ld }.run(panels, c.data);
}

/// Validates the views once; everything after this indexes without checks.
fn check(a: &PackedA, panels: &Range<usize>, b: &MatRef, c: &MatMut, ep: &Epilogue) {
    let rows = (panels.end * MR).min(a.m).saturating_sub(panels.start * MR);
    assert!(panels.end <= a.m.div_ceil(MR).max(panels.start), "gemm: panels out of range");
    assert_eq!(b.rows, a.k, "gemm: b.rows != a.k");
    assert_eq!((c.rows, c.cols), (rows, b.cols), "gemm: c is not rows(panels) × b.cols");
    check_view(b.data.len(), b.rows, b.cols, b.ld, "b");
    check_view(c.data.len(), c.rows, c.cols, c.ld, "c");
    if let Some(bias) = ep.bias {
        assert_eq!(bias.len(), a.m, "gemm: bias.len() != m");
    }
}

/// Copies the last `n % NR` columns of `b` into a zero-padded `k × NR` panel.
fn pack_tail(b: &MatRef, scratch: &mut Vec<f32>) {
    let n_full = b.cols - b.cols % NR;
    if n_full == b.cols {
        return;
    }
    scratch.clear();
    scratch.resize(b.rows * NR, 0.0);
    for kk in 0..b.rows {
        let row = &b.data[kk * b.ld + n_full..kk * b.ld + b.cols];
        scratch[kk * NR..kk * NR + row.len()].copy_from_slice(row);
    }
}

/// One checked product, ready to run over any range of row panels.
struct Job<'a> {
    a: &'a PackedA,
    b: MatRef<'a>,
    ep: Epilogue<'a>,
    tail: &'a [f32],
    ld: usize,
}

impl Job<'_> {
    /// Row panels `panels` into `rows` (which starts at the first panel's first row):
    /// column blocks outside, panels inside, so a `k × nc` block of B stays in L2 while
    /// every panel of A streams over it.
    fn run(&self, panels: Range<usize>, rows: &mut [f32]) {
        let (a, b, k, n, ld) = (self.a, &self.b, self.a.k, self.b.cols, self.ld);
        let nc = (B_BLOCK_FLOATS / k.max(1)).max(NR) / NR * NR;
        for jc in (0..n).step_by(nc) {
            let jc_end = (jc + nc).min(n);
            for p in panels.clone() {
                let row0 = p * MR;
                let mr = MR.min(a.m - row0);
                let mut bias = [0.0f32; MR];
                if let Some(bv) = self.ep.bias {
                    bias[..mr].copy_from_slice(&bv[row0..row0 + mr]);
                }
                let a_panel = &a.data[p * k * MR..(p + 1) * k * MR];
                let c_panel = &mut rows[(p - panels.start) * MR * ld..];
                debug_assert!(c_panel.len() >= (mr - 1) * ld + n);
                for j in (jc..jc_end).step_by(NR) {
                    let nr = NR.min(n - j);
                    let (b_ptr, ldb) = if nr == NR { (b.data[j..].as_ptr(), b.ld) } else { (self.tail.as_ptr(), NR) };
                    // SAFETY: `check` bounds every access: the A panel holds k·MR floats;
                    // B rows kk < k start at kk·ldb and the kernel reads NR floats from
                    // each — inside b (full tiles: j + NR ≤ n, checked view) or the k·NR
                    // tail panel; C rows r < mr, columns j..j + nr lie inside `c_panel`,
                    // which holds (mr − 1)·ld + n floats (the c view is checked, and
                    // callers split it at multiples of MR·ld).
                    unsafe {
                        microkernel(k, a_panel.as_ptr(), b_ptr, ldb, c_panel.as_mut_ptr().add(j), ld, mr, nr, &bias, self.ep.relu);
                    }
                }
            }
        }
    }
}

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
