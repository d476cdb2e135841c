//! A training graph: the steps of one forward (layers describe themselves to a
//! [`GraphBuilder`], as for inference plans), every value kept for the backward, and the
//! backward derived from the steps in reverse.
//!
//! Memory: each graph owns its arena of activations and one of their gradients (the same
//! layout), so saved activations belong to the graph that made them: another forward of
//! the same graph replaces them, and a backward checks that it runs on the forward it
//! follows. Parameters are shared ([`Param`]): the forward reads their current values
//! (packed for the GEMM at each forward, since an optimiser may have changed them), the
//! backward adds into their gradients.
//!
//! Convolution backward, as two GEMMs over the whole batch (`dZ` is the output gradient
//! after the ReLU mask, `N = n·oh·ow` the batch's output pixels): `cols = Wᵀ · dZ`
//! (`c_in·kh·kw × N`, `dZ` read as `c_out × N` across images; `Wᵀ` packed once per
//! backward), split by pixel strips, then col2im of each image's columns into `dX`; and
//! `dW += dZ · rows(X)`, where `rows(X)` is im2col transposed (`N × c_in·kh·kw`, built once
//! per image), one GEMM with `K = N`, split by output channels. One GEMM per layer, not
//! one per image: small maps (7×7 … 1×1, or 32×32 inputs) give the microkernel whole
//! strips instead of a few pixels, and every task's share is independent of the others.
//! 3×3 stride-1 convolutions run on Winograd as inference picks it, both ways: the forward
//! on the inference layer (image by image, or blocks of several images' tiles on small
//! maps), and the input gradient as the Winograd convolution of `dZ` with the weights
//! flipped (`transposed_spec`, into `cols`, then added to `dX`) instead of `Wᵀ · dZ` and
//! col2im; their weight gradient stays the GEMM above.

use std::sync::{Arc, Mutex};

use super::{grad, Shared};
use crate::alloc::{self, OutOfMemory};
use crate::conv::batch::{BatchColumns, BatchIm2col};
use crate::conv::{self, Conv2d, ConvSpec};
use crate::gemm::{self, Epilogue, MatRef, PackedA, MR};
use crate::plan::{self, RunError, Slice, ValueId};
use crate::pool::{self, Pool2dParams};
use crate::split::{share, split};
use crate::transpose::transpose;
use crate::workspace::Workspace;

/// A parameter as a graph sees it: its values, and its gradient unless it is frozen.
#[derive(Clone, Debug)]
pub struct Param {
    pub data: Arc<Shared>,
    pub grad: Option<Arc<Shared>>,
}

/// One step of a training graph. Sizes are per call, as in `plan::Op`.
#[derive(Clone, Debug)]
pub enum TrainOp {
    Conv { spec: ConvSpec, weight: Param, bias: Option<Param>, n: usize, h: usize, w: usize, relu: bool, src: ValueId, dst: Slice },
    /// BatchNorm2d over `n × c × hw` (`train`: batch statistics, running ones updated;
    /// otherwise the running statistics), then ReLU when `relu`.
    BatchNorm { gamma: Param, beta: Param, running_mean: Arc<Shared>, running_var: Arc<Shared>, train: bool, momentum: f32, eps: f32, relu: bool, n: usize, c: usize, hw: usize, src: ValueId, dst: Slice },
    MaxPool { p: Pool2dParams, planes: usize, h: usize, w: usize, src: ValueId, dst: ValueId },
    AvgPool { p: Pool2dParams, count_include_pad: bool, planes: usize, h: usize, w: usize, src: ValueId, dst: ValueId },
    AdaptiveAvgPool { planes: usize, h: usize, w: usize, oh: usize, ow: usize, src: ValueId, dst: ValueId },
    /// `y = x·Wᵀ + b` over `n` rows.
    Linear { weight: Param, bias: Option<Param>, n: usize, inp: usize, out: usize, src: ValueId, dst: ValueId },
    Relu { src: ValueId, dst: ValueId },
    /// Training-mode dropout: a fresh mask every forward (from the seed it is given).
    Dropout { p: f32, src: ValueId, dst: ValueId },
    CopyChannels { n: usize, c: usize, hw: usize, src: ValueId, dst: Slice },
    ChannelAffine { scale: Vec<f32>, shift: Vec<f32>, n: usize, hw: usize, src: ValueId, dst: ValueId },
}

/// A conv step's operands (see [`TrainOp::conv`]).
struct ConvView<'a> {
    spec: ConvSpec,
    weight: &'a Param,
    bias: Option<&'a Param>,
    n: usize,
    h: usize,
    w: usize,
    relu: bool,
    src: ValueId,
    dst: Slice,
}

impl TrainOp {
    /// A conv's operands; a linear layer's as those of a 1×1 convolution over `n` images
    /// of one pixel, whose forward is the conv's GEMM (`W·Xᵀ` on the microkernel, then the
    /// scatter into `n × out`; dot products took 12 ms per aux head's 2048 → 1024 layer at
    /// batch 64). Its backward stays rows of axpys ([`Part::RowsDw`], [`Part::RowsDx`]).
    fn conv(&self) -> Option<ConvView<'_>> {
        match self {
            TrainOp::Conv { spec, weight, bias, n, h, w, relu, src, dst } => Some(ConvView { spec: *spec, weight, bias: bias.as_ref(), n: *n, h: *h, w: *w, relu: *relu, src: *src, dst: *dst }),
            TrainOp::Linear { weight, bias, n, inp, out, src, dst } => {
                let spec = ConvSpec { c_in: *inp, c_out: *out, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0 };
                Some(ConvView { spec, weight, bias: bias.as_ref(), n: *n, h: 1, w: 1, relu: false, src: *src, dst: Slice { value: *dst, channels: *out, offset: 0 } })
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            TrainOp::Conv { .. } => "conv2d",
            TrainOp::BatchNorm { .. } => "batch_norm",
            TrainOp::MaxPool { .. } => "max_pool2d",
            TrainOp::AvgPool { .. } => "avg_pool2d",
            TrainOp::AdaptiveAvgPool { .. } => "adaptive_avg_pool2d",
            TrainOp::Linear { .. } => "linear",
            TrainOp::Relu { .. } => "relu",
            TrainOp::Dropout { .. } => "dropout",
            TrainOp::CopyChannels { .. } => "copy_channels",
            TrainOp::ChannelAffine { .. } => "channel_affine",
        }
    }

    /// The op with its sizes, e.g. `conv2d 64×192×28×28→64 1×1/1` (for profiles).
    #[cfg(feature = "profile")]
    fn label(&self) -> String {
        let name = self.name();
        match self {
            TrainOp::Conv { spec: s, n, h, w, .. } => format!("{name} {n}×{}×{h}×{w}→{} {}×{}/{}", s.c_in, s.c_out, s.kh, s.kw, s.sh),
            TrainOp::BatchNorm { n, c, hw, .. } => format!("{name} {n}×{c}×{hw}"),
            TrainOp::MaxPool { p, planes, h, w, .. } | TrainOp::AvgPool { p, planes, h, w, .. } => format!("{name} {planes}×{h}×{w} {}×{}/{}", p.kh, p.kw, p.sh),
            TrainOp::AdaptiveAvgPool { planes, h, w, .. } => format!("{name} {planes}×{h}×{w}"),
            TrainOp::Linear { n, inp, out, .. } => format!("{name} {n}×{inp}→{out}"),
            _ => name.to_string(),
        }
    }

