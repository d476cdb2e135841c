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
use crate::gemm::PackedA;

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
        let (oh, ow) = (p.out_h(), p.out_w());
        let (rows, cols) = (spec.c_out * oh * ow, spec.c_in * h * w);
        let mut dense = alloc::filled(rows * cols, 0.0f32)?;
        for (row, out) in dense.chunks_exact_mut(cols.max(1)).take(rows).enumerate() {
            let (o, oy, ox) = (row / (oh * ow), row / ow % oh, row % ow);
            for (col, v) in out.iter_mut().enumerate() {
                let (c, iy, ix) = (col / (h * w), col / w % h, col % w);
                // In the kernel by `slot`'s condition.
                let (ki, kj) = (iy + spec.ph - oy * spec.sh, ix + spec.pw - ox * spec.sw);
                *v = weights[((o * spec.c_in + c) * spec.kh + ki) * spec.kw + kj];
            }
        }
        let bias = match bias {
            Some(b) => {
                let mut rows_bias = alloc::filled(rows, 0.0f32)?;
                for (v, r) in rows_bias.iter_mut().zip(0..) {
                    *v = b[r / (oh * ow)];
                }
                Some(rows_bias)
            }
            None => None,
        };
        Ok(Self { a: PackedA::try_pack(&dense, rows, cols)?, bias })
    }
}
