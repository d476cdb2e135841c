//! Glue for training: graphs (built like plans, with parameters shared by reference),
//! cross-entropy, and the optimisers. Every length is checked here again before a kernel
//! runs, as for inference.

use std::sync::Arc;

use inception_kernels::conv::ConvSpec;
use inception_kernels::plan::{RunError, Slice, ValueId};
use inception_kernels::train::optim::{self, Rule, Slot};
use inception_kernels::train::{self, loss, GraphBuilder, GraphError, Param, TrainOp};
use wasm_bindgen::prelude::*;

use crate::{check, oom, pooling, Buffer};

/// A parameter for a graph: its values and, unless frozen, its gradient buffer.
fn param(data: &Buffer, grad: Option<Buffer>) -> Param {
    Param { data: data.shared(), grad: grad.map(|g| g.shared()) }
}

/// Builds a [`TrainGraph`]: values are numbered (0 is the input), as for plans.
#[wasm_bindgen]
pub struct TrainGraphBuilder {
    inner: GraphBuilder,
}

#[wasm_bindgen]
impl TrainGraphBuilder {
    #[wasm_bindgen(constructor)]
    pub fn new(input_len: usize) -> TrainGraphBuilder {
        TrainGraphBuilder { inner: GraphBuilder::new(input_len) }
    }

    pub fn value(&mut self, len: usize) -> usize {
        self.inner.value(len).0
    }

    fn push(&mut self, op: TrainOp) -> Result<(), JsError> {
        self.inner.push(op).map_err(|e| JsError::new(&e))
    }

    /// A convolution reading `weight` (OIHW) and `bias` as they are at each forward; the
    /// gradients (`None`: frozen) receive its parameter gradients.
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn conv(&mut self, weight: &Buffer, weight_grad: Option<Buffer>, bias: Option<Buffer>, bias_grad: Option<Buffer>, c_in: usize, c_out: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, n: usize, h: usize, w: usize, relu: bool, src: usize, dst: usize, channels: usize, offset: usize) -> Result<(), JsError> {
        check(c_in > 0 && c_out > 0 && kh > 0 && kw > 0, || format!("conv2d: channels and kernel must be positive, got {c_in}→{c_out} {kh}×{kw}"))?;
        let spec = ConvSpec { c_in, c_out, kh, kw, sh, sw, ph, pw };
        let bias = bias.map(|b| param(&b, bias_grad));
        self.push(TrainOp::Conv { spec, weight: param(weight, weight_grad), bias, n, h, w, relu, src: ValueId(src), dst: Slice { value: ValueId(dst), channels, offset } })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = batchNorm)]
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn batch_norm(&mut self, gamma: &Buffer, gamma_grad: Option<Buffer>, beta: &Buffer, beta_grad: Option<Buffer>, running_mean: &Buffer, running_var: &Buffer, train: bool, momentum: f32, eps: f32, relu: bool, n: usize, c: usize, hw: usize, src: usize, dst: usize, channels: usize, offset: usize) -> Result<(), JsError> {
        self.push(TrainOp::BatchNorm {
            gamma: param(gamma, gamma_grad),
            beta: param(beta, beta_grad),
            running_mean: running_mean.shared(),
            running_var: running_var.shared(),
            train,
            momentum,
            eps,
            relu,
            n,
            c,
            hw,
            src: ValueId(src),
            dst: Slice { value: ValueId(dst), channels, offset },
        })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = maxPool2d)]
    pub fn max_pool2d(&mut self, planes: usize, h: usize, w: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool, src: usize, dst: usize) -> Result<(), JsError> {
        let p = pooling(kh, kw, sh, sw, ph, pw, ceil_mode);
        self.push(TrainOp::MaxPool { p, planes, h, w, src: ValueId(src), dst: ValueId(dst) })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = avgPool2d)]
    pub fn avg_pool2d(&mut self, planes: usize, h: usize, w: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool, count_include_pad: bool, src: usize, dst: usize) -> Result<(), JsError> {
        let p = pooling(kh, kw, sh, sw, ph, pw, ceil_mode);
        self.push(TrainOp::AvgPool { p, count_include_pad, planes, h, w, src: ValueId(src), dst: ValueId(dst) })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = adaptiveAvgPool2d)]
    pub fn adaptive_avg_pool2d(&mut self, planes: usize, h: usize, w: usize, oh: usize, ow: usize, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(TrainOp::AdaptiveAvgPool { planes, h, w, oh, ow, src: ValueId(src), dst: ValueId(dst) })
    }

    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn linear(&mut self, weight: &Buffer, weight_grad: Option<Buffer>, bias: Option<Buffer>, bias_grad: Option<Buffer>, inp: usize, out: usize, n: usize, src: usize, dst: usize) -> Result<(), JsError> {
        let bias = bias.map(|b| param(&b, bias_grad));
        self.push(TrainOp::Linear { weight: param(weight, weight_grad), bias, n, inp, out, src: ValueId(src), dst: ValueId(dst) })
    }

    pub fn relu(&mut self, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(TrainOp::Relu { src: ValueId(src), dst: ValueId(dst) })
    }

    pub fn dropout(&mut self, p: f32, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(TrainOp::Dropout { p, src: ValueId(src), dst: ValueId(dst) })
    }

    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = copyChannels)]
    pub fn copy_channels(&mut self, n: usize, c: usize, hw: usize, src: usize, dst: usize, channels: usize, offset: usize) -> Result<(), JsError> {
        self.push(TrainOp::CopyChannels { n, c, hw, src: ValueId(src), dst: Slice { value: ValueId(dst), channels, offset } })
    }

    #[wasm_bindgen(js_name = channelAffine)]
    pub fn channel_affine(&mut self, scale: Vec<f32>, shift: Vec<f32>, n: usize, hw: usize, src: usize, dst: usize) -> Result<(), JsError> {
        self.push(TrainOp::ChannelAffine { scale, shift, n, hw, src: ValueId(src), dst: ValueId(dst) })
    }

    /// Marks `value` as an output; returns its index.
    pub fn output(&mut self, value: usize) -> Result<usize, JsError> {
        self.inner.output(ValueId(value)).map_err(|e| JsError::new(&e))
    }

    #[cfg_attr(target_arch = "wasm32", optimize(size))]
    pub fn build(self, input_grad: bool) -> Result<TrainGraph, JsError> {
        Ok(TrainGraph { inner: self.inner.build(input_grad).map_err(|e| JsError::new(&e))? })
    }
}

