//! Packed GEMM: `C[m×n] = A[m×k] · B[k×n]`, then `+ bias[row]` and an optional ReLU in
//! the epilogue.
//!
//! In NCHW a convolution is `out[c_out × (oh·ow)] = W[c_out × k] · cols[k × (oh·ow)]`, so
//! the weights are `A` (packed once, when the layer is built, into panels of `MR` rows)
//! and the activations are `B`. `C` is written with a row stride, so a convolution can
//! write straight into its channel slice of a larger (concatenated) output.
//!
//! The loop nest, for a block of row panels × output columns: for each `NR`-wide strip
//! of `B`, pack the strip (`k × NR`, contiguous), then run every row panel of `A` over
//! it. The strip (≤ 1200 × 32 B for GoogLeNet) stays in L1 while `A` (≤ 1.3 MB, the
//! weights) streams from L2/L3 sequentially; there is no blocking over `k` or `n`.
//! `B` read in place (a 1×1 convolution's input) is packed by the first panel's
//! microkernel as it reads it (`COPY_B`), which costs two stores per `kk` instead of a
//! separate pass; im2col (`conv::im2col`) writes its strips directly.
//!
//! Blocks of row panels × columns are independent and bit-identical however a layer is
//! split (`gemm_block`): each element is one sum in `kk` order, whichever kernel and
//! block compute it. There is no threading here; the caller runs blocks as tasks.
//!
//! The selection table: every strip goes to the 4×8 kernel (`f32_gemm_4x8__simd128`,
//! with `COPY_B` for the first panel when `B` is read in place), except a last strip of
//! ≤ 4 columns, which goes to the 8×4 kernel (`f32_gemm_8x4__simd128`, two panels per
//! call). Measured on GoogLeNet's 1×1 layers as GEMMs inside wasm (Node 20, one thread,
//! best clean sample of ≥ 20 interleaved rounds; ms summed over the network's 1×1 layers,
//! then GFLOP/s of four shapes; the in-cache 4×8 peak measured 43.2–43.5 GFLOP/s):
//!
//! | variant | Σ 1×1 ms | 192·28²→16 | 480·14²→16 | 512·14²→128 | 832·7²→256 |
//! |---|---|---|---|---|---|
//! | B in place, panels outer, `k × 64 Ki`-float column blocks (before) | 20.45 | 35.4 | 36.2 | 35.2 | 30.5 |
//! | B strips packed in a separate pass, `k` blocks of 512 | 19.44 | 33.6 | 31.2 | 37.8 | 33.5 |
//! | packed by the first panel (`COPY_B`), `k` blocks of 512 | 18.94 | 36.2 | 35.0 | 38.8 | 33.6 |
//! | same, no `k` blocking | 18.83 | 36.0 | 35.0 | 38.6 | 34.4 |
//! | same, 8×4 tail kernel for `n % 8 ≤ 4` (this; without it in the same run: 18.23) | **17.94** | 36.5 | 36.1 | 40.7 | 37.2 |
//!
//! In place, B's rows are a whole image row apart, so every panel's microkernel call
//! pulls `k` lines from L2 for 32 bytes each; packed, the panels after the first read the
//! strip from L1, and the copy rides on the first panel's loads. A separate packing pass
//! costs 15–20 % with 4 panels (M = 16). Blocking `k` only re-reads `C`: the 5×5 convs
//! (K up to 1200) measured the same or 1–2 % slower with blocks of 512–1024. The tail
//! kernel: the last strip of N = 49 has one column, which the 4×8 kernel computes at the
//! cost of eight.
//!
//! Where this ends up (`node bench/gemm.mjs`): the 1×1 layers take 17.9 ms, 39.8 GFLOP/s
//! = 92 % of the in-cache peak (85–94 % per shape, except 832·7²→32 and →48 at 74 % and
//! 79 %: 8–12 panels over one in-place read of a 49-column B); relaxed-SIMD builds
//! (fused multiply-add, see `simd128::madd`) 14.2 ms, 50.3 GFLOP/s, 92 % of their
//! 54.6 GFLOP/s peak.

use core::ops::Range;
use crate::alloc::{self, OutOfMemory};

mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod twins;

