//! SGD and Adam / AdamW over many parameters at once, with PyTorch 1.13's semantics
//! (`torch.optim`'s single-tensor paths, in float32 per element; bias corrections in f64
//! as Python computes them). A parameter with no gradient yet is skipped, as PyTorch
//! skips `p.grad is None`; its state starts at its first step.

use std::sync::Arc;

use super::Shared;
use crate::alloc::{self, OutOfMemory};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    Sgd { momentum: f32, dampening: f64, nesterov: bool, weight_decay: f32 },
    /// Adam (`decoupled: false`: L2 added to the gradient) or AdamW (decay applied to the weights).
    Adam { beta1: f64, beta2: f64, eps: f32, weight_decay: f32, amsgrad: bool, decoupled: bool },
}

/// One parameter: its values, its gradient (empty until a backward reaches it) and its
/// state — SGD: the momentum buffer; Adam: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`.
#[derive(Debug)]
pub struct Slot {
    pub data: Arc<Shared>,
    pub grad: Arc<Shared>,
    pub state: Vec<Vec<f32>>,
    pub step: u64,
}

impl Slot {
    pub fn new(data: Arc<Shared>, grad: Arc<Shared>) -> Self {
        Self { data, grad, state: Vec::new(), step: 0 }
    }
}

/// One step of `rule` with learning rate `lr` over every slot that has a gradient.
/// Memory for new state is allocated (fallibly) for all slots before any is updated, so
/// an out-of-memory error leaves every parameter as it was.
pub fn step(slots: &mut [Slot], rule: Rule, lr: f32) -> Result<(), OutOfMemory> {
    let buffers = match rule {
        Rule::Sgd { momentum, .. } => usize::from(momentum != 0.0),
        Rule::Adam { amsgrad, .. } => 2 + usize::from(amsgrad),
    };
    for s in slots.iter_mut() {
        // SAFETY: one caller at a time (the JavaScript thread); no graph is running.
        let n = unsafe { s.grad.get().len() };
        if n == 0 {
            continue;
        }
        while s.state.len() < buffers {
            s.state.push(alloc::filled(n, 0.0)?);
        }
    }
    for s in slots.iter_mut() {
        // SAFETY: as above; data and grad are distinct buffers.
        let (p, g) = unsafe { (s.data.get_mut(), s.grad.get()) };
        if g.is_empty() {
            continue;
        }
        assert_eq!(p.len(), g.len(), "optimizer: a gradient does not match its parameter");
        s.step += 1;
        match rule {
            Rule::Sgd { momentum, dampening, nesterov, weight_decay } => {
                let first = s.step == 1;
                // `1 − dampening` in f64, then float32, as PyTorch's `alpha=1 - dampening`.
                let keep = (1.0 - dampening) as f32;
                for i in 0..p.len() {
                    let mut d = g[i];
                    if weight_decay != 0.0 {
                        d += weight_decay * p[i];
                    }
                    if momentum != 0.0 {
                        let b = &mut s.state[0][i];
                        *b = if first { d } else { momentum * *b + keep * d };
                        d = if nesterov { d + momentum * *b } else { *b };
                    }
                    p[i] -= lr * d;
                }
            }
            Rule::Adam { beta1, beta2, eps, weight_decay, amsgrad, decoupled } => {
                let t = s.step as i32;
                let bc1 = 1.0 - beta1.powi(t);
                let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt() as f32;
                let step_size = (lr as f64 / bc1) as f32;
                let (b1, b2) = (beta1 as f32, beta2 as f32);
                // `1 − β` in f64, then float32, as PyTorch passes Python's `1 - beta` (in f32,
                // `1 − 0.999f32` is off by 1.3e-5 relative: cancellation).
                let (c1, c2) = ((1.0 - beta1) as f32, (1.0 - beta2) as f32);
                let [m, v, rest @ ..] = &mut s.state[..] else { unreachable!("allocated above") };
                for i in 0..p.len() {
                    let mut d = g[i];
                    if decoupled {
                        p[i] *= 1.0 - lr * weight_decay;
                    } else if weight_decay != 0.0 {
                        d += weight_decay * p[i];
                    }
                    m[i] = m[i] * b1 + c1 * d;
                    v[i] = v[i] * b2 + c2 * d * d;
                    let second = if amsgrad {
                        let mx = &mut rest[0][i];
                        *mx = mx.max(v[i]);
                        *mx
                    } else {
                        v[i]
                    };
                    let denom = second.sqrt() / bc2_sqrt + eps;
                    p[i] -= step_size * m[i] / denom;
                }
            }
        }
    }
    Ok(())
}
