//! Winograd convolution F(m×m, 3×3) for 3×3 stride-1 layers (Lavin & Gray, 2015), with
//! output tiles of m = 2 or m = 4.
//!
//! Each m×m block of outputs comes from a t×t input tile (t = m + 2): with `V = Bᵀ·d·B`
//! per input channel and `U = G·g·Gᵀ` per filter (computed once, when the layer is
//! built), the t² entries `ξ` of the transformed domain are independent GEMMs
//! `M_ξ[c_out × tiles] = U_ξ[c_out × c_in] · V_ξ[c_in × tiles]`, and `Y = Aᵀ·M·A` gives
//! the outputs. Multiply-adds per output and input channel: 9 direct, 16/4 = 4 for
//! F(2×2), 36/16 = 2.25 for F(4×4); the transforms are O(c·tiles·t³), not O(c_out·…).
//!
//! Accuracy: F(2×2)'s transforms only add and halve; F(4×4)'s scale by up to 8 and 1/24,
//! which costs a few bits more. Both stay far inside the fixtures' tolerance (16× a naive
//! float32 loop's error; `../shared/fixtures/README.md` §4): see `npm run test:fixtures`.

use super::{ChannelSlice, Conv2dParams};
use crate::gemm::{self, Epilogue, MatMut, MatRef, PackedA, MR};

/// The transform matrices of one F(m×m, 3×3) variant, row-major.
#[derive(Debug)]
pub struct Variant {
    /// Output tile size.
    pub m: usize,
    /// Input tile size, m + 2.
    t: usize,
    /// `Bᵀ`, t × t.
    bt: &'static [f32],
    /// `G`, t × 3 (exact in f64; `U` is rounded once).
    g: &'static [f64],
    /// `Aᵀ`, m × t.
    at: &'static [f32],
}

/// F(2×2, 3×3).
pub const F2: Variant = Variant {
    m: 2,
    t: 4,
    bt: &[1., 0., -1., 0., 0., 1., 1., 0., 0., -1., 1., 0., 0., 1., 0., -1.],
    g: &[1., 0., 0., 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0., 0., 1.],
    at: &[1., 1., 1., 0., 0., 1., -1., -1.],
};

/// F(4×4, 3×3) with the interpolation points 0, ±1, ±2, ∞.
pub const F4: Variant = Variant {
    m: 4,
    t: 6,
    bt: &[
        4., 0., -5., 0., 1., 0., //
        0., -4., -4., 1., 1., 0., //
        0., 4., -4., -1., 1., 0., //
        0., -2., -1., 2., 1., 0., //
        0., 2., -1., -2., 1., 0., //
        0., 4., 0., -5., 0., 1.,
    ],
    g: &[
        1. / 4., 0., 0., //
        -1. / 6., -1. / 6., -1. / 6., //
        -1. / 6., 1. / 6., -1. / 6., //
        1. / 24., 1. / 12., 1. / 6., //
        1. / 24., -1. / 12., 1. / 6., //
        0., 0., 1.,
    ],
    at: &[
        1., 1., 1., 1., 1., 0., //
        0., 1., -1., 2., -2., 0., //
        0., 1., 1., 4., 4., 0., //
        0., 1., -1., 8., -8., 1.,
    ],
};

/// Largest input tile (F4), for stack buffers.
const TMAX: usize = 6;

/// Tiles are processed in blocks whose transformed input and products
/// (`t²·(c_in + c_out)·block` floats) stay in L2 between the transforms and the GEMMs:
/// at most 1 MiB, and a multiple of the GEMM's 8 columns. Measured on GoogLeNet's conv2
/// (64×56×56 → 192, F(4×4)): no blocking 31 effective GFLOP/s; 256 KiB blocks 18.7 ms;
/// 1 MiB 13.3 ms; 4 MiB 15.5 ms (smaller blocks make each filter matrix be re-read for
/// fewer tiles).
const BLOCK_BYTES: usize = 1024 * 1024;

/// The t² transformed filters `U_ξ`, each packed for the GEMM.
#[derive(Clone, Debug)]
pub struct WinogradWeights {
    variant: &'static Variant,
    u: Vec<PackedA>,
}

