//! 2-D convolution (cross-correlation, zero padding, `groups = 1`) over NCHW images as
//! `out[c_out × oh·ow] = W[c_out × c_in·kh·kw] · cols[c_in·kh·kw × oh·ow]`.
//!
//! A 1×1 stride-1 unpadded convolution *is* that GEMM with `cols = input`, so it takes
//! the direct path: the GEMM reads the input in place. Every other GEMM-path shape reads
//! `cols` through `im2col`, which packs it strip by strip for one block of output
//! columns at a time and never materialises it. 3×3 stride-1 layers with enough
//! channels run Winograd instead (`Algorithm::select`).

mod im2col;
mod winograd;

use core::ops::Range;

use crate::gemm::{self, Epilogue, MatRef, PackedA};
use im2col::Im2col;
use winograd::{WinogradScratch, WinogradWeights};

/// Output size along one axis: `floor((len + 2·pad - k) / stride) + 1`, or `None` when
/// the padded input is smaller than the kernel.
pub fn conv_out_size(len: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    (len + 2 * pad).checked_sub(k).map(|d| d / stride + 1)
}

/// The layer's fixed geometry (what PyTorch's `Conv2d` constructor takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl ConvSpec {
    pub fn with_input(&self, h: usize, w: usize) -> Conv2dParams {
        let s = *self;
        Conv2dParams { c_in: s.c_in, c_out: s.c_out, kh: s.kh, kw: s.kw, sh: s.sh, sw: s.sw, ph: s.ph, pw: s.pw, h, w }
    }

    /// Length of one GEMM row of the weights: `c_in · kh · kw`.
    pub fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn is_pointwise(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0)
    }
}

/// A convolution's geometry for one input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub c_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub h: usize,
    pub w: usize,
}

impl Conv2dParams {
    pub fn out_h(&self) -> usize {
        conv_out_size(self.h, self.kh, self.sh, self.ph).expect("conv: kernel taller than padded input")
    }

    pub fn out_w(&self) -> usize {
        conv_out_size(self.w, self.kw, self.sw, self.pw).expect("conv: kernel wider than padded input")
    }
}

/// Scratch memory reused across calls; it only grows.
#[derive(Default, Debug)]
pub struct Workspace {
    /// im2col's padded input band.
    band: Vec<f32>,
    /// The GEMM's packed strip of `B`.
    strip: Vec<f32>,
    winograd: WinogradScratch,
}

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Chosen per shape by [`Algorithm::select`].
    Auto,
    /// `W · im2col(x)` (1×1 stride-1: `W · x`, no im2col).
    Gemm,
    /// Winograd F(2×2, 3×3); 3×3 stride-1 only.
    Winograd2,
    /// Winograd F(4×4, 3×3); 3×3 stride-1 only.
    Winograd4,
}

impl Algorithm {
    /// The kernel-selection table.
    ///
    /// 3×3 stride-1 convolutions: Winograd F(4×4, 3×3) with 33–160 input channels,
    /// F(2×2, 3×3) above that, im2col + GEMM below; everything else im2col + GEMM.
    /// Measured on GoogLeNet's 3×3 layers at 224×224 (Node 20, one thread, best of 12,
    /// ms; `node` script in the issue notes):
    ///
    /// | c_in×h×w → c_out | gemm | F2 | F4 |
    /// |---|---|---|---|
    /// | 64×56×56 → 192 | 30.6 | 22.5 | **14.9** |
    /// | 96×28×28 → 128 | 6.2 | 5.3 | **3.7** |
    /// | 128×28×28 → 192 | 12.3 | 9.1 | **6.3** |
    /// | 96×14×14 → 208 | 2.0 | 2.1 | **1.6** |
    /// | 144×14×14 → 288 | 4.5 | 3.6 | **3.1** |
    /// | 160×14×14 → 320 | 5.6 | 4.3 | **3.8** |
    /// | 160×7×7 → 320 | 1.5 | **1.3** | 1.5 |
    /// | 192×7×7 → 384 | 2.2 | **1.9** | 2.9 |
    /// | 32×14×14 → 64 | **0.25** | 0.45 | 0.35 |
    /// | 16×28×28 → 32 | **0.26** | 0.77 | 0.54 |
    ///
    /// F(4×4)'s transformed filters are 4× the weights (F(2×2)'s 1.8×): on small maps each
    /// is used for few tiles, so wide layers become bound by streaming them, and narrow
    /// layers are bound by the transforms. The choice is made per layer, before the
    /// input size is known, and was tuned at GoogLeNet's 224×224.
    pub fn select(spec: &ConvSpec) -> Algorithm {
        match spec.c_in {
            _ if !Self::winograd_fits(spec) => Algorithm::Gemm,
            0..=32 => Algorithm::Gemm,
            33..=160 => Algorithm::Winograd4,
            _ => Algorithm::Winograd2,
        }
    }

