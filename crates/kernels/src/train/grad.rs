//! Backward kernels on plain slices (and the training-only forwards: BatchNorm with batch
//! statistics, dropout, linear on raw weights). Every gradient is *accumulated* (`+=`)
//! into its destination: a value read by several ops (an Inception block's input feeds
//! four branches) receives the sum, and parameter gradients add up across backward calls
//! until `zeroGrad`, as in PyTorch. Reductions run in a fixed order (f64 where a sum
//! spans a batch), so the result does not depend on how a step is split into tasks.

use crate::pool::{adaptive_spans, spans, whole_plane, Pool2dParams, Span};
use crate::weyl::fmix32;

/// ReLU's rule (PyTorch's `threshold_backward`: zero where the output is ≤ 0, so a NaN
/// output passes its gradient).
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert!(y.len() == dy.len() && dy.len() == dx.len(), "relu_backward: lengths");
    for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
        *d += if v <= 0.0 { 0.0 } else { g };
    }
}

/// `dy` where `y > 0` (or all of `dy` without `relu`), written (not accumulated) to `dz`.
pub fn relu_mask(y: &[f32], dy: &[f32], relu: bool, dz: &mut [f32]) {
    assert!(y.len() == dy.len() && dy.len() == dz.len(), "relu_mask: lengths");
    if relu {
        for ((d, &g), &v) in dz.iter_mut().zip(dy).zip(y) {
            *d = if v <= 0.0 { 0.0 } else { g };
        }
    } else {
        dz.copy_from_slice(dy);
    }
}

/// `MaxPool2d` backward: each output's gradient goes to the first maximum of its window
/// in window order (rows, then columns), as PyTorch's CPU kernel: it starts at the
/// window's first input and moves on `v > max || isnan(v)` (so the last NaN wins, and a
/// window of −∞ keeps its first input). Padding is never selected. `y` is the forward's
/// output (each window's max).
#[allow(clippy::too_many_arguments)]
pub fn max_pool2d_backward(x: &[f32], y: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams, dy: &[f32], dx: &mut [f32]) {
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    assert!(x.len() == planes * h * w && dx.len() == x.len() && dy.len() == planes * oh * ow && y.len() == dy.len(), "max_pool2d_backward: lengths");
    let rows: Vec<Span> = spans(oh, p.kh, p.sh, p.ph, h).collect();
    let cols: Vec<Span> = spans(ow, p.kw, p.sw, p.pw, w).collect();
    let whole = whole_plane(p, h, w);
    for pl in 0..planes {
        let plane = &x[pl * h * w..(pl + 1) * h * w];
        let (g, m) = (&dy[pl * oh * ow..(pl + 1) * oh * ow], &y[pl * oh * ow..(pl + 1) * oh * ow]);
        let d = &mut dx[pl * h * w..(pl + 1) * h * w];
        if whole {
            // Every window is the plane: one walk, every output's gradient to its pick, in order.
            let best = first_max(plane, w, &rows[0], &cols[0], m[0]);
            g.iter().for_each(|&v| d[best] += v);
            continue;
        }
        for (oy, r) in rows.iter().enumerate() {
            for (ox, c) in cols.iter().enumerate() {
                d[first_max(plane, w, r, c, m[oy * ow + ox])] += g[oy * ow + ox];
            }
        }
    }
}

/// The input a window's gradient goes to: its first maximum in window order (rows, then
/// columns), `max` being the forward's output for it; the last NaN when it holds one.
#[inline]
fn first_max(plane: &[f32], w: usize, r: &Span, c: &Span, max: f32) -> usize {
    if max.is_nan() {
        // The walk itself (the forward propagates NaN, so only here can one be in the window).
        let mut best = (r.lo * w + c.lo, f32::NEG_INFINITY);
        for iy in r.lo..r.hi {
            for ix in c.lo..c.hi {
                let v = plane[iy * w + ix];
                if v > best.1 || v.is_nan() {
                    best = (iy * w + ix, v);
                }
            }
        }
        best.0
    } else {
        // Without NaN the walk keeps the first input equal to the window's max (the
        // forward's output): found branch-free, walking the window backwards
        // (a data-dependent branch per input made this 2× slower).
        let mut best = r.lo * w + c.lo;
        for iy in (r.lo..r.hi).rev() {
            for ix in (c.lo..c.hi).rev() {
                best = if plane[iy * w + ix] == max { iy * w + ix } else { best };
            }
        }
        best
    }
}

/// `AvgPool2d` backward: each output's gradient divided by its forward divisor, added to
/// every input of its window.
pub fn avg_pool2d_backward(planes: usize, h: usize, w: usize, p: &Pool2dParams, count_include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    let rows: Vec<Span> = spans(oh, p.kh, p.sh, p.ph, h).collect();
    let cols: Vec<Span> = spans(ow, p.kw, p.sw, p.pw, w).collect();
    spread(planes, (h, w), (oh, ow), &rows, &cols, dy, dx, |r, c| if count_include_pad { r.padded * c.padded } else { (r.hi - r.lo) * (c.hi - c.lo) });
}

/// `AdaptiveAvgPool2d` backward.
pub fn adaptive_avg_pool2d_backward(planes: usize, h: usize, w: usize, oh: usize, ow: usize, dy: &[f32], dx: &mut [f32]) {
    let rows: Vec<Span> = adaptive_spans(oh, h).collect();
    let cols: Vec<Span> = adaptive_spans(ow, w).collect();
    spread(planes, (h, w), (oh, ow), &rows, &cols, dy, dx, |r, c| r.padded * c.padded);
}

