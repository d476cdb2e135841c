//! The steps a plan runs, with their size checks and their split into tasks.

use std::sync::Arc;

use super::schedule::Home;
use super::ValueId;
use crate::alloc::OutOfMemory;
use crate::conv::{Algorithm, Conv2d};
use crate::workspace::Workspace;
use crate::split::{share, split};
use crate::pool::{self, Pool2dParams};

/// Channels `[offset, offset + c)` of a value seen as `n × channels × plane`: where a
/// step that can write into a concatenation writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub value: ValueId,
    pub channels: usize,
    pub offset: usize,
}

impl Slice {
    /// All of `value`, which has `channels` channels.
    pub fn whole(value: ValueId, channels: usize) -> Self {
        Self { value, channels, offset: 0 }
    }
}

/// One kernel call of a plan. Sizes are per call: `n` images (or `planes = n·c` planes).
#[derive(Clone, Debug)]
pub enum Op {
    /// `layer` on `n` images of `h × w`, into channels of `dst` (`dst.channels` per image).
    Conv { layer: Arc<Conv2d>, n: usize, h: usize, w: usize, relu: bool, src: ValueId, dst: Slice },
    MaxPool { p: Pool2dParams, planes: usize, h: usize, w: usize, src: ValueId, dst: ValueId },
    AvgPool { p: Pool2dParams, count_include_pad: bool, planes: usize, h: usize, w: usize, src: ValueId, dst: ValueId },
    AdaptiveAvgPool { planes: usize, h: usize, w: usize, oh: usize, ow: usize, src: ValueId, dst: ValueId },
    /// `max(x, 0)`, out of place.
    Relu { src: ValueId, dst: ValueId },
    /// `n` images of `c × hw` into channels of `dst`: a concatenation's copy, or an identity.
    CopyChannels { n: usize, c: usize, hw: usize, src: ValueId, dst: Slice },
    /// `x·scale[c] + shift[c]` per channel (torchvision's `transform_input`).
    ChannelAffine { scale: Vec<f32>, shift: Vec<f32>, n: usize, hw: usize, src: ValueId, dst: ValueId },
    /// `layer` on `n` small images batched (one GEMM over the batch, or Winograd blocks of
    /// several images' tiles; see `Conv2d::batches`), into `dst` as `c_out` rows of
    /// `n·oh·ow` pixels; `Unbatch` then moves them into NCHW.
    ConvBatch { layer: Arc<Conv2d>, n: usize, h: usize, w: usize, relu: bool, src: ValueId, dst: ValueId },
    /// `c` rows of `n·hw` (a `ConvBatch` result; `pixel_major`: of a dense layer, `c × hw
    /// × n`) into channels of `dst`, image by image.
    Unbatch { n: usize, c: usize, hw: usize, pixel_major: bool, src: ValueId, dst: Slice },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "conv2d",
            Op::MaxPool { .. } => "max_pool2d",
            Op::AvgPool { .. } => "avg_pool2d",
            Op::AdaptiveAvgPool { .. } => "adaptive_avg_pool2d",
            Op::Relu { .. } => "relu",
            Op::CopyChannels { .. } => "copy_channels",
            Op::ChannelAffine { .. } => "channel_affine",
            Op::ConvBatch { .. } => "conv2d_batch",
            Op::Unbatch { .. } => "unbatch",
        }
    }

    /// The op with its sizes, e.g. `conv2d 480×14×14→192 1×1/1 Gemm` (for profiles).
    #[cfg(feature = "profile")]
    pub fn label(&self) -> String {
        let name = self.name();
        match self {
            Op::Conv { layer, h, w, .. } | Op::ConvBatch { layer, h, w, .. } => {
                let s = layer.spec();
                let algorithm = if let Op::ConvBatch { .. } = self { layer.batch_algorithm_for(*h, *w) } else { layer.algorithm_for(*h, *w) };
                format!("{name} {}×{h}×{w}→{} {}×{}/{} {algorithm:?}", s.c_in, s.c_out, s.kh, s.kw, s.sh)
            }
            Op::MaxPool { p, planes, h, w, .. } | Op::AvgPool { p, planes, h, w, .. } => format!("{name} {planes}×{h}×{w} {}×{}/{}", p.kh, p.kw, p.sh),
            Op::AdaptiveAvgPool { planes, h, w, oh, ow, .. } => format!("{name} {planes}×{h}×{w}→{oh}×{ow}"),
            Op::Relu { .. } | Op::CopyChannels { .. } | Op::ChannelAffine { .. } | Op::Unbatch { .. } => name.to_string(),
        }
    }

    pub fn reads(&self) -> [ValueId; 1] {
        match self {
            Op::Conv { src, .. }
            | Op::MaxPool { src, .. }
            | Op::AvgPool { src, .. }
            | Op::AdaptiveAvgPool { src, .. }
            | Op::Relu { src, .. }
            | Op::CopyChannels { src, .. }
            | Op::ChannelAffine { src, .. }
            | Op::ConvBatch { src, .. }
            | Op::Unbatch { src, .. } => [*src],
        }
    }

    /// The value written, and for slice writes `(channels, lo, hi)`.
    pub fn writes(&self) -> (ValueId, Option<(usize, usize, usize)>) {
        match self {
            Op::Conv { dst, layer, .. } => (dst.value, Some((dst.channels, dst.offset, dst.offset + layer.spec().c_out))),
            Op::CopyChannels { dst, c, .. } | Op::Unbatch { dst, c, .. } => (dst.value, Some((dst.channels, dst.offset, dst.offset + c))),
            Op::MaxPool { dst, .. } | Op::AvgPool { dst, .. } | Op::AdaptiveAvgPool { dst, .. } | Op::Relu { dst, .. } | Op::ChannelAffine { dst, .. } | Op::ConvBatch { dst, .. } => (*dst, None),
        }
    }

    /// Checks every length against the geometry, so that running never indexes out of bounds.
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn check_sizes(&self, len: &dyn Fn(ValueId) -> Option<usize>) -> Result<(), String> {
        let name = self.name();
        // Every size is formed checked: in wasm32 `usize` is 32 bits, and a product that
        // wrapped would pass as a small length and let a kernel write past its value.
        let size = |factors: &[usize]| -> Result<usize, String> {
            factors.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or_else(|| format!("{name}: sizes {factors:?} overflow the address space"))
        };
        let expect = |v: ValueId, want: usize, what: &str| -> Result<(), String> {
            match len(v) {
                None => Err(format!("{name}: {what} is not a value of this plan")),
                Some(l) if l != want => Err(format!("{name}: {what} holds {l} floats, expected {want}")),
                Some(_) => Ok(()),
            }
        };
        let slice = |s: &Slice, c: usize, plane: usize, n: usize| -> Result<(), String> {
            if !s.offset.checked_add(c).is_some_and(|end| end <= s.channels) {
                return Err(format!("{name}: channels [{}, {}) do not fit in {}", s.offset, s.offset.saturating_add(c), s.channels));
            }
            expect(s.value, size(&[n, s.channels, plane])?, "the output")
        };
        match self {
            Op::Conv { layer, n, h, w, src, dst, .. } => {
                let s = layer.spec();
                let Some((oh, ow)) = layer.out_size(*h, *w) else {
                    return Err(format!("{name}: {h}×{w} input is smaller than the {}×{} kernel", s.kh, s.kw));
                };
                expect(*src, size(&[*n, s.c_in, *h, *w])?, "the input")?;
                slice(dst, s.c_out, size(&[oh, ow])?, *n)
            }
            Op::MaxPool { p, planes, h, w, src, dst } | Op::AvgPool { p, planes, h, w, src, dst, .. } => {
                if p.kh == 0 || p.kw == 0 || p.sh == 0 || p.sw == 0 || p.ph > p.kh / 2 || p.pw > p.kw / 2 {
                    return Err(format!("{name}: kernel and stride must be positive and padding at most half the kernel"));
                }
                let (Some(oh), Some(ow)) = (pool::pool_out_size(*h, p.kh, p.sh, p.ph, p.ceil_mode), pool::pool_out_size(*w, p.kw, p.sw, p.pw, p.ceil_mode)) else {
                    return Err(format!("{name}: a {h}×{w} input gives no output with a {}×{} kernel, stride {}×{}, padding {}×{}", p.kh, p.kw, p.sh, p.sw, p.ph, p.pw));
                };
                expect(*src, size(&[*planes, *h, *w])?, "the input")?;
                expect(*dst, size(&[*planes, oh, ow])?, "the output")
            }
            Op::AdaptiveAvgPool { planes, h, w, oh, ow, src, dst } => {
                if *h == 0 || *w == 0 || *oh == 0 || *ow == 0 {
                    return Err(format!("{name}: sizes must be positive"));
                }
                expect(*src, size(&[*planes, *h, *w])?, "the input")?;
                expect(*dst, size(&[*planes, *oh, *ow])?, "the output")
            }
            Op::Relu { src, dst } => {
                let l = len(*src).ok_or_else(|| format!("{name}: the input is not a value of this plan"))?;
                expect(*dst, l, "the output")
            }
            Op::CopyChannels { n, c, hw, src, dst } => {
                expect(*src, size(&[*n, *c, *hw])?, "the input")?;
                slice(dst, *c, *hw, *n)
            }
            Op::ConvBatch { layer, n, h, w, src, dst, .. } => {
                let s = layer.spec();
                let Some((oh, ow)) = layer.out_size(*h, *w) else {
                    return Err(format!("{name}: {h}×{w} input is smaller than the {}×{} kernel", s.kh, s.kw));
                };
                if !layer.batches(*n, *h, *w) {
                    return Err(format!("{name}: this layer does not run batched at {n}×{h}×{w}"));
                }
                expect(*src, size(&[*n, s.c_in, *h, *w])?, "the input")?;
                expect(*dst, size(&[s.c_out, *n, oh, ow])?, "the output")
            }
            Op::Unbatch { n, c, hw, src, dst, .. } => {
                expect(*src, size(&[*c, *n, *hw])?, "the input")?;
                slice(dst, *c, *hw, *n)
            }
            Op::ChannelAffine { scale, shift, n, hw, src, dst } => {
                if scale.len() != shift.len() {
                    return Err(format!("{name}: {} scales but {} shifts", scale.len(), shift.len()));
                }
                expect(*src, size(&[*n, scale.len(), *hw])?, "the input")?;
                expect(*dst, size(&[*n, scale.len(), *hw])?, "the output")
            }
        }
    }

    /// Makes what running needs that a layer builds lazily (a convolution's packed
    /// weights for this input size), so that runs never allocate.
    pub fn prepare(&self) -> Result<(), OutOfMemory> {
        match self {
            Op::Conv { layer, h, w, .. } => layer.prepare(*h, *w),
            Op::ConvBatch { layer, h, w, .. } => layer.prepare_batch(*h, *w),
            _ => Ok(()),
        }
    }

    /// An upper bound on the floats one thread's [`Workspace`] may grow by while running
    /// this step: im2col's band is at most the padded input image (1×1 stride-1 layers
    /// read their input in place and have none); Winograd stages one input channel's rows
    /// at a time and keeps its transforms and products within a block sized for L2
    /// (`BLOCK_BYTES`, at least `NR` tiles of `T² · (c_in + CO_CHUNK)`), plus im2col's band
    /// for blocks that fall back to the GEMM (inputs with NaN, ∞ or huge values); the GEMM packs a
    /// `k × NR` strip; and `Vec` growth may double a buffer. Loose on purpose: it is only
    /// reserved once, to prove the memory is there before a run starts.
    pub fn scratch_floats(&self) -> usize {
        match self {
            Op::Conv { layer, h, w, .. } => conv_scratch_floats(layer, *h, *w, 1),
            Op::MaxPool { p, w, .. } => 2 * (w.saturating_add(2 * p.pw + p.kw + 8)),
            // The GEMM packs a `k × NR` strip (the whole batch's columns, one strip at a
            // time); Winograd blocks stage the rows of each of their images.
            Op::ConvBatch { layer, n, h, w, .. } => match layer.batch_algorithm_for(*h, *w) {
                Algorithm::Gemm => 2 * layer.spec().k() * crate::gemm::NR + (1 << 14),
                _ => conv_scratch_floats(layer, *h, *w, *n),
            },
            _ => 0,
        }
    }

    /// Tasks this step is split into on `threads` threads.
    pub fn tasks(&self, threads: usize) -> usize {
        match self {
            Op::Conv { layer, n, h, w, .. } => n * layer.parts(*h, *w, threads.div_ceil(*n)),
            Op::MaxPool { p, planes, h, w, .. } | Op::AvgPool { p, planes, h, w, .. } => split(*planes, h * w * (p.kh + p.kw), threads),
            Op::AdaptiveAvgPool { planes, h, w, .. } => split(*planes, h * w, threads),
            Op::ConvBatch { layer, n, h, w, .. } => layer.batch_parts(*n, *h, *w, threads),
            Op::Unbatch { n, c, hw, .. } => split(*n, c * hw, threads),
            Op::Relu { .. } | Op::CopyChannels { .. } | Op::ChannelAffine { .. } => 1,
        }
    }

    /// Runs task `task` of `tasks`.
    ///
    /// # Safety
    /// `mem` must resolve every value this step reads to memory no concurrent task writes,
    /// and its output to memory no task of another step of the same stage writes (outside
    /// the channels this step owns); the tasks of this step write disjoint elements.
    pub unsafe fn run(&self, task: usize, tasks: usize, mem: &Mem, ws: &mut Workspace) {
        match self {
            Op::Conv { layer, n, h, w, relu, src, dst } => {
                let s = layer.spec();
                let (oh, ow) = layer.out_size(*h, *w).expect("checked at build");
                let parts = tasks / n;
                let (b, part) = (task / parts, task % parts);
                let img = s.c_in * h * w;
                let x = &mem.read(*src, n * img)[b * img..(b + 1) * img];
                let out = mem.ptr(dst.value).add((b * dst.channels + dst.offset) * oh * ow);
                layer.forward_part(x, *h, *w, *relu, out, part, parts, ws);
            }
            Op::MaxPool { p, planes, h, w, src, dst } | Op::AvgPool { p, planes, h, w, src, dst, .. } => {
                let (oh, ow) = (p.out_h(*h), p.out_w(*w));
                let r = share(*planes, task, tasks);
                let x = &mem.read(*src, planes * h * w)[r.start * h * w..r.end * h * w];
                let y = mem.write(*dst, r.start * oh * ow, r.len() * oh * ow);
                match self {
                    Op::AvgPool { count_include_pad, .. } => pool::avg_pool2d(x, r.len(), *h, *w, p, *count_include_pad, y),
                    _ => pool::max_pool2d(x, r.len(), *h, *w, p, y, &mut ws.pool_row),
                }
            }
            Op::AdaptiveAvgPool { planes, h, w, oh, ow, src, dst } => {
                let r = share(*planes, task, tasks);
                let x = &mem.read(*src, planes * h * w)[r.start * h * w..r.end * h * w];
                let y = mem.write(*dst, r.start * oh * ow, r.len() * oh * ow);
                pool::adaptive_avg_pool2d(x, r.len(), *h, *w, *oh, *ow, y);
            }
            Op::Relu { src, dst } => {
                let len = mem.len(*src);
                crate::activation::relu(mem.read(*src, len), mem.write(*dst, 0, len));
            }
            Op::CopyChannels { n, c, hw, src, dst } => {
                let x = mem.read(*src, n * c * hw);
                for b in 0..*n {
                    let y = mem.write(dst.value, (b * dst.channels + dst.offset) * hw, c * hw);
                    y.copy_from_slice(&x[b * c * hw..(b + 1) * c * hw]);
                }
            }
            Op::ConvBatch { layer, n, h, w, relu, src, dst } => {
                let x = mem.read(*src, n * layer.spec().c_in * h * w);
                layer.forward_batch_part(x, *n, *h, *w, *relu, mem.ptr(*dst), task, tasks, ws);
            }
            Op::Unbatch { n, c, hw, pixel_major, src, dst } => {
                let x = mem.read(*src, c * n * hw);
                for b in share(*n, task, tasks) {
                    let y = mem.write(dst.value, (b * dst.channels + dst.offset) * hw, c * hw);
                    // One-pixel maps (a linear layer's) are both layouts: a float per
                    // channel, not a copy call each.
                    if *pixel_major || *hw == 1 {
                        for (i, v) in y.iter_mut().enumerate() {
                            *v = x[i * n + b];
                        }
                        continue;
                    }
                    for (o, plane) in y.chunks_exact_mut(*hw).enumerate() {
                        plane.copy_from_slice(&x[(o * n + b) * hw..][..*hw]);
                    }
                }
            }
            Op::ChannelAffine { scale, shift, n, hw, src, dst } => {
                let len = n * scale.len() * hw;
                let (x, y) = (mem.read(*src, len), mem.write(*dst, 0, len));
                for ((i, o), &v) in y.iter_mut().enumerate().zip(x) {
                    let c = i / hw % scale.len();
                    *o = v * scale[c] + shift[c];
                }
            }
        }
    }
}

