//! wasm-bindgen glue over `inception-kernels`: owns the memory (tensor buffers, packed
//! weights, scratch) and re-checks every length before a kernel runs, returning a
//! JavaScript `Error` instead of trapping. The TypeScript layer validates first and
//! names the layer; the checks here are the last line that keeps a bad call from
//! aborting the instance or touching another tensor's memory.
//!
//! No raw pointers cross this boundary except `Buffer::ptr`, which JavaScript uses only
//! to build `Float32Array` views over a buffer's own bytes.

// Model and graph building run once per model: compiled for size (as in the kernels crate).
#![cfg_attr(target_arch = "wasm32", feature(optimize_attribute))]

use std::cell::RefCell;
use std::sync::Arc;

use inception_kernels::plan::{self, ValueId};
use inception_kernels::alloc::{self, OutOfMemory};
use inception_kernels::train::Shared;
use inception_kernels::{batchnorm, concat, conv, pool, weyl};
use wasm_bindgen::prelude::*;

mod memory;
mod train;
#[cfg(feature = "testing")]
mod bench;
#[cfg(feature = "testing")]
mod testing;
#[cfg(feature = "threads")]
mod threads;

#[cfg(not(target_feature = "simd128"))]
compile_error!("inception-wasm must be built with `-C target-feature=+simd128` (see scripts/build-wasm.sh)");

thread_local! {
    /// The arena and per-thread scratch every plan runs in: one caller at a time (the
    /// JavaScript thread that owns the module), so all plans share it and memory is the
    /// largest plan's, not the sum. It only grows.
    static CONTEXT: RefCell<plan::Context> = RefCell::new(plan::Context::default());
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), JsError> {
    if ok {
        Ok(())
    } else {
        Err(JsError::new(&msg()))
    }
}

/// The error an allocation failure becomes. The TypeScript layer turns this exact form
/// into an `OutOfMemoryError` (ts/backend.ts `OUT_OF_MEMORY`): keep the two in step.
fn oom(what: &str) -> impl FnOnce(OutOfMemory) -> JsError + '_ {
    move |e| JsError::new(&format!("out of memory: {what} needs {} bytes", e.bytes))
}

/// `a · b · …`, or an error naming `what` when the product does not fit in `usize` (32
/// bits here: a wrapped product would pass every length check as a small number).
fn product(what: &str, factors: &[usize]) -> Result<usize, JsError> {
    factors.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or_else(|| JsError::new(&format!("{what}: sizes {factors:?} overflow the address space")))
}

/// A float32 buffer in linear memory, the storage of a `Tensor`. Its address never
/// changes (the Vec is never resized once it holds values), so views only go stale when
/// the memory grows. It may be shared ([`Buffer::share`]): a parameter's values are read
/// by training graphs and updated by optimisers in place, and `Parameter.grad` shows the
/// gradient a graph accumulates into.
#[wasm_bindgen]
pub struct Buffer {
    data: Arc<Shared>,
}

impl Buffer {
    fn from_vec(data: Vec<f32>) -> Buffer {
        Buffer { data: Shared::new(data) }
    }

    /// The values. One JavaScript thread calls the module and no graph runs during a glue
    /// call, so nothing writes them meanwhile.
    pub(crate) fn get(&self) -> &[f32] {
        // SAFETY: see above.
        unsafe { self.data.get() }
    }

    pub(crate) fn get_mut(&mut self) -> &mut [f32] {
        // SAFETY: see `get`; a shared buffer is written by one call at a time.
        unsafe { self.data.get_mut() }
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.data.clone()
    }
}

#[wasm_bindgen]
impl Buffer {
    /// A zero-filled buffer of `len` floats.
    #[wasm_bindgen(constructor)]
    pub fn new(len: usize) -> Result<Buffer, JsError> {
        Ok(Buffer::from_vec(alloc::filled(len, 0.0).map_err(oom("a tensor"))?))
    }