/// Adds `dy / count(window)` to every input of each window.
#[allow(clippy::too_many_arguments)]
fn spread(planes: usize, (h, w): (usize, usize), (oh, ow): (usize, usize), rows: &[Span], cols: &[Span], dy: &[f32], dx: &mut [f32], count: impl Fn(&Span, &Span) -> usize) {
    assert!(dx.len() == planes * h * w && dy.len() == planes * oh * ow, "pool backward: lengths");
    for pl in 0..planes {
        let g = &dy[pl * oh * ow..(pl + 1) * oh * ow];
        let d = &mut dx[pl * h * w..(pl + 1) * h * w];
        for (oy, r) in rows.iter().enumerate() {
            for (ox, c) in cols.iter().enumerate() {
                let share = g[oy * ow + ox] / count(r, c) as f32;
                for iy in r.lo..r.hi {
                    for v in &mut d[iy * w + c.lo..iy * w + c.hi] {
                        *v += share;
                    }
                }
            }
        }
    }
}

/// Channels per block of the BatchNorm passes (their running sums live on the stack).
/// The passes go image by image over a block: an image's planes of a block are
/// contiguous, where channel by channel they are `c·hw` apart, and the small planes of
/// 32×32 training (1 to 16 pixels) cost ~100 ns each read that way. Each channel's sums
/// are the same, in the same order (image after image), as one channel's alone.
pub const BN_BLOCK: usize = 32;

/// `Σ v` of one plane, in f64.
pub fn plane_sum(x: &[f32]) -> f64 {
    sum_f64(x, x, |v, _| v as f64)
}

/// `Σ (v − mean)²` of one plane, in f64.
pub fn plane_sq_dev(x: &[f32], mean: f64) -> f64 {
    sum_f64(x, x, |v, _| (v as f64 - mean).powi(2))
}

/// `Σ f(a[i], b[i])` in f64, as [`LANES`] interleaved partial sums added at the end: one
/// running f64 sum is a chain of dependent adds (its latency, not the machine's width,
/// sets the speed); the order is fixed, so the result does not depend on threads.
#[inline]
fn sum_f64(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y)).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(x[l], y[l]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

const LANES: usize = 4;

/// `(x − mean)·scale + shift` on one plane, then ReLU when `relu`.
pub fn affine_plane(x: &[f32], mean: f32, scale: f32, shift: f32, relu: bool, y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        let t = (v - mean) * scale + shift;
        *o = if relu { t.max(0.0) } else { t };
    }
}

/// One plane of BatchNorm backward's sums: `(Σ dz, Σ dz·x̂)` (the gradients of β and γ, once
/// summed over the batch), `dz` the output gradient after the ReLU mask, `x̂ = (x − mean)·invstd`.
pub fn batch_norm_plane_sums(x: &[f32], dz: &[f32], mean: f32, invstd: f32) -> (f64, f64) {
    (sum_f64(dz, dz, |g, _| g as f64), sum_f64(dz, x, |g, v| g as f64 * ((v - mean) * invstd) as f64))
}

/// One plane of BatchNorm's input gradient, added to `dx`: `k·(dz − a − x̂·c)` with
/// `k = γ·invstd`; in training `a = Σdz/N`, `c = Σdz·x̂/N` (the batch statistics depend on
/// `x`), in eval both 0.
pub fn batch_norm_plane_dx(x: &[f32], dz: &[f32], mean: f32, invstd: f32, (k, a, c): (f32, f32, f32), dx: &mut [f32]) {
    for ((d, &g), &v) in dx.iter_mut().zip(dz).zip(x) {
        let xhat = (v - mean) * invstd;
        *d += k * (g - a - xhat * c);
    }
}

/// Dropout's keep decision and scale for element `i` under `key`: kept with probability
/// `1 − p`, scaled by `1/(1 − p)`; `p = 1` drops everything (PyTorch gives zeros).
#[inline]
pub fn dropout_factor(key: u32, i: usize, p: f32) -> f32 {
    if p >= 1.0 {
        return 0.0;
    }
    // 24 bits of uniform, compared against p (as the weyl generator makes its floats).
    let u = (fmix32(key ^ fmix32(i as u32).wrapping_add(0x9E37_79B9)) >> 8) as f32 * (1.0 / (1 << 24) as f32);
    if u < p {
        0.0
    } else {
        1.0 / (1.0 - p)
    }
}

/// `dst += a·src`.
#[inline]
pub fn axpy(a: f32, src: &[f32], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// Linear backward for rows `rows`: `dx[r] += Σ_o dy[r][o]·W[o]`.
pub fn linear_backward_input(dy: &[f32], out: usize, w: &[f32], inp: usize, rows: core::ops::Range<usize>, dx: &mut [f32]) {
    for (i, r) in rows.enumerate() {
        let d = &mut dx[i * inp..(i + 1) * inp];
        for o in 0..out {
            let g = dy[r * out + o];
            if g != 0.0 {
                axpy(g, &w[o * inp..(o + 1) * inp], d);
            }
        }
    }
}

/// Linear backward for output features `outs`: `dW[o] += Σ_r dy[r][o]·x[r]`, `db[o] += Σ_r dy[r][o]`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_params(x: &[f32], n: usize, inp: usize, dy: &[f32], out: usize, outs: core::ops::Range<usize>, dw: Option<&mut [f32]>, db: Option<&mut [f32]>) {
    if let Some(dw) = dw {
        for (i, o) in outs.clone().enumerate() {
            let d = &mut dw[i * inp..(i + 1) * inp];
            for r in 0..n {
                let g = dy[r * out + o];
                if g != 0.0 {
                    axpy(g, &x[r * inp..(r + 1) * inp], d);
                }
            }
        }
    }
    if let Some(db) = db {
        for (i, o) in outs.enumerate() {
            db[i] += (0..n).map(|r| dy[r * out + o] as f64).sum::<f64>() as f32;
        }
    }
}
