//! Winograd convolution F(m×m, 3×3) for 3×3 stride-1 layers (Lavin & Gray, 2015), with
//! output tiles of m = 2 or m = 4.
//!
//! Each m×m block of outputs comes from a t×t input tile (t = m + 2): with `V = Bᵀ·d·B`
//! per input channel and `U = G·g·Gᵀ` per filter (computed once, when the layer is
//! built), the t² entries `ξ` of the transformed domain are independent GEMMs
//! `M_ξ[c_out × tiles] = U_ξ[c_out × c_in] · V_ξ[c_in × tiles]`, and `Y = Aᵀ·M·A` gives
//! the outputs. Multiply-adds per output and input channel: 9 direct, 16/4 = 4 for
//! F(2×2), 36/16 = 2.25 for F(4×4); the transforms are O(c·tiles·t²), not O(c_out·…).
//!
//! The transforms are written out as the few adds and multiplies they are (the
//! factorisations below, as in ncnn's `winograd43`/`winograd23`), on four tiles at once:
//! lane `l` of every vector belongs to tile `l` of a *group* of four consecutive tiles, so
//! `V_ξ[c][tile..tile + 4]` is one 16-byte store and `M_ξ[o][tile..tile + 4]` one load.
//! Each input channel's rows are first copied, zero-padded, into a small staging buffer,
//! so the input transform reads every tile through four lane pointers with no bounds
//! checks; outputs are stored clipped per lane (partial edge tiles, phantom lanes past the
//! end). [`Lanes`] is the only ISA-specific part: a scalar twin (compiled everywhere, the
//! native build's path and the oracle of the simd128 one) and simd128.
//!
//! Work is split into blocks of tiles × ranges of output channels ([`conv_block`], a
//! single-threaded function that writes only its own output pixels, for an executor that
//! runs blocks as tasks). A block whose input holds NaN, ∞ or values too large for the
//! transforms ([`WinogradWeights::accepts`]) runs on the GEMM path instead (`Conv2d`).
//!
//! Accuracy: F(2×2)'s transforms only add and halve; F(4×4)'s scale by up to 8 and 1/24,
//! which costs a few bits: its worst error is 6–8.5× a naive float32 loop's at 4 to 96
//! input channels (F(2×2)'s 0.4–0.8×), against fixture tolerances of 16–32× that error
//! (`../shared/fixtures/README.md` §4). Worst fixture: `conv3x3` (16 → 32, F4) at 0.31 of
//! its tolerance, RMS 0.019 (`npm run test:fixtures`).

use super::Conv2dParams;
use crate::alloc::{self, OutOfMemory};
use crate::gemm::{self, Epilogue, MatMut, MatRef, PackedA, MR, NR};
use core::ops::Range;

/// One F(m×m, 3×3) variant: its tile sizes, filter transform and transform gains.
#[derive(Debug)]
pub struct Variant {
    /// Output tile size.
    pub m: usize,
    /// Input tile size, m + 2.
    t: usize,
    /// How much the input transform `Bᵀ·d·B`, the filter transform `G·g·Gᵀ` and the output
    /// transform `Aᵀ·M·A` can magnify: the largest sum of |coefficients| over a row of
    /// `Bᵀ` (of `G`, of `Aᵀ`), squared for the two passes. The factored forms below
    /// (`Tile::bt`, `Tile::at`) add up the same coefficients without cancelling terms, so
    /// every intermediate they compute is bounded by the same sums. See
    /// [`WinogradWeights::accepts`].
    b_gain: f64,
    g_gain: f64,
    a_gain: f64,
    /// `G·v` for a 3-vector `v` (the first `t` entries), factored: the filter transform
    /// `U = G·g·Gᵀ` applies it to the columns of `g`, then to the rows of the result, in
    /// f64, and `U` is rounded once to f32. On [`PanelLanes`]: the filters of one GEMM panel
    /// at once.
    g: fn([PanelLanes; 3]) -> [PanelLanes; TMAX],
}

/// F(2×2, 3×3): `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`.
/// Rows sum to |·| = 2 (`Bᵀ`), 1, 3/2, 3/2, 1 (`G`), 3 (`Aᵀ`).
pub const F2: Variant = Variant { m: 2, t: 4, b_gain: 2.0 * 2.0, g_gain: 1.5 * 1.5, a_gain: 3.0 * 3.0, g: g_f2 };

/// F(4×4, 3×3) with the interpolation points 0, ±1, ±2, ∞:
/// `G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1]`.
/// Rows sum to |·| = 10, 10, 10, 6, 6, 10 (`Bᵀ`), ¼, ½, ½, 7/24, 7/24, 1 (`G`), 5, 6, 10,
/// 19 (`Aᵀ`).
pub const F4: Variant = Variant { m: 4, t: 6, b_gain: 10.0 * 10.0, g_gain: 1.0, a_gain: 19.0 * 19.0, g: g_f4 };

fn g_f2([a, b, c]: [PanelLanes; 3]) -> [PanelLanes; TMAX] {
    let s = a + c;
    let z = PanelLanes::default();
    [a, (s + b) * 0.5, (s - b) * 0.5, c, z, z]
}

