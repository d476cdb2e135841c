//! One block of tiles × a range of output channels: stage the input rows, transform them,
//! one GEMM per transformed entry, transform the products back into the output.

use core::ops::Range;

use super::filter::{Variant, WinogradWeights};
use super::lanes::{Lanes, L};
use super::{LANES, TMAX};
use super::transform::{Tile, F23, F43};
use crate::conv::Conv2dParams;
use crate::gemm::{self, Epilogue, MatMut, MatRef, MR, NR};
use crate::workspace::{OutTile, WinogradScratch};

/// The output tile grid of `p`: `(tile rows, tile columns)`; tiles are numbered row-major.
pub fn tile_grid(p: &Conv2dParams, v: &Variant) -> (usize, usize) {
    (p.out_h().div_ceil(v.m), p.out_w().div_ceil(v.m))
}

/// The input rows tiles `tiles` of m×m outputs read (t = m + 2 per tile row): the first
/// (`-ph ..` at the top; negative in the padding) and how many, padding included.
pub(super) fn staged_rows(p: &Conv2dParams, m: usize, t: usize, tiles: &Range<usize>) -> (isize, usize) {
    let tw = p.out_w().div_ceil(m);
    let (ty0, ty1) = (tiles.start / tw, (tiles.end - 1) / tw);
    ((m * ty0) as isize - p.ph as isize, m * (ty1 - ty0) + t)
}

/// The largest `|v|` of `x` as bits (0 for an empty `x`): the bits of non-negative floats
/// order as their values do, and NaN's (`0x7f80_0001..`) above ∞'s, so one integer max
/// finds both (and vectorises, where `f32::max` would skip NaN).
pub(super) fn max_abs_bits(x: &[f32]) -> u32 {
    x.iter().fold(0, |m, v| m.max(v.to_bits() & 0x7fff_ffff))
}

/// Bytes of L2 a block's transformed input and products may fill (this machine kind has
/// 1 MiB per core), and output channels per pass over that input (the products of one
/// pass, `CO_CHUNK·t²·block` floats, are still in L2 when the output transform reads
/// them). Both are flat near the optimum. Measured in wasm (`ConvBench`,
/// `crates/wasm/src/bench.rs`; Node 20, one thread, best of 11–15 interleaved rounds, ms):
///
/// | block bytes (16 channels per pass) | 256 K | 384 K | **512 K** | 640 K | 768 K | 1 M |
/// |---|---|---|---|---|---|---|
/// | 64×56×56 → 192 (F4) | 5.71 | 5.58 | **5.46** | 5.69 | 5.61 | 5.64 |
///
/// | channels per pass (512 K blocks) | 16 | 32 | **64** | 128 |
/// |---|---|---|---|---|
/// | 64×56×56 → 192 (F4) | 5.32 | 5.34 | **5.25** | 5.57 |
/// | 192×7×7 → 384 (F2) | 1.27 | 1.13 | **1.10** | 1.07 |
/// | sum of nine GoogLeNet 3×3 layers | 15.38 | 15.16 | **14.98** | 15.31 |
///
/// Smaller passes re-read the block's transformed input from L2 once more per pass, and
/// make more (shorter) GEMM calls.
const BLOCK_BYTES: usize = 512 * 1024;
const CO_CHUNK: usize = 64;

/// Tiles per block for [`conv_block`] on `n` images: a multiple of the GEMM's `NR`
/// columns whose transformed input (`t²·c_in` floats per tile) and one pass of products
/// (`t²·CO_CHUNK`) fit in [`BLOCK_BYTES`], capped at the batch's tiles. Each block reads
/// every transformed filter once, so fewer, larger blocks stream the filters less often.
pub fn block_tiles(p: &Conv2dParams, w: &WinogradWeights, n: usize) -> usize {
    let v = w.variant;
    let (th, tw) = tile_grid(p, v);
    let per_tile = v.t * v.t * (p.c_in + CO_CHUNK) * 4;
    (BLOCK_BYTES / per_tile / NR * NR).clamp(NR, (n * th * tw).next_multiple_of(NR))
}