    fn winograd_fits(spec: &ConvSpec) -> bool {
        (spec.kh, spec.kw, spec.sh, spec.sw) == (3, 3, 1, 1)
    }
}

#[derive(Clone, Debug)]
enum Kernel {
    Gemm(PackedA),
    /// The transformed filters, and the original OIHW weights (for `weights()`: the
    /// transform is not exactly invertible in f32).
    Winograd(WinogradWeights, Vec<f32>),
}

/// Where a convolution writes: image `b`'s output channels start at channel
/// `channel_offset` of an NCHW tensor with `channels` channels. `channels == c_out,
/// channel_offset == 0` is a plain output; anything else is a slice of a concatenation
/// (an Inception block's branches write side by side this way, with no concat copy).
#[derive(Clone, Copy, Debug)]
pub struct ChannelSlice {
    pub channels: usize,
    pub channel_offset: usize,
}

/// A convolution layer with its weights packed (or transformed) once, at construction.
#[derive(Clone, Debug)]
pub struct Conv2d {
    spec: ConvSpec,
    kernel: Kernel,
    bias: Option<Vec<f32>>,
}

impl Conv2d {
    /// `weights` in PyTorch's `OIHW` order; `bias` has `c_out` values.
    pub fn new(spec: ConvSpec, weights: &[f32], bias: Option<&[f32]>) -> Self {
        Self::with_algorithm(spec, weights, bias, Algorithm::Auto)
    }

    /// As [`Conv2d::new`] with the algorithm forced (for tests and benchmarks); a
    /// Winograd request for a shape it does not fit falls back to the GEMM.
    pub fn with_algorithm(spec: ConvSpec, weights: &[f32], bias: Option<&[f32]>, algorithm: Algorithm) -> Self {
        assert_eq!(weights.len(), spec.c_out * spec.k(), "conv2d: weights length");
        if let Some(b) = bias {
            assert_eq!(b.len(), spec.c_out, "conv2d: bias length");
        }
        assert!(spec.sh > 0 && spec.sw > 0, "conv2d: stride 0");
        let algorithm = if algorithm == Algorithm::Auto { Algorithm::select(&spec) } else { algorithm };
        let kernel = match algorithm {
            Algorithm::Winograd2 | Algorithm::Winograd4 if Algorithm::winograd_fits(&spec) => {
                let variant = if algorithm == Algorithm::Winograd2 { &winograd::F2 } else { &winograd::F4 };
                Kernel::Winograd(WinogradWeights::new(variant, weights, spec.c_out, spec.c_in), weights.to_vec())
            }
            _ => Kernel::Gemm(PackedA::pack(weights, spec.c_out, spec.k())),
        };
        Self { spec, kernel, bias: bias.map(<[f32]>::to_vec) }
    }

    /// The algorithm this layer runs.
    pub fn algorithm(&self) -> Algorithm {
        match &self.kernel {
            Kernel::Gemm(_) => Algorithm::Gemm,
            Kernel::Winograd(w, _) if w.variant().m == 2 => Algorithm::Winograd2,
            Kernel::Winograd(..) => Algorithm::Winograd4,
        }
    }

    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// The weights in `OIHW` order (unpacked; for saving, not for the hot path).
    pub fn weights(&self) -> Vec<f32> {
        match &self.kernel {
            Kernel::Gemm(a) => a.unpack(),
            Kernel::Winograd(_, raw) => raw.clone(),
        }
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// Runs the convolution on `n` images of `c_in × h × w` in `x`, writing into `out` at
    /// `dst`, with ReLU when `relu`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        h: usize,
        w: usize,
        relu: bool,
        out: &mut [f32],
        dst: ChannelSlice,
        ws: &mut Workspace,
    ) {
        let p = self.spec.with_input(h, w);
        let (ohw, in_img) = (p.out_h() * p.out_w(), p.c_in * h * w);
        assert_eq!(x.len(), n * in_img, "conv2d: input length");
        assert!(dst.channel_offset + p.c_out <= dst.channels, "conv2d: channel slice out of range");
        assert_eq!(out.len(), n * dst.channels * ohw, "conv2d: output length");
        let bias = self.bias.as_deref();
        for b in 0..n {
            let img = &x[b * in_img..(b + 1) * in_img];
            if let Kernel::Winograd(wino, _) = &self.kernel {
                let image_out = &mut out[b * dst.channels * ohw..(b + 1) * dst.channels * ohw];
                winograd::conv2d_image(img, &p, wino, bias, relu, image_out, dst, &mut ws.winograd);
                continue;
            }
            let start = (b * dst.channels + dst.channel_offset) * ohw;
            let planes = &mut out[start..start + p.c_out * ohw];
            // SAFETY: `planes` is this image's c_out output planes of ohw floats, borrowed
            // exclusively.
            unsafe { self.forward_gemm_block(img, h, w, relu, 0..self.spec.c_out.div_ceil(gemm::MR), 0..ohw, planes.as_mut_ptr(), ohw, ws) };
        }
    }