/// A plan's values resolved to memory for one run.
pub struct Mem {
    input: *const f32,
    output: *mut f32,
    arena: *mut f32,
    homes: *const Home,
    lens: *const usize,
}

// SAFETY: `Mem` only hands out pointers; `Op::run`'s contract says who may use which.
unsafe impl Sync for Mem {}
unsafe impl Send for Mem {}

impl Mem {
    pub fn new(input: &[f32], output: &mut [f32], arena: &mut [f32], homes: &[Home], lens: &[usize]) -> Self {
        Self { input: input.as_ptr(), output: output.as_mut_ptr(), arena: arena.as_mut_ptr(), homes: homes.as_ptr(), lens: lens.as_ptr() }
    }

    unsafe fn len(&self, v: ValueId) -> usize {
        *self.lens.add(v.0)
    }

    /// First float of value `v`.
    unsafe fn ptr(&self, v: ValueId) -> *mut f32 {
        match *self.homes.add(v.0) {
            Home::Input => self.input as *mut f32,
            Home::Output => self.output,
            Home::Arena(at) => self.arena.add(at),
            Home::Nowhere => unreachable!("value {} has no memory", v.0),
        }
    }

    /// All `len` floats of `v`, read-only.
    unsafe fn read(&self, v: ValueId, len: usize) -> &[f32] {
        debug_assert_eq!(len, self.len(v));
        core::slice::from_raw_parts(self.ptr(v), len)
    }