// Multiplying by the reciprocals instead of dividing: within an f64 ulp, far below the
// single f32 rounding of `U`, and f64 division is the slow part of the transform.
fn g_f4([a, b, c]: [PanelLanes; 3]) -> [PanelLanes; TMAX] {
    let (s, q) = (a + c, a * (1.0 / 24.0) + c * (1.0 / 6.0));
    [a * 0.25, (s + b) * (-1.0 / 6.0), (s - b) * (-1.0 / 6.0), q + b * (1.0 / 12.0), q - b * (1.0 / 12.0), c]
}

/// `MR` f64 values, lane `r` for output channel `r` of a GEMM panel: the filter transform
/// runs on a panel's filters together, so each operation is two `f64x2` instructions.
#[derive(Clone, Copy, Default, Debug)]
struct PanelLanes([f64; MR]);

impl PanelLanes {
    fn zip(self, o: PanelLanes, f: impl Fn(f64, f64) -> f64) -> PanelLanes {
        PanelLanes(core::array::from_fn(|r| f(self.0[r], o.0[r])))
    }
}

impl core::ops::Add for PanelLanes {
    type Output = PanelLanes;
    fn add(self, o: PanelLanes) -> PanelLanes {
        self.zip(o, |a, b| a + b)
    }
}

impl core::ops::Sub for PanelLanes {
    type Output = PanelLanes;
    fn sub(self, o: PanelLanes) -> PanelLanes {
        self.zip(o, |a, b| a - b)
    }
}

impl core::ops::Mul<f64> for PanelLanes {
    type Output = PanelLanes;
    fn mul(self, k: f64) -> PanelLanes {
        PanelLanes(self.0.map(|a| a * k))
    }
}

/// Largest input tile (F4), for stack buffers.
const TMAX: usize = 6;

/// Tiles per lane group (one `f32x4`).
const LANES: usize = 4;

/// The t² transformed filters `U_ξ`, each packed for the GEMM.
#[derive(Clone, Debug)]
pub struct WinogradWeights {
    variant: &'static Variant,
    c_out: usize,
    c_in: usize,
    u: Vec<PackedA>,
    /// The largest |input| this layer's transforms take: inputs up to it keep every
    /// transformed value within `TRANSFORM_MAX`, so (for finite filters and bias) the
    /// outputs are finite. Blocks with inputs beyond it run on the GEMM path instead
    /// (`Conv2d`): one NaN or ∞ would poison its whole tile — the transforms mix every
    /// input of the tile, with coefficients of both signs (∞ − ∞ = NaN), where the direct
    /// sum multiplies it into only the outputs whose 3×3 window holds it — and huge finite
    /// inputs can overflow the transforms where the direct sum does not. For He-initialised
    /// filters of 16 to 192 input channels it is 2.3·10³²–7.6·10³² (F4) and
    /// 1.0·10³⁵–3.4·10³⁵ (F2).
    input_limit: f32,
}

/// What the transforms and their GEMMs may reach, `f32::MAX / 4`: the bounds below hold
/// for exact arithmetic; rounding adds at most a factor (1 + 2⁻²⁴)ⁿ over the n ≤ c_in + 20
/// operations a value goes through (< 1.001 for any layer of GoogLeNet's size), and the
/// bias (≤ `f32::MAX / 2`, or the layer never runs Winograd) is added after; the sum stays
/// below `f32::MAX`.
const TRANSFORM_MAX: f64 = f32::MAX as f64 / 4.0;

