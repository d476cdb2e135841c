//! Bench-only exports: each runs a kernel `reps` times inside wasm and returns the
//! flops it did (2 per multiply-add), so a JavaScript bench (`bench/gemm.mjs`) times
//! the loop and gets GFLOP/s with no per-call crossing, validation or allocation in
//! the measurement. Inputs are deterministic, built on the first call with a shape and
//! kept for every later call with it (call once to warm up, then time).
//! Not part of the TypeScript API.

use std::cell::RefCell;

use inception_kernels::conv;
use inception_kernels::gemm::{self, Epilogue, MatMut, MatRef, PackedA};
use wasm_bindgen::prelude::*;

/// Values in [-1, 1).
fn fill(len: usize, salt: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0).collect()
}

struct GemmProblem {
    a: PackedA,
    bias: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    scratch: Vec<f32>,
}

struct ConvProblem {
    layer: conv::Conv2d,
    x: Vec<f32>,
    y: Vec<f32>,
    ws: conv::Workspace,
}

thread_local! {
    static GEMM: RefCell<Vec<((usize, usize, usize), GemmProblem)>> = const { RefCell::new(Vec::new()) };
    static CONV: RefCell<Vec<([usize; 7], ConvProblem)>> = const { RefCell::new(Vec::new()) };
}

/// The problem built for `key`, building it on first use (a few dozen shapes: a list
/// keeps the module smaller than a `HashMap` would).
fn cached<K: PartialEq, P>(problems: &mut Vec<(K, P)>, key: K, build: impl FnOnce() -> P) -> &mut P {
    let i = match problems.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            problems.push((key, build()));
            problems.len() - 1
        }
    };
    &mut problems[i].1
}

/// The in-cache microkernel ceiling (`gemm::microkernel_peak`), `reps` times.
#[wasm_bindgen(js_name = gemmPeak)]
pub fn gemm_peak(reps: usize) -> f64 {
    gemm::microkernel_peak(reps)
}

/// `C[m×n] = relu(A[m×k]·B[k×n] + bias)` through `gemm::gemm`, `reps` times, with `B`
/// and `C` dense (row stride `n`), as a 1×1 convolution of a `k × n`-pixel input.
#[wasm_bindgen(js_name = gemmShape)]
pub fn gemm_shape(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    GEMM.with_borrow_mut(|problems| {
        let p = cached(problems, (m, k, n), || GemmProblem {
            a: PackedA::pack(&fill(m * k, 1), m, k),
            bias: fill(m, 2),
            b: fill(k * n, 3),
            c: vec![0.0; m * n],
            scratch: Vec::new(),
        });
        for _ in 0..reps {
            let ep = Epilogue { bias: Some(&p.bias), relu: true };
            gemm::gemm(&p.a, MatRef { data: &p.b, rows: k, cols: n, ld: n }, MatMut { data: &mut p.c, rows: m, cols: n, ld: n }, ep, &mut p.scratch);
        }
    });
    (2 * m * k * n * reps) as f64
}

/// One image through a square-kernel `Conv2d` with bias and ReLU (`Conv2d::forward`, the
/// algorithm `Algorithm::select` picks), `reps` times.
#[wasm_bindgen(js_name = convShape)]
#[allow(clippy::too_many_arguments)]
pub fn conv_shape(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, h: usize, w: usize, reps: usize) -> Result<f64, JsError> {
    let spec = conv::ConvSpec { c_in, c_out, kh: k, kw: k, sh: stride, sw: stride, ph: pad, pw: pad };
    let (Some(oh), Some(ow)) = (conv::conv_out_size(h, k, stride, pad), conv::conv_out_size(w, k, stride, pad)) else {
        return Err(JsError::new("convShape: kernel larger than the padded input"));
    };
    if stride == 0 {
        return Err(JsError::new("convShape: stride 0"));
    }
    CONV.with_borrow_mut(|problems| {
        let p = cached(problems, [c_in, c_out, k, stride, pad, h, w], || ConvProblem {
            layer: conv::Conv2d::new(spec, &fill(c_out * spec.k(), 1), Some(&fill(c_out, 2))),
            x: fill(c_in * h * w, 3),
            y: vec![0.0; c_out * oh * ow],
            ws: conv::Workspace::default(),
        });
        let dst = conv::ChannelSlice { channels: c_out, channel_offset: 0 };
        for _ in 0..reps {
            p.layer.forward(&p.x, 1, h, w, true, &mut p.y, dst, &mut p.ws);
        }
    });
    Ok((2 * c_out * spec.k() * oh * ow * reps) as f64)
}