impl WinogradWeights {
    /// `weights` in OIHW with 3×3 kernels. `U = (G·g)·Gᵀ` in two small products per
    /// filter (t·9 + t²·3 multiply-adds, in f64, rounded once): GoogLeNet has ~400 k 3×3
    /// filters, and the one-shot t²·9 loop made loading the model ~2× slower.
    pub fn new(variant: &'static Variant, weights: &[f32], c_out: usize, c_in: usize) -> Self {
        assert_eq!(weights.len(), c_out * c_in * 9, "winograd: weights length");
        let (t, g) = (variant.t, variant.g);
        let mut u = vec![vec![0.0f32; c_out * c_in]; t * t];
        for (oc, f) in weights.chunks_exact(9).enumerate() {
            let mut gf = [[0.0f64; 3]; TMAX]; // G·f, t × 3
            for (i, row) in gf.iter_mut().enumerate().take(t) {
                for (b, e) in row.iter_mut().enumerate() {
                    *e = (0..3).map(|a| g[i * 3 + a] * f[a * 3 + b] as f64).sum();
                }
            }
            for (i, row) in gf.iter().enumerate().take(t) {
                for j in 0..t {
                    u[i * t + j][oc] = (row[0] * g[j * 3] + row[1] * g[j * 3 + 1] + row[2] * g[j * 3 + 2]) as f32;
                }
            }
        }
        Self { variant, u: u.iter().map(|m| PackedA::pack(m, c_out, c_in)).collect() }
    }

    pub fn variant(&self) -> &'static Variant {
        self.variant
    }
}

/// Scratch for one call: transformed input `[c_in][t²][block]` and products
/// `[c_out][t²][block]`. Channel-major, so the input transform writes one contiguous run
/// per input channel, and each task owns the products (and outputs) of its own output
/// channels; the GEMMs read and write their ξ slice with a row stride of t²·block.
#[derive(Default, Debug)]
pub struct WinogradScratch {
    v: Vec<f32>,
    m: Vec<f32>,
}

/// One image: `x` (`c_in × h × w`) → the `c_out` channels of `out` at `dst`
/// (`out` is this image's `dst.channels × oh × ow` block).
///
/// Parallel regions cost tens of microseconds in wasm, so the split is chosen to open
/// few: with enough tile blocks for every thread, one region where each task runs whole
/// blocks (transform, t² GEMMs, inverse transform); otherwise, per block, the input
/// transform split by input channel and the rest split by output channel.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_image(
    x: &[f32],
    p: &Conv2dParams,
    w: &WinogradWeights,
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
    dst: ChannelSlice,
    scratch: &mut WinogradScratch,
) {
    assert!(p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1, "winograd: 3×3 stride 1 only");
    let v = w.variant;
    let (oh, ow) = (p.out_h(), p.out_w());
    let (th, tw) = (oh.div_ceil(v.m), ow.div_ceil(v.m));
    let tiles = th * tw;
    let tt = v.t * v.t;
    let per_tile = tt * (p.c_in + p.c_out) * 4;
    let block = (BLOCK_BYTES / per_tile / 8 * 8).clamp(8, tiles.next_multiple_of(8));
    let blocks = tiles.div_ceil(block);
    let planes = &mut out[dst.channel_offset * oh * ow..(dst.channel_offset + p.c_out) * oh * ow];
    let work = p.c_out * p.c_in * tt * tiles;
    let geometry = Geometry { v, p, tw, oh, ow };

    if crate::par::threads() > 1 && blocks >= 2 * crate::par::threads() && work >= crate::par::MIN_PARALLEL_WORK {
        // Tasks own whole tile blocks, so they write disjoint output pixels — but those
        // pixels interleave within every plane, so the writes go through a raw pointer.
        let sink = PixelSink { ptr: planes.as_mut_ptr(), len: planes.len() };
        let mut starts: Vec<usize> = (0..tiles).step_by(block).collect();
        crate::par::for_each_chunk(&mut starts, 1, work, |_, start| {
            let range = TileRange { start: start[0], len: block.min(tiles - start[0]), tw };
            TASK_SCRATCH.with_borrow_mut(|(s, tail)| {
                // SAFETY: tile blocks are disjoint, so no other task writes `pixel` of any
                // channel.
                geometry.block(x, w, range, s, tail, bias, relu, &mut |o, pixel, val| unsafe { sink.write(o * oh * ow + pixel, val) });
            });
        });
        return;
    }

    scratch.v.resize(tt * p.c_in * block, 0.0);
    scratch.m.resize(tt * p.c_out * block, 0.0);
    for t0 in (0..tiles).step_by(block) {
        let range = TileRange { start: t0, len: block.min(tiles - t0), tw };
        let n = range.len;
        input_transform(v, x, p, range, &mut scratch.v[..p.c_in * tt * n]);
        let (vs, ms) = (&scratch.v[..p.c_in * tt * n], &mut scratch.m[..p.c_out * tt * n]);
        let per_task = crate::par::task_len(p.c_out.div_ceil(MR), 1) * MR; // output channels per task
        crate::par::for_each_chunk2(ms, per_task * tt * n, planes, per_task * oh * ow, work / blocks, |task, m_rows, out_planes| {
            let (o0, rows) = (task * per_task, m_rows.len() / (tt * n));
            TASK_SCRATCH.with_borrow_mut(|(_, tail)| geometry.products(w, o0 / MR..(o0 + rows).div_ceil(MR), vs, m_rows, range, tail));
            output_transform(v, m_rows, range, (oh, ow), bias.map(|b| &b[o0..o0 + rows]), relu, &mut |o, pixel, val| {
                out_planes[o * oh * ow + pixel] = val;
            });
        });
    }
}