/// Rows of `A` per microkernel tile. 4×8 was the fastest tile measured on this machine
/// kind (38–41 GFLOP/s in cache, `../shared/TOOLCHAIN.md`): two `f32x4` columns × four
/// rows = 8 accumulators, which leaves x64's 16 vector registers room for the `B` loads
/// and `A` splats; 16-accumulator tiles (4×16, 8×8) spill and measured 26–31 GFLOP/s.
pub const MR: usize = 4;
/// Columns of `B` per microkernel tile (two `f32x4` vectors).
pub const NR: usize = 8;
/// The tail kernel's tile (two row panels × one `f32x4` of columns), for the last `n % NR
/// ≤ 4` columns: N = 49 (GoogLeNet's 7×7 maps) ends in one column, N = 196 in four.
const TAIL_MR: usize = 2 * MR;
const TAIL_NR: usize = 4;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128::{f32_gemm_4x8__simd128 as kernel_4x8, f32_gemm_8x4__simd128 as kernel_8x4};
/// The native build's kernels: the scalar ones, unfused (one rounding per multiply and
/// per add, as simd128's).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn kernel_4x8<const COPY_B: bool>(k: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, tile: &Tile<MR>, b_copy: *mut f32) {
    scalar::f32_gemm_4x8__scalar::<COPY_B, false>(k, a, b, ldb, c, ldc, mr, nr, tile, b_copy)
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn kernel_8x4(k: usize, a0: *const f32, a1: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, tile: &Tile<TAIL_MR>) {
    scalar::f32_gemm_8x4__scalar::<false>(k, a0, a1, b, ldb, c, ldc, mr, nr, tile)
}

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
    /// Packs a row-major `m × k` matrix: each row of `a`, read front to back, lands `MR`
    /// floats apart in its panel of a zeroed buffer (the panel, `k·MR` floats, stays in
    /// cache for its `MR` rows). Pushing float by float in packed order instead cost ~6 ms
    /// more than a plain copy for GoogLeNet's 3.1 M 3×3 weights, this ~1 ms (wasm, Node
    /// 20; natively 4.5 and 1.2 ms).
    pub fn pack(a: &[f32], m: usize, k: usize) -> Self {
        Self::try_pack(a, m, k).expect("PackedA::pack: out of memory")
    }

    /// As [`PackedA::pack`], reporting an allocation failure instead of aborting.
    pub fn try_pack(a: &[f32], m: usize, k: usize) -> Result<Self, OutOfMemory> {
        assert_eq!(a.len(), m * k, "PackedA::pack: a.len() != m*k");
        Ok(Self::pack_reusing(a, m, k, alloc::filled(Self::packed_len(m, k), 0.0f32)?))
    }

    /// As [`PackedA::pack`], into `buf`'s memory (grown only when it holds too little):
    /// training repacks every conv's weights at every forward into the last one's buffer.
    /// Each panel is its `MR` rows transposed (4×4 blocks); only a short last panel's
    /// padding rows are zeroed.
    pub fn pack_reusing(a: &[f32], m: usize, k: usize, mut buf: Vec<f32>) -> Self {
        assert_eq!(a.len(), m * k, "PackedA::pack_reusing: a.len() != m*k");
        let len = Self::packed_len(m, k);
        buf.truncate(len);
        buf.resize(len, 0.0);
        if k > 0 {
            for (panel, dst) in buf.chunks_exact_mut(k * MR).enumerate() {
                let mr = MR.min(m - panel * MR);
                crate::transpose::transpose(&a[panel * MR * k..], k, mr, k, dst, MR);
                if mr < MR {
                    dst.chunks_exact_mut(MR).for_each(|d| d[mr..].fill(0.0));
                }
            }
        }
        Self::from_packed(m, k, buf)
    }

    /// `aᵀ` packed (`m × k`), for `a` row-major `k × m`, into `buf` (which holds
    /// [`PackedA::packed_len`]`(m, k)` floats: training reuses one per layer): a panel's `MR`
    /// values at one `kk` are `MR` consecutive floats of `a`'s row `kk`, copied as runs
    /// (training's `Wᵀ` at every backward; transposing first and packing then cost a
    /// strided pass and an allocation more).
    pub fn pack_transposed(a: &[f32], k: usize, m: usize, mut buf: Vec<f32>) -> Self {
        assert_eq!(a.len(), m * k, "PackedA::pack_transposed: a.len() != m*k");
        assert_eq!(buf.len(), Self::packed_len(m, k), "PackedA::pack_transposed: buffer length");
        if k > 0 {
            for (panel, dst) in buf.chunks_exact_mut(k * MR).enumerate() {
                let (r0, mr) = (panel * MR, MR.min(m - panel * MR));
                for (kk, d) in dst.chunks_exact_mut(MR).enumerate() {
                    let src = &a[kk * m + r0..][..mr];
                    if let (Ok(d), Ok(src)) = (<&mut [f32; MR]>::try_from(&mut *d), <&[f32; MR]>::try_from(src)) {
                        *d = *src; // one 16-byte move (a variable-length copy was a memcpy call per run)
                    } else {
                        d[..mr].copy_from_slice(src);
                        d[mr..].fill(0.0);
                    }
                }
            }
        }
        Self::from_packed(m, k, buf)
    }

    /// The packed buffer, for reuse by [`PackedA::pack_reusing`].
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Floats of an `m × k` matrix packed: whole panels, padding rows included.
    pub fn packed_len(m: usize, k: usize) -> usize {
        m.div_ceil(MR) * k * MR
    }

    /// An `m × k` matrix from `data` already in the packed layout (for producers that
    /// compute it panel by panel, like Winograd's filter transform); padding rows zero.
    pub fn from_packed(m: usize, k: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), Self::packed_len(m, k), "PackedA::from_packed: length");
        Self { m, k, data }
    }

    /// Where element `(row, kk)` lives: panel `row / MR`, then `kk`, then the row in the panel.
    #[inline(always)]
    fn index(&self, row: usize, kk: usize) -> usize {
        ((row / MR) * self.k + kk) * MR + row % MR
    }

    /// The row-major `m × k` matrix this was packed from.
    pub fn unpack(&self) -> Result<Vec<f32>, OutOfMemory> {
        let mut a = alloc::filled(self.m * self.k, 0.0)?;
        for i in 0..self.m {
            for kk in 0..self.k {
                a[i * self.k + kk] = self.data[self.index(i, kk)];
            }
        }
        Ok(a)
    }

    pub fn m(&self) -> usize {
        self.m
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// Row panels: `ceil(m / MR)`.
    pub fn panels(&self) -> usize {
        self.m.div_ceil(MR)
    }

    /// Row panel `p`: for each `kk`, the `MR` values of its rows (zero past `m`).
    pub fn panel_data(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * MR..(p + 1) * self.k * MR]
    }

    fn panel(&self, p: usize) -> *const f32 {
        self.data[p * self.k * MR..].as_ptr()
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

/// A `B` operand, delivered one `NR`-wide strip at a time.
pub(crate) trait PackB {
    /// `k`: rows of `B`.
    fn rows(&self) -> usize;
    /// Columns of `B`.
    fn cols(&self) -> usize;
    /// Writes columns `j .. j + NR` as `rows()` rows of `NR` floats into `dst`, zero past
    /// `cols()`.
    fn pack_strip(&self, j: usize, dst: &mut [f32]);
    /// Strip `j` readable where it is, when `j + NR ≤ cols()`: its first element and row
    /// stride, valid for `rows()` rows of `NR` floats. The first row panel's microkernel
    /// then copies it into the packed strip as it reads it.
    fn in_place(&self, _j: usize) -> Option<(*const f32, usize)> {
        None
    }
}

impl PackB for MatRef<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn pack_strip(&self, j: usize, dst: &mut [f32]) {
        let nr = NR.min(self.cols - j);
        for (kk, d) in dst[..self.rows * NR].chunks_exact_mut(NR).enumerate() {
            d[..nr].copy_from_slice(&self.data[kk * self.ld + j..][..nr]);
            d[nr..].fill(0.0);
        }
    }

    fn in_place(&self, j: usize) -> Option<(*const f32, usize)> {
        (j + NR <= self.cols && self.rows > 0).then(|| (self.data[j..].as_ptr(), self.ld))
    }
}

