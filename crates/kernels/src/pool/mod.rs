//! Max, average and adaptive-average pooling over independent `h × w` planes (an NCHW
//! tensor is `n·c` planes), with PyTorch's output-size and divisor rules.
//!
//! Pooling is <1 % of GoogLeNet's time, so these are scalar loops the compiler can
//! auto-vectorise; the window bounds are hoisted out of the inner loops.

/// PyTorch's pooling output size: `floor((len + 2·pad - k) / s) + 1`, or with `ceil` the
/// ceiling — minus one if the last window would start past `len + pad` (it must start
/// inside the input or the left padding). `None` when the kernel does not fit.
pub fn pool_out_size(len: usize, k: usize, s: usize, pad: usize, ceil: bool) -> Option<usize> {
    let span = (len + 2 * pad).checked_sub(k)?;
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    if ceil && (out - 1) * s >= len + pad {
        out -= 1;
    }
    Some(out)
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
        pool_out_size(h, self.kh, self.sh, self.ph, self.ceil_mode).expect("pool: kernel taller than padded input")
    }

    pub fn out_w(&self, w: usize) -> usize {
        pool_out_size(w, self.kw, self.sw, self.pw, self.ceil_mode).expect("pool: kernel wider than padded input")
    }
}

/// One axis of a pooling window: input `[lo, hi)` after clipping, and the size of the
/// window clipped only to `len + pad` (PyTorch's `count_include_pad` divisor).
#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    hi: usize,
    padded: usize,
}

fn spans(out: usize, k: usize, s: usize, pad: usize, len: usize) -> impl Iterator<Item = Span> {
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

fn check(x: &[f32], planes: usize, h: usize, w: usize, y: &[f32], oh: usize, ow: usize, op: &str) {
    assert_eq!(x.len(), planes * h * w, "{op}: input length");
    assert_eq!(y.len(), planes * oh * ow, "{op}: output length");
}

/// Reduces every window of every plane with `reduce(plane, rows, cols) -> value`.
fn pool_planes(
    x: &[f32],
    planes: usize,
    (h, w): (usize, usize),
    rows: &[Span],
    cols: &[Span],
    y: &mut [f32],
    reduce: impl Fn(&[f32], Span, Span) -> f32,
) {
    let (oh, ow) = (rows.len(), cols.len());
    for pl in 0..planes {
        let plane = &x[pl * h * w..(pl + 1) * h * w];
        let out = &mut y[pl * oh * ow..(pl + 1) * oh * ow];
        for (oy, r) in rows.iter().enumerate() {
            for (ox, c) in cols.iter().enumerate() {
                out[oy * ow + ox] = reduce(plane, *r, *c);
            }
        }
    }
}

fn window_rows(plane: &[f32], w: usize, r: Span, c: Span) -> impl Iterator<Item = &[f32]> {
    (r.lo..r.hi).map(move |iy| &plane[iy * w + c.lo..iy * w + c.hi])
}

/// `MaxPool2d`: padding is `-inf`, so it is never selected; a NaN in a window wins, as
/// in PyTorch (`val > max || isnan(val)`).
pub fn max_pool2d(x: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams, y: &mut [f32]) {
    let rows: Vec<Span> = spans(p.out_h(h), p.kh, p.sh, p.ph, h).collect();
    let cols: Vec<Span> = spans(p.out_w(w), p.kw, p.sw, p.pw, w).collect();
    check(x, planes, h, w, y, rows.len(), cols.len(), "max_pool2d");
    pool_planes(x, planes, (h, w), &rows, &cols, y, |plane, r, c| {
        window_rows(plane, w, r, c).flatten().fold(f32::NEG_INFINITY, |m, &v| if v > m || v.is_nan() { v } else { m })
    });
}

/// `AvgPool2d`; with `count_include_pad` the divisor counts padded positions (but never
/// positions past `len + pad`, which ceil mode can add), as PyTorch does.
pub fn avg_pool2d(x: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams, count_include_pad: bool, y: &mut [f32]) {
    let rows: Vec<Span> = spans(p.out_h(h), p.kh, p.sh, p.ph, h).collect();
    let cols: Vec<Span> = spans(p.out_w(w), p.kw, p.sw, p.pw, w).collect();
    check(x, planes, h, w, y, rows.len(), cols.len(), "avg_pool2d");
    pool_planes(x, planes, (h, w), &rows, &cols, y, |plane, r, c| {
        let sum: f32 = window_rows(plane, w, r, c).flatten().sum();
        let count = if count_include_pad { r.padded * c.padded } else { (r.hi - r.lo) * (c.hi - c.lo) };
        sum / count as f32
    });
}

/// `AdaptiveAvgPool2d((oh, ow))`: window `i` covers `[floor(i·len/out), ceil((i+1)·len/out))`
/// (neighbouring windows may overlap).
pub fn adaptive_avg_pool2d(x: &[f32], planes: usize, h: usize, w: usize, oh: usize, ow: usize, y: &mut [f32]) {
    let adaptive = |out: usize, len: usize| -> Vec<Span> {
        (0..out)
            .map(|i| {
                let (lo, hi) = (i * len / out, ((i + 1) * len).div_ceil(out));
                Span { lo, hi, padded: hi - lo }
            })
            .collect()
    };
    let (rows, cols) = (adaptive(oh, h), adaptive(ow, w));
    check(x, planes, h, w, y, oh, ow, "adaptive_avg_pool2d");
    pool_planes(x, planes, (h, w), &rows, &cols, y, |plane, r, c| {
        let sum: f32 = window_rows(plane, w, r, c).flatten().sum();
        sum / (r.padded * c.padded) as f32
    });
}

#[cfg(test)]
mod tests;
