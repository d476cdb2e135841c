//! Max, average and adaptive-average pooling over independent `h × w` planes (an NCHW
//! tensor is `n·c` planes), with PyTorch's output-size and divisor rules.
//!
//! Pooling is <1 % of GoogLeNet's time, so these are scalar loops the compiler can
//! auto-vectorise; the window bounds are hoisted out of the inner loops.

/// PyTorch's pooling output size (ATen's `pooling_output_shape`, dilation 1):
/// `floor((len + 2·pad − k) / s) + 1`, or with `ceil` the ceiling, minus one if the last
/// window would start at or past `len + pad`; `None` when that is below 1 (PyTorch's "Output
/// size is too small"). Rounding towards −∞ matters: the padded input may be smaller than
/// the kernel (a window then covers all of it), by up to `s − 1` in ceil mode, where
/// PyTorch runs torchvision's GoogLeNet on a 15×15 input (its 3×3/2 ceil pool meets 2×2
/// maps, its 2×2/2 one 1×1). Every window then starts inside the input or its left
/// padding and ends past the input's first element (PyTorch also requires `pad ≤ k / 2`,
/// checked with the other parameters), so none is empty.
pub fn pool_out_size(len: usize, k: usize, s: usize, pad: usize, ceil: bool) -> Option<usize> {
    let (len, k, s, pad) = (len as i64, k as i64, s as i64, pad as i64);
    let mut out = (len + 2 * pad - k + if ceil { s - 1 } else { 0 }).div_euclid(s) + 1;
    if ceil && (out - 1) * s >= len + pad {
        out -= 1;
    }
    usize::try_from(out).ok().filter(|&out| out >= 1)
}

/// `MaxPool2d` / `AvgPool2d` geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ceil_mode: bool,
}

impl Pool2dParams {
    pub fn out_h(&self, h: usize) -> usize {
        pool_out_size(h, self.kh, self.sh, self.ph, self.ceil_mode).expect("pool: no output rows")
    }

    pub fn out_w(&self, w: usize) -> usize {
        pool_out_size(w, self.kw, self.sw, self.pw, self.ceil_mode).expect("pool: no output columns")
    }
}

/// One axis of a pooling window: input `[lo, hi)` after clipping, and the size of the
/// window clipped only to `len + pad` (PyTorch's `count_include_pad` divisor).
#[derive(Clone, Copy)]
pub(crate) struct Span {
    pub(crate) lo: usize,
    pub(crate) hi: usize,
    pub(crate) padded: usize,
}

/// The windows along one axis (computed on the fly: pooling allocates nothing).
pub(crate) fn spans(out: usize, k: usize, s: usize, pad: usize, len: usize) -> impl Iterator<Item = Span> + Clone {
    (0..out).map(move |o| {
        let start = (o * s) as isize - pad as isize;
        let end = (start + k as isize).min((len + pad) as isize);
        Span {
            lo: start.max(0) as usize,
            hi: end.min(len as isize).max(0) as usize,
            padded: (end - start) as usize,
        }
    })
}

/// Whether every output's window covers the whole (non-empty) `h × w` plane, as GoogLeNet's
/// 3×3/1 pools on the 2×2 and 1×1 maps of 32×32 inputs: each output is then the plane's
/// max (a pool of ~100 ns per tiny plane through the separable path).
pub(crate) fn whole_plane(p: &Pool2dParams, h: usize, w: usize) -> bool {
    // Window `o` spans [o·s − pad, o·s − pad + k): the first must reach the far edge, the
    // last start at or before the near one.
    let covers = |len: usize, out: usize, k: usize, s: usize, pad: usize| len > 0 && len + pad <= k && (out - 1) * s <= pad;
    covers(h, p.out_h(h), p.kh, p.sh, p.ph) && covers(w, p.out_w(w), p.kw, p.sw, p.pw)
}

/// Adaptive pooling's windows along one axis: `[floor(i·len/out), ceil((i+1)·len/out))`.
pub(crate) fn adaptive_spans(out: usize, len: usize) -> impl Iterator<Item = Span> + Clone {
    (0..out).map(move |i| {
        let (lo, hi) = (i * len / out, ((i + 1) * len).div_ceil(out));
        Span { lo, hi, padded: hi - lo }
    })
}

fn check(x: &[f32], planes: usize, h: usize, w: usize, y: &[f32], oh: usize, ow: usize, op: &str) {
    assert_eq!(x.len(), planes * h * w, "{op}: input length");
    assert_eq!(y.len(), planes * oh * ow, "{op}: output length");
}