fn check_view(len: usize, rows: usize, cols: usize, ld: usize, what: &str) {
    assert!(ld >= cols, "gemm: {what}.ld < {what}.cols");
    if rows > 0 && cols > 0 {
        assert!(len >= (rows - 1) * ld + cols, "gemm: {what} is shorter than its view");
    }
}

/// Rows of `C` that row panels `panels` cover.
fn panel_rows(a: &PackedA, panels: &Range<usize>) -> usize {
    (panels.end * MR).min(a.m).saturating_sub(panels.start * MR)
}

fn check(a: &PackedA, panels: &Range<usize>, k: usize, ep: &Epilogue) {
    assert!(panels.start <= panels.end && panels.end <= a.panels(), "gemm: panels out of range");
    assert_eq!(k, a.k, "gemm: b.rows != a.k");
    if let Some(bias) = ep.bias {
        assert_eq!(bias.len(), a.m, "gemm: bias.len() != m");
    }
}

/// `c = epilogue(a · b)` on the calling thread. `scratch` holds one packed strip of `b`;
/// it only grows, so a steady state allocates nothing.
pub fn gemm(a: &PackedA, b: MatRef, c: MatMut, ep: Epilogue, scratch: &mut Vec<f32>) {
    gemm_panels(a, 0..a.panels(), b, c, ep, scratch);
}

