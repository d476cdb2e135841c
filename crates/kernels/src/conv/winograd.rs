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

std::thread_local! {
    /// Each task's GEMM tail panel (tasks run on the pool's threads).
    static TAIL: core::cell::RefCell<Vec<f32>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// One image: `x` (`c_in × h × w`) → the `c_out` channels of `out` at `dst`
/// (`out` is this image's `dst.channels × oh × ow` block).
///
/// Per block of tiles, two parallel regions: the input transform split by input channel,
/// then the t² GEMMs and the output transform split by output channels — each task runs
/// all t² GEMMs for its rows, so a layer opens 2 regions per block instead of t² + 2.
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
    scratch.v.resize(tt * p.c_in * block, 0.0);
    scratch.m.resize(tt * p.c_out * block, 0.0);
    let planes = &mut out[dst.channel_offset * oh * ow..(dst.channel_offset + p.c_out) * oh * ow];

    for t0 in (0..tiles).step_by(block) {
        let range = TileRange { start: t0, len: block.min(tiles - t0), tw };
        let n = range.len;
        input_transform(v, x, p, range, &mut scratch.v[..p.c_in * tt * n]);
        let (vs, ms) = (&scratch.v[..p.c_in * tt * n], &mut scratch.m[..p.c_out * tt * n]);
        let panels = p.c_out.div_ceil(MR);
        let per_task = crate::par::task_len(panels, 1) * MR; // output channels per task
        let work = p.c_out * p.c_in * tt * n;
        crate::par::for_each_chunk2(ms, per_task * tt * n, planes, per_task * oh * ow, work, |task, m_rows, out_planes| {
            let (o0, rows) = (task * per_task, m_rows.len() / (tt * n));
            TAIL.with_borrow_mut(|tail| {
                for (xi, u) in w.u.iter().enumerate() {
                    gemm::gemm_panels(
                        u,
                        o0 / MR..(o0 + rows).div_ceil(MR),
                        MatRef { data: &vs[xi * n..], rows: p.c_in, cols: n, ld: tt * n },
                        MatMut { data: &mut m_rows[xi * n..], rows, cols: n, ld: tt * n },
                        Epilogue::default(),
                        tail,
                    );
                }
            });
            output_transform(v, m_rows, range, (oh, ow), bias.map(|b| &b[o0..o0 + rows]), relu, out_planes);
        });
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
/// `m` (`[channel][t²][tiles]`), into their planes `out` (tiles past the output's edge
/// are clipped).
fn output_transform(v: &Variant, m: &[f32], tiles: TileRange, (oh, ow): (usize, usize), bias: Option<&[f32]>, relu: bool, out: &mut [f32]) {
    let tt = v.t * v.t;
    for (o, (mo, plane)) in m.chunks_exact(tt * tiles.len).zip(out.chunks_exact_mut(oh * ow)).enumerate() {
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
                    plane[oy * ow + ox] = if relu && val < 0.0 { 0.0 } else { val };
                }
            }
        }
    }
}