/// Reduces every window of every plane with `reduce(plane, rows, cols) -> value`.
#[allow(clippy::too_many_arguments)]
fn pool_planes(
    x: &[f32],
    planes: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    rows: impl Iterator<Item = Span> + Clone,
    cols: impl Iterator<Item = Span> + Clone,
    y: &mut [f32],
    reduce: impl Fn(&[f32], Span, Span) -> f32,
) {
    // The windows of a tile of outputs (up to KEPT × KEPT) once, on the stack (a forward
    // allocates nothing), then that tile of every plane: not the windows per plane, which
    // cost two divisions each for adaptive ones (the aux heads' 64×528 planes of 2×2 at
    // 32×32 inputs are mostly that).
    const KEPT: usize = 32;
    let mut kept = [Span { lo: 0, hi: 0, padded: 0 }; 2 * KEPT];
    for r0 in (0..oh).step_by(KEPT) {
        let nr = KEPT.min(oh - r0);
        rows.clone().skip(r0).zip(&mut kept[..nr]).for_each(|(s, k)| *k = s);
        for c0 in (0..ow).step_by(KEPT) {
            let nc = KEPT.min(ow - c0);
            cols.clone().skip(c0).zip(&mut kept[KEPT..KEPT + nc]).for_each(|(s, k)| *k = s);
            let (tile_rows, tile_cols) = (&kept[..nr], &kept[KEPT..KEPT + nc]);
            for pl in 0..planes {
                let plane = &x[pl * h * w..(pl + 1) * h * w];
                let out = &mut y[pl * oh * ow..(pl + 1) * oh * ow];
                for (oy, &r) in (r0..).zip(tile_rows) {
                    for (ox, &c) in (c0..).zip(tile_cols) {
                        out[oy * ow + ox] = reduce(plane, r, c);
                    }
                }
            }
        }
    }
}

fn window_rows(plane: &[f32], w: usize, r: Span, c: Span) -> impl Iterator<Item = &[f32]> {
    (r.lo..r.hi).map(move |iy| &plane[iy * w + c.lo..iy * w + c.hi])
}

/// PyTorch's max: a NaN wins (`val > max || isnan(val)`). Branch-free, so the row loop
/// below vectorises (compare + select).
#[inline(always)]
fn max_nan(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

/// `MaxPool2d`: padding is `-inf`, so it is never selected; a NaN in a window wins, as
/// in PyTorch.
///
/// Separable: for each output row, the rows of its window are reduced elementwise into
/// one row (placed in a buffer with `-inf` margins for the column padding and ceil mode),
/// then each output takes the max over its `kw` columns of that buffer. That is
/// `kh + kw` comparisons per output instead of `kh·kw`, with no bounds logic in the inner
/// loops; both passes run 4 lanes at a time (`simd128`; strides 1 and 2, which are all
/// of GoogLeNet's). Measured on one pool of each GoogLeNet shape (Node 20, one thread):
/// 28.9 ms with the direct window loop, 3.9 ms with this.
///
/// `row` is scratch for the row buffer (it only grows).
#[inline(never)]
pub fn max_pool2d(x: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams, y: &mut [f32], row: &mut Vec<f32>) {
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    check(x, planes, h, w, y, oh, ow, "max_pool2d");
    if whole_plane(p, h, w) {
        // Rows folded, then columns, as the separable path below folds them (same bits).
        for (plane, out) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(oh * ow)).take(planes) {
            let m = (0..w).fold(f32::NEG_INFINITY, |m, ix| max_nan(m, (1..h).fold(plane[ix], |r, iy| max_nan(r, plane[iy * w + ix]))));
            out.fill(m);
        }
        return;
    }
    // buf[pw + ix] = row max at input column ix; output ox reads buf[ox·sw .. ox·sw + kw].
    // 8 more -inf lanes let the stride-2 kernel load whole vectors past the last window.
    let buf_len = ((ow.max(1) - 1) * p.sw + p.kw).max(p.pw + w) + 8;
    // Only the window of columns [pw, pw + w) is ever written; the margins stay -inf.
    row.clear();
    row.resize(buf_len, f32::NEG_INFINITY);
    let buf = &mut row[..];
    for (plane, out) in x.chunks_exact((h * w).max(1)).zip(y.chunks_exact_mut((oh * ow).max(1))).take(planes) {
        for (r, out_row) in spans(oh, p.kh, p.sh, p.ph, h).zip(out.chunks_exact_mut(ow.max(1))) {
            let row_max = &mut buf[p.pw..p.pw + w];
            row_max.copy_from_slice(&plane[r.lo * w..(r.lo + 1) * w]);
            for iy in r.lo + 1..r.hi {
                max_into(row_max, &plane[iy * w..(iy + 1) * w]);
            }
            window_max(buf, p.kw, p.sw, out_row);
        }
    }
}