impl WinogradWeights {
    /// `weights`: the layer's 3×3 filters packed for the GEMM (`c_out × c_in·9`, as
    /// `PackedA::pack` packs OIHW); `bias` the layer's. `U = (G·g)·Gᵀ` per filter with the factored
    /// `G` (3 + t applications of a few adds, in f64), written straight into the t² packed
    /// matrices. GoogLeNet has ~350 k 3×3 filters, transformed when a plan first needs a
    /// variant (its first forward, part of the cold start), so the order matters: one
    /// panel of `MR` output channels at a time, the `MR` filters of one input channel
    /// together, so that each transformed value of the panel is one whole `MR`-float run
    /// of the packed layout and every `U_ξ` is written once, front to back, with no
    /// zero-fill first (one filter at a time in f64 scalars, into zeroed matrices, took
    /// 80 ms of GoogLeNet's first forward; this takes ~45, measured in Node, about half of
    /// it the first-touch page faults of the 40 MB it fills). The filters are read from
    /// the GEMM packing, where one input channel's `MR` filters are 36 consecutive floats
    /// (reading them from OIHW rows `c_in·9` floats apart, GoogLeNet's ten 3×3 layers
    /// took 41.9 ms to build and run once, ConvBench in wasm; now 39.5, the limit below
    /// included).
    pub fn new(variant: &'static Variant, weights: &PackedA, bias: Option<&[f32]>) -> Result<Self, OutOfMemory> {
        assert_eq!(weights.k() % 9, 0, "winograd: weights are not 3×3 filters");
        let (t, c_out, c_in) = (variant.t, weights.m(), weights.k() / 9);
        let len = PackedA::packed_len(c_out, c_in);
        let mut u: Vec<Vec<f32>> = (0..t * t).map(|_| alloc::with_capacity(len)).collect::<Result<_, _>>()?;
        // max over output channels o of Σ_c max_j |g[o][c][j]|, for `input_limit`.
        let mut w_gain = 0.0f64;
        for panel in 0..c_out.div_ceil(MR) {
            let mut sums = PanelLanes::default();
            // The panel's filters of one input channel at a time, lane by lane: element `j`
            // of filter `r` is at `j·MR + r` (lanes past c_out are the packing's zero
            // padding rows).
            for filters in weights.panel_data(panel).chunks_exact(9 * MR) {
                let (mut f, mut max_bits) = ([PanelLanes::default(); 9], [0u32; MR]);
                for (fj, w) in f.iter_mut().zip(filters.chunks_exact(MR)) {
                    let w: &[f32; MR] = w.try_into().expect("chunks of MR");
                    fj.0 = w.map(f64::from);
                    max_bits = core::array::from_fn(|r| max_bits[r].max(w[r].to_bits() & 0x7fff_ffff)); // see `max_abs_bits`
                }
                sums = sums + PanelLanes(max_bits.map(|b| f32::from_bits(b) as f64));
                let mut gf = [[PanelLanes::default(); 3]; TMAX]; // G·f, t × 3
                for b in 0..3 {
                    let col = (variant.g)([f[b], f[3 + b], f[6 + b]]);
                    for (row, &v) in gf.iter_mut().zip(&col).take(t) {
                        row[b] = v;
                    }
                }
                for (xi_row, row) in gf.iter().enumerate().take(t) {
                    for (j, v) in (variant.g)(*row).iter().enumerate().take(t) {
                        u[xi_row * t + j].extend_from_slice(&v.0.map(|x| x as f32));
                    }
                }
            }
            w_gain = sums.0.iter().fold(w_gain, |m, &s| if s > m || s.is_nan() { s } else { m });
        }
        let u = u.into_iter().map(|data| PackedA::from_packed(c_out, c_in, data)).collect();
        let bias_max = bias.unwrap_or(&[]).iter().fold(0.0f32, |m, b| if b.abs() > m || b.is_nan() { b.abs() } else { m });
        // Inputs up to `limit` keep every transformed value within TRANSFORM_MAX: |V| ≤
        // b_gain·limit; |U_ξ[o][c]| ≤ g_gain·max_j |g[o][c][j]|, so every partial sum of
        // the GEMM has |M| ≤ g_gain·w_gain·|V|; |Y| ≤ a_gain·|M|. (Summing |U| as it is
        // made would give a limit 1.5 (F4) to 3.3 (F2) times higher, for ~6 ms more of
        // GoogLeNet's first forward, a fifth of its filter transforms.) NaN or ∞ in the
        // filters or bias, or a bias above f32::MAX / 2: -1, no input qualifies. A layer
        // of zeros (w_gain = 0) still refuses ∞ and NaN.
        let limit = TRANSFORM_MAX / (variant.b_gain * variant.g_gain * w_gain * variant.a_gain);
        let input_limit = if w_gain.is_finite() && bias_max <= f32::MAX / 2.0 { limit.min(f32::MAX as f64) as f32 } else { -1.0 };
        Ok(Self { variant, c_out, c_in, u, input_limit })
    }

    /// Whether tiles `tiles` of image `x` can run on Winograd: every value of the input
    /// rows they read is within `input_limit` (NaN is not). Reads whole rows, a superset
    /// of the tiles' inputs when a block starts or ends inside a tile row.
    pub fn accepts(&self, x: &[f32], p: &Conv2dParams, tiles: &Range<usize>) -> bool {
        assert_eq!(x.len(), p.c_in * p.h * p.w, "winograd: input length");
        let (top, len) = staged_rows(p, self.variant.m, self.variant.t, tiles);
        let lo = top.clamp(0, p.h as isize) as usize;
        let hi = (top + len as isize).clamp(lo as isize, p.h as isize) as usize;
        let max = (0..p.c_in).map(|c| max_abs_bits(&x[(c * p.h + lo) * p.w..(c * p.h + hi) * p.w])).max().unwrap_or(0);
        f32::from_bits(max) <= self.input_limit
    }

    pub fn variant(&self) -> &'static Variant {
        self.variant
    }
}

/// The output tile grid of `p`: `(tile rows, tile columns)`; tiles are numbered row-major.
pub fn tile_grid(p: &Conv2dParams, v: &Variant) -> (usize, usize) {
    (p.out_h().div_ceil(v.m), p.out_w().div_ceil(v.m))
}

/// The input rows tiles `tiles` of m×m outputs read (t = m + 2 per tile row): the first
/// (`-ph ..` at the top; negative in the padding) and how many, padding included.
fn staged_rows(p: &Conv2dParams, m: usize, t: usize, tiles: &Range<usize>) -> (isize, usize) {
    let tw = p.out_w().div_ceil(m);
    let (ty0, ty1) = (tiles.start / tw, (tiles.end - 1) / tw);
    ((m * ty0) as isize - p.ph as isize, m * (ty1 - ty0) + t)
}