/// The images a block of tiles `tiles` (numbered over a batch, `per_image` tiles per
/// image) covers, each with its own tiles (numbered within the image).
pub fn images_of(tiles: &Range<usize>, per_image: usize) -> impl Iterator<Item = (usize, Range<usize>)> {
    let (t0, t1) = (tiles.start, tiles.end);
    let last = if tiles.is_empty() { t0 / per_image } else { (t1 - 1) / per_image + 1 };
    (t0 / per_image..last).map(move |b| (b, t0.max(b * per_image) - b * per_image..t1.min((b + 1) * per_image) - b * per_image))
}

/// Grows `buf` to at least `len` elements and returns its first `len`.
fn grow<T: Clone + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    &mut buf[..len]
}

/// Output channels `co` of tiles `tiles` of `n` images: `x` (`n × c_in × h × w`) → the
/// pixels of those tiles in planes `co` of `out`, with bias and optional ReLU. Tiles are
/// numbered row-major over [`tile_grid`] within an image, image after image, so a block
/// of a batch of small maps holds the tiles of several images and its GEMMs get that
/// many more columns. Writes nothing else, so blocks × channel ranges that cover the
/// output once may run as independent tasks. `co.start` must be a multiple of the GEMM's
/// `MR` (4); each call transforms its tiles' input again, so splitting channels repeats
/// that part of the work. [`block_tiles`] is the block size that stays in L2.
///
/// # Safety
/// Output plane `o` of image `b` (`oh·ow` floats) must start at `out + o·ld + b·oh·ow`
/// (`ld = oh·ow` for one image's planes, `n·oh·ow` for a batched GEMM's layout) and be
/// valid for writes at every pixel of `tiles` in planes `co`, and no other thread may
/// access those elements during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv_block(
    x: &[f32],
    p: &Conv2dParams,
    w: &WinogradWeights,
    tiles: Range<usize>,
    co: Range<usize>,
    bias: Option<&[f32]>,
    relu: bool,
    out: *mut f32,
    ld: usize,
    scratch: &mut WinogradScratch,
) {
    assert!(p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1, "winograd: 3×3 stride 1 only");
    assert_eq!((w.c_out, w.c_in), (p.c_out, p.c_in), "winograd: weights do not match the layer");
    let img = p.c_in * p.h * p.w;
    assert!(img > 0 && x.len() % img == 0, "winograd: input length");
    let (th, tw) = tile_grid(p, w.variant);
    assert!(tiles.start <= tiles.end && tiles.end <= x.len() / img * th * tw, "winograd: tiles out of range");
    assert!(ld >= p.out_h() * p.out_w(), "winograd: output planes overlap");
    assert!(co.start % MR == 0 && co.start <= co.end && co.end <= p.c_out, "winograd: bad output channel range");
    if let Some(b) = bias {
        assert_eq!(b.len(), p.c_out, "winograd: bias length");
    }
    if tiles.is_empty() || co.is_empty() {
        return;
    }
    let block = Block { x, p, w, tiles, tw, per_image: th * tw, bias, relu, out, ld };
    match w.variant.m {
        2 => block.run::<F23>(co, scratch),
        _ => block.run::<F43>(co, scratch),
    }
}

/// One call of [`conv_block`], checked.
struct Block<'a> {
    x: &'a [f32],
    p: &'a Conv2dParams,
    w: &'a WinogradWeights,
    tiles: Range<usize>,
    tw: usize,
    /// Tiles per image.
    per_image: usize,
    bias: Option<&'a [f32]>,
    relu: bool,
    out: *mut f32,
    /// Distance between output planes.
    ld: usize,
}

/// Strides of a block's scratch.
#[derive(Clone, Copy)]
struct Layout {
    /// Tiles, padded to the GEMM's `NR` columns (phantom columns are never read back).
    n: usize,
    /// Distance between the `V_ξ` (each a `c_in × n` matrix with row stride `n`, read by
    /// the GEMM as its `B`): one cache line more than `c_in·n`. For GoogLeNet's channel
    /// counts (multiples of 16) `c_in·n` floats is a multiple of 512 bytes, which would put
    /// the t² stores of one tile group in at most 8 of L1's 64 sets; the extra line spreads
    /// them (2–4 % faster over eight of GoogLeNet's 3×3 shapes, F2 and F4).
    v_xi: usize,
    /// Width of a staged input row.
    wp: usize,
}