/// A recorded network for one input shape: `forward`, read the outputs, `seed` their
/// gradients, `backward` once.
#[wasm_bindgen]
pub struct TrainGraph {
    inner: train::Graph,
}

fn graph_error(e: GraphError) -> JsError {
    match e {
        GraphError::Run(RunError::OutOfMemory(e)) => oom("the training step's activations")(e),
        GraphError::Run(RunError::WorkerFailed(_)) => JsError::new("worker failed: a thread of the pool died or stopped during the training step"),
        GraphError::NoForward => JsError::new("backward: this graph has no forward to differentiate (its activations were released)"),
        GraphError::AlreadyBackwarded => JsError::new("backward: this forward was already differentiated"),
    }
}

#[wasm_bindgen]
impl TrainGraph {
    /// Runs the forward on `input`; `seed` draws the dropout masks.
    pub fn forward(&mut self, input: &Buffer, seed: u32) -> Result<(), JsError> {
        check(input.len() == self.inner.input_len(), || format!("graph: input has {} floats, expected {}", input.len(), self.inner.input_len()))?;
        self.inner.forward(input.get(), seed).map_err(graph_error)
    }

    /// Copies output `k` of the last forward into `out`.
    pub fn output(&self, k: usize, out: &mut Buffer) -> Result<(), JsError> {
        let len = self.inner.output_len(k).ok_or_else(|| JsError::new(&format!("graph: no output {k}")))?;
        check(out.len() == len, || format!("graph: output {k} has {len} floats, the buffer {}", out.len()))?;
        let values = self.inner.output(k).ok_or_else(|| JsError::new("graph: no forward has run"))?;
        out.get_mut().copy_from_slice(values);
        Ok(())
    }

    /// Backward of the last forward with gradients `grads[k]` for outputs `outputs[k]`;
    /// writes the input's gradient into `input_grad` when given.
    pub fn backward(&mut self, outputs: Vec<usize>, grads: Vec<Buffer>, input_grad: Option<Buffer>) -> Result<(), JsError> {
        check(outputs.len() == grads.len(), || "backward: one gradient per output".into())?;
        for (&k, g) in outputs.iter().zip(&grads) {
            let len = self.inner.output_len(k).ok_or_else(|| JsError::new(&format!("graph: no output {k}")))?;
            check(g.len() == len, || format!("backward: the gradient of output {k} has {} floats, expected {len}", g.len()))?;
        }
        if let Some(ig) = &input_grad {
            check(ig.len() == self.inner.input_len(), || format!("backward: the input gradient has {} floats, expected {}", ig.len(), self.inner.input_len()))?;
        }
        let seeds: Vec<(usize, &[f32])> = outputs.iter().zip(&grads).map(|(&k, g)| (k, g.get())).collect();
        let mut input_grad = input_grad;
        self.inner.backward(&seeds, input_grad.as_mut().map(|b| b.get_mut())).map_err(graph_error)
    }

    /// True while the last forward can be differentiated.
    pub fn ready(&self) -> bool {
        self.inner.ready()
    }

    /// Frees the activations and scratch (the next forward makes them again).
    pub fn release(&mut self) {
        self.inner.release();
    }

    /// Bytes held between runs.
    pub fn bytes(&self) -> usize {
        self.inner.bytes()
    }
}

fn targets_ok(targets: &[u32], n: usize, classes: usize) -> Result<(), JsError> {
    check(targets.len() == n, || format!("cross_entropy: {} targets for a batch of {n}", targets.len()))?;
    match targets.iter().find(|&&t| t as usize >= classes) {
        Some(t) => Err(JsError::new(&format!("cross_entropy: target {t} is not a class index in [0, {classes})"))),
        None => Ok(()),
    }
}