/// The largest `|v|` of `x` as bits (0 for an empty `x`): the bits of non-negative floats
/// order as their values do, and NaN's (`0x7f80_0001..`) above ∞'s, so one integer max
/// finds both (and vectorises, where `f32::max` would skip NaN).
fn max_abs_bits(x: &[f32]) -> u32 {
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

/// Tiles per block for [`conv_block`]: a multiple of the GEMM's `NR` columns whose
/// transformed input (`t²·c_in` floats per tile) and one pass of products
/// (`t²·CO_CHUNK`) fit in [`BLOCK_BYTES`], capped at the layer's tiles. Each block reads
/// every transformed filter once, so fewer, larger blocks stream the filters less often.
pub fn block_tiles(p: &Conv2dParams, w: &WinogradWeights) -> usize {
    let v = w.variant;
    let (th, tw) = tile_grid(p, v);
    let per_tile = v.t * v.t * (p.c_in + CO_CHUNK) * 4;
    (BLOCK_BYTES / per_tile / NR * NR).clamp(NR, (th * tw).next_multiple_of(NR))
}

/// Scratch for [`conv_block`]; it only grows, so a steady state allocates nothing.
#[derive(Default, Debug)]
pub struct WinogradScratch {
    /// One input channel's rows for the block's tile rows, zero-padded.
    rows: Vec<f32>,
    /// Transformed input `V[ξ][c_in][block]` (see [`Layout`]).
    v: Vec<f32>,
    /// Products of one chunk of output channels, `M[o][ξ][block]`.
    m: Vec<f32>,
    /// Per tile of the block: offset of its first input in `rows`.
    tile_in: Vec<usize>,
    /// Per tile of the block: its output pixel and how many rows/columns of it exist.
    tile_out: Vec<OutTile>,
    /// The GEMM's tail panel (unused: blocks are padded to `NR` columns).
    gemm_tail: Vec<f32>,
}

impl WinogradScratch {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.rows.capacity() + self.v.capacity() + self.m.capacity() + self.gemm_tail.capacity()) * size_of::<f32>()
            + self.tile_in.capacity() * size_of::<usize>()
            + self.tile_out.capacity() * size_of::<OutTile>()
    }
}

/// Where one tile's outputs go in an output plane.
#[derive(Clone, Copy, Debug, Default)]
struct OutTile {
    /// Index of its top-left pixel in the plane.
    pixel: usize,
    /// Rows and columns inside the output (< m at the bottom and right edges; 0 rows for
    /// the phantom lanes of the last group).
    rows: usize,
    cols: usize,
}

/// Grows `buf` to at least `len` elements and returns its first `len`.
fn grow<T: Clone + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    &mut buf[..len]
}