/// [`gemm`] for the rows of `a`'s row panels `panels` only (`c` holds just those rows).
pub fn gemm_panels(a: &PackedA, panels: Range<usize>, b: MatRef, c: MatMut, ep: Epilogue, scratch: &mut Vec<f32>) {
    assert_eq!((c.rows, c.cols), (panel_rows(a, &panels), b.cols), "gemm: c is not rows(panels) × b.cols");
    check_view(c.data.len(), c.rows, c.cols, c.ld, "c");
    // SAFETY: the view check above makes `c` hold every element the block writes, and
    // the exclusive borrow keeps anything else from touching them.
    unsafe { gemm_block(a, panels, b, 0..b.cols, c.data.as_mut_ptr(), c.ld, ep, scratch) }
}

/// One block of `C = epilogue(A · B)`: the rows of row panels `panels` × the columns
/// `cols`, on the calling thread. Blocks that share no row panel or no column write
/// disjoint elements, so a caller may run them concurrently (each with its own
/// `scratch`) and the result does not depend on the split: every element is the same
/// sum, in the same order, whichever block computes it.
///
/// `c` points at `C[panels.start·MR][cols.start]`; row `r` of the block is `r·ldc`
/// floats further.
///
/// # Safety
/// `c + r·ldc + j` must be valid for writes for every row `r < min(panels.end·MR, m) −
/// panels.start·MR` and column `j < cols.len()`, and nothing else may read or write those
/// elements during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_block(a: &PackedA, panels: Range<usize>, b: MatRef, cols: Range<usize>, c: *mut f32, ldc: usize, ep: Epilogue, scratch: &mut Vec<f32>) {
    check_view(b.data.len(), b.rows, b.cols, b.ld, "b");
    gemm_block_with(a, panels, &b, cols, c, ldc, ep, scratch);
}

/// [`gemm_block`] over any [`PackB`] operand.
///
/// # Safety
/// As [`gemm_block`]; `b` must deliver what [`PackB`] promises.
///
/// Not inlined: as its own function this loop nest is compiled by V8 with fewer values
/// live across the inner loop. With today's build that measured the same (±1 %); with
/// `wasm-opt --low-memory-unused` in `scripts/build-wasm.sh` (which lets wasm-opt fold
/// the constant address offsets into the loads) the 1×1 layers ran 8 % faster out of
/// line than inlined, and 8 % faster than today's build.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub(crate) unsafe fn gemm_block_with<B: PackB + ?Sized>(a: &PackedA, panels: Range<usize>, b: &B, cols: Range<usize>, c: *mut f32, ldc: usize, ep: Epilogue, scratch: &mut Vec<f32>) {
    check(a, &panels, b.rows(), &ep);
    assert!(cols.start <= cols.end && cols.end <= b.cols(), "gemm: columns out of range");
    assert!(ldc >= cols.len() || panel_rows(a, &panels) <= 1, "gemm: ldc < columns");
    if panels.is_empty() || cols.is_empty() {
        return;
    }
    let k = a.k;
    if scratch.len() < k * NR {
        scratch.resize(k * NR, 0.0);
    }
    // Every access below is in bounds: panel p < a.panels() of A holds k·MR floats; the
    // strip holds k·NR; an in-place strip is k rows of NR floats at stride ld (PackB's
    // promise); tile (p, j) is rows p·MR .. p·MR + mr ≤ min(panels.end·MR, m) and columns
    // j .. j + nr ≤ cols.end of the block the caller gave us.
    let strip = scratch.as_mut_ptr();
    let packed = || core::slice::from_raw_parts_mut(strip, k * NR);
    let row_end = (panels.end * MR).min(a.m);
    for j in cols.clone().step_by(NR) {
        let nr = NR.min(cols.end - j);
        let c_col = c.add(j - cols.start);
        let tile_at = |p: usize| c_col.add((p - panels.start) * MR * ldc);
        if nr <= TAIL_NR {
            b.pack_strip(j, packed());
            for p in panels.clone().step_by(2) {
                let mr = (row_end - p * MR).min(TAIL_MR);
                let a1 = a.panel(if mr > MR { p + 1 } else { p });
                kernel_8x4(k, a.panel(p), a1, strip, NR, tile_at(p), ldc, mr, nr, &Tile::rows(ep, p * MR, mr));
            }
            continue;
        }
        let mut rest = panels.clone();
        if let Some((src, ld)) = b.in_place(j) {
            let p = rest.next().expect("gemm: panels is not empty");
            let mr = (row_end - p * MR).min(MR);
            kernel_4x8::<true>(k, a.panel(p), src, ld, tile_at(p), ldc, mr, nr, &Tile::rows(ep, p * MR, mr), strip);
        } else {
            b.pack_strip(j, packed());
        }
        for p in rest {
            let mr = (row_end - p * MR).min(MR);
            kernel_4x8::<false>(k, a.panel(p), strip, NR, tile_at(p), ldc, mr, nr, &Tile::rows(ep, p * MR, mr), core::ptr::null_mut());
        }
    }
}