/// Mean cross-entropy of `[n, classes]` logits against class indices.
#[wasm_bindgen(js_name = crossEntropy)]
pub fn cross_entropy(logits: &Buffer, n: usize, classes: usize, targets: Vec<u32>) -> Result<f64, JsError> {
    check(n > 0 && logits.len() == n * classes, || "cross_entropy: logits do not match the batch".into())?;
    targets_ok(&targets, n, classes)?;
    Ok(loss::cross_entropy(logits.get(), n, classes, &targets))
}

/// Adds `scale ×` the gradient of the mean cross-entropy to `dlogits`.
#[wasm_bindgen(js_name = crossEntropyBackward)]
pub fn cross_entropy_backward(logits: &Buffer, n: usize, classes: usize, targets: Vec<u32>, scale: f64, dlogits: &mut Buffer) -> Result<(), JsError> {
    check(n > 0 && logits.len() == n * classes && dlogits.len() == logits.len(), || "cross_entropy: logits do not match the batch".into())?;
    check(!Arc::ptr_eq(&logits.shared(), &dlogits.shared()), || "cross_entropy: the gradient cannot be the logits".into())?;
    targets_ok(&targets, n, classes)?;
    loss::cross_entropy_backward(logits.get(), n, classes, &targets, scale, dlogits.get_mut());
    Ok(())
}

/// An optimiser's parameters and their state (see `inception_kernels::train::optim`).
#[wasm_bindgen]
pub struct Optimizer {
    slots: Vec<Slot>,
}

#[wasm_bindgen]
impl Optimizer {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Optimizer {
        Optimizer { slots: Vec::new() }
    }

    /// Adds a parameter (its values and its gradient buffer); returns its index.
    pub fn add(&mut self, data: &Buffer, grad: &Buffer) -> usize {
        self.slots.push(Slot::new(data.shared(), grad.shared()));
        self.slots.len() - 1
    }

    /// One SGD step.
    pub fn sgd(&mut self, lr: f32, momentum: f32, dampening: f64, nesterov: bool, weight_decay: f32) -> Result<(), JsError> {
        optim::step(&mut self.slots, Rule::Sgd { momentum, dampening, nesterov, weight_decay }, lr).map_err(step_error)
    }

    /// One Adam (`decoupled`: AdamW) step.
    #[allow(clippy::too_many_arguments)]
    pub fn adam(&mut self, lr: f32, beta1: f64, beta2: f64, eps: f32, weight_decay: f32, amsgrad: bool, decoupled: bool) -> Result<(), JsError> {
        optim::step(&mut self.slots, Rule::Adam { beta1, beta2, eps, weight_decay, amsgrad, decoupled }, lr).map_err(step_error)
    }

    /// Steps taken by parameter `i`.
    #[wasm_bindgen(js_name = stepCount)]
    pub fn step_count(&self, i: usize) -> f64 {
        self.slots.get(i).map_or(0.0, |s| s.step as f64)
    }

    /// State buffers of parameter `i` (0 until its first step).
    #[wasm_bindgen(js_name = stateCount)]
    pub fn state_count(&self, i: usize) -> usize {
        self.slots.get(i).map_or(0, |s| s.state.len())
    }

    /// State buffer `j` of parameter `i`.
    pub fn state(&self, i: usize, j: usize) -> Result<Vec<f32>, JsError> {
        let s = self.slots.get(i).and_then(|s| s.state.get(j)).ok_or_else(|| JsError::new(&format!("optimizer: no state {j} for parameter {i}")))?;
        inception_kernels::alloc::copied(s).map_err(oom("the optimiser's state"))
    }

    /// Restores parameter `i`'s step count and state buffers (each as long as the parameter).
    #[wasm_bindgen(js_name = setState)]
    pub fn set_state(&mut self, i: usize, step: f64, buffers: Vec<Buffer>) -> Result<(), JsError> {
        let slot = self.slots.get_mut(i).ok_or_else(|| JsError::new(&format!("optimizer: no parameter {i}")))?;
        let n = slot.data.len();
        check(buffers.iter().all(|b| b.len() == n), || format!("optimizer: state for parameter {i} must have {n} values"))?;
        let mut state = Vec::with_capacity(buffers.len());
        for b in &buffers {
            state.push(inception_kernels::alloc::copied(b.get()).map_err(oom("the optimiser's state"))?);
        }
        slot.state = state;
        slot.step = step as u64;
        Ok(())
    }
}

impl Default for Optimizer {
    fn default() -> Self {
        Self::new()
    }
}

/// An optimiser step's failure: no memory for its state (nothing was updated), or a
/// worker of the pool that died mid-step (some parameters were updated).
fn step_error(e: RunError) -> JsError {
    match e {
        RunError::OutOfMemory(e) => oom("the optimiser's state")(e),
        RunError::WorkerFailed(_) => JsError::new("worker failed: a thread of the pool died or stopped during the optimiser step"),
    }
}