/// Output channels `co` of tiles `tiles` (row-major over [`tile_grid`]) of one image:
/// `x` (`c_in × h × w`) → the pixels of those tiles in planes `co` of `out`, with bias and
/// optional ReLU. Writes nothing else, so blocks × channel ranges that cover the output
/// once may run as independent tasks. `co.start` must be a multiple of the GEMM's `MR`
/// (4); each call transforms its tiles' input again, so splitting channels repeats that
/// part of the work. [`block_tiles`] is the block size that stays in L2.
///
/// # Safety
/// `out` must point to `c_out` output planes of `oh·ow` floats each (plane `o` at
/// `out + o·oh·ow`, i.e. the layer's channel 0 of this image), valid for writes at every
/// pixel of `tiles` in planes `co`, and no other thread may access those elements during
/// the call.
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
    scratch: &mut WinogradScratch,
) {
    assert!(p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1, "winograd: 3×3 stride 1 only");
    assert_eq!((w.c_out, w.c_in), (p.c_out, p.c_in), "winograd: weights do not match the layer");
    assert_eq!(x.len(), p.c_in * p.h * p.w, "winograd: input length");
    let (th, tw) = tile_grid(p, w.variant);
    assert!(tiles.start <= tiles.end && tiles.end <= th * tw, "winograd: tiles out of range");
    assert!(co.start % MR == 0 && co.start <= co.end && co.end <= p.c_out, "winograd: bad output channel range");
    if let Some(b) = bias {
        assert_eq!(b.len(), p.c_out, "winograd: bias length");
    }
    if tiles.is_empty() || co.is_empty() {
        return;
    }
    let block = Block { x, p, w, tiles, tw, bias, relu, out };
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
    bias: Option<&'a [f32]>,
    relu: bool,
    out: *mut f32,
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

    /// Fills `tile_in` and `tile_out` for the block's tiles, padded to whole groups.
    fn tile_offsets<F: Tile>(&self, lay: Layout, s: &mut WinogradScratch) {
        let (oh, ow) = (self.p.out_h(), self.p.out_w());
        let ty0 = self.tiles.start / self.tw;
        let len = self.tiles.len().next_multiple_of(LANES);
        let (tile_in, tile_out) = (grow(&mut s.tile_in, len), grow(&mut s.tile_out, len));
        for (i, tile) in self.tiles.clone().enumerate() {
            let (ty, tx) = (tile / self.tw, tile % self.tw);
            tile_in[i] = F::M * ((ty - ty0) * lay.wp + tx);
            let (oy, ox) = (F::M * ty, F::M * tx);
            tile_out[i] = OutTile { pixel: oy * ow + ox, rows: F::M.min(oh - oy), cols: F::M.min(ow - ox) };
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
        let (top, rows_len) = staged_rows(p, F::M, F::T, &self.tiles); // input row of staged row 0
        let staged = grow(&mut s.rows, rows_len * wp);
        let v = grow(&mut s.v, F::T * F::T * lay.v_xi).as_mut_ptr();
        let groups = self.tiles.len().div_ceil(LANES);
        for c in 0..p.c_in {
            let plane = &self.x[c * p.h * p.w..][..p.h * p.w];
            // Staged row r, column j holds x[c][top + r][j − pw] (zero outside the image);
            // wp ≥ pw + w always (the tiles cover the padded input), so rows fit whole.
            for (r, row) in staged.chunks_exact_mut(wp).enumerate() {
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
        let (oh, ow) = (self.p.out_h(), self.p.out_w());
        let zero = L::splat(0.0);
        for o in chunk.clone() {
            let b = L::splat(self.bias.map_or(0.0, |b| b[o]));
            let mo = m[(o - chunk.start) * tt * n..][..tt * n].as_ptr();
            let plane = self.out.add(o * oh * ow);
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

/// The 1-D transforms of one variant, on the first `T` entries of `TMAX`-arrays of lanes
/// (`Bᵀ·d` for one row or column of an input tile, `Aᵀ·m` for one of a product tile).
trait Tile {
    const M: usize;
    const T: usize;
    /// Floats one lane's row read may cover ([`Lanes::gather`]); staged rows are padded
    /// so that the last tile column's read stays inside.
    const ROW_LOAD: usize;
    fn bt(d: [L; TMAX]) -> [L; TMAX];
    fn at(m: [L; TMAX]) -> [L; 4];
}

/// F(2×2, 3×3): `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`, `Aᵀ = [1 1 1 0; 0 1 −1 −1]`.
struct F23;

impl Tile for F23 {
    const M: usize = 2;
    const T: usize = 4;
    const ROW_LOAD: usize = 4;

    #[inline(always)]
    fn bt([d0, d1, d2, d3, ..]: [L; TMAX]) -> [L; TMAX] {
        [d0.sub(d2), d1.add(d2), d2.sub(d1), d1.sub(d3), d3, d3]
    }

    #[inline(always)]
    fn at([m0, m1, m2, m3, ..]: [L; TMAX]) -> [L; 4] {
        let s = m1.add(m2);
        [m0.add(s), m1.sub(m2).sub(m3), s, s]
    }
}

/// F(4×4, 3×3), points 0, ±1, ±2, ∞:
/// `Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]`,
/// `Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]`, factored so that rows
/// sharing terms compute them once: 18 operations per 6 inputs for `Bᵀ`, 13 for `Aᵀ` (their
/// nonzeros alone take 28 and 20).
struct F43;

impl Tile for F43 {
    const M: usize = 4;
    const T: usize = 6;
    const ROW_LOAD: usize = 8;

    #[inline(always)]
    fn bt([d0, d1, d2, d3, d4, d5]: [L; TMAX]) -> [L; TMAX] {
        let (two, four) = (L::splat(2.0), L::splat(4.0));
        let a = d4.sub(four.mul(d2)); // rows 1, 2: ±(d3 − 4·d1) + (d4 − 4·d2)
        let b = d3.sub(four.mul(d1));
        let c = d4.sub(d2); // rows 0, 3, 4
        let e = two.mul(d3.sub(d1));
        [four.mul(d0.sub(d2)).add(c), a.add(b), a.sub(b), c.add(e), c.sub(e), four.mul(d1.sub(d3)).add(d5.sub(d3))]
    }

    #[inline(always)]
    fn at([m0, m1, m2, m3, m4, m5]: [L; TMAX]) -> [L; 4] {
        let (s12, d12, s34, d34) = (m1.add(m2), m1.sub(m2), m3.add(m4), m3.sub(m4));
        [m0.add(s12).add(s34), d12.add(L::splat(2.0).mul(d34)), s12.add(L::splat(4.0).mul(s34)), d12.add(L::splat(8.0).mul(d34)).add(m5)]
    }
}

/// Four tiles side by side: lane `l` of every value belongs to tile `l` of a group.
trait Lanes: Copy {
    fn splat(x: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `v < 0 ? 0 : v` (NaN stays NaN, like the GEMM's epilogue).
    fn relu(self) -> Self;
    /// # Safety
    /// `p` is valid for reading 4 floats.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` is valid for writing 4 floats.
    unsafe fn store(self, p: *mut f32);
    /// Element `j` of the result has `p[l][j]` in lane `l`, for `j < t` (t = 4 or 6).
    ///
    /// # Safety
    /// Each `p[l]` is valid for reading 4 floats when t = 4, 8 when t = 6.
    unsafe fn gather(p: [*const f32; LANES], t: usize) -> [Self; TMAX];
    /// Writes lane `l` of `y[0..cols[l]]` to `q[l][0..cols[l]]`, for `m` (2 or 4) values.
    ///
    /// # Safety
    /// Each `q[l]` is valid for writing `cols[l] ≤ m` floats.
    unsafe fn scatter(y: &[Self; 4], m: usize, q: [*mut f32; LANES], cols: [usize; LANES]);
}

/// The lanes of this build: simd128 in wasm builds with `+simd128`, the scalar twin
/// elsewhere.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
type L = simd128::F32x4;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
type L = scalar::F32x4;

/// The portable lanes: the native build's and the shape simd128 must reproduce.
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
mod scalar {
    use super::{Lanes, LANES, TMAX};

    #[derive(Clone, Copy, Debug)]
    pub struct F32x4([f32; LANES]);

    impl F32x4 {
        #[inline(always)]
        fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
            Self(core::array::from_fn(|l| f(self.0[l], o.0[l])))
        }
    }

    impl Lanes for F32x4 {
        #[inline(always)]
        fn splat(x: f32) -> Self {
            Self([x; LANES])
        }

        #[inline(always)]
        fn add(self, o: Self) -> Self {
            self.zip(o, |a, b| a + b)
        }

        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            self.zip(o, |a, b| a - b)
        }

        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            self.zip(o, |a, b| a * b)
        }

        #[inline(always)]
        fn relu(self) -> Self {
            Self(self.0.map(|v| if v < 0.0 { 0.0 } else { v }))
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(core::ptr::read_unaligned(p as *const [f32; LANES]))
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            core::ptr::write_unaligned(p as *mut [f32; LANES], self.0);
        }

        #[inline(always)]
        unsafe fn gather(p: [*const f32; LANES], t: usize) -> [Self; TMAX] {
            core::array::from_fn(|j| Self(p.map(|q| if j < t { *q.add(j) } else { 0.0 })))
        }

        #[inline(always)]
        unsafe fn scatter(y: &[Self; 4], _m: usize, q: [*mut f32; LANES], cols: [usize; LANES]) {
            for l in 0..LANES {
                for (b, v) in y.iter().enumerate().take(cols[l]) {
                    *q[l].add(b) = v.0[l];
                }
            }
        }
    }
}

/// simd128 lanes: rows of four tiles become lane vectors by 4×4 transposes
/// (`i32x4_shuffle`s that V8 lowers to unpck/shufps), and back for the outputs.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::{Lanes, LANES, TMAX};
    use core::arch::wasm32::*;

    #[derive(Clone, Copy, Debug)]
    pub struct F32x4(v128);

    /// Rows `a, b, c, d` → columns.
    #[inline(always)]
    fn transpose([a, b, c, d]: [v128; 4]) -> [v128; 4] {
        let (ab_lo, ab_hi) = (i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
        let (cd_lo, cd_hi) = (i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
        [
            i32x4_shuffle::<0, 1, 4, 5>(ab_lo, cd_lo),
            i32x4_shuffle::<2, 3, 6, 7>(ab_lo, cd_lo),
            i32x4_shuffle::<0, 1, 4, 5>(ab_hi, cd_hi),
            i32x4_shuffle::<2, 3, 6, 7>(ab_hi, cd_hi),
        ]
    }

    /// Lanes `0..cols` of `v` to `q`.
    #[inline(always)]
    unsafe fn store_cols(q: *mut f32, v: v128, cols: usize) {
        match cols {
            4 => v128_store(q as *mut v128, v),
            3 => {
                v128_store64_lane::<0>(v, q as *mut u64);
                v128_store32_lane::<2>(v, q.add(2) as *mut u32);
            }
            2 => v128_store64_lane::<0>(v, q as *mut u64),
            1 => v128_store32_lane::<0>(v, q as *mut u32),
            _ => {}
        }
    }

    impl Lanes for F32x4 {
        #[inline(always)]
        fn splat(x: f32) -> Self {
            Self(f32x4_splat(x))
        }

        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Self(f32x4_add(self.0, o.0))
        }

        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Self(f32x4_sub(self.0, o.0))
        }

        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            Self(f32x4_mul(self.0, o.0))
        }

        #[inline(always)]
        fn relu(self) -> Self {
            // pmax(v, 0) = v < 0 ? 0 : v, exactly the scalar rule.
            Self(f32x4_pmax(self.0, f32x4_splat(0.0)))
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(v128_load(p as *const v128))
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            v128_store(p as *mut v128, self.0);
        }

        #[inline(always)]
        unsafe fn gather(p: [*const f32; LANES], t: usize) -> [Self; TMAX] {
            let [d0, d1, d2, d3] = transpose(p.map(|q| v128_load(q as *const v128)));
            if t == 4 {
                return [d0, d1, d2, d3, d3, d3].map(Self);
            }
            // Elements 4 and 5: the low halves of each lane's second vector, transposed.
            let [e0, e1, e2, e3] = p.map(|q| v128_load(q.add(4) as *const v128));
            let (lo01, lo23) = (i32x4_shuffle::<0, 4, 1, 5>(e0, e1), i32x4_shuffle::<0, 4, 1, 5>(e2, e3));
            [d0, d1, d2, d3, i32x4_shuffle::<0, 1, 4, 5>(lo01, lo23), i32x4_shuffle::<2, 3, 6, 7>(lo01, lo23)].map(Self)
        }

        #[inline(always)]
        unsafe fn scatter(y: &[Self; 4], m: usize, q: [*mut f32; LANES], cols: [usize; LANES]) {
            if m == 4 {
                let r = transpose(y.map(|v| v.0));
                for l in 0..LANES {
                    store_cols(q[l], r[l], cols[l]);
                }
                return;
            }
            // m = 2: lanes 0, 1 of `lo` are tile 0's two values, lanes 2, 3 tile 1's.
            let (lo, hi) = (i32x4_shuffle::<0, 4, 1, 5>(y[0].0, y[1].0), i32x4_shuffle::<2, 6, 3, 7>(y[0].0, y[1].0));
            store_cols(q[0], lo, cols[0]);
            store_cols(q[1], i32x4_shuffle::<2, 3, 2, 3>(lo, lo), cols[1]);
            store_cols(q[2], hi, cols[2]);
            store_cols(q[3], i32x4_shuffle::<2, 3, 2, 3>(hi, hi), cols[3]);
        }
    }
}

#[cfg(test)]
mod filter_tests {
    use super::*;
    use crate::testutil::data;

    /// `G` of each variant as the plain matrix of Lavin & Gray, t × 3.
    fn g_matrix(v: &Variant) -> Vec<[f64; 3]> {
        if v.t == 4 {
            vec![[1., 0., 0.], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0., 0., 1.]]
        } else {
            let (s, t, w) = (1. / 6., 1. / 12., 1. / 24.);
            vec![[0.25, 0., 0.], [-s, -s, -s], [-s, s, -s], [w, t, s], [w, -t, s], [0., 0., 1.]]
        }
    }

    #[test]
    fn factored_filter_transform_equals_g_g_gt() {
        for v in [&F2, &F4] {
            let (c_out, c_in) = (5, 3);
            let wt = data(c_out * c_in * 9, 17);
            let w = WinogradWeights::new(v, &PackedA::pack(&wt, c_out, c_in * 9), None).unwrap();
            let g = g_matrix(v);
            for (i, f) in wt.chunks_exact(9).enumerate() {
                let (oc, ic) = (i / c_in, i % c_in);
                for xi in 0..v.t * v.t {
                    let (r, c) = (xi / v.t, xi % v.t);
                    let want: f64 = (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).map(|(a, b)| g[r][a] * f[a * 3 + b] as f64 * g[c][b]).sum();
                    let got = w.u[xi].unpack().unwrap()[oc * c_in + ic];
                    // The factored order rounds differently in f64, never by an f32 ulp more.
                    assert!((got - want as f32).abs() <= f32::EPSILON * (want.abs() as f32).max(1e-3), "F{} U_{xi}[{oc}][{ic}]: {got} vs {want}", v.m);
                }
            }
        }
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use crate::testutil::data;

    /// The factored `bt` / `at` against the matrices written in `F23` / `F43`'s docs (unit
    /// vectors through the lanes), and each variant's gains against the largest row sums
    /// of |coefficients| of those matrices and of `G` (`F2` / `F4`'s docs).
    #[test]
    fn transform_gains_are_the_largest_row_sums_of_bt_and_at() {
        let bt4: [[f32; 6]; 6] = [[4., 0., -5., 0., 1., 0.], [0., -4., -4., 1., 1., 0.], [0., 4., -4., -1., 1., 0.], [0., -2., -1., 2., 1., 0.], [0., 2., -1., -2., 1., 0.], [0., 4., 0., -5., 0., 1.]];
        let at4: [[f32; 6]; 4] = [[1., 1., 1., 1., 1., 0.], [0., 1., -1., 2., -2., 0.], [0., 1., 1., 4., 4., 0.], [0., 1., -1., 8., -8., 1.]];
        let bt2: [[f32; 6]; 4] = [[1., 0., -1., 0., 0., 0.], [0., 1., 1., 0., 0., 0.], [0., -1., 1., 0., 0., 0.], [0., 1., 0., -1., 0., 0.]];
        let at2: [[f32; 6]; 2] = [[1., 1., 1., 0., 0., 0.], [0., 1., -1., -1., 0., 0.]];
        let (s, t, w) = (1. / 6., 1. / 12., 1. / 24.);
        let g2: [[f32; 6]; 4] = [[1., 0., 0., 0., 0., 0.], [0.5, 0.5, 0.5, 0., 0., 0.], [0.5, -0.5, 0.5, 0., 0., 0.], [0., 0., 1., 0., 0., 0.]];
        let g4: [[f32; 6]; 6] = [[0.25, 0., 0., 0., 0., 0.], [-s, -s, -s, 0., 0., 0.], [-s, s, -s, 0., 0., 0.], [w, t, s, 0., 0., 0.], [w, -t, s, 0., 0., 0.], [0., 0., 1., 0., 0., 0.]];
        type Transform = fn([L; TMAX]) -> Vec<L>;
        type Matrix<'a> = &'a [[f32; 6]];
        let column = |f: Transform, j: usize| -> Vec<f32> {
            f(core::array::from_fn(|i| L::splat(if i == j { 1.0 } else { 0.0 })))
                .iter()
                .map(|v| {
                    let mut lanes = [0.0f32; LANES];
                    // SAFETY: `lanes` holds 4 floats.
                    unsafe { v.store(lanes.as_mut_ptr()) };
                    lanes[0]
                })
                .collect()
        };
        let gain = |rows: &[[f32; 6]]| rows.iter().map(|r| r.iter().map(|c| c.abs() as f64).sum::<f64>()).fold(0.0, f64::max).powi(2);
        let variants: [(&Variant, Matrix, Matrix, Matrix, Transform, Transform); 2] = [
            (&F2, &bt2, &g2, &at2, |d| F23::bt(d)[..4].to_vec(), |m| F23::at(m)[..2].to_vec()),
            (&F4, &bt4, &g4, &at4, |d| F43::bt(d).to_vec(), |m| F43::at(m).to_vec()),
        ];
        for (v, bt, g, at, bt_fn, at_fn) in variants {
            for j in 0..v.t {
                assert_eq!(column(bt_fn, j), bt.iter().map(|r| r[j]).collect::<Vec<_>>(), "F{} Bᵀ column {j}", v.m);
                assert_eq!(column(at_fn, j), at.iter().map(|r| r[j]).collect::<Vec<_>>(), "F{} Aᵀ column {j}", v.m);
            }
            // The largest row sums (2, 3/2, 3; 10, 1, 19) are exact in f32.
            assert_eq!((v.b_gain, v.g_gain, v.a_gain), (gain(bt), gain(g), gain(at)), "F{} gains", v.m);
        }
    }

    /// He-initialised 3×3 filters (uniform, bound √(6 / fan_in)), `c_out × c_in`.
    fn he_filters(c_out: usize, c_in: usize, salt: u32) -> PackedA {
        let bound = (6.0 / (9 * c_in) as f32).sqrt();
        let w: Vec<f32> = data(c_out * c_in * 9, salt).iter().map(|v| v * bound).collect();
        PackedA::pack(&w, c_out, c_in * 9)
    }

    /// Inputs up to the limit are accepted and, even all at ±limit, give finite outputs;
    /// the next float above it, ∞ and NaN are refused; so is every input when the filters
    /// or the bias could not give finite outputs anyway.
    #[test]
    fn input_limit_admits_exactly_the_inputs_the_transforms_take() {
        let (c_in, c_out, h, w) = (64, 8, 9, 10);
        let p = Conv2dParams { c_in, c_out, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, h, w };
        let bias = data(c_out, 3);
        for v in [&F2, &F4] {
            let filters = he_filters(c_out, c_in, 2);
            let wino = WinogradWeights::new(v, &filters, Some(&bias)).unwrap();
            let limit = wino.input_limit;
            assert!(limit > 1e30 && limit < f32::MAX, "F{}: limit {limit}", v.m);
            let (th, tw) = tile_grid(&p, v);
            let tiles = 0..th * tw;
            let signs = data(c_in * h * w, 4);
            let mut x: Vec<f32> = signs.iter().map(|s| if *s < 0.0 { -limit } else { limit }).collect();
            assert!(wino.accepts(&x, &p, &tiles), "F{}: ±limit refused", v.m);
            let mut out = vec![0.0; c_out * h * w];
            // SAFETY: `out` holds the c_out planes of h·w outputs (padding 1 keeps the size).
            unsafe { conv_block(&x, &p, &wino, tiles.clone(), 0..c_out, Some(&bias), false, out.as_mut_ptr(), &mut WinogradScratch::default()) };
            assert!(out.iter().all(|o| o.is_finite()), "F{}: inputs at ±limit overflowed", v.m);
            for bad in [limit.next_up(), -limit.next_up(), f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
                x[(5 * h + 4) * w + 7] = bad;
                assert!(!wino.accepts(&x, &p, &tiles), "F{}: {bad} accepted", v.m);
            }
            let zeros = vec![0.0; c_in * h * w];
            let mut broken = filters.unpack().unwrap();
            broken[17] = f32::INFINITY;
            let broken = PackedA::pack(&broken, c_out, c_in * 9);
            let huge_bias = vec![f32::MAX; c_out];
            for (filters, bias) in [(&broken, &bias[..]), (&filters, &huge_bias[..])] {
                assert!(!WinogradWeights::new(v, filters, Some(bias)).unwrap().accepts(&zeros, &p, &tiles), "F{}: accepted with a filter or bias out of range", v.m);
            }
        }
    }
}
