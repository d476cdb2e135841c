//! SGD and Adam / AdamW over many parameters at once, with PyTorch 1.13's semantics
//! (`torch.optim`'s single-tensor paths, in float32 per element; bias corrections in f64
//! as Python computes them). A parameter with no gradient yet is skipped, as PyTorch
//! skips `p.grad is None`; its state starts at its first step.

use std::sync::Arc;

use std::sync::Mutex;

use super::Shared;
use crate::alloc;
use crate::plan::{self, RunError};
use crate::workspace::Workspace;

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
pub fn step(slots: &mut [Slot], rule: Rule, lr: f32) -> Result<(), RunError> {
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
            s.state.push(alloc::filled(n, 0.0).map_err(RunError::OutOfMemory)?);
        }
    }
    // Every element's update is independent of the others: runs of CHUNK elements are the
    // thread team's tasks (one thread was memory-bound at ~16 ms for GoogLeNet's 13 M
    // parameters with momentum), the results the same bits for any split.
    let mut chunks = Vec::new();
    let mut consts = Vec::with_capacity(slots.len());
    for (k, s) in slots.iter_mut().enumerate() {
        // SAFETY: as above.
        let (n, g) = unsafe { (s.data.get().len(), s.grad.get().len()) };
        if g == 0 {
            consts.push(None);
            continue;
        }
        assert_eq!(n, g, "optimizer: a gradient does not match its parameter");
        s.step += 1;
        consts.push(Some(Consts::new(rule, lr, s.step)));
        chunks.extend((0..n).step_by(CHUNK).map(|i| (k, i..(i + CHUNK).min(n))));
    }
    let threads = plan::threads();
    let workspaces: Vec<Mutex<Workspace>> = (0..threads).map(|_| Mutex::default()).collect();
    let slots = &*slots;
    plan::exec_run(&[vec![0]], &[chunks.len()], &workspaces, |_, task, _| {
        let (k, ref r) = chunks[task];
        let s = &slots[k];
        // SAFETY: one caller at a time, no graph running; data, grad and state are distinct
        // buffers, and the tasks' element ranges are disjoint.
        unsafe {
            let p = &mut s.data.get_mut()[r.clone()];
            let g = &s.grad.get()[r.clone()];
            // The task's run of each state buffer (empty past the rule's buffers): no allocation per task.
            let mut state: [&mut [f32]; 3] = Default::default();
            for (run, b) in state.iter_mut().zip(&s.state) {
                *run = core::slice::from_raw_parts_mut((b.as_ptr() as *mut f32).add(r.start), r.len());
            }
            update(consts[k].expect("slot with a gradient"), p, g, state);
        }
    })
    .map_err(RunError::WorkerFailed)?;
    Ok(())
}

/// Elements per optimiser task.
const CHUNK: usize = 1 << 16;

/// One slot's constants for this step.
#[derive(Clone, Copy, Debug)]
enum Consts {
    Sgd { lr: f32, momentum: f32, keep: f32, nesterov: bool, weight_decay: f32, first: bool },
    Adam { lr: f32, step_size: f32, bc2_sqrt: f32, b1: f32, b2: f32, c1: f32, c2: f32, eps: f32, weight_decay: f32, amsgrad: bool, decoupled: bool },
}

impl Consts {
    fn new(rule: Rule, lr: f32, step: u64) -> Self {
        match rule {
            // `1 − dampening` in f64, then float32, as PyTorch's `alpha=1 - dampening`.
            Rule::Sgd { momentum, dampening, nesterov, weight_decay } => Consts::Sgd { lr, momentum, keep: (1.0 - dampening) as f32, nesterov, weight_decay, first: step == 1 },
            Rule::Adam { beta1, beta2, eps, weight_decay, amsgrad, decoupled } => {
                let t = step as i32;
                let bc1 = 1.0 - beta1.powi(t);
                Consts::Adam {
                    lr,
                    step_size: (lr as f64 / bc1) as f32,
                    bc2_sqrt: (1.0 - beta2.powi(t)).sqrt() as f32,
                    b1: beta1 as f32,
                    b2: beta2 as f32,
                    // `1 − β` in f64, then float32, as PyTorch passes Python's `1 - beta` (in f32,
                    // `1 − 0.999f32` is off by 1.3e-5 relative: cancellation).
                    c1: (1.0 - beta1) as f32,
                    c2: (1.0 - beta2) as f32,
                    eps,
                    weight_decay,
                    amsgrad,
                    decoupled,
                }
            }
        }
    }
}

/// The update of a run of elements: `p`, its gradient `g`, and the same run of each state buffer.
fn update(c: Consts, p: &mut [f32], g: &[f32], state: [&mut [f32]; 3]) {
    match c {
        Consts::Sgd { lr, momentum, keep, nesterov, weight_decay, first } => {
            for i in 0..p.len() {
                let mut d = g[i];
                if weight_decay != 0.0 {
                    d += weight_decay * p[i];
                }
                if momentum != 0.0 {
                    let b = &mut state[0][i];
                    *b = if first { d } else { momentum * *b + keep * d };
                    d = if nesterov { d + momentum * *b } else { *b };
                }
                p[i] -= lr * d;
            }
        }
        Consts::Adam { lr, step_size, bc2_sqrt, b1, b2, c1, c2, eps, weight_decay, amsgrad, decoupled } => {
            let [m, v, max_v] = state;
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
                    let mx = &mut max_v[i];
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
