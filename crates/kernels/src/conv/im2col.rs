//! Lowering a convolution's input to the GEMM's `B` matrix without materialising it:
//! `cols[(c·kh + ky)·kw + kx][oy·ow + ox] = x[c][oy·sh + ky - ph][ox·sw + kx - pw]` (zero in
//! the padding) is produced one `NR`-wide strip at a time, straight into the GEMM's
//! packed-strip layout, for one block of output columns.
//!
//! The block first copies the input rows it reads into a zero-padded band
//! (`c_in × band rows × padded width`), so that every element of every strip is a plain
//! read `band[row_base(c, ky, kx) + pixel_offset(q)]` with no bounds logic: each strip
//! fixes its 8 pixel offsets once, then each of its `k` rows is one 8-float copy (one
//! output row, stride 1), one 16-float de-interleave (stride 2), or ≤ 3 copies merged
//! by lane masks (stride 1 across output rows, e.g. every strip of a 7×7 map).
//!
//! Measured in wasm (Node 20, one thread) against materialising the whole matrix and
//! streaming it into the GEMM (conv1's is 147 × 12544 floats, 7.4 MB): conv1 8.8 → 6.4 ms,
//! the 5×5 layers 25–33 → 34–40 GFLOP/s. With one scalar gather per lane for every strip,
//! packing alone had taken 1.03 ms of conv1's 7.1 ms; with the shuffles and masked copies
//! conv1 runs at 36.5 GFLOP/s, against 37.3 for the same product with `B` already in
//! memory (`gemmShape(64, 147, 12544)`), so packing is now ≈ 2 % of the layer.

use core::ops::Range;

use super::Conv2dParams;
use crate::gemm::{PackB, NR};

/// Zero floats before the band, so a merged copy may start up to `NR` floats before its
/// first lane's source.
const LEAD: usize = NR;

/// Output columns `cols` of one image's im2col matrix, backed by a padded band of its input.
pub(crate) struct Im2col<'a> {
    p: &'a Conv2dParams,
    /// `LEAD` zeros, then `c_in × bh × wp` floats, then `NR·sw` zeros.
    band: &'a [f32],
    /// Band rows (padded input rows `oy0·sh ..`) and padded width.
    bh: usize,
    wp: usize,
    /// First output row of the block.
    oy0: usize,
    ow: usize,
    cols: Range<usize>,
}

impl<'a> Im2col<'a> {
    /// Copies the input rows that output columns `cols` read into `band` (which only
    /// grows), zero-padded.
    pub(crate) fn new(x: &[f32], p: &'a Conv2dParams, cols: Range<usize>, band: &'a mut Vec<f32>) -> Self {
        let (oh, ow) = (p.out_h(), p.out_w());
        assert_eq!(x.len(), p.c_in * p.h * p.w, "im2col: input length");
        assert!(cols.start < cols.end && cols.end <= oh * ow, "im2col: columns out of range");
        let (oy0, oy1) = (cols.start / ow, (cols.end - 1) / ow);
        let bh = (oy1 - oy0) * p.sh + p.kh;
        let wp = (ow - 1) * p.sw + p.kw;
        let len = LEAD + p.c_in * bh * wp + NR * p.sw;
        if band.len() < len {
            band.resize(len, 0.0);
        }
        let band = &mut band[..len];
        // Input columns 0 .. copy_w land at padded columns pw .. pw + copy_w.
        let copy_w = p.w.min(wp.saturating_sub(p.pw));
        for (c, plane) in band[LEAD..LEAD + p.c_in * bh * wp].chunks_exact_mut(bh * wp).enumerate() {
            for (r, row) in plane.chunks_exact_mut(wp).enumerate() {
                let iy = (oy0 * p.sh + r).wrapping_sub(p.ph);
                if iy >= p.h {
                    row.fill(0.0);
                    continue;
                }
                let left = p.pw.min(wp);
                row[..left].fill(0.0);
                row[left + copy_w..].fill(0.0);
                row[left..left + copy_w].copy_from_slice(&x[(c * p.h + iy) * p.w..][..copy_w]);
            }
        }
        band[..LEAD].fill(0.0);
        band[LEAD + p.c_in * bh * wp..].fill(0.0);
        Self { p, band, bh, wp, oy0, ow, cols }
    }

    /// How each row of the strip at column `j` reads the band.
    fn plan(&self, j: usize) -> Plan {
        let lanes = NR.min(self.cols.end - j);
        let mut off = [0usize; NR];
        for (i, o) in off.iter_mut().enumerate().take(lanes) {
            let q = j + i;
            *o = (q / self.ow - self.oy0) * self.p.sh * self.wp + (q % self.ow) * self.p.sw;
        }
        let sw = self.p.sw;
        if lanes < NR || sw > 2 {
            return Plan::Gather { off, lanes };
        }
        // Runs of lanes whose sources are `sw` apart (a new run starts at each output row).
        let mut runs = Runs { n: 1, start: [off[0]; NR], mask: [[0; NR]; NR] };
        for i in 1..NR {
            if off[i] != off[i - 1] + sw {
                if sw == 2 {
                    return Plan::Gather { off, lanes };
                }
                // Source of lane 0 if the run started there: LEAD floats of zeros cover
                // the (never used) lanes before it.
                runs.start[runs.n] = off[i] + LEAD - i;
                runs.mask[runs.n] = core::array::from_fn(|l| if l >= i { u32::MAX } else { 0 });
                runs.n += 1;
            }
        }
        runs.start[0] += LEAD;
        if sw == 2 {
            Plan::Stride2(runs.start[0])
        } else {
            Plan::Runs(runs)
        }
    }
}

