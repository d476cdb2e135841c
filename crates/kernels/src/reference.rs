//! Plain loop-nest implementations of every op: the test oracles. Written for obvious
//! correctness (one `f32` accumulator, PyTorch's definitions verbatim), never for speed.

use crate::conv::Conv2dParams;
use crate::pool::Pool2dParams;

/// PyTorch's `relu` when `relu`: `v < 0 → 0`, so NaN stays NaN (`f32::max(NaN, 0)` is 0).
fn relu_of(v: f32, relu: bool) -> f32 {
    if relu && v < 0.0 {
        0.0
    } else {
        v
    }
}

/// `C = A·B (+bias[row]) (ReLU)`, all row-major and dense.
pub fn gemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, bias: Option<&[f32]>, relu: bool) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += a[i * k + kk] * b[kk * n + j];
            }
            acc += bias.map_or(0.0, |b| b[i]);
            c[i * n + j] = relu_of(acc, relu);
        }
    }
    c
}

/// Cross-correlation over a batch of `n` NCHW images, zero padding, weights `OIHW`.
pub fn conv2d(x: &[f32], n: usize, p: &Conv2dParams, w: &[f32], bias: Option<&[f32]>, relu: bool) -> Vec<f32> {
    let (oh, ow) = (p.out_h(), p.out_w());
    let mut y = vec![0.0; n * p.c_out * oh * ow];
    for b in 0..n {
        for o in 0..p.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f32;
                    for c in 0..p.c_in {
                        for ky in 0..p.kh {
                            for kx in 0..p.kw {
                                let iy = (oy * p.sh + ky) as isize - p.ph as isize;
                                let ix = (ox * p.sw + kx) as isize - p.pw as isize;
                                if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize {
                                    continue;
                                }
                                let xv = x[((b * p.c_in + c) * p.h + iy as usize) * p.w + ix as usize];
                                acc += w[((o * p.c_in + c) * p.kh + ky) * p.kw + kx] * xv;
                            }
                        }
                    }
                    acc += bias.map_or(0.0, |b| b[o]);
                    y[((b * p.c_out + o) * oh + oy) * ow + ox] = relu_of(acc, relu);
                }
            }
        }
    }
    y
}

/// Window `[start, end)` of pooling output index `o` along one axis, clipped to the input,
/// plus the unclipped size bounded by `len + pad` (PyTorch's avg-pool divisor).
fn window(o: usize, k: usize, s: usize, pad: usize, len: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - pad as isize;
    let end = (start + k as isize).min((len + pad) as isize);
    let padded = (end - start) as usize;
    (start.max(0) as usize, end.min(len as isize).max(0) as usize, padded)
}

/// `MaxPool2d` over `planes` planes of `h × w`.
pub fn max_pool2d(x: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams) -> Vec<f32> {
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    let mut y = vec![0.0; planes * oh * ow];
    for pl in 0..planes {
        for oy in 0..oh {
            let (y0, y1, _) = window(oy, p.kh, p.sh, p.ph, h);
            for ox in 0..ow {
                let (x0, x1, _) = window(ox, p.kw, p.sw, p.pw, w);
                let mut m = f32::NEG_INFINITY;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let v = x[(pl * h + iy) * w + ix];
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                y[(pl * oh + oy) * ow + ox] = m;
            }
        }
    }
    y
}

/// `AvgPool2d` (PyTorch's divisor rule, `count_include_pad` as given).
pub fn avg_pool2d(x: &[f32], planes: usize, h: usize, w: usize, p: &Pool2dParams, count_include_pad: bool) -> Vec<f32> {
    let (oh, ow) = (p.out_h(h), p.out_w(w));
    let mut y = vec![0.0; planes * oh * ow];
    for pl in 0..planes {
        for oy in 0..oh {
            let (y0, y1, py) = window(oy, p.kh, p.sh, p.ph, h);
            for ox in 0..ow {
                let (x0, x1, px) = window(ox, p.kw, p.sw, p.pw, w);
                let mut s = 0.0f32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        s += x[(pl * h + iy) * w + ix];
                    }
                }
                let count = if count_include_pad { py * px } else { (y1 - y0) * (x1 - x0) };
                y[(pl * oh + oy) * ow + ox] = s / count as f32;
            }
        }
    }
    y
}

/// `AdaptiveAvgPool2d((oh, ow))`: rows `[floor(i·h/oh), ceil((i+1)·h/oh))`.
pub fn adaptive_avg_pool2d(x: &[f32], planes: usize, h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let mut y = vec![0.0; planes * oh * ow];
    for pl in 0..planes {
        for oy in 0..oh {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let mut s = 0.0f32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        s += x[(pl * h + iy) * w + ix];
                    }
                }
                y[(pl * oh + oy) * ow + ox] = s / ((y1 - y0) * (x1 - x0)) as f32;
            }
        }
    }
    y
}

/// `y[n, o] = b[o] + Σ_k W[o, k]·x[n, k]`.
pub fn linear(x: &[f32], n: usize, w: &[f32], inp: usize, out: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let mut y = vec![0.0; n * out];
    for b in 0..n {
        for o in 0..out {
            let mut acc = 0.0f32;
            for k in 0..inp {
                acc += w[o * inp + k] * x[b * inp + k];
            }
            y[b * out + o] = acc + bias.map_or(0.0, |b| b[o]);
        }
    }
    y
}