    /// `len` values of tensor `t` of the `weyl-fmix32` generator under `seed`:
    /// `offset + scale·(abs ? |u| : u)` (the fixtures' rule; deterministic initialisation).
    pub fn weyl(len: usize, seed: u32, t: u32, offset: f32, scale: f32, abs: bool) -> Result<Buffer, JsError> {
        let mut data = alloc::filled(len, 0.0).map_err(oom("a parameter"))?;
        weyl::fill(seed, t, weyl::Rule { offset, scale, abs }, &mut data);
        Ok(Buffer::from_vec(data))
    }

    /// Another handle on the same memory (freeing one handle keeps the memory for the others).
    pub fn share(&self) -> Buffer {
        Buffer { data: self.data.clone() }
    }

    /// Byte offset of the first float in linear memory.
    pub fn ptr(&self) -> usize {
        self.get().as_ptr() as usize
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    #[wasm_bindgen(js_name = isEmpty)]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Copies `src` into this buffer (same length): writing a parameter in place, so that
    /// every graph and optimiser sharing it sees the new values.
    #[wasm_bindgen(js_name = copyFrom)]
    pub fn copy_from(&mut self, src: &Buffer) -> Result<(), JsError> {
        check(src.len() == self.len(), || format!("copy: {} floats into {}", src.len(), self.len()))?;
        if !Arc::ptr_eq(&self.data, &src.data) {
            let values = src.get().as_ptr();
            // SAFETY: distinct buffers of equal length.
            self.get_mut().copy_from_slice(unsafe { core::slice::from_raw_parts(values, src.len()) });
        }
        Ok(())
    }

    /// Sets every value to `v` (`zeroGrad`).
    pub fn fill(&mut self, v: f32) {
        self.get_mut().fill(v);
    }
}

/// A convolution layer with its weights packed once, here.
#[wasm_bindgen]
pub struct Conv2d {
    inner: Arc<conv::Conv2d>,
}

#[wasm_bindgen]
impl Conv2d {
    /// `weights` in `OIHW` order, `bias` (optional) with `c_out` values; `algorithm` is
    /// `"auto"` (the kernel-selection table), `"gemm"`, `"winograd2"` or `"winograd4"`.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weights: &Buffer,
        bias: Option<Vec<f32>>,
        c_in: usize,
        c_out: usize,
        kh: usize,
        kw: usize,
        sh: usize,
        sw: usize,
        ph: usize,
        pw: usize,
        algorithm: &str,
    ) -> Result<Conv2d, JsError> {
        let algorithm = match algorithm {
            "auto" => conv::Algorithm::Auto,
            "gemm" => conv::Algorithm::Gemm,
            "winograd2" => conv::Algorithm::Winograd2,
            "winograd4" => conv::Algorithm::Winograd4,
            other => return Err(JsError::new(&format!("conv2d: unknown algorithm {other:?}"))),
        };
        let spec = conv::ConvSpec { c_in, c_out, kh, kw, sh, sw, ph, pw };
        check(sh > 0 && sw > 0, || "conv2d: stride must be positive".into())?;
        check(c_in > 0 && c_out > 0 && kh > 0 && kw > 0, || format!("conv2d: channels and kernel must be positive, got {c_in}→{c_out} {kh}×{kw}"))?;
        let weights = weights.get();
        let expected = product("conv2d", &[c_out, c_in, kh, kw])?;
        check(weights.len() == expected, || format!("conv2d: weights have {} values, expected {expected}", weights.len()))?;
        if let Some(b) = &bias {
            check(b.len() == c_out, || format!("conv2d: bias has {} values, expected {c_out}", b.len()))?;
        }
        let layer = conv::Conv2d::try_with_algorithm(spec, weights, bias.as_deref(), algorithm).map_err(oom("conv2d's packed weights"))?;
        Ok(Conv2d { inner: Arc::new(layer) })
    }