    fn src(&self) -> ValueId {
        match self {
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

    /// The value written and, for channel-slice writes, `(images, channels, lo, hi, plane)`.
    fn dst(&self) -> (ValueId, Option<(usize, usize, usize, usize, usize)>) {
        match self {
            TrainOp::Conv { spec, n, h, w, dst, .. } => {
                let (oh, ow) = out_size(spec, *h, *w).unwrap_or((0, 0));
                (dst.value, Some((*n, dst.channels, dst.offset, dst.offset + spec.c_out, oh * ow)))
            }
            TrainOp::BatchNorm { n, c, hw, dst, .. } => (dst.value, Some((*n, dst.channels, dst.offset, dst.offset + c, *hw))),
            TrainOp::CopyChannels { n, c, hw, dst, .. } => (dst.value, Some((*n, dst.channels, dst.offset, dst.offset + c, *hw))),
            TrainOp::MaxPool { dst, .. } | TrainOp::AvgPool { dst, .. } | TrainOp::AdaptiveAvgPool { dst, .. } | TrainOp::Linear { dst, .. } | TrainOp::Relu { dst, .. } | TrainOp::Dropout { dst, .. } | TrainOp::ChannelAffine { dst, .. } => (*dst, None),
        }
    }

    /// Parameters that take a gradient.
    fn trainable(&self) -> bool {
        let t = |p: &Param| p.grad.is_some();
        match self {
            TrainOp::Conv { weight, bias, .. } | TrainOp::Linear { weight, bias, .. } => t(weight) || bias.as_ref().is_some_and(t),
            TrainOp::BatchNorm { gamma, beta, .. } => t(gamma) || t(beta),
            _ => false,
        }
    }

    /// Floats the step reads from `src` and writes to `dst` (whole values), checked
    /// against the geometry in checked arithmetic (wasm's `usize` is 32 bits).
    fn check(&self, len: &dyn Fn(ValueId) -> Option<usize>) -> Result<(), String> {
        let name = self.name();
        let size = |f: &[usize]| f.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or_else(|| format!("{name}: sizes {f:?} overflow the address space"));
        let expect = |v: ValueId, want: usize, what: &str| match len(v) {
            None => Err(format!("{name}: {what} is not a value of this graph")),
            Some(l) if l != want => Err(format!("{name}: {what} holds {l} floats, expected {want}")),
            Some(_) => Ok(()),
        };
        let slice = |s: &Slice, c: usize, plane: usize, n: usize| -> Result<(), String> {
            if !s.offset.checked_add(c).is_some_and(|e| e <= s.channels) {
                return Err(format!("{name}: channels [{}, {}) do not fit in {}", s.offset, s.offset.saturating_add(c), s.channels));
            }
            expect(s.value, size(&[n, s.channels, plane])?, "the output")
        };
        let param = |p: &Param, want: usize, what: &str| {
            let ok = p.data.len() == want && p.grad.as_ref().map_or(true, |g| g.is_empty() || g.len() == want);
            if ok { Ok(()) } else { Err(format!("{name}: {what} has {} values, expected {want}", p.data.len())) }
        };
        match self {
            TrainOp::Conv { spec, weight, bias, n, h, w, src, dst, .. } => {
                let (oh, ow) = out_size(spec, *h, *w).ok_or_else(|| format!("{name}: {h}×{w} input is smaller than the {}×{} kernel", spec.kh, spec.kw))?;
                if spec.sh == 0 || spec.sw == 0 {
                    return Err(format!("{name}: stride must be positive"));
                }
                param(weight, size(&[spec.c_out, spec.k()])?, "the weight")?;
                if let Some(b) = bias {
                    param(b, spec.c_out, "the bias")?;
                }
                expect(*src, size(&[*n, spec.c_in, *h, *w])?, "the input")?;
                slice(dst, spec.c_out, size(&[oh, ow])?, *n)
            }
            TrainOp::BatchNorm { gamma, beta, running_mean, running_var, n, c, hw, src, dst, eps, momentum, .. } => {
                for (p, what) in [(gamma, "the weight"), (beta, "the bias")] {
                    param(p, *c, what)?;
                }
                if running_mean.len() != *c || running_var.len() != *c {
                    return Err(format!("{name}: running statistics must have {c} values"));
                }
                if !(*eps > 0.0) || !(0.0..=1.0).contains(momentum) {
                    return Err(format!("{name}: eps must be > 0 and momentum in [0, 1]"));
                }
                expect(*src, size(&[*n, *c, *hw])?, "the input")?;
                slice(dst, *c, *hw, *n)
            }
            TrainOp::MaxPool { p, planes, h, w, src, dst } | TrainOp::AvgPool { p, planes, h, w, src, dst, .. } => {
                if p.kh == 0 || p.kw == 0 || p.sh == 0 || p.sw == 0 || p.ph > p.kh / 2 || p.pw > p.kw / 2 {
                    return Err(format!("{name}: kernel and stride must be positive and padding at most half the kernel"));
                }
                let (Some(oh), Some(ow)) = (pool::pool_out_size(*h, p.kh, p.sh, p.ph, p.ceil_mode), pool::pool_out_size(*w, p.kw, p.sw, p.pw, p.ceil_mode)) else {
                    return Err(format!("{name}: a {h}×{w} input gives no output"));
                };
                expect(*src, size(&[*planes, *h, *w])?, "the input")?;
                expect(*dst, size(&[*planes, oh, ow])?, "the output")
            }
            TrainOp::AdaptiveAvgPool { planes, h, w, oh, ow, src, dst } => {
                if *h == 0 || *w == 0 || *oh == 0 || *ow == 0 {
                    return Err(format!("{name}: sizes must be positive"));
                }
                expect(*src, size(&[*planes, *h, *w])?, "the input")?;
                expect(*dst, size(&[*planes, *oh, *ow])?, "the output")
            }
            TrainOp::Linear { weight, bias, n, inp, out, src, dst } => {
                param(weight, size(&[*out, *inp])?, "the weight")?;
                if let Some(b) = bias {
                    param(b, *out, "the bias")?;
                }
                expect(*src, size(&[*n, *inp])?, "the input")?;
                expect(*dst, size(&[*n, *out])?, "the output")
            }
            TrainOp::Relu { src, dst } | TrainOp::Dropout { src, dst, .. } => {
                if let TrainOp::Dropout { p, .. } = self {
                    if !(0.0..=1.0).contains(p) {
                        return Err(format!("{name}: p must be in [0, 1]"));
                    }
                }
                let l = len(*src).ok_or_else(|| format!("{name}: the input is not a value of this graph"))?;
                expect(*dst, l, "the output")
            }
            TrainOp::CopyChannels { n, c, hw, src, dst } => {
                expect(*src, size(&[*n, *c, *hw])?, "the input")?;
                slice(dst, *c, *hw, *n)
            }
            TrainOp::ChannelAffine { scale, shift, n, hw, src, dst } => {
                if scale.len() != shift.len() {
                    return Err(format!("{name}: {} scales but {} shifts", scale.len(), shift.len()));
                }
                expect(*src, size(&[*n, scale.len(), *hw])?, "the input")?;
                expect(*dst, size(&[*n, scale.len(), *hw])?, "the output")
            }
        }
    }
}

fn out_size(spec: &ConvSpec, h: usize, w: usize) -> Option<(usize, usize)> {
    Some((conv::conv_out_size(h, spec.kh, spec.sh, spec.ph)?, conv::conv_out_size(w, spec.kw, spec.sw, spec.pw)?))
}

/// Collects the values and steps of a graph; [`GraphBuilder::build`] checks the outputs.
#[derive(Debug)]
pub struct GraphBuilder {
    lens: Vec<usize>,
    /// Per value: written channel ranges (`None`: written whole), and whether it was read.
    written: Vec<Option<Vec<(usize, usize)>>>,
    complete: Vec<bool>,
    read: Vec<bool>,
    steps: Vec<TrainOp>,
    outputs: Vec<ValueId>,
}

impl GraphBuilder {
    /// A graph whose input (value 0) holds `input_len` floats.
    pub fn new(input_len: usize) -> Self {
        Self { lens: vec![input_len], written: vec![None], complete: vec![true], read: vec![false], steps: Vec::new(), outputs: Vec::new() }
    }

    pub fn value(&mut self, len: usize) -> ValueId {
        self.lens.push(len);
        self.written.push(Some(Vec::new()));
        self.complete.push(false);
        self.read.push(false);
        ValueId(self.lens.len() - 1)
    }

    /// Appends a step after checking its sizes and the data flow (what it reads is
    /// completely written; what it writes was not read yet and is written once).
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn push(&mut self, op: TrainOp) -> Result<(), String> {
        op.check(&|v| self.lens.get(v.0).copied())?;
        let name = op.name();
        let src = op.src();
        if !self.complete[src.0] {
            return Err(format!("{name}: reads value {} before it is completely written", src.0));
        }
        let (dst, slice) = op.dst();
        if dst == src || dst.0 == 0 {
            return Err(format!("{name}: cannot write over its own input"));
        }
        if self.read[dst.0] {
            return Err(format!("{name}: writes value {} after it was read", dst.0));
        }
        let Some(ranges) = &mut self.written[dst.0] else { return Err(format!("{name}: value {} is already written", dst.0)) };
        match slice {
            None if ranges.is_empty() => {
                self.written[dst.0] = None;
                self.complete[dst.0] = true;
            }
            Some((_, channels, lo, hi, _)) if ranges.iter().all(|&(a, b)| hi <= a || b <= lo) => {
                ranges.push((lo, hi));
                self.complete[dst.0] = ranges.iter().map(|(a, b)| b - a).sum::<usize>() == channels;
            }
            _ => return Err(format!("{name}: value {} is already written there", dst.0)),
        }
        self.read[src.0] = true;
        self.steps.push(op);
        Ok(())
    }

    /// Marks `v` as an output (read after a forward with [`Graph::output`], seeded with a
    /// gradient before a backward); returns its index.
    pub fn output(&mut self, v: ValueId) -> Result<usize, String> {
        if !self.complete.get(v.0).copied().unwrap_or(false) {
            return Err(format!("graph output: value {} is not completely written", v.0));
        }
        self.outputs.push(v);
        Ok(self.outputs.len() - 1)
    }

    /// The graph; `input_grad`: the backward computes the input's gradient too.
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn build(self, input_grad: bool) -> Result<Graph, String> {
        if self.outputs.is_empty() {
            return Err("graph: no output".into());
        }
        let mut offsets = Vec::with_capacity(self.lens.len());
        let mut total = 0usize;
        for &l in &self.lens {
            offsets.push(total);
            total = total.checked_add(l).ok_or("graph: activations overflow the address space")?;
        }
        let mut needs = vec![false; self.lens.len()];
        needs[0] = input_grad;
        for op in &self.steps {
            let (dst, _) = op.dst();
            needs[dst.0] |= needs[op.src().0] || op.trainable();
        }
        let scratch = self.steps.iter().map(scratch_floats).fold(Scratch::default(), Scratch::max);
        // The shared scratch of the conv backward: the largest layer's (each runs alone).
        let conv_max = |f: &dyn Fn(&ConvSpec, usize, usize) -> usize| {
            self.steps.iter().filter_map(TrainOp::conv).map(|c| out_size(&c.spec, c.h, c.w).map_or(0, |(oh, ow)| f(&c.spec, c.n, oh * ow))).max().unwrap_or(0)
        };
        let dz = conv_max(&|s, n, ohw| n * s.c_out * ohw);
        // `rows`/`cols` hold a conv's `N × k` (backward) or its `c_out × N` output (forward).
        // … or a Winograd input gradient's `n × c_in × h × w`.
        let inputs = self.steps.iter().filter_map(TrainOp::conv).map(|c| c.n * c.spec.c_in * c.h * c.w).max().unwrap_or(0);
        let columns = conv_max(&|s, n, ohw| n * ohw * s.k().max(s.c_out)).max(inputs);
        let steps = self.steps.len();
        Ok(Graph {
            lens: self.lens,
            offsets,
            total,
            outputs: self.outputs,
            needs,
            scratch,
            dz_len: dz,
            columns_len: columns,
            run: Run::default(),
            convs: (0..steps).map(|_| None).collect(),
            transposed: (0..steps).map(|_| None).collect(),
            dx_layers: (0..steps).map(|_| None).collect(),
            stats: self.steps.iter().map(|op| Shared::new(if let TrainOp::BatchNorm { c, .. } = op { vec![0.0; 2 * c] } else { Vec::new() })).collect(),
            steps: self.steps,
            state: State::Empty,
            key: 0,
        })
    }
}

/// Pixels per block of a conv's weight-gradient GEMM (its `K`): A's block for a task's
/// rows (≤ 192 × 512 floats) stays in L2 while the strips of rows(X) pass over it.
const DW_PIXELS: usize = 512;

/// A BatchNorm element's work for [`split`], in plain elements: it is read in three passes
/// (forward: sum, squared deviation, affine; backward: two of mask and sums, mask and
/// `dX`), in f64 for the sums. Counted as one, a 64×128×2×2 layer was one task: one
/// thread.
const BN_WORK: usize = 4;

/// Per-thread scratch (floats) a backward needs: `train` holds a conv's dW block or a
/// BatchNorm plane's masked gradient; `packed` a block of dZ rows packed as the GEMM's
/// `A`; `strip` the GEMM's packed strip.
/// Allocated before a backward runs, so no task allocates.
#[derive(Clone, Copy, Debug, Default)]
struct Scratch {
    train: usize,
    packed: usize,
    strip: usize,
}

impl Scratch {
    fn max(self, o: Scratch) -> Scratch {
        Scratch { train: self.train.max(o.train), packed: self.packed.max(o.packed), strip: self.strip.max(o.strip) }
    }
}

fn scratch_floats(op: &TrainOp) -> Scratch {
    if let Some(ConvView { spec, n, h, w, .. }) = op.conv() {
        let Some((oh, ow)) = out_size(&spec, h, w) else { return Scratch::default() };
        let (big_n, k, co) = (n * oh * ow, spec.k(), spec.c_out);
        if dense(&spec, n, h, w) {
            // dW' (`c_out·ohw × c_in·hw`) and dZ' packed as A (K = n); the strips of the
            // three GEMMs (K = c_in·hw, c_out·ohw, n).
            let (rows, ins) = (co * oh * ow, spec.c_in * h * w);
            return Scratch { train: rows * ins, packed: PackedA::packed_len(rows, n), strip: ins.max(rows).max(n) * gemm::NR };
        }
        // dW's block (`c_out × k` at most), dZ's rows packed as A (K = N), the strips.
        return Scratch { train: (co * k).max(k * ow), packed: PackedA::packed_len(co, big_n.min(DW_PIXELS)), strip: big_n.min(DW_PIXELS).max(co).max(k) * gemm::NR };
    }
    match op {
        TrainOp::BatchNorm { hw, .. } => Scratch { train: *hw, ..Scratch::default() },
        _ => Scratch::default(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Empty,
    Forwarded,
    Backwarded,
}

/// Why a graph call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphError {
    Run(RunError),
    /// `backward` without a forward to follow, or a second backward of the same forward.
    NoForward,
    AlreadyBackwarded,
}

impl From<OutOfMemory> for GraphError {
    fn from(e: OutOfMemory) -> Self {
        GraphError::Run(RunError::OutOfMemory(e))
    }
}

/// What runs allocate (kept between runs, freed by [`Graph::release`]).
#[derive(Debug, Default)]
struct Run {
    arena: Vec<f32>,
    grads: Vec<f32>,
    /// A conv's output gradient after the ReLU mask (`n × c_out × oh·ow`).
    dz: Vec<f32>,
    /// A conv's `rows(X)` (`N × c_in·kh·kw`), for its weight gradient.
    rows: Vec<f32>,
    /// A conv's `Wᵀ · dZ` (`c_in·kh·kw × N`), for its input gradient.
    cols: Vec<f32>,
    workspaces: Vec<Mutex<Workspace>>,
    /// Floats of workspace growth already proven available (see [`Graph::forward`]).
    headroom: usize,
}

/// A recorded network for one input shape. Run `forward`, then (once) `backward`.
#[derive(Debug)]
pub struct Graph {
    lens: Vec<usize>,
    offsets: Vec<usize>,
    total: usize,
    steps: Vec<TrainOp>,
    outputs: Vec<ValueId>,
    /// Per value: its gradient is needed (it depends on the input or a trainable parameter).
    needs: Vec<bool>,
    scratch: Scratch,
    dz_len: usize,
    /// Floats of `rows` and of `cols` (each): the largest conv's `N · c_in·kh·kw`.
    columns_len: usize,
    run: Run,
    /// Per conv step: the weights packed by the last forward.
    convs: Vec<Option<Packing>>,
    /// Per conv step whose input needs a gradient: `Wᵀ`, packed by each backward.
    transposed: Vec<Option<PackedA>>,
    /// For convs whose input gradient runs as a Winograd convolution ([`winograd_dx`]):
    /// that convolution, made at every backward from the weights flipped.
    dx_layers: Vec<Option<Conv2d>>,
    /// Per BatchNorm step: the mean and 1/σ of the last forward (`2c` floats; its tasks
    /// write the channels they own).
    stats: Vec<Arc<Shared>>,
    state: State,
    /// The dropout key of the last forward.
    key: u32,
}

/// A conv step's weights as the last forward packed them.
#[derive(Debug)]
enum Packing {
    /// For one GEMM over the whole batch's pixels, scattered into NCHW after it: maps of
    /// at most [`conv::BATCH_PIXELS`] pixels on the GEMM path (as inference batches them).
    Batch(PackedA),
    /// The inference layer on its GEMM path, run image by image: im2col from padded bands,
    /// 1×1 layers reading their input in place, written straight into NCHW (a batch-wide
    /// GEMM with a gathered im2col ran 224×224 GoogLeNet's 3×3 layers' forward in 322
    /// instead of 238 ms, batch 8, 2 threads).
    ///
    /// Not Winograd, measured: F(2×2) forward and F(4×4) input gradients took that step's
    /// forward + backward from 1.70 to 1.45 s, but on torchvision's GoogLeNet (frozen BatchNorm,
    /// Adam), whose float32 gradients sit on ReLU kinks, the PyTorch fixture runner's
    /// measured float32 spread then no longer covered one weight of the generator's hidden
    /// set (our value is the same bits either way; commit b0d8666 has the code).
    Layer(Conv2d),
    /// A batched conv on maps where every output sees the whole input (`conv::dense`), as
    /// the fully connected layer it is there: `W'` (`c_out·oh·ow × c_in·h·w`) and the
    /// bias per row of it. One GEMM over the batch's `n` images, in `cols` as `c_out·oh·ow`
    /// rows of `n`; its backward is two more (`W'ᵀ·dZ'`, `dZ'·Xᵀ` folded into `dW`), none
    /// multiplying the padding taps (5/9 of a 3×3 on 2×2 maps, 8/9 on 1×1).
    Dense { a: PackedA, bias: Option<Vec<f32>> },
}

/// A conv's weights to pack before a run: its buffers (taken from the last run or
/// allocated), then what was packed into them.
struct PackJob {
    step: usize,
    /// The backward's flipped weights for a Winograd input gradient ([`pack_flipped`]).
    flipped: bool,
    buf: Vec<f32>,
    /// A dense conv's bias per row of `W'`.
    bias: Option<Vec<f32>>,
    packed: Option<PackedA>,
}

/// Whether a conv runs as one GEMM over the batch ([`Packing::Batch`] or [`Packing::Dense`]).
fn batched(spec: &ConvSpec, n: usize, h: usize, w: usize) -> bool {
    let (oh, ow) = out_size(spec, h, w).expect("checked");
    n > 1 && oh * ow <= conv::BATCH_PIXELS && conv::Algorithm::select(spec, oh, ow) == conv::Algorithm::Gemm
}

/// Whether a batched conv runs dense ([`Packing::Dense`]).
fn dense(spec: &ConvSpec, n: usize, h: usize, w: usize) -> bool {
    batched(spec, n, h, w) && conv::dense::slot(spec, h, w).is_some()
}

/// The convolution that gives a stride-1 conv's input gradient: `dX` is `dZ` convolved
/// with the weights flipped, input and output channels swapped, padded `k − 1 − pad`.
fn transposed_spec(spec: &ConvSpec) -> ConvSpec {
    ConvSpec { c_in: spec.c_out, c_out: spec.c_in, ph: spec.kh - 1 - spec.ph, pw: spec.kw - 1 - spec.pw, ..*spec }
}

/// Whether a conv's input gradient runs as the Winograd convolution inference would pick
/// for [`transposed_spec`] on its `h × w` output (3×3 stride 1 layers on maps the GEMM
/// does not win; dense ones run `W'ᵀ·dZ'`): 2.25 to 4 times fewer multiplies than
/// `Wᵀ·dZ` and col2im.
fn winograd_dx(spec: &ConvSpec, n: usize, h: usize, w: usize) -> bool {
    (spec.kh, spec.kw, spec.sh, spec.sw) == (3, 3, 1, 1) && spec.ph < 3 && spec.pw < 3 && !dense(spec, n, h, w) && conv::Algorithm::select(&transposed_spec(spec), h, w) != conv::Algorithm::Gemm
}

/// The flipped weights of [`transposed_spec`] packed as the GEMM's `A` (`c_in` rows of
/// `c_out·kh·kw`): element `(i, o, y, x)` is `W[o][i][kh−1−y][kw−1−x]`.
fn pack_flipped(spec: &ConvSpec, weights: &[f32], mut buf: Vec<f32>) -> PackedA {
    let (taps, k) = (spec.kh * spec.kw, spec.c_out * spec.kh * spec.kw);
    buf.resize(PackedA::packed_len(spec.c_in, k), 0.0);
    for (panel, dst) in buf.chunks_exact_mut(k * MR).enumerate() {
        for (kk, run) in dst.chunks_exact_mut(MR).enumerate() {
            let (o, t) = (kk / taps, kk % taps);
            for (r, v) in run.iter_mut().enumerate() {
                let i = panel * MR + r;
                *v = if i < spec.c_in { weights[(o * spec.c_in + i) * taps + taps - 1 - t] } else { 0.0 };
            }
        }
    }
    PackedA::from_packed(spec.c_in, k, buf)
}

/// One backward task list entry: a step's part.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// Not a step's: a share of the gradient arena zeroed, and the seeds in it added.
    Zero,
    Whole,
    /// `dZ` of one image.
    ConvDz,
    /// `rows(X)` of one image.
    ConvRows,
    /// `cols = Wᵀ · dZ` for a run of pixel strips.
    ConvCols,
    /// col2im of one image's columns into `dX`.
    ConvDx,
    /// `dW` (and the bias gradient) for a range of output channels.
    ConvDw,
    /// A one-pixel conv's (a linear layer's) `dW` and bias gradient for a range of output
    /// channels, from the rows of `dZ` (`n × c_out`) and of `X` (`n × c_in`).
    RowsDw,
    /// A one-pixel conv's `dX` for a range of images.
    RowsDx,
}

/// Raw views of a run's memory for the tasks (each writes disjoint elements).
struct Mem {
    arena: *mut f32,
    grads: *mut f32,
    dz: *mut f32,
    rows: *mut f32,
    cols: *mut f32,
    offsets: *const usize,
}

unsafe impl Sync for Mem {}
unsafe impl Send for Mem {}

impl Mem {
    #[allow(clippy::mut_from_ref)]
    unsafe fn val(&self, v: ValueId, at: usize, len: usize) -> &mut [f32] {
        core::slice::from_raw_parts_mut(self.arena.add(*self.offsets.add(v.0) + at), len)
    }

    #[allow(clippy::mut_from_ref)]
    unsafe fn grad(&self, v: ValueId, at: usize, len: usize) -> &mut [f32] {
        core::slice::from_raw_parts_mut(self.grads.add(*self.offsets.add(v.0) + at), len)
    }
}

impl Graph {
    pub fn input_len(&self) -> usize {
        self.lens[0]
    }

    pub fn outputs(&self) -> usize {
        self.outputs.len()
    }

    pub fn output_len(&self, k: usize) -> Option<usize> {
        self.outputs.get(k).map(|v| self.lens[v.0])
    }

    /// Bytes the graph holds between runs (activations, gradients, scratch, packed weights).
    pub fn bytes(&self) -> usize {
        let r = &self.run;
        let floats = r.arena.capacity() + r.grads.capacity() + r.dz.capacity() + r.rows.capacity() + r.cols.capacity();
        let ws: usize = r.workspaces.iter().map(|w| w.lock().map_or(0, |w| w.bytes())).sum();
        floats * 4 + ws
    }

    /// Floats of activations a forward keeps (each has a gradient of the same size in backward).
    pub fn activation_floats(&self) -> usize {
        self.total
    }

    /// Frees what runs allocated; the saved activations go with it (a pending backward fails).
    pub fn release(&mut self) {
        self.run = Run::default();
        self.convs.iter_mut().for_each(|c| *c = None);
        self.transposed.iter_mut().for_each(|c| *c = None);
        self.dx_layers.iter_mut().for_each(|c| *c = None);
        self.state = State::Empty;
    }

    /// True when the last forward can still be differentiated.
    pub fn ready(&self) -> bool {
        self.state == State::Forwarded
    }

    /// Makes the Winograd layers' transformed weights before a run (which never allocates),
    /// the forward's or (`dx`) the backward's input-gradient ones: one stage, a task per
    /// layer (serially ~5 ms of a 32×32 step each way).
    fn prepare_layers(&self, dx: bool, threads: usize) -> Result<(), GraphError> {
        let layers: Vec<(usize, &Conv2d)> = if dx {
            self.dx_layers.iter().enumerate().filter_map(|(i, l)| Some((i, l.as_ref()?))).collect()
        } else {
            self.convs.iter().enumerate().filter_map(|(i, p)| if let Some(Packing::Layer(l)) = p { Some((i, l)) } else { None }).collect()
        };
        let failed: Mutex<Option<OutOfMemory>> = Mutex::new(None);
        self.each_task(layers.len(), threads, &|t| {
            let (i, layer) = layers[t];
            let ConvView { spec, n, h, w, .. } = self.steps[i].conv().expect("a conv");
            // The backward's layer reads dZ (`oh × ow`).
            let (h, w) = if dx { out_size(&spec, h, w).expect("checked") } else { (h, w) };
            let made = if layer.batches(n, h, w) { layer.prepare_batch(h, w) } else { layer.prepare(h, w) };
            if let Err(e) = made {
                *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            }
        })?;
        match failed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// What the layers' workspaces may grow by during a run (`floats` per thread), proven
    /// available once (as a plan reserves it): workspaces only grow, so later runs need
    /// no new proof.
    fn prove_headroom(&mut self, floats: usize, threads: usize) -> Result<(), OutOfMemory> {
        let headroom = floats.saturating_mul(threads);
        if headroom > self.run.headroom {
            drop(alloc::with_capacity::<f32>(headroom)?);
            self.run.headroom = headroom;
        }
        Ok(())
    }

    /// Whether step `i`'s conv runs over the whole batch at once, into `cols` (then a
    /// scatter stage): a batched GEMM, a dense layer, or Winograd blocks over the images.
    fn batched_packing(&self, i: usize, slot: &Option<Packing>) -> bool {
        match slot {
            Some(Packing::Batch(_) | Packing::Dense { .. }) => true,
            Some(Packing::Layer(layer)) => self.steps[i].conv().is_some_and(|v| layer.batches(v.n, v.h, v.w)),
            None => false,
        }
    }

    /// Packs every job's conv weights into its buffer, spread over the thread team (one
    /// stage, a task per job): `W` for the forward's GEMM (a dense conv's `W'` and its
    /// bias per row), or `Wᵀ` (`W'ᵀ`) for the backward's when `transposed`.
    fn pack(&self, jobs: &mut [PackJob], threads: usize, transposed: bool) -> Result<(), GraphError> {
        struct Jobs(*mut PackJob);
        // SAFETY: each task takes a different job.
        unsafe impl Sync for Jobs {}
        let at = Jobs(jobs.as_mut_ptr());
        let at = &at;
        self.each_task(jobs.len(), threads, &|i| {
            // SAFETY: job `i` is this task's alone.
            let job = unsafe { &mut *at.0.add(i) };
            let ConvView { spec, weight, bias, n, h, w, .. } = self.steps[job.step].conv().expect("a conv");
            // SAFETY: no run is in progress; parameters are only written between runs.
            let (weights, bias) = unsafe { (weight.data.get(), bias.map(|b| b.data.get())) };
            let buf = std::mem::take(&mut job.buf);
            if job.flipped {
                job.packed = Some(pack_flipped(&spec, weights, buf));
                return;
            }
            job.packed = Some(match (dense(&spec, n, h, w), transposed) {
                (true, _) => {
                    if !transposed {
                        let ohw = out_size(&spec, h, w).map(|(oh, ow)| oh * ow).expect("checked");
                        job.bias = job.bias.take().map(|buf| conv::dense::expand_bias(bias.expect("a bias"), ohw, buf));
                    }
                    conv::dense::pack(&spec, h, w, weights, transposed, buf)
                }
                (false, false) => PackedA::pack_reusing(weights, spec.c_out, spec.k(), buf),
                (false, true) => PackedA::pack_transposed(weights, spec.c_out, spec.k(), buf),
            });
        })
    }

    /// Runs `task(i)` for `i` in `0..count` over the thread team: one stage, a task each.
    /// Takes `dyn`: one copy of the runner for every caller (the module's size).
    fn each_task(&self, count: usize, threads: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), GraphError> {
        plan::exec_run(&[(0..count).collect()], &vec![1; count], &self.run.workspaces[..threads], |i, _, _| task(i))
            .map(drop)
            .map_err(|e| GraphError::Run(RunError::WorkerFailed(e)))
    }

    fn workspaces(&mut self, threads: usize) -> Result<(), OutOfMemory> {
        while self.run.workspaces.len() < threads {
            self.run.workspaces.push(Mutex::default());
        }
        Ok(())
    }

    /// Runs the forward on `input`, keeping every activation. `seed` draws the dropout masks.
    /// Memory is allocated first (fallibly); a failure leaves no forward to differentiate.
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn forward(&mut self, input: &[f32], seed: u32) -> Result<(), GraphError> {
        assert_eq!(input.len(), self.lens[0], "graph: input length");
        #[cfg(feature = "profile")]
        let start = plan::profile::now();
        self.state = State::Empty;
        let threads = plan::threads();
        alloc::grow_to(&mut self.run.arena, self.total, 0.0)?;
        self.workspaces(threads)?;
        alloc::grow_to(&mut self.run.cols, self.columns_len, 0.0)?;
        // Every conv's weights are packed again (an optimiser may have changed them), into
        // the last forward's buffers (the same sizes): taken or allocated first, fallibly,
        // then filled in parallel (memory-bound; serially ~14 ms of a 32×32 step).
        let mut jobs: Vec<PackJob> = Vec::new();
        for (i, (op, slot)) in self.steps.iter().zip(&mut self.convs).enumerate() {
            let Some(ConvView { spec, bias, n, h, w, .. }) = op.conv() else { continue };
            let (m, k, bias_len) = if dense(&spec, n, h, w) {
                let ohw = out_size(&spec, h, w).map(|(oh, ow)| oh * ow).expect("checked");
                (spec.c_out * ohw, spec.c_in * h * w, bias.map(|_| spec.c_out * ohw))
            } else {
                (spec.c_out, spec.k(), None)
            };
            let (buf, bias_buf) = match slot.take() {
                Some(Packing::Dense { a, bias }) => (a.into_data(), bias),
                Some(Packing::Batch(a)) => (a.into_data(), None),
                Some(Packing::Layer(layer)) => (layer.into_gemm_packing().into_data(), None),
                None => (alloc::filled(PackedA::packed_len(m, k), 0.0)?, None),
            };
            let bias_buf = match (bias_len, bias_buf) {
                (Some(_), Some(b)) => Some(b),
                (Some(len), None) => Some(alloc::filled(len, 0.0)?),
                (None, _) => None,
            };
            jobs.push(PackJob { step: i, flipped: false, buf, bias: bias_buf, packed: None });
        }
        self.pack(&mut jobs, threads, false)?;
        let mut headroom = 0;
        for job in jobs {
            let ConvView { spec, bias, n, h, w, .. } = self.steps[job.step].conv().expect("a conv");
            let a = job.packed.expect("packed");
            self.convs[job.step] = Some(if dense(&spec, n, h, w) {
                Packing::Dense { a, bias: job.bias }
            } else if batched(&spec, n, h, w) {
                Packing::Batch(a)
            } else {
                // SAFETY: between runs.
                let layer = Conv2d::from_gemm_packing(spec, a, bias.map(|b| unsafe { b.data.get() }))?;
                let images = if layer.batches(n, h, w) { n } else { 1 };
                headroom = headroom.max(plan::conv_scratch_floats(&layer, h, w, images));
                Packing::Layer(layer)
            });
        }
        self.prove_headroom(headroom, threads)?;
        self.prepare_layers(false, threads)?;
        for ws in &self.run.workspaces[..threads] {
            let mut ws = ws.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            alloc::grow_to(&mut ws.strip, self.scratch.strip, 0.0)?;
        }
        self.run.arena[..input.len()].copy_from_slice(input);
        self.key = crate::weyl::fmix32(seed ^ 0x5851_F42D);
        // A batched conv is two stages: its GEMM (or Winograd blocks) over the batch's
        // pixels, then the scatter into NCHW.
        let mut list: Vec<(usize, bool)> = Vec::new();
        for (i, slot) in self.convs.iter().enumerate() {
            list.push((i, false));
            if self.batched_packing(i, slot) {
                list.push((i, true));
            }
        }
        let tasks: Vec<usize> = list.iter().map(|&(i, scatter)| self.forward_tasks(i, scatter, threads)).collect();
        let stages: Vec<Vec<usize>> = (0..list.len()).map(|s| vec![s]).collect();
        let none = core::ptr::null_mut();
        let mem = Mem { arena: self.run.arena.as_mut_ptr(), grads: none, dz: none, rows: none, cols: self.run.cols.as_mut_ptr(), offsets: self.offsets.as_ptr() };
        let this = &*self;
        #[cfg(feature = "profile")]
        let prologue = plan::profile::now() - start;
        let _probes = plan::exec_run(&stages, &tasks, &this.run.workspaces[..threads], |s, task, ws| {
            let (step, scatter) = list[s];
            unsafe { this.forward_task(step, scatter, task, tasks[s], &mem, ws) }
        })
        .map_err(|e| GraphError::Run(RunError::WorkerFailed(e)))?;
        #[cfg(feature = "profile")]
        {
            let labels: Vec<String> = list.iter().map(|&(i, scatter)| format!("{} {}", self.steps[i].label(), if scatter { "scatter" } else { "forward" })).collect();
            plan::profile::record_graph("forward", prologue, &_probes, &labels);
        }
        self.state = State::Forwarded;
        Ok(())
    }

    /// Output `k` of the last forward.
    pub fn output(&self, k: usize) -> Option<&[f32]> {
        let v = *self.outputs.get(k)?;
        (self.state != State::Empty).then(|| &self.run.arena[self.offsets[v.0]..self.offsets[v.0] + self.lens[v.0]])
    }

    fn forward_tasks(&self, i: usize, scatter: bool, threads: usize) -> usize {
        if let Some(ConvView { spec, n, h, w, .. }) = self.steps[i].conv() {
            let (oh, ow) = out_size(&spec, h, w).expect("checked");
            return match &self.convs[i] {
                _ if scatter => n,
                Some(Packing::Layer(layer)) if layer.batches(n, h, w) => layer.batch_parts(n, h, w, threads),
                Some(Packing::Layer(layer)) => n * layer.parts(h, w, threads.div_ceil(n)),
                Some(Packing::Dense { a, .. }) => split(n.div_ceil(gemm::NR), a.m() * a.k() * gemm::NR, threads).max(1),
                _ => split((n * oh * ow).div_ceil(gemm::NR), spec.k() * spec.c_out * gemm::NR, threads).max(1),
            };
        }
        match &self.steps[i] {
            TrainOp::BatchNorm { n, c, hw, .. } => split(*c, n * hw * BN_WORK, threads),
            TrainOp::MaxPool { planes, h, w, .. } | TrainOp::AvgPool { planes, h, w, .. } | TrainOp::AdaptiveAvgPool { planes, h, w, .. } => split(*planes, h * w, threads),
            _ => 1,
        }
    }

    /// # Safety
    /// Tasks of one step write disjoint elements; steps run one after another.
    unsafe fn forward_task(&self, step: usize, scatter: bool, task: usize, tasks: usize, mem: &Mem, ws: &mut Workspace) {
        if let Some(ConvView { spec, bias, n, h, w, relu, src, dst, .. }) = self.steps[step].conv() {
            let (oh, ow) = out_size(&spec, h, w).expect("checked");
            let (ohw, co) = (oh * ow, spec.c_out);
            let a = match self.convs[step].as_ref().expect("packed by forward") {
                Packing::Batch(a) => Some(a),
                Packing::Dense { a, bias } => {
                    // `W'·X` over the images (`n` columns) into `cols` as `c_out·ohw` rows
                    // of `n`, then each image's column scattered to its planes of `dst`.
                    if scatter {
                        let cols = core::slice::from_raw_parts(mem.cols, co * ohw * n);
                        let out = mem.val(dst.value, (task * dst.channels + dst.offset) * ohw, co * ohw);
                        for (i, v) in out.iter_mut().enumerate() {
                            *v = cols[i * n + task];
                        }
                        return;
                    }
                    let strips = share(n.div_ceil(gemm::NR), task, tasks);
                    let images = strips.start * gemm::NR..(strips.end * gemm::NR).min(n);
                    let b = BatchColumns { data: &mem.val(src, 0, n * spec.c_in * h * w)[..], rows: spec.c_in * h * w, ohw: 1, n };
                    let ep = Epilogue { bias: bias.as_deref(), relu };
                    gemm::gemm_block_with(a, 0..a.panels(), &b as &dyn gemm::PackB, images.clone(), mem.cols.add(images.start), n, ep, &mut ws.strip);
                    return;
                }
                // Winograd blocks over the batch's tiles, into `cols` as the batched GEMM's output.
                Packing::Layer(layer) if layer.batches(n, h, w) && !scatter => {
                    layer.forward_batch_part(&mem.val(src, 0, n * spec.c_in * h * w)[..], n, h, w, relu, mem.cols, task, tasks, ws);
                    return;
                }
                Packing::Layer(layer) if !scatter => {
                    let (img, parts) = (spec.c_in * h * w, tasks / n);
                    let (b, part) = (task / parts, task % parts);
                    // The parts of one image write disjoint elements of its planes: a pointer, not a slice each.
                    let out = mem.arena.add(*mem.offsets.add(dst.value.0) + (b * dst.channels + dst.offset) * ohw);
                    layer.forward_part(&mem.val(src, b * img, img)[..], h, w, relu, out, part, parts, ws);
                    return;
                }
                Packing::Layer(_) => None,
            };
            // One GEMM over the whole batch, `c_out × N` (N = n·oh·ow) into `cols`, then
            // each image's planes scattered to its channel slice of `dst`.
            let big_n = n * ohw;
            if scatter {
                let cols = core::slice::from_raw_parts(mem.cols, co * big_n);
                let out = mem.val(dst.value, (task * dst.channels + dst.offset) * ohw, co * ohw);
                for (o, plane) in out.chunks_exact_mut(ohw).enumerate() {
                    plane.copy_from_slice(&cols[o * big_n + task * ohw..][..ohw]);
                }
                return;
            }
            let a = a.expect("a batched GEMM");
            let strips = share(big_n.div_ceil(gemm::NR), task, tasks);
            let pixels = strips.start * gemm::NR..(strips.end * gemm::NR).min(big_n);
            let x = &mem.val(src, 0, n * spec.c_in * h * w)[..];
            let ep = Epilogue { bias: bias.map(|b| b.data.get()), relu };
            let c = mem.cols.add(pixels.start);
            // Through `dyn PackB`: one copy of the GEMM (and its microkernels) for every
            // operand training packs, not one per type (the module's size).
            let (columns, im2col);
            let b: &dyn gemm::PackB = if spec.is_pointwise() {
                columns = BatchColumns { data: x, rows: spec.c_in, ohw, n };
                &columns
            } else {
                im2col = BatchIm2col { x, p: spec.with_input(h, w), n };
                &im2col
            };
            gemm::gemm_block_with(a, 0..a.panels(), b, pixels, c, big_n, ep, &mut ws.strip);
            return;
        }
        match &self.steps[step] {
            TrainOp::Conv { .. } | TrainOp::Linear { .. } => unreachable!("convs run above"),
            TrainOp::BatchNorm { gamma, beta, running_mean, running_var, train, momentum, eps, relu, n, c, hw, src, dst } => {
                let x = &mem.val(*src, 0, n * c * hw)[..];
                let plane = |b: usize, ch: usize| &x[(b * c + ch) * hw..][..*hw];
                let stats = self.stats[step].get_mut();
                let count = (n * hw) as f64;
                let chs = share(*c, task, tasks);
                for first in chs.clone().step_by(grad::BN_BLOCK) {
                    let block = first..(first + grad::BN_BLOCK).min(chs.end);
                    // (mean, biased variance) per channel of the block, image by image (`BN_BLOCK`).
                    let mut mv = [(0f64, 0f64); grad::BN_BLOCK];
                    if *train {
                        for b in 0..*n {
                            block.clone().zip(&mut mv).for_each(|(ch, s)| s.0 += grad::plane_sum(plane(b, ch)));
                        }
                        mv.iter_mut().for_each(|s| s.0 /= count);
                        for b in 0..*n {
                            block.clone().zip(&mut mv).for_each(|(ch, s)| s.1 += grad::plane_sq_dev(plane(b, ch), s.0));
                        }
                        mv.iter_mut().for_each(|s| s.1 /= count);
                    } else {
                        block.clone().zip(&mut mv).for_each(|(ch, s)| *s = (running_mean.get()[ch] as f64, running_var.get()[ch] as f64));
                    }
                    // (mean, scale, shift) of each channel's affine map.
                    let mut affine = [(0f32, 0f32, 0f32); grad::BN_BLOCK];
                    for ((ch, &(mean, var)), af) in block.clone().zip(&mv).zip(&mut affine) {
                        let invstd = 1.0 / (var + *eps as f64).sqrt();
                        stats[ch] = mean as f32;
                        stats[c + ch] = invstd as f32;
                        *af = (mean as f32, (gamma.data.get()[ch] as f64 * invstd) as f32, beta.data.get()[ch]);
                        if *train {
                            let m = *momentum as f64;
                            let unbiased = if count > 1.0 { var * count / (count - 1.0) } else { var };
                            let (rm, rv) = (&mut running_mean.get_mut()[ch], &mut running_var.get_mut()[ch]);
                            *rm = ((1.0 - m) * *rm as f64 + m * mean) as f32;
                            *rv = ((1.0 - m) * *rv as f64 + m * unbiased) as f32;
                        }
                    }
                    for b in 0..*n {
                        for (ch, &(mean, scale, shift)) in block.clone().zip(&affine) {
                            let y = mem.val(dst.value, (b * dst.channels + dst.offset + ch) * hw, *hw);
                            grad::affine_plane(plane(b, ch), mean, scale, shift, *relu, y);
                        }
                    }
                }
            }
            TrainOp::MaxPool { p, planes, h, w, src, dst } | TrainOp::AvgPool { p, planes, h, w, src, dst, .. } => {
                let (oh, ow) = (p.out_h(*h), p.out_w(*w));
                let r = share(*planes, task, tasks);
                let x = &mem.val(*src, r.start * h * w, r.len() * h * w)[..];
                let y = mem.val(*dst, r.start * oh * ow, r.len() * oh * ow);
                match &self.steps[step] {
                    TrainOp::AvgPool { count_include_pad, .. } => pool::avg_pool2d(x, r.len(), *h, *w, p, *count_include_pad, y),
                    _ => pool::max_pool2d(x, r.len(), *h, *w, p, y, &mut ws.pool_row),
                }
            }
            TrainOp::AdaptiveAvgPool { planes, h, w, oh, ow, src, dst } => {
                let r = share(*planes, task, tasks);
                let x = &mem.val(*src, r.start * h * w, r.len() * h * w)[..];
                pool::adaptive_avg_pool2d(x, r.len(), *h, *w, *oh, *ow, mem.val(*dst, r.start * oh * ow, r.len() * oh * ow));
            }
            TrainOp::Relu { src, dst } => {
                let len = self.lens[src.0];
                crate::activation::relu(&mem.val(*src, 0, len)[..], mem.val(*dst, 0, len));
            }
            TrainOp::Dropout { p, src, dst } => {
                let len = self.lens[src.0];
                let (x, y) = (&mem.val(*src, 0, len)[..], mem.val(*dst, 0, len));
                let key = self.step_key(step);
                for (i, (o, &v)) in y.iter_mut().zip(x).enumerate() {
                    *o = v * grad::dropout_factor(key, i, *p);
                }
            }
            TrainOp::CopyChannels { n, c, hw, src, dst } => {
                for b in 0..*n {
                    let x = &mem.val(*src, b * c * hw, c * hw)[..];
                    mem.val(dst.value, (b * dst.channels + dst.offset) * hw, c * hw).copy_from_slice(x);
                }
            }
            TrainOp::ChannelAffine { scale, shift, n, hw, src, dst } => {
                let len = n * scale.len() * hw;
                let (x, y) = (&mem.val(*src, 0, len)[..], mem.val(*dst, 0, len));
                for (i, (o, &v)) in y.iter_mut().zip(x).enumerate() {
                    let c = i / hw % scale.len();
                    *o = v * scale[c] + shift[c];
                }
            }
        }
    }

    fn step_key(&self, step: usize) -> u32 {
        crate::weyl::fmix32(self.key.wrapping_add((step as u32).wrapping_mul(0x9E37_79B9)))
    }

    /// Backward of the last forward: `seeds` are the gradients of outputs (`(k, dY_k)`;
    /// outputs not given have zero gradient). Adds every trainable parameter's gradient into
    /// its `grad` and, when the graph was built with `input_grad`, writes the input's
    /// gradient to `input_grad`.
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn backward(&mut self, seeds: &[(usize, &[f32])], input_grad: Option<&mut [f32]>) -> Result<(), GraphError> {
        match self.state {
            State::Empty => return Err(GraphError::NoForward),
            State::Backwarded => return Err(GraphError::AlreadyBackwarded),
            State::Forwarded => {}
        }
        #[cfg(feature = "profile")]
        let start = plan::profile::now();
        let threads = plan::threads();
        alloc::grow_to(&mut self.run.grads, self.total, 0.0)?;
        alloc::grow_to(&mut self.run.dz, self.dz_len, 0.0)?;
        alloc::grow_to(&mut self.run.rows, self.columns_len, 0.0)?;
        alloc::grow_to(&mut self.run.cols, self.columns_len, 0.0)?;
        self.workspaces(threads)?;
        for ws in &self.run.workspaces[..threads] {
            let mut ws = ws.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            alloc::grow_to(&mut ws.train, self.scratch.train, 0.0)?;
            alloc::grow_to(&mut ws.packed, self.scratch.packed, 0.0)?;
            alloc::grow_to(&mut ws.strip, self.scratch.strip, 0.0)?;
        }
        let mut jobs: Vec<PackJob> = Vec::new();
        for (i, op) in self.steps.iter().enumerate() {
            let params: Vec<&Param> = match op {
                TrainOp::Conv { weight, bias, .. } | TrainOp::Linear { weight, bias, .. } => std::iter::once(weight).chain(bias.as_ref()).collect(),
                TrainOp::BatchNorm { gamma, beta, .. } => vec![gamma, beta],
                _ => Vec::new(),
            };
            for p in params {
                if let Some(g) = &p.grad {
                    // SAFETY: between runs.
                    unsafe { g.ensure_len(p.data.len())? };
                }
            }
            if let TrainOp::Conv { spec, n, h, w, src, dst, .. } = op {
                // `Wᵀ`, or for a dense conv `W'ᵀ` (`c_in·h·w × c_out·oh·ow`), or the flipped
                // weights of a Winograd input gradient: packed again at every backward (an
                // optimiser may have changed the weights), below.
                let old = match (self.transposed[i].take(), self.dx_layers[i].take()) {
                    (Some(t), _) => Some(t),
                    (None, layer) => layer.map(Conv2d::into_gemm_packing),
                };
                if self.needs[src.0] && self.needs[dst.value.0] {
                    let ohw = out_size(spec, *h, *w).map(|(oh, ow)| oh * ow).expect("checked");
                    let flipped = winograd_dx(spec, *n, *h, *w);
                    let (m, kk) = if dense(spec, *n, *h, *w) { (spec.c_in * h * w, spec.c_out * ohw) } else if flipped { (spec.c_in, spec.k() / spec.c_in * spec.c_out) } else { (spec.k(), spec.c_out) };
                    let buf = match old {
                        Some(t) => t.into_data(),
                        None => alloc::filled(PackedA::packed_len(m, kk), 0.0)?,
                    };
                    jobs.push(PackJob { step: i, flipped, buf, bias: None, packed: None });
                }
            }
        }
        self.pack(&mut jobs, threads, true)?;
        let mut headroom = 0;
        for job in jobs {
            if !job.flipped {
                self.transposed[job.step] = job.packed;
                continue;
            }
            let ConvView { spec, n, h, w, .. } = self.steps[job.step].conv().expect("a conv");
            let (oh, ow) = out_size(&spec, h, w).expect("checked");
            let layer = Conv2d::from_gemm_packing(transposed_spec(&spec), job.packed.expect("packed"), None)?;
            let images = if layer.batches(n, oh, ow) { n } else { 1 };
            headroom = headroom.max(plan::conv_scratch_floats(&layer, oh, ow, images));
            self.dx_layers[job.step] = Some(layer);
        }
        self.prove_headroom(headroom, threads)?;
        self.prepare_layers(true, threads)?;
        for &(k, g) in seeds {
            assert_eq!(g.len(), self.lens[self.outputs[k].0], "graph: seed length");
        }
        // The first stage zeroes the gradients (the whole arena: ~100 MB at batch 64) and
        // adds the seeds, on every thread.
        let mut list: Vec<(usize, Part)> = vec![(0, Part::Zero)];
        let mut stages: Vec<Vec<usize>> = vec![vec![0]];
        for (i, op) in self.steps.iter().enumerate().rev() {
            let (dst, _) = op.dst();
            if !self.needs[dst.0] {
                continue;
            }
            let dx = self.needs[op.src().0];
            let mut stage = |parts: &[Part], list: &mut Vec<(usize, Part)>| {
                if !parts.is_empty() {
                    stages.push((list.len()..list.len() + parts.len()).collect());
                    list.extend(parts.iter().map(|&p| (i, p)));
                }
            };
            match op {
                TrainOp::Linear { weight, bias, .. } => {
                    let params = weight.grad.is_some() || bias.as_ref().is_some_and(|b| b.grad.is_some());
                    stage(&[Part::ConvDz], &mut list);
                    match (params, dx) {
                        (true, true) => stage(&[Part::RowsDw, Part::RowsDx], &mut list),
                        (true, false) => stage(&[Part::RowsDw], &mut list),
                        (false, true) => stage(&[Part::RowsDx], &mut list),
                        (false, false) => {}
                    }
                }
                TrainOp::Conv { spec, weight, bias, n, h, w, .. } => {
                    let dw = weight.grad.is_some();
                    let params = dw || bias.as_ref().is_some_and(|b| b.grad.is_some());
                    // A dense conv's dW reads X as it is: no rows(X).
                    stage(if dw && !dense(spec, *n, *h, *w) { &[Part::ConvDz, Part::ConvRows] } else { &[Part::ConvDz] }, &mut list);
                    match (params, dx) {
                        (true, true) => stage(&[Part::ConvDw, Part::ConvCols], &mut list),
                        (true, false) => stage(&[Part::ConvDw], &mut list),
                        (false, true) => stage(&[Part::ConvCols], &mut list),
                        (false, false) => {}
                    }
                    if dx {
                        stage(&[Part::ConvDx], &mut list);
                    }
                }
                TrainOp::BatchNorm { .. } => stage(&[Part::Whole], &mut list),
                _ if dx => stage(&[Part::Whole], &mut list),
                _ => {}
            }
        }
        let tasks: Vec<usize> = list.iter().map(|&(i, part)| self.backward_tasks(i, part, threads)).collect();
        let r = &mut self.run;
        let mem = Mem { arena: r.arena.as_mut_ptr(), grads: r.grads.as_mut_ptr(), dz: r.dz.as_mut_ptr(), rows: r.rows.as_mut_ptr(), cols: r.cols.as_mut_ptr(), offsets: self.offsets.as_ptr() };
        let this = &*self;
        #[cfg(feature = "profile")]
        let prologue = plan::profile::now() - start;
        let _probes = plan::exec_run(&stages, &tasks, &this.run.workspaces[..threads], |s, task, ws| {
            let (i, part) = list[s];
            unsafe {
                match part {
                    Part::Zero => this.zero_grads(task, tasks[s], seeds, &mem),
                    _ => this.backward_task(i, part, task, tasks[s], &mem, ws),
                }
            }
        })
        .map_err(|e| GraphError::Run(RunError::WorkerFailed(e)))?;
        #[cfg(feature = "profile")]
        {
            let label = |(i, part): (usize, Part)| if let Part::Zero = part { "zero gradients".to_string() } else { format!("{} {part:?}", self.steps[i].label()) };
            let labels: Vec<String> = stages.iter().map(|st| st.iter().map(|&e| label(list[e])).collect::<Vec<_>>().join(" + ")).collect();
            plan::profile::record_graph("backward", prologue, &_probes, &labels);
        }
        if let Some(out) = input_grad {
            assert_eq!(out.len(), self.lens[0], "graph: input gradient length");
            out.copy_from_slice(&self.run.grads[..self.lens[0]]);
        }
        self.state = State::Backwarded;
        Ok(())
    }

    fn backward_tasks(&self, i: usize, part: Part, threads: usize) -> usize {
        match (&self.steps[i], part) {
            (_, Part::Zero) => threads,
            (TrainOp::Conv { n, .. }, Part::ConvDz | Part::ConvRows | Part::ConvDx) => *n,
            (TrainOp::Conv { spec, h, w, n, .. }, Part::ConvDw) => {
                let (oh, ow) = out_size(spec, *h, *w).expect("checked");
                split(spec.c_out.div_ceil(MR), n * oh * ow * spec.k() * MR, threads).max(1)
            }
            (TrainOp::Linear { n, .. }, Part::ConvDz) => *n,
            (TrainOp::Linear { n, inp, out, .. }, Part::RowsDw) => split(*out, n * inp, threads).max(1),
            (TrainOp::Linear { n, inp, out, .. }, Part::RowsDx) => split(*n, inp * out, threads).max(1),
            (TrainOp::Conv { spec, h, w, n, .. }, Part::ConvCols) if self.dx_layers[i].is_some() => {
                let (oh, ow) = out_size(spec, *h, *w).expect("checked");
                let layer = self.dx_layers[i].as_ref().expect("checked");
                if layer.batches(*n, oh, ow) { layer.batch_parts(*n, oh, ow, threads) } else { n * layer.parts(oh, ow, threads.div_ceil(*n)) }
            }
            (TrainOp::Conv { spec, h, w, n, .. }, Part::ConvCols) => {
                let (oh, ow) = out_size(spec, *h, *w).expect("checked");
                let columns = if dense(spec, *n, *h, *w) { *n } else { n * oh * ow };
                split(columns.div_ceil(gemm::NR), n * oh * ow * spec.k() * spec.c_out * gemm::NR / columns, threads).max(1)
            }
            (TrainOp::BatchNorm { n, c, hw, .. }, _) => split(*c, n * hw * BN_WORK, threads).max(1),
            (TrainOp::MaxPool { planes, h, w, .. } | TrainOp::AvgPool { planes, h, w, .. } | TrainOp::AdaptiveAvgPool { planes, h, w, .. }, _) => split(*planes, h * w, threads).max(1),
            _ => 1,
        }
    }

    /// Zeroes task `task`'s share of the gradient arena and adds the seeds that fall in it.
    ///
    /// # Safety
    /// Runs alone in its stage; tasks' shares are disjoint.
    unsafe fn zero_grads(&self, task: usize, tasks: usize, seeds: &[(usize, &[f32])], mem: &Mem) {
        let r = share(self.total, task, tasks);
        core::slice::from_raw_parts_mut(mem.grads.add(r.start), r.len()).fill(0.0);
        for &(k, seed) in seeds {
            let at = self.offsets[self.outputs[k].0];
            for i in r.start.max(at)..r.end.min(at + seed.len()) {
                *mem.grads.add(i) += seed[i - at];
            }
        }
    }

    /// # Safety
    /// As [`Graph::forward_task`]; the parts of one stage write disjoint memory.
    #[allow(clippy::too_many_arguments)]
    unsafe fn backward_task(&self, step: usize, part: Part, task: usize, tasks: usize, mem: &Mem, ws: &mut Workspace) {
        let needs_dx = self.needs[self.steps[step].src().0];
        if let Some(ConvView { spec, weight, bias, n, h, w, relu, src, dst }) = self.steps[step].conv() {
            let (oh, ow) = out_size(&spec, h, w).expect("checked");
            let (ohw, co, k) = (oh * ow, spec.c_out, spec.k());
            let dz = |b: usize| core::slice::from_raw_parts_mut(mem.dz.add(b * co * ohw), co * ohw);
            let big_n = n * ohw;
            let p = spec.with_input(h, w);
            let img = spec.c_in * h * w;
            let is_dense = dense(&spec, n, h, w);
            match part {
                Part::ConvDz => {
                    let at = (task * dst.channels + dst.offset) * ohw;
                    grad::relu_mask(mem.val(dst.value, at, co * ohw), mem.grad(dst.value, at, co * ohw), relu, dz(task));
                }
                Part::ConvRows => {
                    let rows = core::slice::from_raw_parts_mut(mem.rows.add(task * ohw * k), ohw * k);
                    im2row(&mem.val(src, task * img, img)[..], &p, rows, &mut ws.train);
                }
                Part::RowsDw => {
                    // dZ after ReLU and dropout masks is mostly zeros in the aux heads (~85 %):
                    // rows of axpys that skip them beat the GEMMs (9.6 against 19.3 ms for
                    // both aux heads' 2048 → 1024 layers at batch 64).
                    let outs = share(co, task, tasks);
                    let (dy, x) = (core::slice::from_raw_parts(mem.dz, n * co), &mem.val(src, 0, n * spec.c_in)[..]);
                    let dw = weight.grad.as_ref().map(|g| &mut g.get_mut()[outs.start * k..outs.end * k]);
                    let db = bias.and_then(|b| b.grad.as_ref()).map(|g| &mut g.get_mut()[outs.clone()]);
                    grad::linear_backward_params(x, n, spec.c_in, dy, co, outs, dw, db);
                }
                Part::RowsDx => {
                    let rows = share(n, task, tasks);
                    let dy = core::slice::from_raw_parts(mem.dz, n * co);
                    grad::linear_backward_input(dy, co, weight.data.get(), spec.c_in, rows.clone(), mem.grad(src, rows.start * k, rows.len() * k));
                }
                Part::ConvCols if is_dense => {
                    // cols = W'ᵀ · dZ' (`c_in·h·w` rows of `n`) over this task's images.
                    let a = self.transposed[step].as_ref().expect("packed by backward");
                    let strips = share(n.div_ceil(gemm::NR), task, tasks);
                    let images = strips.start * gemm::NR..(strips.end * gemm::NR).min(n);
                    let b = BatchColumns { data: core::slice::from_raw_parts(mem.dz, n * co * ohw), rows: co * ohw, ohw: 1, n };
                    gemm::gemm_block_with(a, 0..a.panels(), &b as &dyn gemm::PackB, images.clone(), mem.cols.add(images.start), n, Epilogue::default(), &mut ws.strip);
                }
                Part::ConvDx if is_dense => {
                    let cols = core::slice::from_raw_parts(mem.cols, img * n);
                    for (i, d) in mem.grad(src, task * img, img).iter_mut().enumerate() {
                        *d += cols[i * n + task];
                    }
                }
                Part::ConvCols if self.dx_layers[step].is_some() => {
                    // The input gradient as a convolution of dZ into `cols`: Winograd blocks
                    // over the batch (`c_in` rows of `n·h·w`), or image by image (NCHW).
                    let layer = self.dx_layers[step].as_ref().expect("checked");
                    if layer.batches(n, oh, ow) {
                        layer.forward_batch_part(core::slice::from_raw_parts(mem.dz, n * co * ohw), n, oh, ow, false, mem.cols, task, tasks, ws);
                    } else {
                        let parts = tasks / n;
                        let (b, part) = (task / parts, task % parts);
                        layer.forward_part(dz(b), oh, ow, false, mem.cols.add(b * img), part, parts, ws);
                    }
                }
                Part::ConvDx if self.dx_layers[step].is_some() => {
                    let hw = h * w;
                    let dx = mem.grad(src, task * img, img);
                    if self.dx_layers[step].as_ref().expect("checked").batches(n, oh, ow) {
                        add_batch_columns(core::slice::from_raw_parts(mem.cols, img * n), n * hw, task * hw, hw, dx);
                    } else {
                        let cols = core::slice::from_raw_parts(mem.cols.add(task * img), img);
                        dx.iter_mut().zip(cols).for_each(|(d, &v)| *d += v);
                    }
                }
                Part::ConvCols => {
                    // cols[:, strips] = Wᵀ · dZ over the pixel strips of this task.
                    let a = self.transposed[step].as_ref().expect("packed by backward");
                    let strips = share(big_n.div_ceil(gemm::NR), task, tasks);
                    let pixels = strips.start * gemm::NR..(strips.end * gemm::NR).min(big_n);
                    let b = BatchColumns { data: core::slice::from_raw_parts(mem.dz, n * co * ohw), rows: co, ohw, n };
                    gemm::gemm_block_with(a, 0..a.panels(), &b as &dyn gemm::PackB, pixels.clone(), mem.cols.add(pixels.start), big_n, Epilogue::default(), &mut ws.strip);
                }
                Part::ConvDx => {
                    let cols = core::slice::from_raw_parts(mem.cols, k * big_n);
                    let dx = mem.grad(src, task * img, img);
                    if spec.is_pointwise() {
                        add_batch_columns(cols, big_n, task * ohw, ohw, dx);
                    } else {
                        col2im(cols, big_n, task * ohw, &p, dx);
                    }
                }
                Part::ConvDw => {
                    let panels = share(co.div_ceil(MR), task, tasks);
                    let rows = panels.start * MR..(panels.end * MR).min(co);
                    if rows.is_empty() {
                        return;
                    }
                    if let (Some(gw), true) = (&weight.grad, is_dense) {
                        dense_dw(&spec, h, w, n, rows.clone(), core::slice::from_raw_parts(mem.dz, n * co * ohw), &mem.val(src, 0, n * img)[..], gw.get_mut(), ws);
                    } else if let Some(gw) = &weight.grad {
                        // dW[rows] += dZ[rows] · rows(X): A = dZ's rows across every image (K = N),
                        // in blocks of DW_PIXELS pixels, each block's product added to dW: a
                        // whole-N panel of A (N = 25,088 at 56×56, batch 8) is 400 KB and was
                        // streamed from memory again for every strip of rows(X).
                        let m = rows.len();
                        let gw = &mut gw.get_mut()[rows.start * k..rows.end * k];
                        let mut buf = std::mem::take(&mut ws.packed);
                        for block in (0..big_n).step_by(DW_PIXELS) {
                            let pixels = block..(block + DW_PIXELS).min(big_n);
                            let len = pixels.len();
                            buf.resize(PackedA::packed_len(m, len), 0.0);
                            for b in pixels.start / ohw..pixels.end.div_ceil(ohw) {
                                let qs = pixels.start.max(b * ohw)..pixels.end.min((b + 1) * ohw);
                                for r in (0..m).step_by(MR) {
                                    let src = &dz(b)[(rows.start + r) * ohw + qs.start - b * ohw..];
                                    let panel = &mut buf[(r / MR) * len * MR + (qs.start - pixels.start) * MR..];
                                    transpose(src, ohw, MR.min(m - r), qs.len(), panel, MR);
                                }
                            }
                            if m % MR != 0 {
                                // The last panel's rows past `m`: zero, not an earlier block's.
                                let last = &mut buf[(m / MR) * len * MR..][..len * MR];
                                last.chunks_exact_mut(MR).for_each(|q| q[m % MR..].fill(0.0));
                            }
                            let a = PackedA::from_packed(m, pixels.len(), buf);
                            let bmat = MatRef { data: core::slice::from_raw_parts(mem.rows.add(pixels.start * k), pixels.len() * k), rows: pixels.len(), cols: k, ld: k };
                            let cmat = &mut ws.train[..m * k];
                            gemm::gemm_block_with(&a, 0..a.panels(), &bmat as &dyn gemm::PackB, 0..k, cmat.as_mut_ptr(), k, Epilogue::default(), &mut ws.strip);
                            buf = a.into_data();
                            gw.iter_mut().zip(cmat.iter()).for_each(|(d, &v)| *d += v);
                        }
                        ws.packed = buf;
                    }
                    if let Some(gb) = bias.and_then(|b| b.grad.as_ref()) {
                        let db = gb.get_mut();
                        for r in rows {
                            let s: f64 = (0..n).map(|b| dz(b)[r * ohw..(r + 1) * ohw].iter().map(|&v| v as f64).sum::<f64>()).sum();
                            db[r] += s as f32;
                        }
                    }
                }
                _ => unreachable!(),
            }
            return;
        }
        match &self.steps[step] {
            TrainOp::Conv { .. } | TrainOp::Linear { .. } => unreachable!("convs run above"),
            TrainOp::BatchNorm { gamma, beta, train, relu, n, c, hw, src, dst, .. } => {
                let x = &mem.val(*src, 0, n * c * hw)[..];
                let plane = |b: usize, ch: usize| &x[(b * c + ch) * hw..][..*hw];
                let stats = self.stats[step].get();
                let dz = &mut ws.train[..*hw];
                // The output gradient of image `b`, channel `ch`, after the ReLU mask, into `dz`.
                let mask = |b: usize, ch: usize, dz: &mut [f32]| {
                    let at = (b * dst.channels + dst.offset + ch) * hw;
                    grad::relu_mask(mem.val(dst.value, at, *hw), mem.grad(dst.value, at, *hw), *relu, dz);
                };
                let count = (n * hw) as f64;
                let chs = share(*c, task, tasks);
                for first in chs.clone().step_by(grad::BN_BLOCK) {
                    let block = first..(first + grad::BN_BLOCK).min(chs.end);
                    // (Σ dz, Σ dz·x̂) per channel of the block, image by image (`BN_BLOCK`).
                    let mut sums = [(0f64, 0f64); grad::BN_BLOCK];
                    for b in 0..*n {
                        for (ch, s) in block.clone().zip(&mut sums) {
                            mask(b, ch, dz);
                            let (sum, dot) = grad::batch_norm_plane_sums(plane(b, ch), dz, stats[ch], stats[c + ch]);
                            (s.0, s.1) = (s.0 + sum, s.1 + dot);
                        }
                    }
                    if needs_dx {
                        for b in 0..*n {
                            for (ch, &(sum, dot)) in block.clone().zip(&sums) {
                                let (mean, invstd) = (stats[ch], stats[c + ch]);
                                let k = gamma.data.get()[ch] * invstd;
                                let (a, cc) = if *train { ((sum / count) as f32, (dot / count) as f32) } else { (0.0, 0.0) };
                                mask(b, ch, dz);
                                grad::batch_norm_plane_dx(plane(b, ch), dz, mean, invstd, (k, a, cc), mem.grad(*src, (b * c + ch) * hw, *hw));
                            }
                        }
                    }
                    for (ch, &(sum, dot)) in block.zip(&sums) {
                        if let Some(gg) = &gamma.grad {
                            gg.get_mut()[ch] += dot as f32;
                        }
                        if let Some(gb) = &beta.grad {
                            gb.get_mut()[ch] += sum as f32;
                        }
                    }
                }
            }
            TrainOp::MaxPool { p, planes, h, w, src, dst } | TrainOp::AvgPool { p, planes, h, w, src, dst, .. } => {
                let (oh, ow) = (p.out_h(*h), p.out_w(*w));
                let r = share(*planes, task, tasks);
                let dy = &mem.grad(*dst, r.start * oh * ow, r.len() * oh * ow)[..];
                let dx = mem.grad(*src, r.start * h * w, r.len() * h * w);
                match &self.steps[step] {
                    TrainOp::AvgPool { count_include_pad, .. } => grad::avg_pool2d_backward(r.len(), *h, *w, p, *count_include_pad, dy, dx),
                    _ => grad::max_pool2d_backward(&mem.val(*src, r.start * h * w, r.len() * h * w)[..], &mem.val(*dst, r.start * oh * ow, r.len() * oh * ow)[..], r.len(), *h, *w, p, dy, dx),
                }
            }
            TrainOp::AdaptiveAvgPool { planes, h, w, oh, ow, src, dst } => {
                let r = share(*planes, task, tasks);
                let dy = &mem.grad(*dst, r.start * oh * ow, r.len() * oh * ow)[..];
                grad::adaptive_avg_pool2d_backward(r.len(), *h, *w, *oh, *ow, dy, mem.grad(*src, r.start * h * w, r.len() * h * w));
            }
            TrainOp::Relu { src, dst } => {
                let len = self.lens[src.0];
                grad::relu_backward(&mem.val(*dst, 0, len)[..], &mem.grad(*dst, 0, len)[..], mem.grad(*src, 0, len));
            }
            TrainOp::Dropout { p, src, dst } => {
                let len = self.lens[src.0];
                let key = self.step_key(step);
                let dy = &mem.grad(*dst, 0, len)[..];
                for (i, (d, &g)) in mem.grad(*src, 0, len).iter_mut().zip(dy).enumerate() {
                    *d += g * grad::dropout_factor(key, i, *p);
                }
            }
            TrainOp::CopyChannels { n, c, hw, src, dst } => {
                for b in 0..*n {
                    let dy = &mem.grad(dst.value, (b * dst.channels + dst.offset) * hw, c * hw)[..];
                    mem.grad(*src, b * c * hw, c * hw).iter_mut().zip(dy).for_each(|(d, &g)| *d += g);
                }
            }
            TrainOp::ChannelAffine { scale, n, hw, src, dst, .. } => {
                let len = n * scale.len() * hw;
                let dy = &mem.grad(*dst, 0, len)[..];
                for (i, (d, &g)) in mem.grad(*src, 0, len).iter_mut().zip(dy).enumerate() {
                    *d += g * scale[i / hw % scale.len()];
                }
            }
        }
    }
}

/// A dense conv's weight gradient for output channels `chans`: `dW' = dZ'·Xᵀ` over the
/// batch (`A` = `dZ'`'s rows `(o, p)`, `K = n` images; `B` = `X` as it is, `n` rows of
/// `c_in·h·w`), each element of `dW'` then added to the weight its tap is (see
/// `conv::dense::pack`), in row-major order of `dW'`. `dz` is the batch's output gradient (`n × c_out × oh·ow`).
#[allow(clippy::too_many_arguments)]
fn dense_dw(spec: &ConvSpec, h: usize, w: usize, n: usize, chans: core::ops::Range<usize>, dz: &[f32], x: &[f32], dw: &mut [f32], ws: &mut Workspace) {
    let ohw = out_size(spec, h, w).map(|(oh, ow)| oh * ow).expect("checked");
    let ins = spec.c_in * h * w;
    let m = chans.len() * ohw;
    let mut buf = std::mem::take(&mut ws.packed);
    buf.clear();
    buf.resize(PackedA::packed_len(m, n), 0.0);
    for b in 0..n {
        let g = &dz[(b * spec.c_out + chans.start) * ohw..(b * spec.c_out + chans.end) * ohw];
        for (r, &v) in g.iter().enumerate() {
            buf[((r / MR) * n + b) * MR + r % MR] = v;
        }
    }
    let a = PackedA::from_packed(m, n, buf);
    let prod = &mut ws.train[..m * ins];
    let bmat = MatRef { data: x, rows: n, cols: ins, ld: ins };
    // SAFETY: `prod` holds the m × ins product, borrowed exclusively.
    unsafe { gemm::gemm_block_with(&a, 0..a.panels(), &bmat as &dyn gemm::PackB, 0..ins, prod.as_mut_ptr(), ins, Epilogue::default(), &mut ws.strip) };
    ws.packed = a.into_data();
    let taps = conv::dense::Taps::new(spec, h, w);
    for (r, row) in prod.chunks_exact(ins.max(1)).enumerate() {
        let base = taps.row(chans.start * ohw + r);
        for (&v, c) in row.iter().zip(taps.cols()) {
            dw[base.wrapping_add(c)] += v;
        }
    }
}

/// Adds one image's part of a batch's channel rows back onto the image `dx` (planes of
/// `hw`): plane `c` gets `hw` floats of row `c` of `cols` (rows of `ld`), from column `col0`.
fn add_batch_columns(cols: &[f32], ld: usize, col0: usize, hw: usize, dx: &mut [f32]) {
    for (c, plane) in dx.chunks_exact_mut(hw).enumerate() {
        plane.iter_mut().zip(&cols[c * ld + col0..][..hw]).for_each(|(d, &v)| *d += v);
    }
}

/// im2col transposed: row `q` (an output pixel) holds its `c_in·kh·kw` inputs (zero in the
/// padding). A 1×1 conv's is its input transposed; other convs build one output row's
/// `k × ow` im2col block in `stage` and transpose that (both in 4×4 blocks: element by
/// element, stride-`k` stores made this 39 ms of a 32×32 training step).
fn im2row(x: &[f32], p: &conv::Conv2dParams, rows: &mut [f32], stage: &mut [f32]) {
    let (oh, ow, k) = (p.out_h(), p.out_w(), p.c_in * p.kh * p.kw);
    if (p.kh, p.kw, p.sh, p.sw, p.ph, p.pw) == (1, 1, 1, 1, 0, 0) {
        transpose(x, oh * ow, k, oh * ow, rows, k);
        return;
    }
    let block = &mut stage[..k * ow];
    for oy in 0..oh {
        for (r, row) in block.chunks_exact_mut(ow).enumerate() {
            let (c, i, j) = (r / (p.kh * p.kw), r / p.kw % p.kh, r % p.kw);
            let iy = (oy * p.sh + i) as isize - p.ph as isize;
            if iy < 0 || iy as usize >= p.h {
                row.fill(0.0);
                continue;
            }
            let line = &x[(c * p.h + iy as usize) * p.w..][..p.w];
            for (ox, v) in row.iter_mut().enumerate() {
                let ix = (ox * p.sw + j) as isize - p.pw as isize;
                *v = if ix >= 0 && (ix as usize) < p.w { line[ix as usize] } else { 0.0 };
            }
        }
        transpose(block, ow, k, ow, &mut rows[oy * ow * k..], k);
    }
}

/// Adds one image's columns back onto the image `dx`: its columns start at column `col0`
/// of `cols` (`c_in·kh·kw` rows of `ld` columns, as im2col lays them out).
fn col2im(cols: &[f32], ld: usize, col0: usize, p: &conv::Conv2dParams, dx: &mut [f32]) {
    let (oh, ow) = (p.out_h(), p.out_w());
    for c in 0..p.c_in {
        for i in 0..p.kh {
            for j in 0..p.kw {
                let r = (c * p.kh + i) * p.kw + j;
                for oy in 0..oh {
                    let iy = (oy * p.sh + i) as isize - p.ph as isize;
                    if iy < 0 || iy as usize >= p.h {
                        continue;
                    }
                    let row = &mut dx[(c * p.h + iy as usize) * p.w..][..p.w];
                    let src = &cols[r * ld + col0 + oy * ow..][..ow];
                    for (ox, &v) in src.iter().enumerate() {
                        let ix = (ox * p.sw + j) as isize - p.pw as isize;
                        if ix >= 0 && (ix as usize) < p.w {
                            row[ix as usize] += v;
                        }
                    }
                }
            }
        }
    }
}
