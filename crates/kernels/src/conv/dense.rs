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

/// Where `W'`'s elements come from in the `OIHW` weights. The index of `W'[(o, p)][(c, q)]`,
/// `((o·c_in + c)·kh + iy + ph − oy·sh)·kw + ix + pw − ox·sw`, is a sum of a part of the
/// row and a part of the column, [`Taps::row`] + [`Taps::col`] (wrapping: the row's part
/// is negative for outputs past the first, the sum never is).
pub(crate) struct Taps {
    spec: ConvSpec,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Taps {
    pub(crate) fn new(spec: &ConvSpec, h: usize, w: usize) -> Self {
        let p = spec.with_input(h, w);
        Self { spec: *spec, h, w, oh: p.out_h(), ow: p.out_w() }
    }

    /// Rows of `W'` (`c_out·oh·ow`) and columns (`c_in·h·w`).
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.spec.c_out * self.oh * self.ow, self.spec.c_in * self.h * self.w)
    }

    /// Row `(o, oy, ox)`'s part of its elements' weight indices.
    pub(crate) fn row(&self, row: usize) -> usize {
        self.row_part(row / (self.oh * self.ow), row / self.ow % self.oh, row % self.ow)
    }

    /// Column `(c, iy, ix)`'s part.
    pub(crate) fn col(&self, col: usize) -> usize {
        self.col_part(col / (self.h * self.w), col / self.w % self.h, col % self.w)
    }

    /// Every column's part, in order (by counting, not dividing: 3 divisions per index
    /// made packing `W'` 2.6× slower, 1.9 against 0.73 ms for 160×2×2→320, native).
    pub(crate) fn cols(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.spec.c_in).flat_map(move |c| (0..self.h).flat_map(move |iy| (0..self.w).map(move |ix| self.col_part(c, iy, ix))))
    }

    /// Every row's part, in order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.spec.c_out).flat_map(move |o| (0..self.oh).flat_map(move |oy| (0..self.ow).map(move |ox| self.row_part(o, oy, ox))))
    }

    fn row_part(&self, o: usize, oy: usize, ox: usize) -> usize {
        let s = &self.spec;
        (o * s.c_in * s.kh * s.kw).wrapping_sub(oy * s.sh * s.kw + ox * s.sw)
    }

    fn col_part(&self, c: usize, iy: usize, ix: usize) -> usize {
        let s = &self.spec;
        c * s.kh * s.kw + (iy + s.ph) * s.kw + ix + s.pw
    }
}

/// `W'` (`transposed`: `W'ᵀ`, for training's input gradient) of an `h × w` input, packed
/// into `buf` (which holds [`PackedA::packed_len`] of it), from the layer's `OIHW`
/// weights: element `[(o, p)][(c, q)]` is `W[o][c][tap from output pixel p to input
/// pixel q]`. Written in the packed order (a panel's `MR` rows for each `kk`), each
/// index a sum of two parts ([`Taps`]).
pub(crate) fn pack(spec: &ConvSpec, h: usize, w: usize, weights: &[f32], transposed: bool, mut buf: Vec<f32>) -> PackedA {
    let taps = Taps::new(spec, h, w);
    let (outs, ins) = taps.shape();
    let (m, k) = if transposed { (ins, outs) } else { (outs, ins) };
    assert_eq!(buf.len(), PackedA::packed_len(m, k), "dense: buffer length");
    if k > 0 {
        for (panel, dst) in buf.chunks_exact_mut(k * MR).enumerate() {
            let rows: [Option<usize>; MR] = core::array::from_fn(|r| {
                let i = panel * MR + r;
                (i < m).then(|| if transposed { taps.col(i) } else { taps.row(i) })
            });
            if transposed {
                fill_panel(dst, &rows, weights, taps.rows());
            } else {
                fill_panel(dst, &rows, weights, taps.cols());
            }
        }
    }
    PackedA::from_packed(m, k, buf)
}

/// One panel of a packed `W'` or `W'ᵀ`: for each `kk` (its index part from `kk_parts`, in
/// order), the panel's rows' weights (zero past the matrix).
fn fill_panel(dst: &mut [f32], rows: &[Option<usize>; MR], weights: &[f32], kk_parts: impl Iterator<Item = usize>) {
    for (run, t) in dst.chunks_exact_mut(MR).zip(kk_parts) {
        for (v, row) in run.iter_mut().zip(rows) {
            *v = row.map_or(0.0, |r| weights[r.wrapping_add(t)]);
        }
    }
}
