//! The variants F(2×2) and F(4×4), and the filter transform `U = G·g·Gᵀ` with the input
//! limit it implies (made once per layer and input size, when a plan is compiled).

use crate::alloc::{self, OutOfMemory};
use core::ops::Range;

use super::block::{max_abs_bits, staged_rows};
use super::TMAX;
use crate::conv::Conv2dParams;
use crate::gemm::{PackedA, MR};

/// One F(m×m, 3×3) variant: its tile sizes, filter transform and transform gains.
#[derive(Debug)]
pub struct Variant {
    /// Output tile size.
    pub m: usize,
    /// Input tile size, m + 2.
    pub(super) t: usize,
    /// How much the input transform `Bᵀ·d·B`, the filter transform `G·g·Gᵀ` and the output
    /// transform `Aᵀ·M·A` can magnify: the largest sum of |coefficients| over a row of
    /// `Bᵀ` (of `G`, of `Aᵀ`), squared for the two passes. The factored forms below
    /// (`Tile::bt`, `Tile::at`) add up the same coefficients without cancelling terms, so
    /// every intermediate they compute is bounded by the same sums. See
    /// [`WinogradWeights::accepts`].
    pub(super) b_gain: f64,
    pub(super) g_gain: f64,
    pub(super) a_gain: f64,
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


/// The t² transformed filters `U_ξ`, each packed for the GEMM.
#[derive(Clone, Debug)]
pub struct WinogradWeights {
    pub(super) variant: &'static Variant,
    pub(super) c_out: usize,
    pub(super) c_in: usize,
    pub(super) u: Vec<PackedA>,
    /// The largest |input| this layer's transforms take: inputs up to it keep every
    /// transformed value within `TRANSFORM_MAX`, so (for finite filters and bias) the
    /// outputs are finite. Blocks with inputs beyond it run on the GEMM path instead
    /// (`Conv2d`): one NaN or ∞ would poison its whole tile — the transforms mix every
    /// input of the tile, with coefficients of both signs (∞ − ∞ = NaN), where the direct
    /// sum multiplies it into only the outputs whose 3×3 window holds it — and huge finite
    /// inputs can overflow the transforms where the direct sum does not. For He-initialised
    /// filters of 16 to 192 input channels it is 2.3·10³²–7.6·10³² (F4) and
    /// 1.0·10³⁵–3.4·10³⁵ (F2).
    pub(super) input_limit: f32,
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