std::thread_local! {
    /// A task's own transform buffers and GEMM tail panel (tasks run on the pool's threads).
    static TASK_SCRATCH: core::cell::RefCell<(WinogradScratch, Vec<f32>)> = core::cell::RefCell::default();
}

/// Output planes shared by tasks that write disjoint pixels.
struct PixelSink {
    ptr: *mut f32,
    len: usize,
}

impl PixelSink {
    /// # Safety
    /// No other thread may access element `i` concurrently.
    unsafe fn write(&self, i: usize, val: f32) {
        assert!(i < self.len, "winograd: pixel out of range");
        *self.ptr.add(i) = val;
    }
}

// SAFETY: tasks write disjoint elements (see the one use above); the pointer outlives them.
unsafe impl Sync for PixelSink {}
unsafe impl Send for PixelSink {}

/// What every block of one layer shares.
struct Geometry<'a> {
    v: &'static Variant,
    p: &'a Conv2dParams,
    tw: usize,
    oh: usize,
    ow: usize,
}

impl Geometry<'_> {
    /// `M_ξ = U_ξ · V_ξ` for the output channels of row panels `panels`, into `m_rows`
    /// (`[channel][t²][tiles]` for those channels).
    fn products(&self, w: &WinogradWeights, panels: core::ops::Range<usize>, vs: &[f32], m_rows: &mut [f32], range: TileRange, tail: &mut Vec<f32>) {
        let (tt, n) = (self.v.t * self.v.t, range.len);
        let rows = m_rows.len() / (tt * n);
        for (xi, u) in w.u.iter().enumerate() {
            gemm::gemm_panels(
                u,
                panels.clone(),
                MatRef { data: &vs[xi * n..], rows: self.p.c_in, cols: n, ld: tt * n },
                MatMut { data: &mut m_rows[xi * n..], rows, cols: n, ld: tt * n },
                Epilogue::default(),
                tail,
            );
        }
    }

    /// One whole tile block on the calling thread.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        x: &[f32],
        w: &WinogradWeights,
        range: TileRange,
        s: &mut WinogradScratch,
        tail: &mut Vec<f32>,
        bias: Option<&[f32]>,
        relu: bool,
        store: &mut impl FnMut(usize, usize, f32),
    ) {
        let (p, tt, n) = (self.p, self.v.t * self.v.t, range.len);
        debug_assert_eq!(range.tw, self.tw);
        s.v.resize(tt * p.c_in * n, 0.0);
        s.m.resize(tt * p.c_out * n, 0.0);
        input_transform(self.v, x, p, range, &mut s.v[..tt * p.c_in * n]);
        let (vs, ms) = (&s.v[..tt * p.c_in * n], &mut s.m[..tt * p.c_out * n]);
        self.products(w, 0..p.c_out.div_ceil(MR), vs, ms, range, tail);
        output_transform(self.v, ms, range, (self.oh, self.ow), bias, relu, store);
    }
}

