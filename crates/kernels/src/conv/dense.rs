//! Convolutions on maps so small that every output pixel sees the whole input through
//! real kernel taps (a 3×3 with padding 1 on 2×2 and 1×1 maps, a 5×5 with padding 2 on
//! up to 3×3): there the layer *is* a fully connected one, from the `c_in·h·w` values of
//! an image to its `c_out·oh·ow` outputs, with weights `W'[(o, p)][(c, q)] = W[o][c][tap
//! from output p to input q]`. Run as one GEMM over the batch (`n` columns), it skips
//! the im2col's padding taps, which a GEMM multiplies by zero: 5/9 of a 3×3 on 2×2 maps,
//! 8/9 on 1×1 maps (GoogLeNet's inception 4 and 5 blocks at 32×32 inputs).
//!
//! Each output is the same sum, in the same order, as on the im2col GEMM less its
//! `w·0` terms, which leave an `f32` sum unchanged (the sum starts at `+0`, so it never
//! holds `−0`): the bits of the image-by-image path, for finite weights.

use crate::alloc::{self, OutOfMemory};
use crate::gemm::{PackedA, MR};

use super::ConvSpec;

/// A layer's weights as the fully connected layer it is on one input size.
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    /// `W'`: `c_out·oh·ow` rows (output channel, then pixel) × `c_in·h·w` columns.
    pub(crate) a: PackedA,
    /// The layer's bias, one value per row of `W'`.
    pub(crate) bias: Option<Vec<f32>>,
}

/// Input sizes a layer may run dense at: `h ≤ kh − ph` and `w ≤ kw − pw` (see [`slot`]),
/// one slot each.
pub(crate) fn slots(spec: &ConvSpec) -> usize {
    spec.kh.saturating_sub(spec.ph) * spec.kw.saturating_sub(spec.pw)
}

/// The slot of an `h × w` input when the layer runs dense on it: every output pixel
/// reaches every input pixel through a tap inside the kernel (`h − 1 + ph < kh`, and the
/// last output row's first tap `ph − (oh − 1)·sh ≥ 0`; the same across), and that takes
/// fewer multiplies than the im2col (`h·w < kh·kw`).
pub(crate) fn slot(spec: &ConvSpec, h: usize, w: usize) -> Option<usize> {
    let axis = |len: usize, k: usize, s: usize, p: usize| -> bool {
        let Some(out) = super::conv_out_size(len, k, s, p) else { return false };
        len >= 1 && len + p <= k && (out - 1) * s <= p
    };
    let fits = axis(h, spec.kh, spec.sh, spec.ph) && axis(w, spec.kw, spec.sw, spec.pw);
    (fits && h * w < spec.kh * spec.kw).then(|| (h - 1) * (spec.kw - spec.pw) + (w - 1))
}

impl Dense {
    /// `W'` for an `h × w` input from the layer's `OIHW` weights.
    pub(crate) fn new(spec: &ConvSpec, h: usize, w: usize, weights: &[f32], bias: Option<&[f32]>) -> Result<Self, OutOfMemory> {
        let p = spec.with_input(h, w);
        let ohw = p.out_h() * p.out_w();
        let a = pack(spec, h, w, weights, false, alloc::filled(PackedA::packed_len(spec.c_out * ohw, spec.c_in * h * w), 0.0)?);
        let bias = match bias {
            Some(b) => Some(expand_bias(b, ohw, alloc::filled(spec.c_out * ohw, 0.0)?)),
            None => None,
        };
        Ok(Self { a, bias })
    }
}

/// `bias` (one value per output channel) repeated for each of a channel's `ohw` rows of
/// `W'`, into `buf` (`c_out·ohw` floats).
pub(crate) fn expand_bias(bias: &[f32], ohw: usize, mut buf: Vec<f32>) -> Vec<f32> {
    for (v, r) in buf.iter_mut().zip(0..) {
        *v = bias[r / ohw];
    }
    buf
}

/// `W'` (`transposed`: `W'ᵀ`, for training's input gradient) of an `h × w` input, packed
/// into `buf` (which holds [`PackedA::packed_len`] of it), from the layer's `OIHW`
/// weights: element `[(o, p)][(c, q)]` is `W[o][c][tap from output pixel p to input
/// pixel q]`.
pub(crate) fn pack(spec: &ConvSpec, h: usize, w: usize, weights: &[f32], transposed: bool, mut buf: Vec<f32>) -> PackedA {
    let pr = spec.with_input(h, w);
    let (oh, ow) = (pr.out_h(), pr.out_w());
    let (outs, ins) = (spec.c_out * oh * ow, spec.c_in * h * w);
    let (m, k) = if transposed { (ins, outs) } else { (outs, ins) };
    assert_eq!(buf.len(), PackedA::packed_len(m, k), "dense: buffer length");
    // The weight of output (o, oy, ox) and input (c, iy, ix): in the kernel by `slot`'s condition.
    let tap = |(o, oy, ox): (usize, usize, usize), (c, iy, ix): (usize, usize, usize)| {
        ((o * spec.c_in + c) * spec.kh + iy + spec.ph - oy * spec.sh) * spec.kw + ix + spec.pw - ox * spec.sw
    };
    let output = |row: usize| (row / (oh * ow), row / ow % oh, row % ow);
    let input = |col: usize| (col / (h * w), col / w % h, col % w);
    // Written in the packed order (panel, then kk, then the panel's rows), each panel's
    // rows decomposed once, kk's by counting: the weights are gathered, the stores run on.
    if k > 0 {
        for (panel, dst) in buf.chunks_exact_mut(k * MR).enumerate() {
            let valid = core::array::from_fn::<_, MR, _>(|r| panel * MR + r < m);
            let mut runs = dst.chunks_exact_mut(MR);
            let mut put = |at: [usize; MR]| {
                let run = runs.next().expect("k runs per panel");
                for r in 0..MR {
                    run[r] = if valid[r] { weights[at[r]] } else { 0.0 };
                }
            };
            if transposed {
                let ins = core::array::from_fn::<_, MR, _>(|r| input(panel * MR + r));
                for o in 0..spec.c_out {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            put(ins.map(|i| tap((o, oy, ox), i)));
                        }
                    }
                }
            } else {
                let outs = core::array::from_fn::<_, MR, _>(|r| output(panel * MR + r));
                for c in 0..spec.c_in {
                    for iy in 0..h {
                        for ix in 0..w {
                            put(outs.map(|o| tap(o, (c, iy, ix))));
                        }
                    }
                }
            }
        }
    }
    PackedA::from_packed(m, k, buf)
}

/// Calls `f(row, col, tap)` for every element of `W'` (row `(o, p)`, column `(c, q)`, in
/// row-major order within each `(o, c)` pair) with the index of its weight in `OIHW`.
pub(crate) fn for_each_tap(spec: &ConvSpec, h: usize, w: usize, mut f: impl FnMut(usize, usize, usize)) {
    let pr = spec.with_input(h, w);
    let (oh, ow) = (pr.out_h(), pr.out_w());
    for o in 0..spec.c_out {
        for c in 0..spec.c_in {
            let filter = (o * spec.c_in + c) * spec.kh * spec.kw;
            for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
                let row = (o * oh + oy) * ow + ox;
                for iy in 0..h {
                    // In the kernel by `slot`'s condition.
                    let ki = iy + spec.ph - oy * spec.sh;
                    for ix in 0..w {
                        let kj = ix + spec.pw - ox * spec.sw;
                        f(row, (c * h + iy) * w + ix, filter + ki * spec.kw + kj);
                    }
                }
            }
        }
    }
}