/// Lanes `l ≥ t` of run `s` read `band[row + start[s] + l]`; later runs overwrite
/// earlier ones through `mask[s]`.
struct Runs {
    n: usize,
    start: [usize; NR],
    mask: [[u32; NR]; NR],
}

// Built once per strip, on the stack, and read for each of its k rows; the size of
// `Runs` (its lane masks) is not worth a level of indirection.
#[allow(clippy::large_enum_variant)]
enum Plan {
    /// Stride 1: one to eight runs (offsets include `LEAD`).
    Runs(Runs),
    /// Stride 2 within one output row: lane `l` reads `band[row + start + 2·l]`.
    Stride2(usize),
    /// Anything else: lane `l < lanes` reads `band[LEAD + row + off[l]]`, the rest are zero.
    Gather { off: [usize; NR], lanes: usize },
}

impl PackB for Im2col<'_> {
    fn rows(&self) -> usize {
        self.p.c_in * self.p.kh * self.p.kw
    }

    fn cols(&self) -> usize {
        self.cols.end
    }

    fn pack_strip(&self, j: usize, dst: &mut [f32]) {
        let band = self.band;
        match self.plan(j) {
            Plan::Runs(runs) if runs.n == 1 => self.for_each_row(dst, |d, base| d.copy_from_slice(&band[base + runs.start[0]..][..NR])),
            Plan::Runs(runs) => self.for_each_row(dst, |d, base| lanes::merge(d, band, base, &runs)),
            Plan::Stride2(start) => self.for_each_row(dst, |d, base| lanes::deinterleave(d, &band[base + start..][..2 * NR])),
            Plan::Gather { off, lanes } => self.for_each_row(dst, |d, base| {
                for (v, &o) in d.iter_mut().zip(&off[..lanes]) {
                    *v = band[LEAD + base + o];
                }
                d[lanes..].fill(0.0);
            }),
        }
    }
}

impl Im2col<'_> {
    /// `f(row of dst, band offset of its (c, ky, kx))` for every row of the strip.
    #[inline(always)]
    fn for_each_row(&self, dst: &mut [f32], mut f: impl FnMut(&mut [f32], usize)) {
        let p = self.p;
        let mut rows = dst[..self.rows() * NR].chunks_exact_mut(NR);
        for c in 0..p.c_in {
            for ky in 0..p.kh {
                let base = (c * self.bh + ky) * self.wp;
                for kx in 0..p.kw {
                    let d = rows.next().expect("im2col: strip rows");
                    f(d, base + kx);
                }
            }
        }
    }
}

/// The two 8-lane primitives, in `simd128` where it is available.
mod lanes {
    use super::{Runs, NR};

    /// `d[l] = src[2·l]`.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    pub(super) fn deinterleave(d: &mut [f32], src: &[f32]) {
        use core::arch::wasm32::*;
        assert!(d.len() >= NR && src.len() >= 2 * NR);
        // SAFETY: the assert bounds the four 16-byte loads and two stores.
        unsafe {
            let s = src.as_ptr() as *const v128;
            let lo = i32x4_shuffle::<0, 2, 4, 6>(v128_load(s), v128_load(s.add(1)));
            let hi = i32x4_shuffle::<0, 2, 4, 6>(v128_load(s.add(2)), v128_load(s.add(3)));
            v128_store(d.as_mut_ptr() as *mut v128, lo);
            v128_store(d.as_mut_ptr().add(4) as *mut v128, hi);
        }
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(super) fn deinterleave(d: &mut [f32], src: &[f32]) {
        for (l, v) in d[..NR].iter_mut().enumerate() {
            *v = src[2 * l];
        }
    }

    /// `d = band[base + start[0] ..][..NR]`, then lanes `mask[s]` from
    /// `band[base + start[s] ..]` for each later run `s`.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    pub(super) fn merge(d: &mut [f32], band: &[f32], base: usize, runs: &Runs) {
        use core::arch::wasm32::*;
        assert!(d.len() >= NR && runs.n <= NR);
        let load = |at: usize| {
            let s = &band[base + at..][..NR];
            // SAFETY: `s` holds NR floats.
            unsafe { (v128_load(s.as_ptr() as *const v128), v128_load(s.as_ptr().add(4) as *const v128)) }
        };
        let (mut lo, mut hi) = load(runs.start[0]);
        for s in 1..runs.n {
            let (l2, h2) = load(runs.start[s]);
            // SAFETY: each mask is NR u32s.
            let (ml, mh) = unsafe { (v128_load(runs.mask[s].as_ptr() as *const v128), v128_load(runs.mask[s].as_ptr().add(4) as *const v128)) };
            lo = v128_bitselect(l2, lo, ml);
            hi = v128_bitselect(h2, hi, mh);
        }
        // SAFETY: the assert bounds the two stores.
        unsafe {
            v128_store(d.as_mut_ptr() as *mut v128, lo);
            v128_store(d.as_mut_ptr().add(4) as *mut v128, hi);
        }
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(super) fn merge(d: &mut [f32], band: &[f32], base: usize, runs: &Runs) {
        d[..NR].copy_from_slice(&band[base + runs.start[0]..][..NR]);
        for s in 1..runs.n {
            let src = &band[base + runs.start[s]..][..NR];
            for ((v, &x), &m) in d.iter_mut().zip(src).zip(&runs.mask[s]) {
                if m != 0 {
                    *v = x;
                }
            }
        }
    }
}
