//! Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, 2015).
//!
//! Each 2×2 block of outputs comes from a 4×4 input tile: with `V = Bᵀ·d·B` per input
//! channel and `U = G·g·Gᵀ` per filter (computed once, when the layer is built), the 16
//! entries `ξ` of the transformed domain are independent GEMMs
//! `M_ξ[c_out × tiles] = U_ξ[c_out × c_in] · V_ξ[c_in × tiles]`, and `Y = Aᵀ·M·A` gives the
//! outputs. That is 16 multiply-adds per 4 outputs and input channel instead of 36:
//! 2.25× fewer, paid for with the two transforms (O(c·tiles), not O(c_out·c·tiles)).
//!
//! Accuracy: the transforms only add and halve, so the error stays within a few ulps of
//! the direct convolution's (the fixtures allow 16× a naive loop's; see
//! `../shared/fixtures/README.md` §4).

use super::{ChannelSlice, Conv2dParams};
use crate::gemm::{self, Epilogue, MatMut, MatRef, PackedA};

/// Input tile size (`m + r − 1` for F(m=2, r=3)).
const T: usize = 4;

/// Tiles are processed in blocks small enough that a block's transformed input and
/// products (`16·(c_in + c_out)·block` floats) stay in L2 between the transforms and the
/// 16 GEMMs: at most 256 KiB, and a multiple of the GEMM's 8 columns. Without blocking,
/// GoogLeNet's conv2 (784 tiles, 64→192 channels) ran at 31 effective GFLOP/s against
/// ~50 for the smaller 3×3 layers.
const BLOCK_BYTES: usize = 256 * 1024;

/// The 16 transformed filters `U_ξ`, each packed for the GEMM.
#[derive(Clone, Debug)]
pub struct WinogradWeights {
    u: Vec<PackedA>,
}

impl WinogradWeights {
    /// `weights` in OIHW with 3×3 kernels.
    pub fn new(weights: &[f32], c_out: usize, c_in: usize) -> Self {
        assert_eq!(weights.len(), c_out * c_in * 9, "winograd: weights length");
        // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], in f64 then rounded once.
        const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
        let mut u = vec![vec![0.0f32; c_out * c_in]; T * T];
        for oc in 0..c_out * c_in {
            let g = &weights[oc * 9..oc * 9 + 9];
            for i in 0..T {
                for j in 0..T {
                    let mut acc = 0.0f64;
                    for a in 0..3 {
                        for b in 0..3 {
                            acc += G[i][a] * g[a * 3 + b] as f64 * G[j][b];
                        }
                    }
                    u[i * T + j][oc] = acc as f32;
                }
            }
        }
        Self { u: u.iter().map(|m| PackedA::pack(m, c_out, c_in)).collect() }
    }
}

/// Scratch for one call: transformed input (16 × c_in × tiles) and products (16 × c_out × tiles).
#[derive(Default, Debug)]
pub struct WinogradScratch {
    v: Vec<f32>,
    m: Vec<f32>,
}