/// `dst[i] = max_nan(dst[i], src[i])`.
fn max_into(dst: &mut [f32], src: &[f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        let n4 = dst.len() / 4 * 4;
        for (d, s) in dst[..n4].chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            // SAFETY: both chunks hold exactly 4 floats; unaligned v128 access is allowed.
            unsafe {
                let v = f32x4_max(v128_load(d.as_ptr() as *const v128), v128_load(s.as_ptr() as *const v128));
                v128_store(d.as_mut_ptr() as *mut v128, v); // f32x4.max propagates NaN, like PyTorch
            }
        }
        for (d, &s) in dst[n4..].iter_mut().zip(&src[n4..]) {
            *d = max_nan(*d, s);
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = max_nan(*d, s);
    }
}

/// `out[o] = max over buf[o·stride .. o·stride + k]`; `buf` holds 8 floats of slack past
/// the last window.
fn window_max(buf: &[f32], k: usize, stride: usize, out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if stride <= 2 {
        use core::arch::wasm32::*;
        let n4 = out.len() / 4 * 4;
        assert!(buf.len() >= (out.len().max(1) - 1) * stride + k + 8, "max_pool2d: row buffer too short");
        for (o4, chunk) in out[..n4].chunks_exact_mut(4).enumerate() {
            // SAFETY: the loads read buf[4·o4·stride + j .. + 8] for j < k, at most
            // (out.len() - 1)·stride + k + 6 < buf.len() (asserted above).
            unsafe {
                let base = buf.as_ptr().add(o4 * 4 * stride);
                // lanes: windows o4·4 .. o4·4 + 4, element j of each
                let lanes = |j: usize| -> v128 {
                    let lo = v128_load(base.add(j) as *const v128);
                    if stride == 1 {
                        lo
                    } else {
                        let hi = v128_load(base.add(j + 4) as *const v128);
                        i32x4_shuffle::<0, 2, 4, 6>(lo, hi)
                    }
                };
                let mut m = lanes(0);
                for j in 1..k {
                    m = f32x4_max(m, lanes(j)); // f32x4.max propagates NaN, like PyTorch
                }
                v128_store(chunk.as_mut_ptr() as *mut v128, m);
            }
        }
        scalar_window_max(buf, k, stride, out, n4);
        return;
    }
    scalar_window_max(buf, k, stride, out, 0);
}

fn scalar_window_max(buf: &[f32], k: usize, stride: usize, out: &mut [f32], from: usize) {
    for (o, v) in out.iter_mut().enumerate().skip(from) {
        *v = buf[o * stride..o * stride + k].iter().fold(f32::NEG_INFINITY, |m, &x| max_nan(m, x));
    }
}

/// `AvgPool2d`; with `count_include_pad` the divisor counts padded positions (but never
/// positions past `len + pad`, which ceil mode can add), as PyTorch does.
#[inline(never)]
pub fn avg_pool2d(x: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams, count_include_pad: bool, y: &mut [f32]) {
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    check(x, planes, h, w, y, oh, ow, "avg_pool2d");
    let (rows, cols) = (spans(oh, p.kh, p.sh, p.ph, h), spans(ow, p.kw, p.sw, p.pw, w));
    pool_planes(x, planes, (h, w), (oh, ow), rows, cols, y, |plane, r, c| {
        let sum: f32 = window_rows(plane, w, r, c).flatten().sum();
        let count = if count_include_pad { r.padded * c.padded } else { (r.hi - r.lo) * (c.hi - c.lo) };
        sum / count as f32
    });
}

/// `AdaptiveAvgPool2d((oh, ow))`: window `i` covers `[floor(i·len/out), ceil((i+1)·len/out))`
/// (neighbouring windows may overlap).
#[inline(never)]
pub fn adaptive_avg_pool2d(x: &[f32], planes: usize, h: usize, w: usize, oh: usize, ow: usize, y: &mut [f32]) {
    check(x, planes, h, w, y, oh, ow, "adaptive_avg_pool2d");
    pool_planes(x, planes, (h, w), (oh, ow), adaptive_spans(oh, h), adaptive_spans(ow, w), y, |plane, r, c| {
        let sum: f32 = window_rows(plane, w, r, c).flatten().sum();
        sum / (r.padded * c.padded) as f32
    });
}

#[cfg(test)]
mod tests;
