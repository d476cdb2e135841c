//! 2-D convolution (cross-correlation, zero padding, `groups = 1`) over NCHW images as
//! `out[c_out × oh·ow] = W[c_out × c_in·kh·kw] · cols[c_in·kh·kw × oh·ow]`.
//!
//! A 1×1 stride-1 unpadded convolution *is* that GEMM with `cols = input`, so it takes
//! the direct path: the GEMM reads the input in place. Every other GEMM-path shape reads
//! `cols` through `im2col`, which packs it strip by strip for one block of output
//! columns at a time and never materialises it. 3×3 stride-1 layers with enough
//! channels run Winograd instead (`Algorithm::select`).

pub(crate) mod batch;
pub(crate) mod dense;
mod im2col;
mod winograd;

use core::ops::Range;
use std::sync::OnceLock;

use crate::alloc::{self, OutOfMemory};
use crate::gemm::{self, Epilogue, MatRef, PackedA};
use dense::Dense;
use im2col::Im2col;
use crate::workspace::Workspace;
use winograd::WinogradWeights;

/// Output size along one axis: `floor((len + 2·pad - k) / stride) + 1`, or `None` when
/// the padded input is smaller than the kernel.
pub fn conv_out_size(len: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    len.checked_add(pad.checked_mul(2)?)?.checked_sub(k).map(|d| d / stride + 1)
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

    /// 1×1 stride 1 without padding: the GEMM reads the input in place (no im2col).
    pub fn is_pointwise(&self) -> bool {
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

/// Multiply-adds per output element of one row panel and one unit of `k` (for task sizing).
const MR_WORK: usize = gemm::MR;

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
    /// 3×3 stride-1 convolutions: Winograd F(4×4, 3×3) or F(2×2, 3×3) by the output size
    /// (below), im2col + GEMM below 8 input channels or 3×3 outputs; everything else
    /// im2col + GEMM.
    /// Measured in wasm, without the API's per-call costs (`ConvBench` in
    /// `crates/wasm/src/bench.rs`; Node 20, one thread, best of 11 interleaved rounds, the
    /// lower of two runs, ms), on every 3×3 stride-1 shape of GoogLeNet at 224×224, the
    /// ReLU/seed network's and torchvision's (whose branch 3 is a small-channel 3×3); bold
    /// is the fastest:
    ///
    /// | c_in×h×w → c_out | gemm | F2 | F4 | | c_in×h×w → c_out | gemm | F2 | F4 |
    /// |---|---|---|---|---|---|---|---|---|
    /// | 64×56×56 → 192 | 23.2 | 8.89 | **5.37** | | 16×28×28 → 32 | 0.245 | 0.138 | **0.093** |
    /// | 96×28×28 → 128 | 5.25 | 2.23 | **1.49** | | 32×28×28 → 96 | 1.24 | 0.62 | **0.43** |
    /// | 128×28×28 → 192 | 10.6 | 4.26 | **2.84** | | 16×14×14 → 48 | 0.090 | 0.054 | **0.039** |
    /// | 96×14×14 → 208 | 2.13 | 0.96 | **0.65** | | 24×14×14 → 64 | 0.168 | 0.094 | **0.069** |
    /// | 112×14×14 → 224 | 2.70 | 1.22 | **0.79** | | 32×14×14 → 64 | 0.228 | 0.119 | **0.085** |
    /// | 128×14×14 → 256 | 3.54 | 1.60 | **1.04** | | 32×14×14 → 128 | 0.440 | 0.224 | **0.161** |
    /// | 144×14×14 → 288 | 4.47 | 2.02 | **1.36** | | 32×7×7 → 128 | 0.143 | **0.070** | 0.075 |
    /// | 160×14×14 → 320 | 5.47 | 2.44 | **1.65** | | 48×7×7 → 128 | 0.213 | **0.096** | 0.107 |
    /// | 160×7×7 → 320 | 1.62 | **0.69** | 0.77 | | | | | |
    /// | 192×7×7 → 384 | 2.33 | **1.08** | 1.15 | | | | | |
    ///
    /// Below 8 input channels the GEMM wins or ties (28×28 → 16, gemm/F2/F4: 0.010/0.023/0.016
    /// ms with 1 channel, 0.018/0.026/0.019 with 2; Winograd is ahead from 4 channels at 28×28
    /// but not at 7×7 (0.007/0.006/0.007), and from 8 everywhere: 0.013/0.008/0.009 at 7×7).
    ///
    /// The best variant depends on the map size. F(4×4)'s tiles cover 16 outputs but its
    /// transformed filters are 4× the weights (F(2×2)'s 1.8×), and the GEMM pads tiles to
    /// 8 columns: on small maps each filter is used for few tiles. At 128 → 256 channels:
    ///
    /// | output h×w | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 16 |
    /// |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
    /// | gemm | **0.13** | **0.15** | 0.27 | 0.28 | 0.53 | 0.70 | 1.05 | 1.15 | 1.58 | 1.89 | 2.26 | 2.65 | 3.11 | 3.50 | 4.92 |
    /// | F2 | 0.22 | 0.22 | **0.22** | **0.22** | **0.44** | **0.44** | **0.45** | **0.45** | **0.93** | **0.94** | 1.15 | 1.17 | 1.60 | 1.59 | 1.81 |
    /// | F4 | 0.50 | 0.49 | 0.50 | 0.50 | 0.51 | 0.51 | 0.52 | 0.51 | 1.09 | 1.08 | **1.06** | **1.05** | **1.09** | **1.05** | **1.06** |
    ///
    /// So, by the output's smaller side: F4 from 11 up, F2 from 3 to 10, the GEMM below 3
    /// (and below 8 input channels). The choice is made per input size, when a plan is
    /// compiled (a layer keeps its OIHW weights and transforms them for the variants its
    /// input sizes need): inception4e (160×14×14 → 320) runs F4 and inception5a, the same
    /// spec at 7×7, F2 — faster (0.69 vs 0.77 ms) and 4 MB of transformed filters smaller.
    pub fn select(spec: &ConvSpec, oh: usize, ow: usize) -> Algorithm {
        match (spec.c_in, oh.min(ow)) {
            _ if !Self::winograd_fits(spec) => Algorithm::Gemm,
            (0..=7, _) | (_, 0..=2) => Algorithm::Gemm,
            (_, 3..=10) => Algorithm::Winograd2,
            _ => Algorithm::Winograd4,
        }
    }

    fn winograd_fits(spec: &ConvSpec) -> bool {
        (spec.kh, spec.kw, spec.sh, spec.sw) == (3, 3, 1, 1)
    }
}

#[derive(Clone, Debug)]
enum Kernel {
    /// Packed for the GEMM once, at construction: every shape Winograd does not fit, and
    /// forced GEMMs.
    Gemm(PackedA),
    /// 3×3 stride 1: the weights packed for the GEMM at construction, and each Winograd
    /// variant's transformed filters, made the first time an input size needs them
    /// ([`Conv2d::prepare`]), so a layer holds only the variants its inputs use. The GEMM
    /// packing runs input sizes that select the GEMM and Winograd blocks that fall back
    /// to it (NaN, ∞ or huge inputs, see [`WinogradWeights::accepts`]), and is what
    /// `weights()` unpacks (Winograd's transform is not exactly invertible in f32) and
    /// what the filter transforms read. It replaces the OIHW copy these layers kept
    /// before, in the same memory (GoogLeNet's 3×3 weights: 12.4 MB), where keeping both
    /// would have added that much.
    Square3x3 { gemm: PackedA, forced: Option<Algorithm>, f2: OnceLock<WinogradWeights>, f4: OnceLock<WinogradWeights> },
}

/// A layer's weights as one input size runs them.
#[derive(Clone, Copy)]
enum Packed<'a> {
    Gemm(&'a PackedA),
    /// The transformed filters, and the GEMM's packing for blocks Winograd cannot take.
    Winograd(&'a WinogradWeights, &'a PackedA),
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

/// A convolution layer with its weights packed once (at construction, or for Winograd when
/// the first plan for an input size is compiled).
#[derive(Clone, Debug)]
pub struct Conv2d {
    spec: ConvSpec,
    kernel: Kernel,
    bias: Option<Vec<f32>>,
    /// The layer as a fully connected one on the tiny input sizes where that skips its
    /// padding taps (see [`dense`]), one slot per size, made when a batched plan first
    /// needs it ([`Conv2d::prepare_batch`]).
    dense: Box<[OnceLock<Dense>]>,
}

impl Conv2d {
    /// `weights` in PyTorch's `OIHW` order; `bias` has `c_out` values.
    pub fn new(spec: ConvSpec, weights: &[f32], bias: Option<&[f32]>) -> Self {
        Self::with_algorithm(spec, weights, bias, Algorithm::Auto)
    }

    /// As [`Conv2d::new`] with the algorithm forced (for tests and benchmarks); a
    /// Winograd request for a shape it does not fit falls back to the GEMM.
    pub fn with_algorithm(spec: ConvSpec, weights: &[f32], bias: Option<&[f32]>, algorithm: Algorithm) -> Self {
        Self::try_with_algorithm(spec, weights, bias, algorithm).expect("conv2d: out of memory")
    }

    /// As [`Conv2d::with_algorithm`], reporting an allocation failure instead of aborting.
    pub fn try_with_algorithm(spec: ConvSpec, weights: &[f32], bias: Option<&[f32]>, algorithm: Algorithm) -> Result<Self, OutOfMemory> {
        assert_eq!(weights.len(), spec.c_out * spec.k(), "conv2d: weights length");
        if let Some(b) = bias {
            assert_eq!(b.len(), spec.c_out, "conv2d: bias length");
        }
        assert!(spec.sh > 0 && spec.sw > 0, "conv2d: stride 0");
        let gemm = PackedA::try_pack(weights, spec.c_out, spec.k())?;
        let kernel = match algorithm {
            Algorithm::Auto | Algorithm::Winograd2 | Algorithm::Winograd4 if Algorithm::winograd_fits(&spec) => {
                Kernel::Square3x3 { gemm, forced: (algorithm != Algorithm::Auto).then_some(algorithm), f2: OnceLock::new(), f4: OnceLock::new() }
            }
            _ => Kernel::Gemm(gemm),
        };
        let bias = bias.map(alloc::copied).transpose()?;
        Ok(Self { spec, kernel, bias, dense: (0..dense::slots(&spec)).map(|_| OnceLock::new()).collect() })
    }

    /// A layer over weights already packed for the GEMM (training repacks each forward's
    /// weights into the last forward's buffer: a new one every step fragmented the heap);
    /// 3×3 stride-1 layers pick Winograd as [`Conv2d::new`]'s do, once
    /// [`prepare`](Self::prepare)d.
    pub(crate) fn from_gemm_packing(spec: ConvSpec, a: PackedA, bias: Option<&[f32]>) -> Result<Self, OutOfMemory> {
        assert_eq!((a.m(), a.k()), (spec.c_out, spec.k()), "conv2d: packed weights shape");
        let kernel = if Algorithm::winograd_fits(&spec) { Kernel::Square3x3 { gemm: a, forced: None, f2: OnceLock::new(), f4: OnceLock::new() } } else { Kernel::Gemm(a) };
        // Training runs dense layers on its own (`train::graph`): no dense slots.
        Ok(Self { spec, kernel, bias: bias.map(alloc::copied).transpose()?, dense: Box::default() })
    }

    /// The GEMM packing of a [`from_gemm_packing`](Self::from_gemm_packing) layer, for reuse.
    pub(crate) fn into_gemm_packing(self) -> PackedA {
        match self.kernel {
            Kernel::Gemm(a) | Kernel::Square3x3 { gemm: a, .. } => a,
        }
    }

    /// The algorithm this layer runs on an `h × w` input (the selection table's choice,
    /// or the forced one).
    pub fn algorithm_for(&self, h: usize, w: usize) -> Algorithm {
        match &self.kernel {
            Kernel::Gemm(_) => Algorithm::Gemm,
            Kernel::Square3x3 { forced: Some(a), .. } => *a,
            Kernel::Square3x3 { forced: None, .. } => {
                let (oh, ow) = self.out_size(h, w).expect("conv2d: kernel larger than the padded input");
                Algorithm::select(&self.spec, oh, ow)
            }
        }
    }

    /// The algorithm a batch of `h × w` inputs runs ([`batches`](Self::batches)): as
    /// [`algorithm_for`](Self::algorithm_for), but F(4×4) where the table picks F(2×2) (3 to
    /// 10 outputs across): batched, tiles from several images fill the GEMM's strips
    /// whatever their size, and F(4×4) does 2.25 multiplies per output to F(2×2)'s 4.
    /// Measured (`ConvBench::runBatch`, wasm, one thread, median of 9, ms; F(2×2) image by
    /// image → F(2×2) batched → F(4×4) batched): 64→192 on 8×8 maps × 64 images 14.0 →
    /// 15.5 → 8.4; 128→192 on 4×4 × 64 13.6 → 7.4 → 4.3; 192→384 on 7×7 × 8 9.0 → 10.0 →
    /// 5.2. A batch's outputs may so differ from one image's in the last bits (both
    /// within the fixtures' tolerances, `conv::winograd`).
    pub fn batch_algorithm_for(&self, h: usize, w: usize) -> Algorithm {
        match (&self.kernel, self.algorithm_for(h, w)) {
            (Kernel::Square3x3 { forced: None, .. }, Algorithm::Winograd2) => Algorithm::Winograd4,
            (_, a) => a,
        }
    }

    /// Makes the packed weights an `h × w` input needs (a Winograd variant's transformed
    /// filters, on its first use; the GEMM's, which Winograd falls back to, exist from
    /// construction): plans call this when they are compiled, so that a run never
    /// allocates. A failed allocation leaves the layer as it was (nothing is half made:
    /// each variant is set only once complete), so a later call can try again.
    pub fn prepare(&self, h: usize, w: usize) -> Result<(), OutOfMemory> {
        self.prepare_algorithm(self.algorithm_for(h, w))
    }

    /// [`prepare`](Self::prepare) for a batched plan ([`batches`](Self::batches)): the
    /// weights of [`batch_algorithm_for`](Self::batch_algorithm_for), and the dense form's
    /// when the layer runs dense on `h × w` (see [`dense`]).
    pub fn prepare_batch(&self, h: usize, w: usize) -> Result<(), OutOfMemory> {
        self.prepare_algorithm(self.batch_algorithm_for(h, w))?;
        if let Some(cell) = self.dense_slot(h, w) {
            init_once(cell, || Dense::new(&self.spec, h, w, &self.weights()?, self.bias.as_deref()))?;
        }
        Ok(())
    }

    fn prepare_algorithm(&self, algorithm: Algorithm) -> Result<(), OutOfMemory> {
        let bias = self.bias.as_deref();
        if let Kernel::Square3x3 { gemm, f2, f4, .. } = &self.kernel {
            match algorithm {
                Algorithm::Winograd2 => init_once(f2, || WinogradWeights::new(&winograd::F2, gemm, bias))?,
                Algorithm::Winograd4 => init_once(f4, || WinogradWeights::new(&winograd::F4, gemm, bias))?,
                _ => {}
            }
        }
        Ok(())
    }

    fn dense_slot(&self, h: usize, w: usize) -> Option<&OnceLock<Dense>> {
        let gemm = self.batch_algorithm_for(h, w) == Algorithm::Gemm;
        dense::slot(&self.spec, h, w).filter(|_| gemm).and_then(|i| self.dense.get(i))
    }

    /// True when a batch of `h × w` inputs runs as the fully connected layer the
    /// convolution is on maps that small (see [`dense`]): its batched GEMM has `n`
    /// columns, one per image, and `c_out·oh·ow` rows, and writes `c_out × oh·ow × n`
    /// (a pixel's images side by side) instead of `c_out × n × oh·ow`.
    pub fn batch_is_dense(&self, h: usize, w: usize) -> bool {
        self.dense_slot(h, w).is_some()
    }

    /// The packed weights for an `h × w` input, made on first use (outside plans, which
    /// [`Conv2d::prepare`] first).
    fn packed_for(&self, h: usize, w: usize) -> Packed<'_> {
        self.packed(self.algorithm_for(h, w))
    }

    /// The packed weights of `algorithm` (one this layer runs), made on first use.
    fn packed(&self, algorithm: Algorithm) -> Packed<'_> {
        self.prepare_algorithm(algorithm).expect("conv2d: out of memory preparing the weights");
        let ready = "prepared above";
        match &self.kernel {
            Kernel::Gemm(a) => Packed::Gemm(a),
            Kernel::Square3x3 { gemm, f2, f4, .. } => match algorithm {
                Algorithm::Winograd2 => Packed::Winograd(f2.get().expect(ready), gemm),
                Algorithm::Winograd4 => Packed::Winograd(f4.get().expect(ready), gemm),
                _ => Packed::Gemm(gemm),
            },
        }
    }

    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// The weights in `OIHW` order (unpacked; for saving, not for the hot path).
    pub fn weights(&self) -> Result<Vec<f32>, OutOfMemory> {
        match &self.kernel {
            Kernel::Gemm(a) | Kernel::Square3x3 { gemm: a, .. } => a.unpack(),
        }
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// Output size for an `h × w` input, `None` when the kernel does not fit.
    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let s = &self.spec;
        Some((conv_out_size(h, s.kh, s.sh, s.ph)?, conv_out_size(w, s.kw, s.sw, s.pw)?))
    }

    /// Independent parts one image's output is split into for `threads` threads (see
    /// [`Conv2d::forward_part`]): row panels of output channels for the direct GEMM (1×1,
    /// which reads its input in place); runs of `NR`-pixel strips, all channels, for the
    /// im2col GEMM (each part builds the im2col strips of its own pixels); tile blocks for
    /// Winograd (each block split by output channels too when there are fewer than two
    /// blocks per thread, see `winograd_split`).
    pub fn parts(&self, h: usize, w: usize, threads: usize) -> usize {
        match self.packed_for(h, w) {
            Packed::Gemm(a) => {
                let (oh, ow) = self.out_size(h, w).expect("conv2d: kernel larger than the padded input");
                let strips = (oh * ow).div_ceil(gemm::NR);
                // Pixel strips first: a part packs each of its strips once (splitting by
                // panels instead makes every part pack all of B again: 18 % of a 14×14
                // 1×1 layer), and the weights stream over every strip anyway. Only when
                // strips run short (7×7 maps: 7) does a 1×1 layer split panels too.
                let tasks = crate::split::split(strips * a.panels(), a.k() * MR_WORK * gemm::NR, threads);
                // At most one group per panel: none for a layer of 0 output channels (no
                // panels, no tasks; `clamp(1, 0)` panicked on one).
                let panel_groups = if self.spec.is_pointwise() { (tasks / strips).max(1).min(a.panels()) } else { 1 };
                tasks.min(strips) * panel_groups
            }
            Packed::Winograd(wino, _) => {
                let (blocks, co_splits) = self.winograd_split(wino, h, w, 1, threads);
                blocks * co_splits
            }
        }
    }

    /// Tile blocks of one image and the output-channel split of each, for `threads`.
    /// Splitting channels repeats the block's input transform, so it only happens to give
    /// every thread two parts — or, for a layer of one block, one part: its transform is a
    /// larger share of small maps, and the other steps of its stage balance the threads.
    /// GoogLeNet's 14×14 and 7×7 3×3 layers are one block each; split 2 ways instead of 4
    /// at 2 threads, their stages took 0.45 ms less of a 30 ms forward and 0.9 ms less
    /// work (`bench/threads-profile.mjs`, both splits alternating in one process).
    fn winograd_split(&self, wino: &WinogradWeights, h: usize, w: usize, n: usize, threads: usize) -> (usize, usize) {
        let (_, tiles, block) = self.winograd_blocks(wino, h, w, n);
        let blocks = tiles.div_ceil(block);
        let panels = self.spec.c_out.div_ceil(gemm::MR);
        let co_splits = match blocks {
            _ if threads <= 1 || blocks >= 2 * threads => 1,
            1 => threads,
            _ => (2 * threads).div_ceil(blocks),
        };
        // No more splits than panels: none for a layer of 0 output channels.
        let co_splits = co_splits.min(panels);
        (blocks, co_splits)
    }

    /// The geometry, the number of tiles of `n` images and the tiles per block of a
    /// Winograd layer.
    fn winograd_blocks(&self, wino: &WinogradWeights, h: usize, w: usize, n: usize) -> (Conv2dParams, usize, usize) {
        let p = self.spec.with_input(h, w);
        let (th, tw) = winograd::tile_grid(&p, wino.variant());
        let block = winograd::block_tiles(&p, wino, n);
        (p, n * th * tw, block)
    }

    /// Part `part` of `parts` of one image `x` (`c_in × h × w`): writes its share of the
    /// `c_out` output planes that start at `out` (channel after channel, `oh·ow` floats each).
    ///
    /// # Safety
    /// `out` must be valid for writes of `c_out·oh·ow` floats, and no other thread may access
    /// the elements this part writes while it runs (parts of one image write disjoint ones).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub unsafe fn forward_part(&self, x: &[f32], h: usize, w: usize, relu: bool, out: *mut f32, part: usize, parts: usize, ws: &mut Workspace) {
        let (oh, ow) = self.out_size(h, w).expect("conv2d: kernel larger than the padded input");
        let ohw = oh * ow;
        match self.packed_for(h, w) {
            Packed::Gemm(a) => {
                // The grid `parts` decomposes into (see `parts`): strip groups × panel groups.
                let strips = ohw.div_ceil(gemm::NR);
                let strip_groups = parts.min(strips);
                let panel_groups = parts / strip_groups;
                let (sg, pg) = (part / panel_groups, part % panel_groups);
                let strips = crate::split::share(strips, sg, strip_groups);
                let panels = crate::split::share(a.panels(), pg, panel_groups);
                let pixels = strips.start * gemm::NR..(strips.end * gemm::NR).min(ohw);
                // SAFETY: `out` holds the c_out planes (the caller's contract); this part
                // writes only channels `panels` × pixels `pixels`, which no other part does.
                self.gemm_block(a, x, h, w, relu, panels, pixels, out, ohw, ws);
            }
            // SAFETY: `out` holds the c_out planes (the caller's contract); this part
            // writes only the pixels of its tiles in its planes, which no other part does.
            Packed::Winograd(wino, a) => self.winograd_part(wino, a, x, 1, h, w, relu, out, ohw, part, parts, ws),
        }
    }

    /// Part `part` of `parts` of a Winograd layer on `n` images (see `winograd_split`): a
    /// block of tiles × a range of output channels.
    ///
    /// # Safety
    /// As [`winograd::conv_block`] for the part's pixels and planes.
    #[allow(clippy::too_many_arguments)]
    unsafe fn winograd_part(&self, wino: &WinogradWeights, a: &PackedA, x: &[f32], n: usize, h: usize, w: usize, relu: bool, out: *mut f32, ld: usize, part: usize, parts: usize, ws: &mut Workspace) {
        let (p, n_tiles, block) = self.winograd_blocks(wino, h, w, n);
        let c_out = self.spec.c_out;
        let co_splits = parts / n_tiles.div_ceil(block);
        debug_assert_eq!(n_tiles.div_ceil(block) * co_splits, parts);
        let (b, s) = (part / co_splits, part % co_splits);
        let panels = crate::split::share(c_out.div_ceil(gemm::MR), s, co_splits);
        let co = panels.start * gemm::MR..(panels.end * gemm::MR).min(c_out);
        let tiles = b * block..((b + 1) * block).min(n_tiles);
        self.winograd_block(wino, a, x, &p, tiles, co, relu, out, ld, ws);
    }

    /// Output channels `co` of tiles `tiles` of the images in `x` on Winograd
    /// ([`winograd::conv_block`]), or, for an image whose input to these tiles holds a
    /// value the transforms cannot take (NaN, ±∞, or beyond the layer's limit, see
    /// [`WinogradWeights::accepts`]), on the GEMM path (`a`), one run of consecutive pixels
    /// at a time: the GEMM layer's bits, so a non-finite input makes non-finite exactly the
    /// outputs whose window holds it, as NaN or ±∞ exactly where the GEMM does. The choice
    /// depends on each image's input alone (on maps that batch, the whole image's; on
    /// larger ones, the rows of a block, which is the same for any batch), and a tile's
    /// Winograd bits not on the block (the GEMM sums each column on its own): results stay
    /// the same for every split and thread count, batched or image by image.
    ///
    /// The check is one pass over the block's input rows before the transform reads them:
    /// 0.46 % of the time of GoogLeNet's 18 distinct 3×3 layer shapes (both variants, at
    /// 224×224), 0.1–1.0 % per layer (measured in wasm, one thread, as a tenth of the
    /// extra time taken with the check run 11 times instead of once: 21.85 → 22.86 ms).
    ///
    /// # Safety
    /// As [`winograd::conv_block`]: plane `o` of image `b` starts at `out + o·ld + b·oh·ow`,
    /// and this call alone accesses the pixels of `tiles` in planes `co`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn winograd_block(&self, wino: &WinogradWeights, a: &PackedA, x: &[f32], p: &Conv2dParams, tiles: Range<usize>, co: Range<usize>, relu: bool, out: *mut f32, ld: usize, ws: &mut Workspace) {
        let (img, ohw) = (p.c_in * p.h * p.w, p.out_h() * p.out_w());
        let (th, tw) = winograd::tile_grid(p, wino.variant());
        let image = |b: usize| &x[b * img..(b + 1) * img];
        // Which input decides: on maps that batch, the whole image (its blocks depend on
        // the batch size, so a decision per block would not be the same image by image);
        // on larger maps, the block's own rows (blocks there are the same for any batch).
        let whole = 0..th * tw;
        let accepts = |b: usize, t: &Range<usize>| wino.accepts(image(b), p, if ohw <= BATCH_PIXELS { &whole } else { t });
        if winograd::images_of(&tiles, th * tw).all(|(b, t)| accepts(b, &t)) {
            winograd::conv_block(x, p, wino, tiles, co, self.bias.as_deref(), relu, out, ld, &mut ws.winograd);
            return;
        }
        for (b, t) in winograd::images_of(&tiles, th * tw) {
            let out = out.add(b * ohw);
            if accepts(b, &t) {
                winograd::conv_block(image(b), p, wino, t, co.clone(), self.bias.as_deref(), relu, out, ld, &mut ws.winograd);
            } else {
                self.gemm_fallback(wino, a, image(b), p, t, co.clone(), relu, out, ld, ws);
            }
        }
    }

    /// [`winograd_block`](Self::winograd_block)'s GEMM path for tiles `tiles` of one image.
    ///
    /// # Safety
    /// As [`winograd_block`](Self::winograd_block), for one image.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_fallback(&self, wino: &WinogradWeights, a: &PackedA, x: &[f32], p: &Conv2dParams, tiles: Range<usize>, co: Range<usize>, relu: bool, out: *mut f32, ld: usize, ws: &mut Workspace) {
        let (m, ow) = (wino.variant().m, p.out_w());
        let tw = ow.div_ceil(m);
        let panels = co.start / gemm::MR..co.end.div_ceil(gemm::MR);
        // The tiles' pixels, row by row, merged into runs of consecutive pixels (whole tile
        // rows make one run), each one GEMM block.
        let mut run = 0..0;
        for oy in tiles.start / tw * m..((tiles.end - 1) / tw * m + m).min(p.out_h()) {
            let row0 = oy / m * tw; // first tile of this output row's tile row
            let (tx0, tx1) = (tiles.start.max(row0) - row0, tiles.end.min(row0 + tw) - row0);
            let pixels = oy * ow + tx0 * m..oy * ow + (tx1 * m).min(ow);
            if pixels.start == run.end {
                run.end = pixels.end;
                continue;
            }
            if !run.is_empty() {
                self.gemm_block(a, x, p.h, p.w, relu, panels.clone(), run, out, ld, ws);
            }
            run = pixels;
        }
        self.gemm_block(a, x, p.h, p.w, relu, panels, run, out, ld, ws);
    }

    /// Runs the convolution on `n` images of `c_in × h × w` in `x`, writing into `out` at
    /// `dst`, with ReLU when `relu`.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
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
        for b in 0..n {
            let img = &x[b * in_img..(b + 1) * in_img];
            let start = (b * dst.channels + dst.channel_offset) * ohw;
            let planes = out[start..start + p.c_out * ohw].as_mut_ptr();
            // SAFETY: `planes` is this image's c_out output planes of ohw floats, borrowed
            // exclusively; the blocks of a Winograd layer write disjoint pixels.
            match self.packed_for(h, w) {
                Packed::Gemm(a) => unsafe { self.gemm_block(a, img, h, w, relu, 0..a.panels(), 0..ohw, planes, ohw, ws) },
                Packed::Winograd(wino, a) => {
                    let (_, tiles, block) = self.winograd_blocks(wino, h, w, 1);
                    for t0 in (0..tiles).step_by(block) {
                        unsafe { self.winograd_block(wino, a, img, &p, t0..(t0 + block).min(tiles), 0..p.c_out, relu, planes, ohw, ws) };
                    }
                }
            }
        }
    }

    /// One block of one image's convolution on the GEMM path (any layer whose
    /// [`algorithm_for`](Self::algorithm_for) the input is [`Algorithm::Gemm`]): output channels
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
        let Packed::Gemm(a) = self.packed_for(h, w) else { panic!("conv2d: forward_gemm_block on a Winograd layer") };
        self.gemm_block(a, x, h, w, relu, panels, pixels, out, ld, ws);
    }

    /// True when an `h × w` input of `n > 1` images runs faster batched
    /// ([`forward_batch_part`](Self::forward_batch_part)) than image by image: maps of at
    /// most [`BATCH_PIXELS`] pixels, where one image's pixels fill only a few of the
    /// microkernel's `NR` columns per strip (the 7×7 to 1×1 maps of a 224×224 GoogLeNet,
    /// most of a 32×32 one) whose pixels — or Winograd tiles — leave part of a strip
    /// empty: GEMM-path layers then run one GEMM over the batch, Winograd layers blocks of
    /// tiles from several images. Where an image fills whole strips, image by image is as
    /// fast and writes NCHW directly: Winograd measured (`ConvBench::runBatch`, wasm, one
    /// thread, median of 9, ms for 64 images, F(2×2), image by image → batched) 128→192 on
    /// 3×3 maps (4 tiles) 12.4 → 6.9, on 4×4 (4) 13.6 → 7.4, on 6×6 (9) 24.6 → 15.5, but
    /// 64→192 on 8×8 (16 tiles, two full strips) 14.6 → 15.5 (larger blocks only leave
    /// L1); GEMM layers on 4×4 and 8×8 maps image by image saved the batch's copy into NCHW
    /// (`Unbatch`): GoogLeNet at 64×32×32, sum of the profile's stages 106.4, 106.0, 101.9
    /// → 101.2, 100.7, 97.6 ms (`bench/threads-profile.mjs`, runs alternating).
    pub fn batches(&self, n: usize, h: usize, w: usize) -> bool {
        let Some((oh, ow)) = self.out_size(h, w) else { return false };
        // Winograd's output tiles are m×m (no weights needed to count them).
        let tiles_fill_strips = match self.batch_algorithm_for(h, w) {
            Algorithm::Winograd2 => oh.div_ceil(2) * ow.div_ceil(2) % gemm::NR == 0,
            Algorithm::Winograd4 => oh.div_ceil(4) * ow.div_ceil(4) % gemm::NR == 0,
            _ => oh * ow % gemm::NR == 0,
        };
        n > 1 && oh * ow <= BATCH_PIXELS && !tiles_fill_strips
    }

    /// Columns of the batched GEMM of a GEMM-path layer for `n` images of `h × w`:
    /// `n·oh·ow`, or `n` when the layer runs dense.
    fn batch_columns(&self, n: usize, h: usize, w: usize) -> usize {
        let (oh, ow) = self.out_size(h, w).expect("conv2d: kernel larger than the padded input");
        if self.batch_is_dense(h, w) { n } else { n * oh * ow }
    }

    /// Independent parts a batch of `n` images runs in on `threads` threads (see
    /// [`forward_batch_part`](Self::forward_batch_part)): runs of the GEMM's `NR`-column
    /// strips, or Winograd's blocks × output-channel ranges.
    pub fn batch_parts(&self, n: usize, h: usize, w: usize, threads: usize) -> usize {
        match self.packed(self.batch_algorithm_for(h, w)) {
            Packed::Gemm(_) => {
                let (oh, ow) = self.out_size(h, w).expect("conv2d: kernel larger than the padded input");
                let columns = self.batch_columns(n, h, w);
                // Multiply-adds per strip: the GEMM's rows × k, `NR` columns at a time.
                let work = self.spec.c_out * self.spec.k() * oh * ow * n / columns.max(1);
                crate::split::split(columns.div_ceil(gemm::NR), work * gemm::NR, threads)
            }
            Packed::Winograd(wino, _) => {
                let (blocks, co_splits) = self.winograd_split(wino, h, w, n, threads);
                blocks * co_splits
            }
        }
    }

    /// Part `part` of `parts` ([`batch_parts`](Self::batch_parts)) of the layer on the batch
    /// `x` (`n × c_in × h × w`), written into `out` as `c_out` rows of `n·oh·ow` floats
    /// (pixel `q` of image `b` at `b·oh·ow + q`) — or, for a layer that runs dense on `h × w`
    /// ([`batch_is_dense`](Self::batch_is_dense)), `c_out·oh·ow` rows of `n` (image `b` at
    /// column `b` of row `o·oh·ow + q`) — with bias and ReLU fused: each element the same
    /// sum, in the same order, as image by image (dense: less its padding taps' zero
    /// terms), whatever the split.
    ///
    /// # Safety
    /// `out` must hold `c_out·oh·ow·n` floats, and no other thread may access the elements
    /// this part writes while it runs (the parts of one batch write disjoint ones).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)] // one copy for plans and training's forward and backward (the module's size)
    pub unsafe fn forward_batch_part(&self, x: &[f32], n: usize, h: usize, w: usize, relu: bool, out: *mut f32, part: usize, parts: usize, ws: &mut Workspace) {
        let p = self.spec.with_input(h, w);
        assert_eq!(x.len(), n * p.c_in * h * w, "conv2d: input length");
        let a = match self.packed(self.batch_algorithm_for(h, w)) {
            Packed::Gemm(a) => a,
            Packed::Winograd(wino, a) => return self.winograd_part(wino, a, x, n, h, w, relu, out, n * p.out_h() * p.out_w(), part, parts, ws),
        };
        let big_n = self.batch_columns(n, h, w);
        let strips = crate::split::share(big_n.div_ceil(gemm::NR), part, parts);
        let pixels = strips.start * gemm::NR..(strips.end * gemm::NR).min(big_n);
        let c = out.add(pixels.start);
        if let Some(cell) = self.dense_slot(h, w) {
            self.prepare_batch(h, w).expect("conv2d: out of memory preparing the dense weights");
            let d = cell.get().expect("prepared above");
            let ep = Epilogue { bias: d.bias.as_deref(), relu };
            let b = batch::BatchColumns { data: x, rows: p.c_in * h * w, ohw: 1, n };
            gemm::gemm_block_with(&d.a, 0..d.a.panels(), &b as &dyn gemm::PackB, pixels, c, big_n, ep, &mut ws.strip);
            return;
        }
        let ep = Epilogue { bias: self.bias.as_deref(), relu };
        if self.spec.is_pointwise() {
            gemm::gemm_block_with(a, 0..a.panels(), &batch::BatchColumns { data: x, rows: p.c_in, ohw: h * w, n } as &dyn gemm::PackB, pixels, c, big_n, ep, &mut ws.strip);
        } else {
            gemm::gemm_block_with(a, 0..a.panels(), &batch::BatchIm2col { x, p, n } as &dyn gemm::PackB, pixels, c, big_n, ep, &mut ws.strip);
        }
    }

    /// [`forward_gemm_block`](Self::forward_gemm_block) with the layer's GEMM packing `a`
    /// (which Winograd layers have too).
    ///
    /// # Safety
    /// As [`forward_gemm_block`](Self::forward_gemm_block).
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_block(&self, a: &PackedA, x: &[f32], h: usize, w: usize, relu: bool, panels: Range<usize>, pixels: Range<usize>, out: *mut f32, ld: usize, ws: &mut Workspace) {
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

/// Output maps of at most this many pixels run as one GEMM over the batch (see
/// [`Conv2d::batches`]): 8×8 and smaller.
pub const BATCH_PIXELS: usize = 64;

#[cfg(test)]
mod tests;

/// Sets `cell` to `make()` unless it is set; a failed `make` leaves it unset.
fn init_once<T>(cell: &OnceLock<T>, make: impl FnOnce() -> Result<T, OutOfMemory>) -> Result<(), OutOfMemory> {
    if cell.get().is_none() {
        // Two threads racing here both build; one value is kept (plans prepare on the one
        // thread that compiles them, so this does not happen in practice).
        let _ = cell.set(make()?);
    }
    Ok(())
}