/// Tiles `start .. start + len` of a row-major grid `tw` tiles wide.
#[derive(Clone, Copy)]
struct TileRange {
    start: usize,
    len: usize,
    tw: usize,
}

impl TileRange {
    /// `(index in the block, tile row, tile column)` of each tile.
    fn iter(self) -> impl Iterator<Item = (usize, usize, usize)> {
        (0..self.len).map(move |i| (i, (self.start + i) / self.tw, (self.start + i) % self.tw))
    }
}

/// `out = L · d · Lᵀ` for an `r × c` matrix `L` (row-major) and a `c × c` tile `d`.
#[inline(always)]
fn sandwich(l: &[f32], r: usize, c: usize, d: &[[f32; TMAX]; TMAX], out: &mut [[f32; TMAX]; TMAX]) {
    let mut ld = [[0.0f32; TMAX]; TMAX];
    for i in 0..r {
        for j in 0..c {
            ld[i][j] = (0..c).map(|k| l[i * c + k] * d[k][j]).sum();
        }
    }
    for i in 0..r {
        for j in 0..r {
            out[i][j] = (0..c).map(|k| ld[i][k] * l[j * c + k]).sum();
        }
    }
}

/// `V[c][ξ][tile] = (Bᵀ·d·B)_ξ` for every t×t input tile `d` (zero outside the input).
fn input_transform(v: &Variant, x: &[f32], p: &Conv2dParams, tiles: TileRange, out: &mut [f32]) {
    let work = p.c_in * tiles.len * v.t * v.t * v.t;
    crate::par::for_each_chunk(out, v.t * v.t * tiles.len, work, |c, out: &mut [f32]| {
        let plane = &x[c * p.h * p.w..(c + 1) * p.h * p.w];
        for (i_tile, ty, tx) in tiles.iter() {
            let mut d = [[0.0f32; TMAX]; TMAX];
            let (y0, x0) = ((v.m * ty) as isize - p.ph as isize, (v.m * tx) as isize - p.pw as isize);
            for (i, row) in d.iter_mut().enumerate().take(v.t) {
                let iy = y0 + i as isize;
                if iy < 0 || iy >= p.h as isize {
                    continue;
                }
                for (j, e) in row.iter_mut().enumerate().take(v.t) {
                    let ix = x0 + j as isize;
                    if ix >= 0 && ix < p.w as isize {
                        *e = plane[iy as usize * p.w + ix as usize];
                    }
                }
            }
            let mut vt = [[0.0f32; TMAX]; TMAX];
            sandwich(v.bt, v.t, v.t, &d, &mut vt);
            for i in 0..v.t {
                for j in 0..v.t {
                    out[(i * v.t + j) * tiles.len + i_tile] = vt[i][j];
                }
            }
        }
    });
}

/// `Y = Aᵀ·M·A` per tile, then bias and ReLU, for the output channels whose products are
/// `m` (`[channel][t²][tiles]`), handed to `store(channel, pixel, value)` (tiles past
/// the output's edge are clipped).
fn output_transform(
    v: &Variant,
    m: &[f32],
    tiles: TileRange,
    (oh, ow): (usize, usize),
    bias: Option<&[f32]>,
    relu: bool,
    store: &mut impl FnMut(usize, usize, f32),
) {
    let tt = v.t * v.t;
    for (o, mo) in m.chunks_exact(tt * tiles.len).enumerate() {
        let b = bias.map_or(0.0, |b| b[o]);
        for (i_tile, ty, tx) in tiles.iter() {
            let mut mt = [[0.0f32; TMAX]; TMAX];
            for i in 0..v.t {
                for j in 0..v.t {
                    mt[i][j] = mo[(i * v.t + j) * tiles.len + i_tile];
                }
            }
            let mut y = [[0.0f32; TMAX]; TMAX];
            sandwich(v.at, v.m, v.t, &mt, &mut y);
            for (i, row) in y.iter().enumerate().take(v.m) {
                let oy = v.m * ty + i;
                if oy >= oh {
                    break;
                }
                for (j, &val) in row.iter().enumerate().take(v.m) {
                    let ox = v.m * tx + j;
                    if ox >= ow {
                        break;
                    }
                    let val = val + b;
                    store(o, oy * ow + ox, if relu && val < 0.0 { 0.0 } else { val });
                }
            }
        }
    }
}
