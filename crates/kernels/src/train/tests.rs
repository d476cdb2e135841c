//! The training module against plain f64 loops.
//!
//! - A reference interpreter runs any [`Net`] (the description a [`Graph`] is built from)
//!   forward and backward with one loop nest per op, in f64; its gradients are checked by
//!   central differences on tiny shapes.
//! - The graph is compared with it op by op on edge shapes and random ones (proptest), and
//!   on small multi-layer networks (an Inception block, a training loop whose weights
//!   change between steps).
//! - Accumulation (shared inputs, shared weights, repeated backwards), the graph's states,
//!   frozen parameters and `build(false)`; dropout's masks.
//! - Cross-entropy against its formula and finite differences; SGD, Adam and AdamW against
//!   transcriptions of PyTorch 1.13's `_single_tensor_*` functions.
//!
//! Bit-identical results across thread counts are checked in `tests/train_threads.rs`
//! (its own process: it needs runs before and after the team is installed).

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::graph::GraphError;
use super::loss::{cross_entropy, cross_entropy_backward};
use super::optim::{self, Rule, Slot};
use super::{Graph, GraphBuilder, Param, Shared, TrainOp};
use crate::conv::ConvSpec;
use crate::plan::{Slice, ValueId, INPUT};
use crate::pool::Pool2dParams;
use crate::testutil::{assert_close_scaled, data, proptest_config};

// ───────────────────────────── buffers and parameters ─────────────────────────────

/// A copy of a shared buffer (the tests read between runs).
fn read(s: &Shared) -> Vec<f32> {
    // SAFETY: no graph or optimiser is running.
    unsafe { s.get() }.to_vec()
}

fn write(s: &Shared, v: &[f32]) {
    // SAFETY: as above.
    unsafe { s.get_mut() }.copy_from_slice(v)
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// A trainable parameter of `len` values from stream `salt`; its gradient starts empty
/// (the first backward allocates it).
fn param(len: usize, salt: u32) -> Param {
    Param { data: Shared::new(data(len, salt)), grad: Some(Shared::new(Vec::new())) }
}

/// As [`param`] with the gradient allocated up front (zeros).
fn param_sized(len: usize, salt: u32) -> Param {
    Param { data: Shared::new(data(len, salt)), grad: Some(Shared::new(vec![0.0; len])) }
}

fn frozen(len: usize, salt: u32) -> Param {
    Param { data: Shared::new(data(len, salt)), grad: None }
}

type Key = *const Shared;
type Params = HashMap<Key, Vec<f64>>;

fn key(s: &Arc<Shared>) -> Key {
    Arc::as_ptr(s)
}

/// Every parameter of a step, trainable or frozen.
fn params_of(op: &TrainOp) -> Vec<&Param> {
    match op {
        TrainOp::Conv { weight, bias, .. } | TrainOp::Linear { weight, bias, .. } => std::iter::once(weight).chain(bias).collect(),
        TrainOp::BatchNorm { gamma, beta, .. } => vec![gamma, beta],
        _ => Vec::new(),
    }
}

fn params_of_mut(op: &mut TrainOp) -> Vec<&mut Param> {
    match op {
        TrainOp::Conv { weight, bias, .. } | TrainOp::Linear { weight, bias, .. } => std::iter::once(weight).chain(bias.as_mut()).collect(),
        TrainOp::BatchNorm { gamma, beta, .. } => vec![gamma, beta],
        _ => Vec::new(),
    }
}

fn running_of(op: &TrainOp) -> Vec<&Arc<Shared>> {
    match op {
        TrainOp::BatchNorm { running_mean, running_var, .. } => vec![running_mean, running_var],
        _ => Vec::new(),
    }
}

// ───────────────────────────── networks ─────────────────────────────

/// What a graph is built from, kept so the reference can run it too.
struct Net {
    lens: Vec<usize>,
    ops: Vec<TrainOp>,
    outputs: Vec<ValueId>,
}

impl Net {
    fn new(input_len: usize) -> Self {
        Self { lens: vec![input_len], ops: Vec::new(), outputs: Vec::new() }
    }

    fn value(&mut self, len: usize) -> ValueId {
        self.lens.push(len);
        ValueId(self.lens.len() - 1)
    }

    fn push(&mut self, op: TrainOp) {
        self.ops.push(op);
    }

    fn output(&mut self, v: ValueId) {
        self.outputs.push(v);
    }

    fn graph(&self, input_grad: bool) -> Graph {
        let mut b = GraphBuilder::new(self.lens[0]);
        for (i, &len) in self.lens.iter().enumerate().skip(1) {
            assert_eq!(b.value(len), ValueId(i));
        }
        for op in &self.ops {
            b.push(op.clone()).unwrap_or_else(|e| panic!("push: {e}"));
        }
        for &v in &self.outputs {
            b.output(v).unwrap();
        }
        b.build(input_grad).unwrap()
    }

    /// Every parameter once (a weight two steps share is one parameter).
    fn params(&self) -> Vec<&Param> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for p in self.ops.iter().flat_map(params_of) {
            if !seen.contains(&key(&p.data)) {
                seen.push(key(&p.data));
                out.push(p);
            }
        }
        out
    }

    /// Parameter values and running statistics, as the next forward will read them.
    fn snapshot(&self) -> Params {
        let mut p = Params::new();
        for op in &self.ops {
            for s in params_of(op).into_iter().map(|p| &p.data).chain(running_of(op)) {
                p.insert(key(s), f64s(&read(s)));
            }
        }
        p
    }

    /// The trainable parameters' gradients (empty ones as zeros).
    fn grads(&self) -> Vec<Vec<f32>> {
        self.params().iter().filter_map(|p| p.grad.as_ref().map(|g| if g.is_empty() { vec![0.0; p.data.len()] } else { read(g) })).collect()
    }

    fn zero_grads(&self) {
        for g in self.params().iter().filter_map(|p| p.grad.as_ref()) {
            // SAFETY: between runs.
            unsafe { g.get_mut() }.fill(0.0);
        }
    }
}

/// A network of one step from the input to a value of `out_len` floats.
fn single(input_len: usize, out_len: usize, op: impl FnOnce(ValueId, ValueId) -> TrainOp) -> Net {
    let mut net = Net::new(input_len);
    let y = net.value(out_len);
    net.push(op(INPUT, y));
    net.output(y);
    net
}

fn conv_spec(c_in: usize, c_out: usize, (kh, kw): (usize, usize), (sh, sw): (usize, usize), (ph, pw): (usize, usize)) -> ConvSpec {
    ConvSpec { c_in, c_out, kh, kw, sh, sw, ph, pw }
}

fn pool_params((kh, kw): (usize, usize), (sh, sw): (usize, usize), (ph, pw): (usize, usize), ceil_mode: bool) -> Pool2dParams {
    Pool2dParams { kh, kw, sh, sw, ph, pw, ceil_mode }
}

/// A convolution step with a trainable weight and bias from `salt`.
#[allow(clippy::too_many_arguments)]
fn conv_step(spec: ConvSpec, salt: u32, n: usize, (h, w): (usize, usize), relu: bool, src: ValueId, dst: Slice) -> TrainOp {
    TrainOp::Conv { spec, weight: param(spec.c_out * spec.k(), salt), bias: Some(param(spec.c_out, salt + 1)), n, h, w, relu, src, dst }
}

/// A BatchNorm step with parameters from `salt` (running variance in [0.5, 1.5)).
#[allow(clippy::too_many_arguments)]
fn batch_norm(n: usize, c: usize, hw: usize, train: bool, relu: bool, (eps, momentum): (f32, f32), salt: u32, src: ValueId, dst: Slice) -> TrainOp {
    let var: Vec<f32> = data(c, salt + 3).iter().map(|v| v.abs() + 0.5).collect();
    TrainOp::BatchNorm {
        gamma: param(c, salt),
        beta: param_sized(c, salt + 1),
        running_mean: Shared::new(data(c, salt + 2)),
        running_var: Shared::new(var),
        train,
        momentum,
        eps,
        relu,
        n,
        c,
        hw,
        src,
        dst,
    }
}

// ───────────────────────────── the f64 reference ─────────────────────────────