    /// The algorithm this layer runs on an `h × w` input: `"gemm"`, `"winograd2"` or
    /// `"winograd4"`.
    #[wasm_bindgen(js_name = algorithmFor)]
    pub fn algorithm_for(&self, h: usize, w: usize) -> Result<String, JsError> {
        let s = self.inner.spec();
        check(self.inner.out_size(h, w).is_some(), || format!("conv2d: {h}×{w} input is smaller than the {}×{} kernel", s.kh, s.kw))?;
        Ok(algorithm_name(self.inner.algorithm_for(h, w)).into())
    }

    /// The weights in `OIHW` order.
    pub fn weights(&self) -> Result<Vec<f32>, JsError> {
        self.inner.weights().map_err(oom("conv2d's weights"))
    }

    pub fn bias(&self) -> Option<Vec<f32>> {
        self.inner.bias().map(<[f32]>::to_vec)
    }
}

pub(crate) fn algorithm_name(a: conv::Algorithm) -> &'static str {
    match a {
        conv::Algorithm::Winograd2 => "winograd2",
        conv::Algorithm::Winograd4 => "winograd4",
        _ => "gemm",
    }
}

/// A fully connected layer; `weights` is PyTorch's `[out, in]`. Kept as the 1×1
/// convolution it is over one-pixel images: plans run it on the packed GEMM, a batch as
/// one GEMM over its rows (GoogLeNet's fc at batch 64: 16.6 ms as a dot product per output
/// and row, 4.5 ms so; `bench/threads-profile.mjs`, serial).
#[wasm_bindgen]
pub struct Linear {
    inner: Arc<conv::Conv2d>,
}

#[wasm_bindgen]
impl Linear {
    #[wasm_bindgen(constructor)]
    pub fn new(weights: &Buffer, bias: Option<Vec<f32>>, inp: usize, out: usize) -> Result<Linear, JsError> {
        let expected = product("linear", &[inp, out])?;
        check(weights.len() == expected, || format!("linear: weights have {} values, expected {expected}", weights.len()))?;
        if let Some(b) = &bias {
            check(b.len() == out, || format!("linear: bias has {} values, expected {out}", b.len()))?;
        }
        let spec = conv::ConvSpec { c_in: inp, c_out: out, kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0 };
        let layer = conv::Conv2d::try_with_algorithm(spec, weights.get(), bias.as_deref(), conv::Algorithm::Gemm).map_err(oom("linear's packed weights"))?;
        Ok(Linear { inner: Arc::new(layer) })
    }

    pub fn weights(&self) -> Result<Vec<f32>, JsError> {
        self.inner.weights().map_err(oom("linear's weights"))
    }

    pub fn bias(&self) -> Option<Vec<f32>> {
        self.inner.bias().map(<[f32]>::to_vec)
    }
}

/// Builds a [`Plan`]: values are numbered (0 is the input), steps read and write them.
/// Every call checks its sizes (the builder's own checks) and returns a JavaScript error
/// naming the op, so no plan that could index out of bounds is ever built.
#[wasm_bindgen]
pub struct PlanBuilder {
    inner: plan::PlanBuilder,
}

fn pooling(kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool) -> pool::Pool2dParams {
    pool::Pool2dParams { kh, kw, sh, sw, ph, pw, ceil_mode }
}

#[wasm_bindgen]
impl PlanBuilder {
    /// A plan whose input has `input_len` floats.
    #[wasm_bindgen(constructor)]
    pub fn new(input_len: usize) -> PlanBuilder {
        PlanBuilder { inner: plan::PlanBuilder::new(input_len) }
    }

    /// A new value of `len` floats; returns its number.
    pub fn value(&mut self, len: usize) -> usize {
        self.inner.value(len).0
    }

    fn push(&mut self, op: plan::Op) -> Result<(), JsError> {
        self.inner.push(op).map_err(plan_error)
    }