/// One image: `x` (`c_in × h × w`) → the `c_out` channels of `out` at `dst`
/// (`out` is this image's `dst.channels × oh × ow` block).
pub fn conv2d_image(
    x: &[f32],
    p: &Conv2dParams,
    w: &WinogradWeights,
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
    dst: ChannelSlice,
    scratch: &mut WinogradScratch,
    gemm_tail: &mut Vec<f32>,
) {
    assert!(p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1, "winograd: 3×3 stride 1 only");
    let (oh, ow) = (p.out_h(), p.out_w());
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let tiles = th * tw;
    let per_tile = T * T * (p.c_in + p.c_out) * 4;
    let block = (BLOCK_BYTES / per_tile / 8 * 8).clamp(8, tiles.next_multiple_of(8));
    scratch.v.resize(T * T * p.c_in * block, 0.0);
    scratch.m.resize(T * T * p.c_out * block, 0.0);

    for t0 in (0..tiles).step_by(block) {
        let tiles_here = TileRange { start: t0, len: block.min(tiles - t0), tw };
        let n = tiles_here.len;
        input_transform(x, p, tiles_here, &mut scratch.v);
        for xi in 0..T * T {
            let v = &scratch.v[xi * p.c_in * n..(xi + 1) * p.c_in * n];
            let m = &mut scratch.m[xi * p.c_out * n..(xi + 1) * p.c_out * n];
            gemm::gemm(
                &w.u[xi],
                MatRef { data: v, rows: p.c_in, cols: n, ld: n },
                MatMut { data: m, rows: p.c_out, cols: n, ld: n },
                Epilogue::default(),
                gemm_tail,
            );
        }
        output_transform(&scratch.m, p.c_out, tiles_here, (oh, ow), bias, relu, out, dst);
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

/// `V_ξ[c][t] = (Bᵀ·d·B)_ξ` for every 4×4 input tile `d` (zero outside the input), with
/// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`.
fn input_transform(x: &[f32], p: &Conv2dParams, tiles: TileRange, v: &mut [f32]) {
    let plane_stride = p.c_in * tiles.len;
    for c in 0..p.c_in {
        let plane = &x[c * p.h * p.w..(c + 1) * p.h * p.w];
        for (t, ty, tx) in tiles.iter() {
            let mut d = [[0.0f32; T]; T];
            let (y0, x0) = ((2 * ty) as isize - p.ph as isize, (2 * tx) as isize - p.pw as isize);
            for (i, row) in d.iter_mut().enumerate() {
                let iy = y0 + i as isize;
                if iy < 0 || iy >= p.h as isize {
                    continue;
                }
                for (j, v) in row.iter_mut().enumerate() {
                    let ix = x0 + j as isize;
                    if ix >= 0 && ix < p.w as isize {
                        *v = plane[iy as usize * p.w + ix as usize];
                    }
                }
            }
            // rows: Bᵀ·d
            let mut rows = [[0.0f32; T]; T];
            for j in 0..T {
                rows[0][j] = d[0][j] - d[2][j];
                rows[1][j] = d[1][j] + d[2][j];
                rows[2][j] = d[2][j] - d[1][j];
                rows[3][j] = d[1][j] - d[3][j];
            }
            // columns: (Bᵀ·d)·B
            let at = c * tiles.len + t;
            for (i, r) in rows.iter().enumerate() {
                let e = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]];
                for (j, val) in e.into_iter().enumerate() {
                    v[(i * T + j) * plane_stride + at] = val;
                }
            }
        }
    }
}

/// `Y = Aᵀ·M·A` per tile with `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`, then bias and ReLU,
/// written to the output channels at `dst` (tiles past an odd edge are clipped).
#[allow(clippy::too_many_arguments)]
fn output_transform(
    m: &[f32],
    c_out: usize,
    tiles: TileRange,
    (oh, ow): (usize, usize),
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
    dst: ChannelSlice,
) {
    let plane_stride = c_out * tiles.len;
    for o in 0..c_out {
        let b = bias.map_or(0.0, |b| b[o]);
        let plane = &mut out[(dst.channel_offset + o) * oh * ow..(dst.channel_offset + o + 1) * oh * ow];
        for (t, ty, tx) in tiles.iter() {
            let at = o * tiles.len + t;
            // rows: Aᵀ·M
            let mut rows = [[0.0f32; T]; 2];
            for j in 0..T {
                let col = |i: usize| m[(i * T + j) * plane_stride + at];
                rows[0][j] = col(0) + col(1) + col(2);
                rows[1][j] = col(1) - col(2) - col(3);
            }
            // columns: (Aᵀ·M)·A, clipped to the output
            for (i, r) in rows.iter().enumerate() {
                let y = 2 * ty + i;
                if y >= oh {
                    continue;
                }
                for (j, val) in [r[0] + r[1] + r[2], r[1] - r[2] - r[3]].into_iter().enumerate() {
                    let x = 2 * tx + j;
                    if x < ow {
                        let v = val + b;
                        plane[y * ow + x] = if relu && v < 0.0 { 0.0 } else { v };
                    }
                }
            }
        }
    }
}