/// A convolution's geometry (PyTorch's output size: `⌊(len + 2p − k) / s⌋ + 1`).
#[derive(Clone, Copy)]
struct ConvGeom {
    s: ConvSpec,
    n: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl ConvGeom {
    fn new(s: ConvSpec, n: usize, h: usize, w: usize) -> Self {
        Self { s, n, h, w, oh: (h + 2 * s.ph - s.kh) / s.sh + 1, ow: (w + 2 * s.pw - s.kw) / s.sw + 1 }
    }

    /// Calls `f(x index, weight index, y index)` for every product of the convolution
    /// (taps in the zero padding skipped).
    fn taps(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (s, oh, ow) = (self.s, self.oh, self.ow);
        for b in 0..self.n {
            for o in 0..s.c_out {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let yi = ((b * s.c_out + o) * oh + oy) * ow + ox;
                        for c in 0..s.c_in {
                            for ky in 0..s.kh {
                                for kx in 0..s.kw {
                                    // Negative positions wrap to huge ones: outside too.
                                    let (iy, ix) = ((oy * s.sh + ky).wrapping_sub(s.ph), (ox * s.sw + kx).wrapping_sub(s.pw));
                                    if iy < self.h && ix < self.w {
                                        f(((b * s.c_in + c) * self.h + iy) * self.w + ix, ((o * s.c_in + c) * s.kh + ky) * s.kw + kx, yi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// PyTorch's pooling output size (ATen's `pooling_output_shape`, dilation 1): floor or
/// ceil of `(len + 2p − k) / s`, plus one, minus one in ceil mode if the last window would
/// start at or past `len + p`.
fn pool_out(len: usize, k: usize, s: usize, p: usize, ceil: bool) -> usize {
    let (len, k, s, p) = (len as i64, k as i64, s as i64, p as i64);
    let mut out = (len + 2 * p - k + if ceil { s - 1 } else { 0 }).div_euclid(s) + 1;
    if ceil && (out - 1) * s >= len + p {
        out -= 1;
    }
    out.max(0) as usize
}

/// One axis of a pooling window: inputs `[lo, hi)`, and the size clipped only to `len + p`
/// (the `count_include_pad` divisor), as ATen's avg_pool2d computes them.
#[derive(Clone, Copy)]
struct Win {
    lo: usize,
    hi: usize,
    padded: usize,
}

fn pool_axis(k: usize, s: usize, p: usize, ceil: bool, len: usize) -> Vec<Win> {
    (0..pool_out(len, k, s, p, ceil))
        .map(|o| {
            let start = (o * s) as i64 - p as i64;
            let end = (start + k as i64).min((len + p) as i64);
            Win { lo: start.max(0) as usize, hi: end.min(len as i64) as usize, padded: (end - start) as usize }
        })
        .collect()
}

/// Adaptive pooling: window `i` is `[⌊i·len/out⌋, ⌈(i+1)·len/out⌉)`.
fn adaptive_axis(out: usize, len: usize) -> Vec<Win> {
    (0..out).map(|i| (i * len / out, ((i + 1) * len).div_ceil(out))).map(|(lo, hi)| Win { lo, hi, padded: hi - lo }).collect()
}

/// A pooling step's windows, one per output in output order: its inputs in window order
/// (rows, then columns) and the average's divisor; and whether the step takes the max.
fn pool_windows(op: &TrainOp) -> (Vec<(Vec<usize>, f64)>, bool) {
    let (planes, h, w, rows, cols, max, include_pad) = match op {
        TrainOp::MaxPool { p, planes, h, w, .. } => (*planes, *h, *w, pool_axis(p.kh, p.sh, p.ph, p.ceil_mode, *h), pool_axis(p.kw, p.sw, p.pw, p.ceil_mode, *w), true, false),
        TrainOp::AvgPool { p, count_include_pad, planes, h, w, .. } => {
            (*planes, *h, *w, pool_axis(p.kh, p.sh, p.ph, p.ceil_mode, *h), pool_axis(p.kw, p.sw, p.pw, p.ceil_mode, *w), false, *count_include_pad)
        }
        TrainOp::AdaptiveAvgPool { planes, h, w, oh, ow, .. } => (*planes, *h, *w, adaptive_axis(*oh, *h), adaptive_axis(*ow, *w), false, false),
        _ => unreachable!("not a pooling step"),
    };
    let mut windows = Vec::new();
    for pl in 0..planes {
        for r in &rows {
            for c in &cols {
                let cells = (r.lo..r.hi).flat_map(|iy| (c.lo..c.hi).map(move |ix| (pl * h + iy) * w + ix)).collect();
                let divisor = if include_pad { r.padded * c.padded } else { (r.hi - r.lo) * (c.hi - c.lo) };
                windows.push((cells, divisor as f64));
            }
        }
    }
    (windows, max)
}

/// The first maximum of a window in window order (a later equal value does not replace it).
fn first_max(x: &[f64], cells: &[usize]) -> usize {
    cells.iter().copied().reduce(|best, i| if x[i] > x[best] { i } else { best }).expect("windows are never empty")
}

/// BatchNorm's per-channel mean and variance that normalise `x`: the batch's (biased
/// variance) in training, the running ones in eval.
fn moments(op: &TrainOp, x: &[f64], p: &Params) -> (Vec<f64>, Vec<f64>) {
    let TrainOp::BatchNorm { running_mean, running_var, train, c, hw, .. } = op else { unreachable!() };
    if !*train {
        return (p[&key(running_mean)].clone(), p[&key(running_var)].clone());
    }
    let count = (x.len() / c) as f64;
    let (mut mean, mut var) = (vec![0.0; *c], vec![0.0; *c]);
    x.iter().enumerate().for_each(|(i, &v)| mean[i / hw % c] += v / count);
    x.iter().enumerate().for_each(|(i, &v)| var[i / hw % c] += (v - mean[i / hw % c]).powi(2) / count);
    (mean, var)
}

fn relu_if(mut y: Vec<f64>, relu: bool) -> Vec<f64> {
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    y
}

/// The output gradient behind a fused ReLU: `dy` where `y > 0`.
fn masked(y: &[f64], dy: &[f64], relu: bool) -> Vec<f64> {
    y.iter().zip(dy).map(|(&y, &d)| if !relu || y > 0.0 { d } else { 0.0 }).collect()
}

fn add(dst: &mut [f64], src: &[f64]) {
    assert_eq!(dst.len(), src.len());
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}

/// One step's output (for channel-slice writes: its own channels, `n × c × plane`).
/// `running` receives the running statistics a training-mode BatchNorm leaves; `gain`
/// the largest `|γ|/σ` of a BatchNorm (how much it magnifies rounding).
fn forward(op: &TrainOp, x: &[f64], p: &Params, running: &mut Params, gain: &mut f64) -> Vec<f64> {
    match op {
        TrainOp::Conv { spec, weight, bias, n, h, w, relu, .. } => {
            let g = ConvGeom::new(*spec, *n, *h, *w);
            let wt = &p[&key(&weight.data)];
            let mut y = vec![0.0; n * spec.c_out * g.oh * g.ow];
            g.taps(|xi, wi, yi| y[yi] += x[xi] * wt[wi]);
            if let Some(b) = bias {
                let b = &p[&key(&b.data)];
                y.iter_mut().enumerate().for_each(|(i, v)| *v += b[i / (g.oh * g.ow) % spec.c_out]);
            }
            relu_if(y, *relu)
        }
        TrainOp::BatchNorm { gamma, beta, running_mean, running_var, train, momentum, eps, relu, c, hw, .. } => {
            let (mean, var) = moments(op, x, p);
            let (g, b) = (&p[&key(&gamma.data)], &p[&key(&beta.data)]);
            let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + *eps as f64).sqrt()).collect();
            let y = x.iter().enumerate().map(|(i, &v)| {
                let ch = i / hw % c;
                g[ch] * (v - mean[ch]) * invstd[ch] + b[ch]
            });
            *gain = (0..*c).map(|ch| g[ch].abs() * invstd[ch]).fold(*gain, f64::max);
            if *train {
                // PyTorch: running = (1 − m)·running + m·batch, with the unbiased variance.
                let (m, count) = (*momentum as f64, (x.len() / c) as f64);
                let rm = p[&key(running_mean)].iter().zip(&mean).map(|(r, b)| (1.0 - m) * r + m * b).collect();
                let rv = p[&key(running_var)].iter().zip(&var).map(|(r, v)| (1.0 - m) * r + m * v * count / (count - 1.0)).collect();
                running.insert(key(running_mean), rm);
                running.insert(key(running_var), rv);
            }
            relu_if(y.collect(), *relu)
        }
        TrainOp::MaxPool { .. } | TrainOp::AvgPool { .. } | TrainOp::AdaptiveAvgPool { .. } => {
            let (windows, max) = pool_windows(op);
            windows.iter().map(|(cells, div)| if max { x[first_max(x, cells)] } else { cells.iter().map(|&i| x[i]).sum::<f64>() / div }).collect()
        }
        TrainOp::Linear { weight, bias, n, inp, out, .. } => {
            let wt = &p[&key(&weight.data)];
            let b = bias.as_ref().map(|b| &p[&key(&b.data)]);
            let mut y = vec![0.0; n * out];
            for r in 0..*n {
                for o in 0..*out {
                    y[r * out + o] = (0..*inp).map(|i| x[r * inp + i] * wt[o * inp + i]).sum::<f64>() + b.map_or(0.0, |b| b[o]);
                }
            }
            y
        }
        TrainOp::Relu { .. } => relu_if(x.to_vec(), true),
        TrainOp::Dropout { p, .. } => {
            assert!(*p == 0.0 || *p == 1.0, "the reference knows dropout with p = 0 or 1 only");
            if *p == 0.0 { x.to_vec() } else { vec![0.0; x.len()] }
        }
        TrainOp::CopyChannels { .. } => x.to_vec(),
        TrainOp::ChannelAffine { scale, shift, hw, .. } => x.iter().enumerate().map(|(i, &v)| v * scale[i / hw % scale.len()] as f64 + shift[i / hw % scale.len()] as f64).collect(),
    }
}

/// One step's backward: the input gradient and each parameter's (by buffer), from the
/// input `x`, the step's output `y` and its gradient `dy`.
fn backward(op: &TrainOp, x: &[f64], y: &[f64], dy: &[f64], p: &Params) -> (Vec<f64>, Vec<(Key, Vec<f64>)>) {
    let mut dx = vec![0.0; x.len()];
    let mut grads = Vec::new();
    match op {
        TrainOp::Conv { spec, weight, bias, n, h, w, relu, .. } => {
            let g = ConvGeom::new(*spec, *n, *h, *w);
            let dz = masked(y, dy, *relu);
            let wt = &p[&key(&weight.data)];
            let mut dw = vec![0.0; wt.len()];
            g.taps(|xi, wi, yi| {
                dx[xi] += wt[wi] * dz[yi];
                dw[wi] += x[xi] * dz[yi];
            });
            grads.push((key(&weight.data), dw));
            if let Some(b) = bias {
                let mut db = vec![0.0; spec.c_out];
                dz.iter().enumerate().for_each(|(i, d)| db[i / (g.oh * g.ow) % spec.c_out] += d);
                grads.push((key(&b.data), db));
            }
        }
        TrainOp::BatchNorm { gamma, beta, train, eps, relu, c, hw, .. } => {
            let (mean, var) = moments(op, x, p);
            let g = &p[&key(&gamma.data)];
            let dz = masked(y, dy, *relu);
            let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + *eps as f64).sqrt()).collect();
            let xhat = |i: usize| (x[i] - mean[i / hw % c]) * invstd[i / hw % c];
            let (mut sum, mut dot) = (vec![0.0; *c], vec![0.0; *c]);
            for i in 0..x.len() {
                sum[i / hw % c] += dz[i];
                dot[i / hw % c] += dz[i] * xhat(i);
            }
            let count = (x.len() / c) as f64;
            for (i, d) in dx.iter_mut().enumerate() {
                let ch = i / hw % c;
                // Training: the batch statistics depend on x too.
                let centred = if *train { dz[i] - sum[ch] / count - xhat(i) * dot[ch] / count } else { dz[i] };
                *d = g[ch] * invstd[ch] * centred;
            }
            grads.push((key(&gamma.data), dot));
            grads.push((key(&beta.data), sum));
        }
        TrainOp::MaxPool { .. } | TrainOp::AvgPool { .. } | TrainOp::AdaptiveAvgPool { .. } => {
            let (windows, max) = pool_windows(op);
            for ((cells, div), &d) in windows.iter().zip(dy) {
                if max {
                    dx[first_max(x, cells)] += d;
                } else {
                    cells.iter().for_each(|&i| dx[i] += d / div);
                }
            }
        }
        TrainOp::Linear { weight, bias, n, inp, out, .. } => {
            let wt = &p[&key(&weight.data)];
            let mut dw = vec![0.0; wt.len()];
            for r in 0..*n {
                for o in 0..*out {
                    for i in 0..*inp {
                        dx[r * inp + i] += dy[r * out + o] * wt[o * inp + i];
                        dw[o * inp + i] += dy[r * out + o] * x[r * inp + i];
                    }
                }
            }
            grads.push((key(&weight.data), dw));
            if let Some(b) = bias {
                grads.push((key(&b.data), (0..*out).map(|o| (0..*n).map(|r| dy[r * out + o]).sum()).collect()));
            }
        }
        TrainOp::Relu { .. } => dx = masked(y, dy, true),
        TrainOp::Dropout { p, .. } => dx = if *p == 0.0 { dy.to_vec() } else { vec![0.0; x.len()] },
        TrainOp::CopyChannels { .. } => dx = dy.to_vec(),
        TrainOp::ChannelAffine { scale, hw, .. } => dx = dy.iter().enumerate().map(|(i, &d)| d * scale[i / hw % scale.len()] as f64).collect(),
    }
    (dx, grads)
}

/// The step's source value, and where it writes: its value and, for channel-slice writes,
/// `(slice, channels, plane)`.
fn source(op: &TrainOp) -> ValueId {
    match op {
        TrainOp::Conv { src, .. }
        | TrainOp::BatchNorm { src, .. }
        | TrainOp::MaxPool { src, .. }
        | TrainOp::AvgPool { src, .. }
        | TrainOp::AdaptiveAvgPool { src, .. }
        | TrainOp::Linear { src, .. }
        | TrainOp::Relu { src, .. }
        | TrainOp::Dropout { src, .. }
        | TrainOp::CopyChannels { src, .. }
        | TrainOp::ChannelAffine { src, .. } => *src,
    }
}

fn target(op: &TrainOp) -> (ValueId, Option<(Slice, usize, usize)>) {
    match op {
        TrainOp::Conv { spec, n, h, w, dst, .. } => {
            let g = ConvGeom::new(*spec, *n, *h, *w);
            (dst.value, Some((*dst, spec.c_out, g.oh * g.ow)))
        }
        TrainOp::BatchNorm { c, hw, dst, .. } | TrainOp::CopyChannels { c, hw, dst, .. } => (dst.value, Some((*dst, *c, *hw))),
        TrainOp::MaxPool { dst, .. }
        | TrainOp::AvgPool { dst, .. }
        | TrainOp::AdaptiveAvgPool { dst, .. }
        | TrainOp::Linear { dst, .. }
        | TrainOp::Relu { dst, .. }
        | TrainOp::Dropout { dst, .. }
        | TrainOp::ChannelAffine { dst, .. } => (*dst, None),
    }
}

/// The element ranges of the step's output within its value (one per image for slices).
fn block_ranges(op: &TrainOp, value_len: usize) -> Vec<std::ops::Range<usize>> {
    match target(op).1 {
        None => std::iter::once(0..value_len).collect(),
        Some((s, c, plane)) => (0..value_len / (s.channels * plane)).map(|b| (b * s.channels + s.offset) * plane..(b * s.channels + s.offset + c) * plane).collect(),
    }
}

fn block(op: &TrainOp, values: &[Vec<f64>]) -> Vec<f64> {
    let v = &values[target(op).0 .0];
    block_ranges(op, v.len()).into_iter().flat_map(|r| v[r].iter().copied()).collect()
}

fn put_block(op: &TrainOp, values: &mut [Vec<f64>], y: &[f64]) {
    let v = &mut values[target(op).0 .0];
    let mut from = y.iter();
    for r in block_ranges(op, v.len()) {
        v[r].iter_mut().for_each(|d| *d = *from.next().expect("block length"));
    }
    assert!(from.next().is_none(), "block length");
}

/// What the reference computes for one forward and backward.
struct Outcome {
    values: Vec<Vec<f64>>,
    /// Per value: the gradient of `Σ_k seed_k · output_k`.
    grads: Vec<Vec<f64>>,
    /// Per parameter buffer (trainable or frozen): its gradient.
    params: Params,
    /// Per running-statistics buffer of a training-mode BatchNorm: its value after the forward.
    running: Params,
    /// The largest `|γ|/σ` of the BatchNorms (at least 1).
    gain: f64,
}

/// Runs `net` on `x` with parameters `p`, then backward from `seeds` (one per output).
fn reference(net: &Net, x: &[f64], p: &Params, seeds: &[Vec<f64>]) -> Outcome {
    let zeros = || net.lens.iter().map(|&l| vec![0.0; l]).collect::<Vec<_>>();
    let mut values = zeros();
    values[0] = x.to_vec();
    let (mut running, mut gain) = (Params::new(), 1.0);
    for op in &net.ops {
        let y = forward(op, &values[source(op).0], p, &mut running, &mut gain);
        put_block(op, &mut values, &y);
    }
    let mut grads = zeros();
    for (v, s) in net.outputs.iter().zip(seeds) {
        add(&mut grads[v.0], s);
    }
    let mut params = Params::new();
    for op in net.ops.iter().rev() {
        let (dx, pg) = backward(op, &values[source(op).0], &block(op, &values), &block(op, &grads), p);
        add(&mut grads[source(op).0], &dx);
        for (k, g) in pg {
            add(params.entry(k).or_insert_with(|| vec![0.0; g.len()]), &g);
        }
    }
    Outcome { values, grads, params, running, gain }
}

/// The longest sum any step computes (the tolerance's `terms`), summed over the steps.
fn terms(net: &Net) -> usize {
    let one = |op: &TrainOp| match op {
        TrainOp::Conv { spec, n, h, w, .. } => {
            let g = ConvGeom::new(*spec, *n, *h, *w);
            spec.k().max(spec.c_out * spec.kh * spec.kw).max(n * g.oh * g.ow)
        }
        TrainOp::BatchNorm { n, hw, .. } => n * hw,
        TrainOp::MaxPool { p, .. } | TrainOp::AvgPool { p, .. } => p.kh * p.kw,
        TrainOp::AdaptiveAvgPool { h, w, .. } => h * w,
        TrainOp::Linear { n, inp, out, .. } => *n.max(inp).max(out),
        _ => 1,
    };
    net.ops.iter().map(one).sum()
}

/// An input and one output gradient per output, from `salt`.
fn inputs(net: &Net, salt: u32) -> (Vec<f32>, Vec<Vec<f32>>) {
    let seeds = net.outputs.iter().enumerate().map(|(k, v)| data(net.lens[v.0], salt + 1 + k as u32)).collect();
    (data(net.lens[0], salt), seeds)
}

// ───────────────────────────── the graph against the reference ─────────────────────────────

/// Runs `graph` (built from `net`) forward on `x` and backward from `seeds` (`(output,
/// gradient)`; outputs not given have none), and compares with the reference: outputs,
/// running statistics, the input gradient (when `input_grad`), every trainable parameter's
/// gradient (accumulated onto what it held) and every parameter's values (untouched).
/// `scale` multiplies the tolerance (deep networks, whose values grow).
fn compare(net: &Net, graph: &mut Graph, x: &[f32], seeds: &[(usize, Vec<f32>)], input_grad: bool, scale: f32, what: &str) {
    let before = net.snapshot();
    let grads_before = net.grads();
    let mut seeds64: Vec<Vec<f64>> = net.outputs.iter().map(|v| vec![0.0; net.lens[v.0]]).collect();
    for (k, s) in seeds {
        seeds64[*k] = f64s(s);
    }
    let want = reference(net, &f64s(x), &before, &seeds64);
    let (terms, scale) = (terms(net), scale * want.gain as f32);

    graph.forward(x, 7).unwrap();
    for (k, v) in net.outputs.iter().enumerate() {
        assert_close_scaled(graph.output(k).unwrap(), &f32s(&want.values[v.0]), terms, scale, &format!("{what}: output {k}"));
    }
    for s in net.ops.iter().flat_map(running_of) {
        let expected = want.running.get(&key(s)).unwrap_or(&before[&key(s)]);
        assert_close_scaled(&read(s), &f32s(expected), terms, scale, &format!("{what}: running statistics"));
    }

    let seeds: Vec<(usize, &[f32])> = seeds.iter().map(|(k, s)| (*k, &s[..])).collect();
    let mut dx = vec![f32::NAN; x.len()];
    graph.backward(&seeds, input_grad.then_some(&mut dx[..])).unwrap();
    if input_grad {
        assert_close_scaled(&dx, &f32s(&want.grads[0]), terms, scale, &format!("{what}: input gradient"));
    }
    let trainable = net.params().into_iter().filter(|p| p.grad.is_some());
    for ((i, p), before) in trainable.enumerate().zip(grads_before) {
        let mut expected = f64s(&before);
        add(&mut expected, &want.params[&key(&p.data)]);
        assert_close_scaled(&read(p.grad.as_ref().unwrap()), &f32s(&expected), terms, scale, &format!("{what}: gradient of trainable parameter {i}"));
    }
    for p in net.params() {
        assert_eq!(f64s(&read(&p.data)), before[&key(&p.data)], "{what}: a run changed a parameter");
    }
}

/// [`compare`] on a fresh graph, with the input and output gradients from `salt`.
fn check(net: &Net, salt: u32, what: &str) {
    let (x, seeds) = inputs(net, salt);
    check_with(net, &x, seeds, what);
}

fn check_with(net: &Net, x: &[f32], seeds: Vec<Vec<f32>>, what: &str) {
    let seeds: Vec<(usize, Vec<f32>)> = seeds.into_iter().enumerate().collect();
    compare(net, &mut net.graph(true), x, &seeds, true, 1.0, what);
}

// ───────────────────────────── one network per op ─────────────────────────────

/// A convolution of `n` images into channels of a value of `c_out + extra` channels (its
/// own first when `first`), whose other channels a frozen convolution of the same geometry
/// writes: both read the input, so its gradient is their sum.
#[allow(clippy::too_many_arguments)]
fn conv_net(spec: ConvSpec, n: usize, (h, w): (usize, usize), relu: bool, bias: bool, extra: usize, first: bool, salt: u32) -> Net {
    let g = ConvGeom::new(spec, n, h, w);
    let channels = spec.c_out + extra;
    let mut net = Net::new(n * spec.c_in * h * w);
    let y = net.value(n * channels * g.oh * g.ow);
    let (mine, other) = if first { (0, spec.c_out) } else { (extra, 0) };
    let weight = if salt % 2 == 0 { param(spec.c_out * spec.k(), salt + 10) } else { param_sized(spec.c_out * spec.k(), salt + 10) };
    let bias = bias.then(|| param(spec.c_out, salt + 11));
    net.push(TrainOp::Conv { spec, weight, bias, n, h, w, relu, src: INPUT, dst: Slice { value: y, channels, offset: mine } });
    if extra > 0 {
        let spec = ConvSpec { c_out: extra, ..spec };
        net.push(TrainOp::Conv { spec, weight: frozen(extra * spec.k(), salt + 12), bias: None, n, h, w, relu: false, src: INPUT, dst: Slice { value: y, channels, offset: other } });
    }
    net.output(y);
    net
}

/// A BatchNorm into a value of its own (`slice: None`) or into the first or second half of
/// a `2c`-channel value whose other half copies the input.
#[allow(clippy::too_many_arguments)]
fn batch_norm_net(n: usize, c: usize, hw: usize, train: bool, relu: bool, slice: Option<bool>, eps_momentum: (f32, f32), salt: u32) -> Net {
    let channels = if slice.is_some() { 2 * c } else { c };
    let mine = if slice == Some(false) { c } else { 0 };
    let mut net = Net::new(n * c * hw);
    let y = net.value(n * channels * hw);
    net.push(batch_norm(n, c, hw, train, relu, eps_momentum, salt + 10, INPUT, Slice { value: y, channels, offset: mine }));
    if slice.is_some() {
        net.push(TrainOp::CopyChannels { n, c, hw, src: INPUT, dst: Slice { value: y, channels, offset: c - mine } });
    }
    net.output(y);
    net
}

#[derive(Clone, Copy, Debug)]
enum Pool {
    Max,
    Avg { count_include_pad: bool },
}

fn pool_net(kind: Pool, p: Pool2dParams, planes: usize, (h, w): (usize, usize)) -> Net {
    let out = planes * pool_out(h, p.kh, p.sh, p.ph, p.ceil_mode) * pool_out(w, p.kw, p.sw, p.pw, p.ceil_mode);
    single(planes * h * w, out, |src, dst| match kind {
        Pool::Max => TrainOp::MaxPool { p, planes, h, w, src, dst },
        Pool::Avg { count_include_pad } => TrainOp::AvgPool { p, count_include_pad, planes, h, w, src, dst },
    })
}

fn adaptive_net(planes: usize, (h, w): (usize, usize), (oh, ow): (usize, usize)) -> Net {
    single(planes * h * w, planes * oh * ow, |src, dst| TrainOp::AdaptiveAvgPool { planes, h, w, oh, ow, src, dst })
}

fn linear_net(n: usize, inp: usize, out: usize, bias: bool, salt: u32) -> Net {
    single(n * inp, n * out, |src, dst| TrainOp::Linear { weight: param(out * inp, salt + 10), bias: bias.then(|| param_sized(out, salt + 11)), n, inp, out, src, dst })
}

/// Copies of the input into channels `[k·c, (k+1)·c)` of a `copies·c`-channel value, in
/// the order `order` (so the input's gradient sums `copies` slices).
fn concat_net(n: usize, c: usize, hw: usize, order: &[usize]) -> Net {
    let channels = order.len() * c;
    let mut net = Net::new(n * c * hw);
    let y = net.value(n * channels * hw);
    for &k in order {
        net.push(TrainOp::CopyChannels { n, c, hw, src: INPUT, dst: Slice { value: y, channels, offset: k * c } });
    }
    net.output(y);
    net
}

fn affine_net(n: usize, c: usize, hw: usize, salt: u32) -> Net {
    single(n * c * hw, n * c * hw, |src, dst| TrainOp::ChannelAffine { scale: data(c, salt + 10), shift: data(c, salt + 11), n, hw, src, dst })
}

/// Tiny instances of every op (and of the slice and accumulation layouts).
fn tiny_nets() -> Vec<(&'static str, Net)> {
    let bn = |train, relu, slice| batch_norm_net(2, 2, 3, train, relu, slice, (1e-3, 0.1), 5);
    vec![
        ("conv 3×3/2 pad 1, bias, relu, slice", conv_net(conv_spec(2, 3, (3, 3), (2, 2), (1, 1)), 2, (4, 3), true, true, 1, false, 1)),
        ("conv 2×1 pad (1, 0) stride (1, 2)", conv_net(conv_spec(2, 2, (2, 1), (1, 2), (1, 0)), 1, (3, 4), false, false, 0, true, 2)),
        ("conv 1×1", conv_net(conv_spec(3, 2, (1, 1), (1, 1), (0, 0)), 2, (2, 2), true, true, 2, true, 3)),
        ("batch norm train relu slice", bn(true, true, Some(false))),
        ("batch norm train", bn(true, false, None)),
        ("batch norm eval relu slice", bn(false, true, Some(true))),
        ("max pool 3/2 pad 1 ceil", pool_net(Pool::Max, pool_params((3, 3), (2, 2), (1, 1), true), 2, (4, 5))),
        ("avg pool 3/2 pad 1 ceil, count pad", pool_net(Pool::Avg { count_include_pad: true }, pool_params((3, 3), (2, 2), (1, 1), true), 2, (4, 5))),
        ("avg pool 2×3/(1, 2) pad (1, 1)", pool_net(Pool::Avg { count_include_pad: false }, pool_params((2, 3), (1, 2), (1, 1), false), 1, (3, 4))),
        ("adaptive avg pool", adaptive_net(2, (3, 5), (2, 3))),
        ("linear", linear_net(2, 3, 4, true, 4)),
        ("relu", single(10, 10, |src, dst| TrainOp::Relu { src, dst })),
        ("dropout p = 0", single(10, 10, |src, dst| TrainOp::Dropout { p: 0.0, src, dst })),
        ("dropout p = 1", single(10, 10, |src, dst| TrainOp::Dropout { p: 1.0, src, dst })),
        ("copy channels", concat_net(2, 2, 3, &[1, 0])),
        ("channel affine", affine_net(2, 3, 2, 6)),
    ]
}

#[test]
fn the_reference_gradients_match_central_differences() {
    const H: f64 = 1e-6;
    for (salt, (what, net)) in tiny_nets().into_iter().enumerate() {
        let (x, seeds) = inputs(&net, 100 + salt as u32);
        let (x, seeds) = (f64s(&x), seeds.iter().map(|s| f64s(s)).collect::<Vec<_>>());
        let p = net.snapshot();
        let loss = |x: &[f64], p: &Params| {
            let o = reference(&net, x, p, &seeds);
            net.outputs.iter().zip(&seeds).map(|(v, s)| o.values[v.0].iter().zip(s).map(|(a, b)| a * b).sum::<f64>()).sum::<f64>()
        };
        let agree = |analytic: f64, plus: f64, minus: f64, at: String| {
            let numeric = (plus - minus) / (2.0 * H);
            assert!((numeric - analytic).abs() <= 1e-6 * (1.0 + numeric.abs()), "{what}: {at}: analytic {analytic}, numeric {numeric}");
        };
        let want = reference(&net, &x, &p, &seeds);
        for i in 0..x.len() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += H;
            b[i] -= H;
            agree(want.grads[0][i], loss(&a, &p), loss(&b, &p), format!("input {i}"));
        }
        assert_eq!(want.params.len(), net.params().len(), "{what}: every parameter has a gradient");
        for (k, g) in &want.params {
            for (i, &analytic) in g.iter().enumerate() {
                let (mut a, mut b) = (p.clone(), p.clone());
                a.get_mut(k).unwrap()[i] += H;
                b.get_mut(k).unwrap()[i] -= H;
                agree(analytic, loss(&x, &a), loss(&x, &b), format!("parameter element {i}"));
            }
        }
    }
}

/// The reference's running statistics and pooling rules on hand-computed cases.
#[test]
fn the_reference_follows_pytorch_on_hand_computed_cases() {
    // BatchNorm over 1 channel of [1, 2, 3, 6]: mean 3, biased variance 3.5, unbiased 14/3.
    let mut net = single(4, 4, |src, dst| batch_norm(1, 1, 4, true, false, (1e-5, 0.25), 1, src, Slice::whole(dst, 1)));
    if let TrainOp::BatchNorm { running_mean, running_var, .. } = &mut net.ops[0] {
        (*running_mean, *running_var) = (Shared::new(vec![1.0]), Shared::new(vec![2.0]));
    }
    let out = reference(&net, &[1.0, 2.0, 3.0, 6.0], &net.snapshot(), &[vec![0.0; 4]]);
    let (TrainOp::BatchNorm { running_mean, running_var, .. }, r) = (&net.ops[0], &out.running) else { unreachable!() };
    assert!((r[&key(running_mean)][0] - (0.75 + 0.25 * 3.0)).abs() < 1e-12);
    assert!((r[&key(running_var)][0] - (1.5 + 0.25 * 14.0 / 3.0)).abs() < 1e-12);

    // Ceil mode: 6 wide, 3/2 pad 1 → 4 windows, the last [5, 6) with a divisor of 2 counting
    // padding (clipped at len + pad), 1 without; a 2-wide input under a 3/2 ceil pool → 1.
    let axis = pool_axis(3, 2, 1, true, 6);
    assert_eq!(axis.iter().map(|w| (w.lo, w.hi, w.padded)).collect::<Vec<_>>(), [(0, 2, 3), (1, 4, 3), (3, 6, 3), (5, 6, 2)]);
    assert_eq!((pool_out(2, 3, 2, 0, true), pool_out(1, 2, 2, 0, true), pool_out(5, 2, 2, 0, false)), (1, 1, 2));
    assert_eq!(adaptive_axis(3, 5).iter().map(|w| (w.lo, w.hi)).collect::<Vec<_>>(), [(0, 2), (1, 4), (3, 5)]);
    // The first maximum wins ties.
    assert_eq!(first_max(&[1.0, 3.0, 3.0, 2.0], &[0, 1, 2, 3]), 1);
}

// ───────────────────────────── op by op: edge shapes ─────────────────────────────

#[test]
fn every_tiny_op_matches_the_reference() {
    for (salt, (what, net)) in tiny_nets().into_iter().enumerate() {
        check(&net, 200 + salt as u32, what);
    }
}

#[test]
fn conv_matches_the_reference_on_edge_shapes() {
    #[rustfmt::skip]
    let cases = [
        // (c_in, c_out, kernel, stride, pad, n, (h, w), relu, bias, extra, first)
        (3, 5, (1, 1), (1, 1), (0, 0), 1, (1, 1), true, true, 0, true),     // 1×1 image, pointwise
        (2, 6, (3, 3), (1, 1), (1, 1), 3, (1, 1), true, true, 2, false),    // kernel = padded 1×1 image
        (2, 7, (5, 7), (1, 1), (1, 1), 2, (3, 5), false, true, 1, true),    // kernel = padded input: 1×1 output
        (3, 9, (3, 3), (2, 2), (1, 1), 3, (7, 6), true, true, 3, false),    // stride 2 with padding
        (4, 5, (1, 1), (2, 2), (0, 0), 2, (5, 5), false, false, 0, true),   // 1×1 stride 2: not pointwise
        (2, 3, (1, 7), (1, 1), (0, 3), 1, (4, 9), true, true, 0, true),     // 1×7
        (2, 3, (7, 1), (1, 1), (3, 0), 2, (9, 4), false, true, 1, true),    // 7×1
        (2, 2, (1, 1), (1, 1), (1, 1), 1, (2, 2), true, true, 0, true),     // padding past the kernel: border = bias
        (16, 13, (1, 1), (1, 1), (0, 0), 2, (6, 6), true, false, 3, false), // pointwise, c_out 13
        (2, 5, (2, 2), (3, 3), (0, 0), 1, (7, 8), false, true, 0, true),    // stride > kernel: unread inputs
        (1, 1, (3, 3), (1, 1), (1, 1), 1, (3, 3), false, false, 0, true),   // one channel in and out
        (5, 4, (3, 3), (2, 1), (0, 2), 3, (5, 3), true, true, 4, true),     // mixed strides and pads
        (3, 6, (3, 3), (1, 1), (1, 1), 5, (15, 17), true, true, 0, true),   // N = 1,275: dW in 3 pixel blocks, images across their edges
        (8, 9, (3, 3), (1, 1), (1, 1), 2, (12, 13), true, true, 1, false),  // > 64 pixels: the forward on the inference layer
        (9, 8, (1, 1), (1, 1), (0, 0), 3, (9, 10), false, true, 0, true),   // … a 1×1 one, reading its input in place
        (4, 5, (1, 1), (1, 1), (0, 0), 7, (9, 9), true, true, 0, true),     // pointwise, N = 567: a dW pixel block ends inside an image
        (8, 10, (3, 3), (1, 1), (1, 1), 5, (4, 4), true, true, 1, false),  // Winograd blocks over the batch: one F(4×4) tile per image
        (9, 7, (3, 3), (1, 1), (1, 1), 3, (8, 7), false, true, 0, true),    // … four tiles per image, the last ones partial
        (8, 8, (3, 3), (1, 1), (0, 0), 2, (9, 10), true, true, 0, false),  // input gradient by Winograd, padded 2
        (8, 9, (3, 3), (1, 1), (2, 2), 3, (5, 6), false, false, 1, false),  // … padded 0, batched
        // Dense (every output sees the whole input, `conv::dense`): cases 1 and 2 above, and
        (8, 6, (3, 3), (1, 1), (1, 1), 3, (2, 2), true, true, 2, false),    // 3×3 on 2×2 maps (inception 4 at 32×32)
        (3, 4, (5, 5), (1, 1), (2, 2), 2, (3, 2), false, true, 0, true),    // 5×5 on 3×2
        (4, 5, (3, 3), (2, 2), (1, 1), 2, (2, 1), true, false, 1, false),   // stride 2 on 2×1: one output
    ];
    for (i, &(c_in, c_out, k, s, p, n, hw, relu, bias, extra, first)) in cases.iter().enumerate() {
        let spec = conv_spec(c_in, c_out, k, s, p);
        check(&conv_net(spec, n, hw, relu, bias, extra, first, i as u32), 300 + i as u32, &format!("conv case {i}: {spec:?} n={n} {hw:?}"));
    }
}

#[test]
fn batch_norm_matches_the_reference_on_edge_shapes() {
    #[rustfmt::skip]
    let cases = [
        // (n, c, hw, train, relu, slice, (eps, momentum))
        (1, 3, 1, false, false, None, (1e-5, 0.1)),     // one 1×1 image, eval
        (3, 2, 1, true, false, None, (1e-5, 0.1)),      // 1×1 images, batch 3
        (1, 5, 12, true, true, Some(true), (1e-5, 0.1)),
        (2, 7, 9, true, false, Some(false), (1e-3, 0.0)), // momentum 0: running stats kept
        (3, 4, 5, false, true, Some(false), (1e-5, 0.1)),
        (2, 1, 2, true, true, None, (1e-5, 1.0)),       // momentum 1: the batch's statistics
        (3, 70, 3, true, true, None, (1e-5, 0.1)),      // 70 channels: two blocks of BN_BLOCK and a short one
        (2, 6, 49, true, true, None, (1e-5, 0.1)),
    ];
    for (i, &(n, c, hw, train, relu, slice, em)) in cases.iter().enumerate() {
        check(&batch_norm_net(n, c, hw, train, relu, slice, em, i as u32), 400 + i as u32, &format!("batch norm case {i}: n={n} c={c} hw={hw} train={train}"));
    }
}

#[test]
fn pooling_matches_the_reference_on_edge_shapes() {
    #[rustfmt::skip]
    let cases = [
        // (kernel, stride, pad, ceil, planes, (h, w))
        ((1, 1), (1, 1), (0, 0), false, 2, (1, 1)),
        ((2, 2), (2, 2), (0, 0), true, 3, (1, 1)),   // ceil: a 2×2/2 pool on 1×1 (GoogLeNet at 15×15)
        ((3, 3), (2, 2), (0, 0), true, 2, (2, 2)),   // ceil: kernel larger than the input
        ((3, 3), (2, 2), (1, 1), true, 2, (6, 6)),   // ceil: last window [5, 6) of padded size 2
        ((3, 3), (2, 2), (0, 0), true, 1, (5, 8)),   // ceil: last column window partial
        ((2, 2), (2, 2), (0, 0), false, 4, (4, 4)),
        ((3, 3), (1, 1), (1, 1), false, 3, (7, 7)),  // Inception's pool branch
        ((2, 3), (1, 2), (1, 1), false, 2, (3, 5)),
        ((3, 3), (3, 3), (1, 1), true, 1, (4, 7)),
        ((3, 3), (1, 1), (1, 1), false, 3, (2, 2)),  // every window the whole plane (GoogLeNet at 32×32)
        ((3, 3), (1, 1), (1, 1), false, 2, (1, 1)),  // … on 1×1
    ];
    for (i, &(k, s, p, ceil, planes, hw)) in cases.iter().enumerate() {
        let params = pool_params(k, s, p, ceil);
        for kind in [Pool::Max, Pool::Avg { count_include_pad: true }, Pool::Avg { count_include_pad: false }] {
            check(&pool_net(kind, params, planes, hw), 500 + i as u32, &format!("pool case {i}: {kind:?} {params:?} {hw:?}"));
        }
    }
    for (i, &(planes, hw, out)) in [(2, (5, 7), (3, 2)), (1, (1, 1), (1, 1)), (3, (2, 3), (4, 5)), (2, (7, 7), (1, 1)), (1, (6, 4), (6, 4))].iter().enumerate() {
        check(&adaptive_net(planes, hw, out), 550 + i as u32, &format!("adaptive pool {hw:?} → {out:?}"));
    }
}

/// Ties (data on a grid of halves): the gradient goes to the first maximum in window order.
#[test]
fn max_pool_sends_the_gradient_to_the_first_maximum_of_tied_windows() {
    for (i, (p, hw)) in [(pool_params((3, 3), (1, 1), (1, 1), false), (6, 5)), (pool_params((2, 2), (2, 2), (0, 0), true), (5, 5)), (pool_params((3, 2), (2, 1), (1, 0), true), (6, 4)), (pool_params((3, 3), (1, 1), (1, 1), false), (2, 2))].into_iter().enumerate() {
        let net = pool_net(Pool::Max, p, 3, hw);
        let (x, seeds) = inputs(&net, 600 + i as u32);
        let x: Vec<f32> = x.iter().map(|v| (v * 2.0).round() / 2.0).collect();
        check_with(&net, &x, seeds, &format!("max pool with ties {p:?}"));
    }
}

/// PyTorch's CPU max pool moves on `v > max || isnan(v)`: the last NaN of a window takes
/// the gradient; a window of −∞ keeps its first element.
#[test]
fn max_pool_backward_follows_pytorch_on_nan_and_negative_infinity() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let net = pool_net(Pool::Max, pool_params((2, 2), (2, 2), (0, 0), false), 2, (2, 2));
    let mut graph = net.graph(true);
    graph.forward(&[1.0, nan, 3.0, nan, -inf, -inf, -inf, -inf], 0).unwrap();
    let y = graph.output(0).unwrap();
    assert!(y[0].is_nan() && y[1] == -inf, "forward: {y:?}");
    let mut dx = vec![0.0; 8];
    graph.backward(&[(0, &[5.0, 7.0][..])], Some(&mut dx[..])).unwrap();
    assert_eq!(dx, [0.0, 0.0, 0.0, 5.0, 7.0, 0.0, 0.0, 0.0]);
}

#[test]
fn linear_and_elementwise_ops_match_the_reference_on_edge_shapes() {
    for (i, &(n, inp, out, bias)) in [(1, 1, 1, true), (3, 17, 10, true), (2, 9, 5, false), (4, 1, 13, true), (1, 40, 3, false)].iter().enumerate() {
        check(&linear_net(n, inp, out, bias, i as u32), 700 + i as u32, &format!("linear n={n} {inp}→{out}"));
    }
    for (i, order) in [&[0][..], &[1, 0], &[2, 0, 1]].into_iter().enumerate() {
        check(&concat_net(2, 3, 4, order), 720 + i as u32, &format!("copy channels {order:?}"));
        check(&concat_net(1, 1, 1, order), 730 + i as u32, &format!("copy channels 1×1 {order:?}"));
    }
    check(&affine_net(3, 5, 1, 1), 740, "channel affine 1×1");
    check(&affine_net(1, 1, 7, 2), 741, "channel affine one channel");
    for len in [1, 33] {
        check(&single(len, len, |src, dst| TrainOp::Relu { src, dst }), 750, "relu");
        for p in [0.0, 1.0] {
            check(&single(len, len, |src, dst| TrainOp::Dropout { p, src, dst }), 751, &format!("dropout p = {p}"));
        }
    }
}

// ───────────────────────────── op by op: random shapes ─────────────────────────────

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn conv_matches_the_reference_on_random_shapes(
        (n, c_in, c_out) in (1usize..=3, 1usize..=9, 1usize..=17),
        (kh, kw, sh, sw, ph, pw) in (1usize..=4, 1usize..=4, 1usize..=3, 1usize..=3, 0usize..=2, 0usize..=2),
        (eh, ew) in (0usize..=8, 0usize..=8),
        (relu, bias, extra, first) in (any::<bool>(), any::<bool>(), 0usize..=3, any::<bool>()),
        salt in 0u32..1 << 16,
    ) {
        // The smallest input the kernel fits in (with its padding), then a few more.
        let (h, w) = (kh.saturating_sub(2 * ph).max(1) + eh, kw.saturating_sub(2 * pw).max(1) + ew);
        let spec = conv_spec(c_in, c_out, (kh, kw), (sh, sw), (ph, pw));
        check(&conv_net(spec, n, (h, w), relu, bias, extra, first, salt), salt, &format!("{spec:?} n={n} {h}×{w}"));
    }

    #[test]
    fn batch_norm_matches_the_reference_on_random_shapes(
        (n, c, hw) in (1usize..=3, 1usize..=9, 1usize..=40),
        (train, relu, slice) in (any::<bool>(), any::<bool>(), prop::option::of(any::<bool>())),
        eps_momentum in prop::sample::select(vec![(1e-5f32, 0.1f32), (1e-3, 0.0), (1e-5, 1.0), (0.1, 0.5)]),
        salt in 0u32..1 << 16,
    ) {
        // PyTorch refuses to train on one value per channel (the unbiased variance is 0/0).
        prop_assume!(!train || n * hw > 1);
        check(&batch_norm_net(n, c, hw, train, relu, slice, eps_momentum, salt), salt, &format!("n={n} c={c} hw={hw} train={train}"));
    }

    #[test]
    fn pooling_matches_the_reference_on_random_shapes(
        (planes, h, w) in (1usize..=4, 1usize..=12, 1usize..=12),
        (kh, kw, sh, sw) in (1usize..=4, 1usize..=4, 1usize..=3, 1usize..=3),
        (ph, pw, ceil) in (0usize..=2, 0usize..=2, any::<bool>()),
        (kind, ties) in (0usize..3, any::<bool>()),
        salt in 0u32..1 << 16,
    ) {
        // PyTorch's rule: padding at most half the kernel; and at least one window.
        let (ph, pw) = (ph.min(kh / 2), pw.min(kw / 2));
        prop_assume!(pool_out(h, kh, sh, ph, ceil) >= 1 && pool_out(w, kw, sw, pw, ceil) >= 1);
        let kind = [Pool::Max, Pool::Avg { count_include_pad: true }, Pool::Avg { count_include_pad: false }][kind];
        let p = pool_params((kh, kw), (sh, sw), (ph, pw), ceil);
        let net = pool_net(kind, p, planes, (h, w));
        let (mut x, seeds) = inputs(&net, salt);
        if ties {
            x.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
        }
        check_with(&net, &x, seeds, &format!("{kind:?} {p:?} {h}×{w}"));
    }

    #[test]
    fn adaptive_pool_and_linear_match_the_reference_on_random_shapes(
        (planes, h, w, oh, ow) in (1usize..=4, 1usize..=9, 1usize..=9, 1usize..=5, 1usize..=5),
        (n, inp, out, bias) in (1usize..=4, 1usize..=40, 1usize..=20, any::<bool>()),
        salt in 0u32..1 << 16,
    ) {
        check(&adaptive_net(planes, (h, w), (oh, ow)), salt, &format!("adaptive {h}×{w} → {oh}×{ow}"));
        check(&linear_net(n, inp, out, bias, salt), salt, &format!("linear n={n} {inp}→{out}"));
    }
}

// ───────────────────────────── networks and accumulation ─────────────────────────────

/// An Inception block: the input feeds a 1×1 conv, a 1×1 → BatchNorm → 3×3 branch and a
/// max pool → 1×1 branch, concatenated by channel slices (written out of order); then
/// adaptive average pooling and a linear head. Two outputs: the logits and the
/// concatenation (which the pool also reads). The input's gradient sums three branches.
fn inception(n: usize, c: usize, (h, w): (usize, usize), salt: u32) -> Net {
    let same = |c_in, c_out, k: usize| conv_spec(c_in, c_out, (k, k), (1, 1), (k / 2, k / 2));
    let (hw, channels) = (h * w, 3 + 5 + 2);
    let mut net = Net::new(n * c * hw);
    let cat = net.value(n * channels * hw);
    let at = |offset| Slice { value: cat, channels, offset };
    let conv = |spec, relu, salt, src, dst| conv_step(spec, salt, n, (h, w), relu, src, dst);
    let (mid, normed, pooled) = (net.value(n * 4 * hw), net.value(n * 4 * hw), net.value(n * c * hw));
    net.push(TrainOp::MaxPool { p: pool_params((3, 3), (1, 1), (1, 1), false), planes: n * c, h, w, src: INPUT, dst: pooled });
    net.push(conv(same(c, 2, 1), true, salt, pooled, at(8)));
    net.push(conv(same(c, 4, 1), false, salt + 2, INPUT, Slice::whole(mid, 4)));
    net.push(batch_norm(n, 4, hw, true, true, (1e-5, 0.1), salt + 4, mid, Slice::whole(normed, 4)));
    net.push(conv(same(4, 5, 3), true, salt + 8, normed, at(3)));
    net.push(conv(same(c, 3, 1), true, salt + 10, INPUT, at(0)));
    let (gap, logits) = (net.value(n * channels), net.value(n * 6));
    net.push(TrainOp::AdaptiveAvgPool { planes: n * channels, h, w, oh: 1, ow: 1, src: cat, dst: gap });
    net.push(TrainOp::Linear { weight: param(6 * channels, salt + 12), bias: Some(param(6, salt + 13)), n, inp: channels, out: 6, src: gap, dst: logits });
    net.output(logits);
    net.output(cat);
    net
}

#[test]
fn an_inception_block_sums_the_gradients_of_its_branches() {
    for (i, &(n, c, hw)) in [(1, 3, (5, 4)), (3, 2, (1, 1)), (2, 4, (6, 6))].iter().enumerate() {
        let net = inception(n, c, hw, 10 * i as u32);
        let (x, seeds) = inputs(&net, 800 + i as u32);
        let what = format!("inception n={n} c={c} {hw:?}");
        let mut graph = net.graph(true);
        let both: Vec<(usize, Vec<f32>)> = seeds.iter().cloned().enumerate().collect();
        compare(&net, &mut graph, &x, &both, true, 4.0, &what);
        // Only the logits seeded: the concatenation's own gradient is zero.
        net.zero_grads();
        compare(&net, &mut graph, &x, &both[..1], true, 4.0, &format!("{what}, logits only"));
        // Only the concatenation seeded: the head's parameters get zero.
        net.zero_grads();
        compare(&net, &mut graph, &x, &both[1..], true, 4.0, &format!("{what}, concatenation only"));
    }
}

/// One weight used by two convolutions (and one bias by two linears) gets both gradients.
#[test]
fn a_parameter_shared_by_two_steps_gets_the_sum_of_their_gradients() {
    let (n, c, h, w) = (2, 3, 5, 4);
    let spec = conv_spec(c, c, (3, 3), (1, 1), (1, 1));
    let (weight, bias) = (param(c * spec.k(), 1), param(4, 2));
    let mut net = Net::new(n * c * h * w);
    let (a, b) = (net.value(n * c * h * w), net.value(n * c * h * w));
    net.push(TrainOp::Conv { spec, weight: weight.clone(), bias: None, n, h, w, relu: true, src: INPUT, dst: Slice::whole(a, c) });
    net.push(TrainOp::Conv { spec, weight, bias: None, n, h, w, relu: false, src: a, dst: Slice::whole(b, c) });
    let (y1, y2) = (net.value(n * c * 4), net.value(n * c * 4));
    let inp = h * w;
    net.push(TrainOp::Linear { weight: param(4 * inp, 3), bias: Some(bias.clone()), n: n * c, inp, out: 4, src: a, dst: y1 });
    net.push(TrainOp::Linear { weight: frozen(4 * inp, 4), bias: Some(bias), n: n * c, inp, out: 4, src: b, dst: y2 });
    net.output(y1);
    net.output(y2);
    check(&net, 900, "shared weights");
}

/// A small network through every parametrised op: conv → BatchNorm (train, ReLU) → max
/// pool → conv (ReLU) → adaptive average pool → linear.
fn layered(n: usize, salt: u32, (h, w): (usize, usize)) -> Net {
    let (c0, c1, c2, out) = (3, 6, 5, 7);
    let conv = |c_in, c_out| conv_spec(c_in, c_out, (3, 3), (1, 1), (1, 1));
    let pool = pool_params((3, 3), (2, 2), (1, 1), true);
    let (ph, pw) = (pool_out(h, 3, 2, 1, true), pool_out(w, 3, 2, 1, true));
    let mut net = Net::new(n * c0 * h * w);
    let (a, b, p, d, g, y) = (net.value(n * c1 * h * w), net.value(n * c1 * h * w), net.value(n * c1 * ph * pw), net.value(n * c2 * ph * pw), net.value(n * c2 * 4), net.value(n * out));
    net.push(conv_step(conv(c0, c1), salt, n, (h, w), false, INPUT, Slice::whole(a, c1)));
    net.push(batch_norm(n, c1, h * w, true, true, (1e-5, 0.1), salt + 10, a, Slice::whole(b, c1)));
    net.push(TrainOp::MaxPool { p: pool, planes: n * c1, h, w, src: b, dst: p });
    net.push(conv_step(conv(c1, c2), salt + 20, n, (ph, pw), true, p, Slice::whole(d, c2)));
    net.push(TrainOp::AdaptiveAvgPool { planes: n * c2, h: ph, w: pw, oh: 2, ow: 2, src: d, dst: g });
    net.push(TrainOp::Linear { weight: param(out * c2 * 4, salt + 30), bias: Some(param(out, salt + 31)), n, inp: c2 * 4, out, src: g, dst: y });
    net.output(y);
    net
}

#[test]
fn a_layered_network_matches_the_reference() {
    // Under the `threads` feature this runs on the test team (two threads).
    #[cfg(feature = "threads")]
    assert_eq!(crate::testutil::team(), 2);
    for (i, &(n, hw)) in [(1, (9, 9)), (3, (5, 7)), (2, (1, 1))].iter().enumerate() {
        let net = layered(n, 10 * i as u32, hw);
        let (x, seeds) = inputs(&net, 1000 + i as u32);
        compare(&net, &mut net.graph(true), &x, &[(0, seeds[0].clone())], true, 4.0, &format!("layered n={n} {hw:?}"));
    }
}

/// Two forward + backward passes: parameter gradients add up (twice the first), the input
/// gradient is written, not accumulated (the same both times). Not bit-exactly twice:
/// conv and linear weights add each image's (row's) part straight into the gradient, so
/// the second backward rounds `(g + part₀) + part₁`, not `g + (part₀ + part₁)` as PyTorch's
/// `grad += new_grad` does (a few ulps).
#[test]
fn parameter_gradients_accumulate_across_backward_calls() {
    let net = layered(2, 1, (6, 5));
    let mut graph = net.graph(true);
    let (x, seeds) = inputs(&net, 1100);
    let mut dx = [vec![0.0; x.len()], vec![0.0; x.len()]];
    let mut after = Vec::new();
    for dx in &mut dx {
        graph.forward(&x, 1).unwrap();
        graph.backward(&[(0, &seeds[0][..])], Some(&mut dx[..])).unwrap();
        after.push(net.grads());
    }
    assert_eq!(dx[0], dx[1], "the input gradient");
    assert!(after[0].iter().flatten().any(|&g| g != 0.0));
    for (i, (once, twice)) in after[0].iter().zip(&after[1]).enumerate() {
        assert_close_scaled(twice, &once.iter().map(|g| 2.0 * g).collect::<Vec<_>>(), 4, 1.0, &format!("parameter {i}"));
    }
}

/// A training loop: forward, backward, then SGD changes the weights; each iteration's
/// forward and backward use the new weights (compared with the reference every time).
#[test]
fn a_training_loop_sees_the_weights_the_optimiser_changed() {
    for (name, net) in [("layered", layered(2, 3, (5, 5))), ("inception", inception(2, 3, (4, 4), 7))] {
        let mut graph = net.graph(true);
        let mut slots: Vec<Slot> = net.params().iter().filter_map(|p| Some(Slot::new(p.data.clone(), p.grad.clone()?))).collect();
        let (x, seeds) = inputs(&net, 1200);
        for step in 0..3 {
            net.zero_grads();
            compare(&net, &mut graph, &x, &[(0, seeds[0].clone())], true, 4.0, &format!("{name}: step {step}"));
            optim::step(&mut slots, Rule::Sgd { momentum: 0.9, dampening: 0.0, nesterov: false, weight_decay: 0.0 }, 0.1).unwrap();
        }
    }
}

/// Frozen parameters (`grad: None`) take no gradient, and the input's gradient and the
/// other parameters' are still right.
#[test]
fn frozen_parameters_leave_the_other_gradients_right() {
    let (n, c, h, w) = (2, 3, 4, 4);
    let spec = conv_spec(c, 5, (3, 3), (1, 1), (1, 1));
    let mut net = Net::new(n * c * h * w);
    let (a, b, y) = (net.value(n * 5 * h * w), net.value(n * 5 * h * w), net.value(n * 3));
    // Conv: weight frozen, bias trained. BatchNorm: γ frozen, β trained. Linear: all frozen.
    net.push(TrainOp::Conv { spec, weight: frozen(5 * spec.k(), 1), bias: Some(param(5, 2)), n, h, w, relu: true, src: INPUT, dst: Slice::whole(a, 5) });
    let mut bn = batch_norm(n, 5, h * w, true, false, (1e-5, 0.1), 3, a, Slice::whole(b, 5));
    params_of_mut(&mut bn)[0].grad = None;
    net.push(bn);
    net.push(TrainOp::Linear { weight: frozen(3 * 5 * h * w, 4), bias: Some(frozen(3, 5)), n, inp: 5 * h * w, out: 3, src: b, dst: y });
    net.output(y);
    check(&net, 1300, "partly frozen");

    // Everything frozen: only the input's gradient is computed.
    let mut net = layered(2, 9, (4, 4));
    net.ops.iter_mut().flat_map(params_of_mut).for_each(|p| p.grad = None);
    check(&net, 1301, "all frozen");
}

/// `build(false)`: no input gradient, the parameters' still right.
#[test]
fn a_graph_without_input_gradient_still_computes_the_parameter_gradients() {
    let net = layered(2, 5, (4, 6));
    let (x, seeds) = inputs(&net, 1400);
    let mut graph = net.graph(false);
    compare(&net, &mut graph, &x, &[(0, seeds[0].clone())], false, 4.0, "build(false)");
    // The input's gradient is not computed: a buffer passed anyway receives zeros.
    graph.forward(&x, 0).unwrap();
    let mut dx = vec![f32::NAN; x.len()];
    graph.backward(&[(0, &seeds[0][..])], Some(&mut dx[..])).unwrap();
    assert!(dx.iter().all(|&v| v == 0.0), "build(false) computed an input gradient");
    // A parameter-free first step whose input needs no gradient: skipped, the rest right.
    let mut net = Net::new(2 * 3 * 16);
    let (r, y) = (net.value(2 * 3 * 16), net.value(2 * 4 * 16));
    net.push(TrainOp::Relu { src: INPUT, dst: r });
    net.push(conv_step(conv_spec(3, 4, (3, 3), (1, 1), (1, 1)), 8, 2, (4, 4), true, r, Slice::whole(y, 4)));
    net.output(y);
    let (x, seeds) = inputs(&net, 1401);
    compare(&net, &mut net.graph(false), &x, &[(0, seeds[0].clone())], false, 1.0, "relu → conv, build(false)");
}

#[test]
fn backward_needs_exactly_one_forward_before_it() {
    let net = layered(1, 6, (4, 4));
    let mut graph = net.graph(true);
    let (x, seeds) = inputs(&net, 1500);
    let seeds = [(0, &seeds[0][..])];
    let mut dx = vec![0.0; x.len()];
    assert_eq!(graph.backward(&seeds, Some(&mut dx[..])), Err(GraphError::NoForward));
    assert!(!graph.ready() && graph.output(0).is_none());
    assert!(net.grads().iter().flatten().all(|&g| g == 0.0), "a failed backward wrote gradients");

    graph.forward(&x, 0).unwrap();
    assert!(graph.ready() && graph.output(0).is_some());
    graph.backward(&seeds, Some(&mut dx[..])).unwrap();
    let (first, grads) = (dx.clone(), net.grads());
    assert!(!graph.ready() && graph.output(0).is_some(), "the output stays readable after backward");
    assert_eq!(graph.backward(&seeds, Some(&mut dx[..])), Err(GraphError::AlreadyBackwarded));
    assert_eq!(net.grads(), grads, "a refused backward changed gradients");

    graph.release();
    assert_eq!(graph.backward(&seeds, Some(&mut dx[..])), Err(GraphError::NoForward));
    assert!(graph.output(0).is_none());
    // After a release, a forward and backward allocate again and give the same results.
    net.zero_grads();
    graph.forward(&x, 0).unwrap();
    dx.fill(f32::NAN);
    graph.backward(&seeds, Some(&mut dx[..])).unwrap();
    assert_eq!((dx, net.grads()), (first, grads));
}

// ───────────────────────────── dropout ─────────────────────────────

/// Dropout with 0 < p < 1: kept elements are scaled by `1/(1 − p)`, about `p` of them are
/// dropped, the backward applies the forward's mask (`dx = dy·y/x`), a seed fixes the mask
/// and two dropout steps of one graph draw different masks.
#[test]
fn dropout_backward_uses_the_forward_mask() {
    let len = 4096;
    let mut net = Net::new(len);
    let (a, b) = (net.value(len), net.value(len));
    net.push(TrainOp::Dropout { p: 0.3, src: INPUT, dst: a });
    net.push(TrainOp::Dropout { p: 0.3, src: INPUT, dst: b });
    net.output(a);
    net.output(b);
    let mut graph = net.graph(true);
    let (x, seeds) = inputs(&net, 1600);
    assert!(x.iter().all(|&v| v != 0.0));
    let run = |graph: &mut Graph, seed: u32| {
        graph.forward(&x, seed).unwrap();
        let y = [graph.output(0).unwrap().to_vec(), graph.output(1).unwrap().to_vec()];
        let mut dx = vec![0.0; len];
        graph.backward(&[(0, &seeds[0][..])], Some(&mut dx[..])).unwrap();
        (y, dx)
    };
    let ([y, other], dx) = run(&mut graph, 1);
    let scale = 1.0 / (1.0 - 0.3f32);
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / len as f64;
    assert!((dropped - 0.3).abs() < 0.04, "dropped {dropped}");
    for i in 0..len {
        assert!(y[i] == 0.0 || y[i] == x[i] * scale, "element {i}: {} from {}", y[i], x[i]);
        let want = seeds[0][i] * (y[i] / x[i]);
        assert!((dx[i] - want).abs() <= 1e-6 * want.abs(), "element {i}: dx {} want {want}", dx[i]);
    }
    assert_ne!(y.iter().map(|&v| v == 0.0).collect::<Vec<_>>(), other.iter().map(|&v| v == 0.0).collect::<Vec<_>>(), "two steps, one mask");
    assert_eq!(run(&mut graph, 1), ([y.clone(), other], dx), "the same seed");
    assert_ne!(run(&mut graph, 2).0[0], y, "another seed");
}

// ───────────────────────────── cross-entropy ─────────────────────────────

/// `−log softmax(z)[t]`, averaged over rows, written directly.
fn cross_entropy_f64(z: &[f64], classes: usize, targets: &[u32]) -> f64 {
    let rows = z.chunks(classes).zip(targets);
    rows.map(|(r, &t)| -(r[t as usize].exp() / r.iter().map(|v| v.exp()).sum::<f64>()).ln()).sum::<f64>() / targets.len() as f64
}

#[test]
fn cross_entropy_matches_its_formula_and_finite_differences() {
    for (n, classes, salt) in [(1, 1, 1), (1, 5, 2), (4, 10, 3), (2, 100, 4)] {
        let z: Vec<f32> = data(n * classes, salt).iter().map(|v| 4.0 * v).collect();
        let targets: Vec<u32> = (0..n).map(|r| ((r * 7 + salt as usize) % classes) as u32).collect();
        let what = format!("n={n} classes={classes}");
        let loss = cross_entropy(&z, n, classes, &targets);
        let want = cross_entropy_f64(&f64s(&z), classes, &targets);
        assert!((loss - want).abs() <= 1e-12 * (1.0 + want.abs()), "{what}: loss {loss}, want {want}");

        // The backward adds `scale·(softmax − onehot)/n` to what the buffer holds.
        let (scale, held) = (0.75, data(n * classes, salt + 1));
        let mut d = held.clone();
        cross_entropy_backward(&z, n, classes, &targets, scale, &mut d);
        let h = 1e-6;
        for i in 0..z.len() {
            let mut zp = f64s(&z);
            zp[i] += h;
            let plus = cross_entropy_f64(&zp, classes, &targets);
            zp[i] -= 2.0 * h;
            let numeric = (plus - cross_entropy_f64(&zp, classes, &targets)) / (2.0 * h);
            let want = held[i] as f64 + scale * numeric;
            assert!((d[i] as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()), "{what}: element {i}: {} want {want}", d[i]);
        }
    }
}

#[test]
fn cross_entropy_is_stable_on_large_logits() {
    let z = [1000.0f32, -1000.0, 999.0, 0.0, 88.0, 89.0];
    let loss = cross_entropy(&z, 2, 3, &[2, 0]);
    // Row 0: log(1 + e^-1) + 1; row 1: log(e^0 + e^88 + e^89) ≈ 89 + log(1 + e^-1).
    let want = ((1.0 + (-1.0f64).exp()).ln() + 1.0 + 89.0 + (1.0 + (-1.0f64).exp()).ln()) / 2.0;
    assert!((loss - want).abs() < 1e-9, "{loss} vs {want}");
    let mut d = [0.0f32; 6];
    cross_entropy_backward(&z, 2, 3, &[2, 0], 1.0, &mut d);
    assert!(d.iter().all(|v| v.is_finite()));
    for row in d.chunks(3) {
        assert!(row.iter().sum::<f32>().abs() < 1e-6, "a row's gradient sums to 0: {row:?}");
    }
    assert!((d[0] - 0.5 / (1.0 + (-1.0f32).exp())).abs() < 1e-6 && (d[3] + 0.5).abs() < 1e-6);
}

// ───────────────────────────── optimisers ─────────────────────────────

/// PyTorch 1.13's `_single_tensor_sgd` for one parameter, in f64.
fn sgd_reference(p: &mut [f64], grad: &[f64], buf: &mut Option<Vec<f64>>, lr: f64, (momentum, dampening, nesterov, weight_decay): (f64, f64, bool, f64)) {
    let mut d_p: Vec<f64> = grad.iter().zip(p.iter()).map(|(g, p)| if weight_decay != 0.0 { g + weight_decay * p } else { *g }).collect();
    if momentum != 0.0 {
        match buf {
            None => *buf = Some(d_p.clone()), // torch.clone(d_p).detach()
            Some(b) => b.iter_mut().zip(&d_p).for_each(|(b, d)| *b = *b * momentum + (1.0 - dampening) * d),
        }
        let b = buf.as_ref().unwrap();
        d_p = if nesterov { d_p.iter().zip(b).map(|(d, b)| d + momentum * b).collect() } else { b.clone() };
    }
    p.iter_mut().zip(&d_p).for_each(|(p, d)| *p += -lr * d);
}

/// The state of `_single_tensor_adam(w)` for one parameter.
#[derive(Clone, Default)]
struct AdamState {
    step: i32,
    exp_avg: Vec<f64>,
    exp_avg_sq: Vec<f64>,
    max_exp_avg_sq: Vec<f64>,
}

/// PyTorch 1.13's `_single_tensor_adam` (`decoupled: false`) and `_single_tensor_adamw`,
/// in f64.
#[allow(clippy::too_many_arguments)]
fn adam_reference(p: &mut [f64], grad: &[f64], s: &mut AdamState, lr: f64, (beta1, beta2): (f64, f64), eps: f64, weight_decay: f64, amsgrad: bool, decoupled: bool) {
    if s.step == 0 {
        s.exp_avg = vec![0.0; p.len()];
        s.exp_avg_sq = vec![0.0; p.len()];
        s.max_exp_avg_sq = vec![0.0; p.len()];
    }
    s.step += 1;
    let bias_correction1 = 1.0 - beta1.powi(s.step);
    let bias_correction2 = 1.0 - beta2.powi(s.step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.sqrt();
    for i in 0..p.len() {
        let mut g = grad[i];
        if decoupled {
            p[i] *= 1.0 - lr * weight_decay;
        } else if weight_decay != 0.0 {
            g += weight_decay * p[i];
        }
        s.exp_avg[i] = s.exp_avg[i] * beta1 + (1.0 - beta1) * g;
        s.exp_avg_sq[i] = s.exp_avg_sq[i] * beta2 + (1.0 - beta2) * g * g;
        let second = if amsgrad {
            s.max_exp_avg_sq[i] = s.max_exp_avg_sq[i].max(s.exp_avg_sq[i]);
            s.max_exp_avg_sq[i]
        } else {
            s.exp_avg_sq[i]
        };
        let denom = second.sqrt() / bias_correction2_sqrt + eps;
        p[i] += -step_size * s.exp_avg[i] / denom;
    }
}

/// `|got − want| ≤ rel·|want| + abs` elementwise.
fn assert_rel(got: &[f32], want: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= rel * w.abs() + abs, "{what}: element {i}: got {g}, want {w}");
    }
}

/// Three parameters (the second has no gradient until step 1), three steps of `rule` with
/// gradients from a fresh stream each step (after step 0 a hundred times smaller, so
/// AMSGrad's maximum matters); after each, `check(step, slots, values before the step)`.
fn optimiser_steps(rule: Rule, lr: f32, mut check: impl FnMut(usize, &[Slot], &[Vec<f64>])) {
    let lens = [7, 1, 12];
    let mut slots: Vec<Slot> = lens.iter().enumerate().map(|(i, &len)| Slot::new(Shared::new(data(len, 40 + i as u32)), Shared::new(Vec::new()))).collect();
    let mut before: Vec<Vec<f64>> = slots.iter().map(|s| f64s(&read(&s.data))).collect();
    for step in 0..3 {
        for (i, s) in slots.iter().enumerate() {
            if i == 1 && step == 0 {
                continue; // no gradient yet: skipped
            }
            let g: Vec<f32> = data(lens[i], 50 + 10 * step as u32 + i as u32).iter().map(|v| if step == 0 { *v } else { v / 100.0 }).collect();
            // SAFETY: between runs; the first backward allocates, later ones overwrite.
            unsafe { s.grad.ensure_len(lens[i]).unwrap() };
            write(&s.grad, &g);
        }
        optim::step(&mut slots, rule, lr).unwrap();
        check(step, &slots, &before);
        before = slots.iter().map(|s| f64s(&read(&s.data))).collect();
    }
}

#[test]
fn sgd_matches_pytorch() {
    let configs = [(0.0, 0.0, false, 0.0), (0.9, 0.0, false, 0.0), (0.9, 0.1, false, 1e-2), (0.9, 0.0, true, 0.0), (0.5, 0.5, true, 1e-1), (0.0, 0.0, false, 1e-2)];
    for (momentum, dampening, nesterov, weight_decay) in configs {
        let rule = Rule::Sgd { momentum, dampening, nesterov, weight_decay };
        let mut bufs: Vec<Option<Vec<f64>>> = vec![None; 3];
        let mut params: Option<Vec<Vec<f64>>> = None;
        optimiser_steps(rule, 0.1, |step, slots, before| {
            let p = params.get_or_insert_with(|| before.to_vec());
            for (i, s) in slots.iter().enumerate() {
                let what = format!("{rule:?} step {step} parameter {i}");
                let g = read(&s.grad);
                if g.is_empty() {
                    assert_eq!((s.step, s.state.len(), read(&s.data)), (0, 0, f32s(&p[i])), "{what}: a parameter without a gradient is skipped");
                    continue;
                }
                if bufs[i].is_none() && momentum != 0.0 {
                    // The first step copies d_p into the buffer (computed in f32, exactly).
                    let d_p: Vec<f32> = g.iter().zip(f32s(&before[i])).map(|(g, p)| if weight_decay != 0.0 { g + weight_decay * p } else { *g }).collect();
                    assert_eq!(s.state[0], d_p, "{what}: the first momentum buffer");
                }
                sgd_reference(&mut p[i], &f64s(&g), &mut bufs[i], 0.1f32 as f64, (momentum as f64, dampening as f64, nesterov, weight_decay as f64));
                assert_eq!(s.step as usize, step + usize::from(i != 1), "{what}: step count");
                assert_rel(&read(&s.data), &p[i], 1e-6, 1e-7, &format!("{what}: parameter"));
                if let Some(b) = &bufs[i] {
                    assert_rel(&s.state[0], b, 1e-6, 1e-7, &format!("{what}: momentum buffer"));
                }
            }
        });
    }
}

#[test]
fn adam_and_adamw_match_pytorch() {
    let configs = [(0.0, false, false), (1e-2, false, false), (0.0, true, false), (1e-1, true, false), (1e-2, false, true), (1e-1, true, true)];
    for (weight_decay, amsgrad, decoupled) in configs {
        let (betas, eps, lr) = ((0.9, 0.999), 1e-8f32, 0.05f32);
        let rule = Rule::Adam { beta1: betas.0, beta2: betas.1, eps, weight_decay, amsgrad, decoupled };
        let mut states = vec![AdamState::default(); 3];
        let mut params: Option<Vec<Vec<f64>>> = None;
        optimiser_steps(rule, lr, |step, slots, before| {
            let p = params.get_or_insert_with(|| before.to_vec());
            for (i, s) in slots.iter().enumerate() {
                let what = format!("{rule:?} step {step} parameter {i}");
                let g = read(&s.grad);
                if g.is_empty() {
                    assert_eq!((s.step, s.state.len(), read(&s.data)), (0, 0, f32s(&p[i])), "{what}: a parameter without a gradient is skipped");
                    continue;
                }
                let st = &mut states[i];
                adam_reference(&mut p[i], &f64s(&g), st, lr as f64, betas, eps as f64, weight_decay as f64, amsgrad, decoupled);
                assert_eq!(s.step as i32, st.step, "{what}: step count");
                // The moments to float32 rounding (exp_avg's of its terms, up to ~0.1: it can
                // cancel; exp_avg_sq's terms are all positive); the parameters to an update's.
                assert_rel(&s.state[0], &st.exp_avg, 1e-6, 3e-8, &format!("{what}: exp_avg"));
                assert_rel(&s.state[1], &st.exp_avg_sq, 1e-6, 1e-12, &format!("{what}: exp_avg_sq"));
                if amsgrad {
                    assert_rel(&s.state[2], &st.max_exp_avg_sq, 1e-6, 1e-12, &format!("{what}: max_exp_avg_sq"));
                }
                assert_rel(&read(&s.data), &p[i], 1e-6, 1e-7, &format!("{what}: parameter"));
            }
        });
    }
}