    /// `layer` on `n` images of `h × w` in `src`, into channels `[offset, offset + c_out)`
    /// of `dst` (`channels` per image).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(&mut self, layer: &Conv2d, n: usize, h: usize, w: usize, relu: bool, src: usize, dst: usize, channels: usize, offset: usize) -> Result<(), JsError> {
        let dst = plan::Slice { value: ValueId(dst), channels, offset };
        self.push(plan::Op::Conv { layer: layer.inner.clone(), n, h, w, relu, src: ValueId(src), dst })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = maxPool2d)]
    pub fn max_pool2d(&mut self, planes: usize, h: usize, w: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool, src: usize, dst: usize) -> Result<(), JsError> {
        let p = pooling(kh, kw, sh, sw, ph, pw, ceil_mode);
        self.push(plan::Op::MaxPool { p, planes, h, w, src: ValueId(src), dst: ValueId(dst) })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = avgPool2d)]
    pub fn avg_pool2d(&mut self, planes: usize, h: usize, w: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool, count_include_pad: bool, src: usize, dst: usize) -> Result<(), JsError> {
        let p = pooling(kh, kw, sh, sw, ph, pw, ceil_mode);
        self.push(plan::Op::AvgPool { p, count_include_pad, planes, h, w, src: ValueId(src), dst: ValueId(dst) })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = adaptiveAvgPool2d)]
    pub fn adaptive_avg_pool2d(&mut self, planes: usize, h: usize, w: usize, oh: usize, ow: usize, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(plan::Op::AdaptiveAvgPool { planes, h, w, oh, ow, src: ValueId(src), dst: ValueId(dst) })
    }

    /// `layer` on `n` rows of features.
    pub fn linear(&mut self, layer: &Linear, n: usize, src: usize, dst: usize) -> Result<(), JsError> {
        let dst = plan::Slice::whole(ValueId(dst), layer.inner.spec().c_out);
        self.push(plan::Op::Conv { layer: layer.inner.clone(), n, h: 1, w: 1, relu: false, src: ValueId(src), dst })
    }

    pub fn relu(&mut self, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(plan::Op::Relu { src: ValueId(src), dst: ValueId(dst) })
    }

    /// `n` images of `c × hw` from `src` into channels `[offset, offset + c)` of `dst`.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = copyChannels)]
    pub fn copy_channels(&mut self, n: usize, c: usize, hw: usize, src: usize, dst: usize, channels: usize, offset: usize) -> Result<(), JsError> {
        let dst = plan::Slice { value: ValueId(dst), channels, offset };
        self.push(plan::Op::CopyChannels { n, c, hw, src: ValueId(src), dst })
    }

    /// `x·scale[c] + shift[c]` per channel.
    #[wasm_bindgen(js_name = channelAffine)]
    pub fn channel_affine(&mut self, scale: Vec<f32>, shift: Vec<f32>, n: usize, hw: usize, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(plan::Op::ChannelAffine { scale, shift, n, hw, src: ValueId(src), dst: ValueId(dst) })
    }

    /// The plan, with `output` written into the buffer passed to `run`.
    pub fn build(self, output: usize) -> Result<Plan, JsError> {
        let plan = self.inner.build(ValueId(output), plan::threads()).map_err(plan_error)?;
        Ok(Plan { inner: plan })
    }
}

fn plan_error(e: plan::BuildError) -> JsError {
    match e {
        plan::BuildError::Invalid(message) => JsError::new(&message),
        plan::BuildError::OutOfMemory(e) => oom("a layer's packed weights for this input size")(e),
    }
}

/// A compiled network: one call per forward, activations in the shared arena.
#[wasm_bindgen]
pub struct Plan {
    inner: plan::Plan,
}

#[wasm_bindgen]
impl Plan {
    /// Runs the plan on `input` into `output`.
    pub fn run(&self, input: &Buffer, output: &mut Buffer) -> Result<(), JsError> {
        check(input.len() == self.inner.input_len(), || format!("plan: input has {} floats, expected {}", input.len(), self.inner.input_len()))?;
        check(output.len() == self.inner.output_len(), || format!("plan: output has {} floats, expected {}", output.len(), self.inner.output_len()))?;
        check(!Arc::ptr_eq(&input.data, &output.data), || "plan: the output cannot be the input".into())?;
        CONTEXT.with_borrow_mut(|ctx| {
            self.inner.run(input.get(), output.get_mut(), ctx).map_err(|e| match e {
                plan::RunError::OutOfMemory(e) => oom("the forward's activations")(e),
                // ts/backend.ts turns this exact form into a `WorkerError`.
                plan::RunError::WorkerFailed(_) => JsError::new("worker failed: a thread of the pool died or stopped during the forward"),
            })?;
            ctx.trim(self.inner.arena_len());
            Ok(())
        })
    }