/// The epilogue of one tile: the bias of its `R` rows (zero past the last), and ReLU.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile<const R: usize> {
    pub bias: [f32; R],
    pub relu: bool,
}

impl<const R: usize> Tile<R> {
    /// Rows `row0 .. row0 + mr` of the epilogue.
    fn rows(ep: Epilogue, row0: usize, mr: usize) -> Self {
        let mut bias = [0.0; R];
        if let Some(b) = ep.bias {
            bias[..mr].copy_from_slice(&b[row0..row0 + mr]);
        }
        Self { bias, relu: ep.relu }
    }
}

/// Writes the `mr × nr` corner of a finished tile to `c`. Shared by every microkernel so
/// edge tiles follow one code path.
///
/// # Safety
/// `c` must be valid for writes at `c + r·ldc + j` for `r < mr`, `j < nr`.
#[inline(always)]
unsafe fn store_tile<const R: usize, const C: usize>(acc: &[[f32; C]; R], c: *mut f32, ldc: usize, mr: usize, nr: usize) {
    for (r, row) in acc.iter().enumerate().take(mr) {
        core::ptr::copy_nonoverlapping(row.as_ptr(), c.add(r * ldc), nr);
    }
}

/// The in-cache ceiling the benchmark report compares against: the 4×8 microkernel with
/// its real epilogue (bias + ReLU) over a 4-panel × 4-strip, k = 256 problem (`A` 16 KiB +
/// `B` 32 KiB, L1/L2-resident, `C` 2 KiB), `reps` times; returns the flops done (the
/// caller times it). Measured 43.3–43.6 GFLOP/s here, the same (±0.3) with one panel ×
/// one strip at k = 256, 512 or 1024.
pub fn microkernel_peak(reps: usize) -> f64 {
    const K: usize = 256;
    const PANELS: usize = 4;
    const STRIPS: usize = 4;
    let a: Vec<f32> = (0..PANELS * K * MR).map(|i| (i % 7) as f32 * 0.25).collect();
    let b: Vec<f32> = (0..STRIPS * K * NR).map(|i| (i % 5) as f32 * 0.5).collect();
    let mut c = vec![0.0f32; PANELS * MR * STRIPS * NR];
    let tile = Tile { bias: [0.5; MR], relu: true };
    let ldc = STRIPS * NR;
    // Opaque sizes, so the loop is compiled like the real one (run-time k and stride).
    let (k, ldb) = (core::hint::black_box(K), core::hint::black_box(NR));
    for _ in 0..reps {
        for s in 0..STRIPS {
            for p in 0..PANELS {
                // SAFETY: panel p of `a` holds K·MR floats, strip s of `b` K·NR; the tile
                // (p, s) of `c` is MR rows of NR floats at stride ldc.
                unsafe {
                    kernel_4x8::<false>(k, a[p * K * MR..].as_ptr(), b[s * K * NR..].as_ptr(), ldb, c[p * MR * ldc + s * NR..].as_mut_ptr(), ldc, MR, NR, &tile, core::ptr::null_mut());
                }
            }
        }
        core::hint::black_box(&mut c);
    }
    (reps * PANELS * STRIPS * 2 * K * MR * NR) as f64
}

#[cfg(test)]
pub(crate) mod tests;