    /// Floats `[at, at + len)` of `v`, to write.
    #[allow(clippy::mut_from_ref)]
    unsafe fn write(&self, v: ValueId, at: usize, len: usize) -> &mut [f32] {
        debug_assert!(at + len <= self.len(v));
        core::slice::from_raw_parts_mut(self.ptr(v).add(at), len)
    }
}

/// [`Op::scratch_floats`] of a convolution run image by image ([`Conv2d::forward_part`],
/// `images = 1`; training graphs reserve it too) or batched on Winograd, whose blocks
/// stage the rows of up to `images` images.
pub(crate) fn conv_scratch_floats(layer: &Conv2d, h: usize, w: usize, images: usize) -> usize {
    let s = layer.spec();
    // f64: the bound of a huge layer must saturate, not wrap (`as` saturates).
    let f = |v: usize| v as f64;
    let padded = (f(h) + f(2 * s.ph + s.kh)) * (f(w) + f(2 * s.pw + s.kw + crate::gemm::NR * s.sw));
    let staged = match layer.algorithm_for(h, w) {
        Algorithm::Gemm if s.is_pointwise() => 0.0,
        Algorithm::Gemm => f(s.c_in) * padded,
        _ => f(images) * padded + 36.0 * f(crate::gemm::NR) * (f(s.c_in) + 64.0) + f(1 << 17) + f(s.c_in) * padded,
    };
    (2.0 * (staged + f(s.k()) * f(crate::gemm::NR)) + f(1 << 14)) as usize
}