    /// Floats of arena the plan uses.
    #[wasm_bindgen(js_name = arenaLen)]
    pub fn arena_len(&self) -> usize {
        self.inner.arena_len()
    }

    /// Stages (groups of independent steps).
    pub fn stages(&self) -> usize {
        self.inner.stages()
    }
}

/// Makes room for `bytes` of allocations ahead of a model load, in one `memory.grow`: the
/// allocator keeps the freed block for what follows. Growing step by step instead (one
/// grow per packed layer) makes V8 account the external memory each time and run a
/// full garbage collection for most of them (31 for GoogLeNet, ≈ 50 ms of its build).
/// Untouched pages cost no resident memory.
/// Returns false when the memory is not there (the load that follows then reports what
/// exactly did not fit).
#[wasm_bindgen(js_name = reserveBytes)]
pub fn reserve_bytes(bytes: usize) -> bool {
    alloc::with_capacity::<u8>(bytes).is_ok()
}

/// Frees the activation arena and the threads' scratch (the next forward makes them again).
#[wasm_bindgen(js_name = releaseMemory)]
pub fn release_memory() {
    CONTEXT.with_borrow_mut(plan::Context::release);
}

/// Bytes held by the activation arena and by the threads' scratch workspaces.
#[wasm_bindgen(js_name = contextBytes)]
pub fn context_bytes() -> Vec<usize> {
    CONTEXT.with_borrow(|ctx| vec![ctx.arena_bytes(), ctx.scratch_bytes()])
}

/// Folds an inference BatchNorm into `weights` (`c_out` rows, scaled in place); returns the
/// folded bias (see `inception_kernels::batchnorm`).
#[wasm_bindgen(js_name = foldBatchNorm)]
pub fn fold_batch_norm(weights: &mut Buffer, gamma: &Buffer, beta: &Buffer, mean: &Buffer, var: &Buffer, eps: f64) -> Result<Vec<f32>, JsError> {
    let c = gamma.len();
    check(c > 0 && weights.len() % c == 0, || format!("batchnorm: {} weights are not {c} rows", weights.len()))?;
    check([beta, mean, var].iter().all(|v| v.len() == c), || format!("batchnorm: parameters must have {c} values"))?;
    check([gamma, beta, mean, var].iter().all(|v| !Arc::ptr_eq(&v.data, &weights.data)), || "batchnorm: the weights cannot be a parameter".into())?;
    Ok(batchnorm::fold(weights.get_mut(), gamma.get(), beta.get(), mean.get(), var.get(), eps))
}

/// Copies `n × c_src × hw` from `src` into channels `[offset, offset + c_src)` of `dst`.
#[wasm_bindgen(js_name = copyChannels)]
pub fn copy_channels(src: &Buffer, n: usize, c_src: usize, hw: usize, dst: &mut Buffer, c_dst: usize, offset: usize) -> Result<(), JsError> {
    check(src.len() == product("concat", &[n, c_src, hw])?, || "concat: source length does not match its shape".into())?;
    check(dst.len() == product("concat", &[n, c_dst, hw])?, || "concat: destination length does not match its shape".into())?;
    check(!Arc::ptr_eq(&src.data, &dst.data), || "concat: the destination cannot be the source".into())?;
    check(offset.checked_add(c_src).is_some_and(|end| end <= c_dst), || "concat: channel slice out of range".into())?;
    concat::copy_channels(src.get(), n, c_src, hw, dst.get_mut(), c_dst, offset);
    Ok(())
}