    /// One block of one image's convolution on the GEMM path (any layer whose
    /// [`algorithm`](Self::algorithm) is [`Algorithm::Gemm`]): output channels
    /// `panels.start·MR .. min(panels.end·MR, c_out)` (row panels of [`gemm::MR`]) ×
    /// output pixels `pixels` (of `oh·ow`), for an executor that runs disjoint blocks of
    /// a layer as concurrent tasks. `x` is the image (`c_in × h × w`); `out` points at its
    /// first output channel's pixel 0 — of a channel slice too, see [`ChannelSlice`] —
    /// and channel `o` starts `o·ld` floats further (`ld ≥ oh·ow`; `oh·ow` in NCHW).
    ///
    /// How to split: a 1×1 stride-1 layer reads its input in place, so any grid of panels
    /// × pixels works; every other layer builds its im2col strips per block, so split
    /// those by pixels only (all panels), in multiples of [`gemm::NR`] pixels (a block
    /// that ends mid-strip computes that strip's padding lanes too). Results do not
    /// depend on the split.
    ///
    /// # Safety
    /// `out + o·ld + q` must be valid for writes for every channel `o` and pixel `q` of
    /// the block, and no other thread may access those elements during the call.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn forward_gemm_block(&self, x: &[f32], h: usize, w: usize, relu: bool, panels: Range<usize>, pixels: Range<usize>, out: *mut f32, ld: usize, ws: &mut Workspace) {
        let Kernel::Gemm(a) = &self.kernel else { panic!("conv2d: forward_gemm_block on a Winograd layer") };
        let p = self.spec.with_input(h, w);
        let ohw = p.out_h() * p.out_w();
        assert_eq!(x.len(), p.c_in * h * w, "conv2d: input length");
        assert!(pixels.start <= pixels.end && pixels.end <= ohw && ld >= ohw, "conv2d: pixel block out of range");
        assert!(panels.start <= panels.end && panels.end <= a.panels(), "conv2d: channel block out of range");
        if panels.is_empty() || pixels.is_empty() {
            return;
        }
        let ep = Epilogue { bias: self.bias.as_deref(), relu };
        let c = out.add(panels.start * gemm::MR * ld);
        if self.spec.is_pointwise() {
            let b = MatRef { data: x, rows: p.c_in, cols: ohw, ld: ohw };
            gemm::gemm_block(a, panels, b, pixels.clone(), c.add(pixels.start), ld, ep, &mut ws.strip);
            return;
        }
        let mut q0 = pixels.start;
        while q0 < pixels.end {
            let q1 = (q0 + IM2COL_BLOCK).min(pixels.end);
            let cols = Im2col::new(x, &p, q0..q1, &mut ws.band);
            gemm::gemm_block_with(a, panels.clone(), &cols, q0..q1, c.add(q0), ld, ep, &mut ws.strip);
            q0 = q1;
        }
    }
}

/// Output pixels per im2col block (a multiple of `NR`). It only bounds the padded band:
/// conv1 (3×224×224, 7×7/2) measured 6.45, 6.50, 6.52 and 6.50 ms with blocks of 512,
/// 1024, 2048 pixels and the whole image (5×5 convs: within 1 %); 1024 keeps conv1's
/// band at 69 KB instead of the whole padded image's 630 KB.
const IM2COL_BLOCK: usize = 1024;

#[cfg(test)]
mod tests;