impl Block<'_> {
    /// Input transform of all tiles, then for each chunk of output channels: t² GEMMs and
    /// the output transform.
    ///
    /// # Safety
    /// As [`conv_block`], whose checks have passed.
    unsafe fn run<F: Tile>(&self, co: Range<usize>, s: &mut WinogradScratch) {
        let (p, tt) = (self.p, F::T * F::T);
        let n = self.tiles.len().next_multiple_of(NR);
        let lay = Layout { n, v_xi: p.c_in * n + 16, wp: F::M * (self.tw - 1) + F::ROW_LOAD };
        self.tile_offsets::<F>(lay, s);
        self.input_transform::<F>(lay, s);
        let v = &s.v[..tt * lay.v_xi];
        for c0 in co.clone().step_by(CO_CHUNK) {
            let chunk = c0..(c0 + CO_CHUNK).min(co.end);
            let panels = c0 / MR..chunk.end.div_ceil(MR);
            let rows = (panels.end * MR).min(p.c_out) - c0;
            let m = grow(&mut s.m, rows * tt * n);
            for (xi, u) in self.w.u.iter().enumerate() {
                gemm::gemm_panels(
                    u,
                    panels.clone(),
                    MatRef { data: &v[xi * lay.v_xi..], rows: p.c_in, cols: n, ld: n },
                    MatMut { data: &mut m[xi * n..], rows, cols: n, ld: tt * n },
                    Epilogue::default(),
                    &mut s.gemm_tail,
                );
            }
            let groups = self.tiles.len().div_ceil(LANES);
            self.output_transform::<F>(lay, chunk, &s.m[..rows * tt * n], &s.tile_out[..groups * LANES]);
        }
    }

    /// Fills `tile_in` and `tile_out` for the block's tiles, padded to whole groups: each
    /// image's staged rows follow the previous image's (see `input_transform`).
    fn tile_offsets<F: Tile>(&self, lay: Layout, s: &mut WinogradScratch) {
        let (oh, ow) = (self.p.out_h(), self.p.out_w());
        let len = self.tiles.len().next_multiple_of(LANES);
        let (tile_in, tile_out) = (grow(&mut s.tile_in, len), grow(&mut s.tile_out, len));
        let (mut i, mut staged) = (0, 0);
        for (b, tiles) in images_of(&self.tiles, self.per_image) {
            let ty0 = tiles.start / self.tw;
            for tile in tiles.clone() {
                let (ty, tx) = (tile / self.tw, tile % self.tw);
                tile_in[i] = staged + F::M * ((ty - ty0) * lay.wp + tx);
                let (oy, ox) = (F::M * ty, F::M * tx);
                tile_out[i] = OutTile { pixel: b * oh * ow + oy * ow + ox, rows: F::M.min(oh - oy), cols: F::M.min(ow - ox) };
                i += 1;
            }
            staged += staged_rows(self.p, F::M, F::T, &tiles).1 * lay.wp;
        }
        // Phantom lanes read the first tile's inputs and write nothing.
        for i in self.tiles.len()..len {
            tile_in[i] = tile_in[0];
            tile_out[i] = OutTile::default();
        }
    }

    /// `V_ξ[c][tile] = (Bᵀ·d·B)_ξ` for every input channel `c` and tile of the block.
    ///
    /// # Safety
    /// `tile_offsets` has filled `s` for this layout.
    unsafe fn input_transform<F: Tile>(&self, lay: Layout, s: &mut WinogradScratch) {
        let (p, n, wp) = (self.p, lay.n, lay.wp);
        let rows_len: usize = images_of(&self.tiles, self.per_image).map(|(_, t)| staged_rows(p, F::M, F::T, &t).1).sum();
        let staged = grow(&mut s.rows, rows_len * wp);
        let v = grow(&mut s.v, F::T * F::T * lay.v_xi).as_mut_ptr();
        let groups = self.tiles.len().div_ceil(LANES);
        for c in 0..p.c_in {
            // Each image's rows for its tiles, one image after another: staged row r of
            // an image, column j, holds x[b][c][top + r][j − pw] (zero outside the image);
            // wp ≥ pw + w always (the tiles cover the padded input), so rows fit whole.
            let mut rows = staged.chunks_exact_mut(wp);
            for (b, tiles) in images_of(&self.tiles, self.per_image) {
                let plane = &self.x[(b * p.c_in + c) * p.h * p.w..][..p.h * p.w];
                let (top, len) = staged_rows(p, F::M, F::T, &tiles); // input row of staged row 0
                for (r, row) in rows.by_ref().take(len).enumerate() {
                    let iy = top + r as isize;
                    if (0..p.h as isize).contains(&iy) {
                        let (left, rest) = row.split_at_mut(p.pw);
                        let (inside, right) = rest.split_at_mut(p.w);
                        left.fill(0.0);
                        inside.copy_from_slice(&plane[iy as usize * p.w..][..p.w]);
                        right.fill(0.0);
                    } else {
                        row.fill(0.0);
                    }
                }
            }
            let base = staged.as_ptr();
            for g in 0..groups {
                let lane_ptr = |l: usize| base.add(*s.tile_in.get_unchecked(g * LANES + l));
                let first = [lane_ptr(0), lane_ptr(1), lane_ptr(2), lane_ptr(3)];
                // Rows of the four tiles transformed along x, then columns along y.
                let rows: [[L; TMAX]; TMAX] = core::array::from_fn(|i| F::bt(L::gather(first.map(|q| q.add(i.min(F::T - 1) * wp)), F::T)));
                let cols: [[L; TMAX]; TMAX] = core::array::from_fn(|j| core::array::from_fn(|i| rows[i][j]));
                let dst = v.add(c * n + g * LANES);
                for (j, col) in cols.iter().enumerate().take(F::T) {
                    for (i, e) in F::bt(*col).iter().enumerate().take(F::T) {
                        e.store(dst.add((i * F::T + j) * lay.v_xi));
                    }
                }
            }
        }
    }

    /// `Y = Aᵀ·M·A` for the tiles of the block and output channels `chunk`, whose products
    /// are `m` (`[o − chunk.start][ξ][n]`), plus bias and ReLU, into the output planes.
    ///
    /// # Safety
    /// `tile_out` describes the block's tiles (padded to whole groups), and `self.out` is
    /// valid for those pixels of planes `chunk` (the contract of [`conv_block`]).
    unsafe fn output_transform<F: Tile>(&self, lay: Layout, chunk: Range<usize>, m: &[f32], tile_out: &[OutTile]) {
        let (n, tt) = (lay.n, F::T * F::T);
        let ow = self.p.out_w();
        let zero = L::splat(0.0);
        for o in chunk.clone() {
            let b = L::splat(self.bias.map_or(0.0, |b| b[o]));
            let mo = m[(o - chunk.start) * tt * n..][..tt * n].as_ptr();
            let plane = self.out.add(o * self.ld);
            for (g, tiles) in tile_out.chunks_exact(LANES).enumerate() {
                // Columns along y, then rows along x.
                let load = |i: usize, j: usize| if i < F::T && j < F::T { L::load(mo.add((i * F::T + j) * n + g * LANES)) } else { zero };
                let cols: [[L; 4]; TMAX] = core::array::from_fn(|j| F::at(core::array::from_fn(|i| load(i, j))));
                let rows: [[L; TMAX]; 4] = core::array::from_fn(|a| core::array::from_fn(|j| cols[j][a]));
                for (a, row) in rows.iter().enumerate().take(F::M) {
                    let y = F::at(*row).map(|e| if self.relu { e.add(b).relu() } else { e.add(b) });
                    // Row `a` of a lane's tile exists only for `a < rows`: a bottom tile
                    // clipped by the output's last row, or a phantom lane, stores nothing
                    // there and gets `plane` as a placeholder, so that no pointer is formed
                    // past the row's plane (`pixel + a·ow` is up to (m − 1)·ow floats past
                    // the last plane's end: out of the caller's allocation when that plane
                    // is its last).
                    let exists = |l: usize| a < tiles[l].rows;
                    let q = core::array::from_fn(|l| if exists(l) { plane.add(tiles[l].pixel + a * ow) } else { plane });
                    let widths = core::array::from_fn(|l| if exists(l) { tiles[l].cols } else { 0 });
                    L::scatter(&y, F::M, q, widths);
                }
            }
        }
    }
}

