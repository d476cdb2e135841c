//! Bench-only exports: kernels run in a loop inside wasm, so that timings measure the
//! kernels and not the per-call costs of the public API (JS validation, a fresh
//! zero-filled output, wasm-bindgen crossings: 20–50 µs a call, comparable to a whole
//! 7×7 layer). Feature `testing` only (never shipped): `bench/gemm.mjs` loads the build
//! in `target/testing/`.

use std::cell::RefCell;

use inception_kernels::{conv, weyl, workspace};
use inception_kernels::gemm::{self, Epilogue, MatMut, MatRef, PackedA};
use wasm_bindgen::prelude::*;

/// One layer with its input, output and scratch, all allocated once.
#[wasm_bindgen]
pub struct ConvBench {
    layer: conv::Conv2d,
    x: Vec<f32>,
    out: Vec<f32>,
    ws: workspace::Workspace,
    h: usize,
    w: usize,
    /// `runBatch`'s input and output (made on its first call with a batch size).
    batch: Vec<f32>,
    batch_out: Vec<f32>,
}

/// `len` values in [-0.1, 0.1): the weyl-fmix32 stream `salt` (the fixtures' generator).
fn values(len: usize, salt: u32) -> Vec<f32> {
    let mut v = vec![0.0; len];
    weyl::fill(salt, 0, weyl::Rule { offset: 0.0, scale: 0.1, abs: false }, &mut v);
    v
}

#[wasm_bindgen]
impl ConvBench {
    /// A square `k×k` stride-`s` layer with padding `pad`, bias and deterministic weights,
    /// on one `c_in × h × w` image; `algorithm` as `Conv2d`'s (`"auto"`, `"gemm"`,
    /// `"winograd2"`, `"winograd4"`).
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(c_in: usize, c_out: usize, k: usize, s: usize, pad: usize, h: usize, w: usize, algorithm: &str) -> Result<ConvBench, JsError> {
        let algorithm = match algorithm {
            "auto" => conv::Algorithm::Auto,
            "gemm" => conv::Algorithm::Gemm,
            "winograd2" => conv::Algorithm::Winograd2,
            "winograd4" => conv::Algorithm::Winograd4,
            _ => return Err(JsError::new("bench: unknown algorithm")),
        };
        let spec = conv::ConvSpec { c_in, c_out, kh: k, kw: k, sh: s, sw: s, ph: pad, pw: pad };
        if s == 0 {
            return Err(JsError::new("bench: stride 0"));
        }
        let (Some(oh), Some(ow)) = (conv::conv_out_size(h, k, s, pad), conv::conv_out_size(w, k, s, pad)) else {
            return Err(JsError::new("bench: input smaller than the kernel"));
        };
        let layer = conv::Conv2d::with_algorithm(spec, &values(c_out * spec.k(), 1), Some(&values(c_out, 2)), algorithm);
        Ok(ConvBench { layer, x: values(c_in * h * w, 3), out: vec![0.0; c_out * oh * ow], ws: workspace::Workspace::default(), h, w, batch: Vec::new(), batch_out: Vec::new() })
    }

    /// The algorithm the layer runs: `"gemm"`, `"winograd2"` or `"winograd4"`.
    pub fn algorithm(&self) -> String {
        crate::algorithm_name(self.layer.algorithm_for(self.h, self.w)).into()
    }

    /// Runs the layer on a batch of `n` copies of the image `reps` times as one GEMM over the
    /// batch (`Conv2d::forward_batch_part`, as plans run layers on small maps); returns
    /// false, running nothing, when the layer does not batch at this size.
    #[wasm_bindgen(js_name = runBatch)]
    pub fn run_batch(&mut self, n: usize, reps: usize) -> bool {
        if !self.layer.batches(n, self.h, self.w) {
            return false;
        }
        if self.batch.len() != n * self.x.len() {
            self.batch = self.x.repeat(n);
            self.batch_out = vec![0.0; n * self.out.len()];
            self.layer.prepare_batch(self.h, self.w).expect("bench: out of memory");
        }
        let parts = self.layer.batch_parts(n, self.h, self.w, 1);
        for _ in 0..reps {
            for part in 0..parts {
                // SAFETY: `batch_out` holds the whole batch's output; parts write disjoint elements.
                unsafe { self.layer.forward_batch_part(&self.batch, n, self.h, self.w, true, self.batch_out.as_mut_ptr(), part, parts, &mut self.ws) };
            }
        }
        true
    }

    /// Runs the layer `reps` times (with ReLU) into the same output.
    pub fn run(&mut self, reps: usize) {
        let dst = conv::ChannelSlice { channels: self.layer.spec().c_out, channel_offset: 0 };
        for _ in 0..reps {
            self.layer.forward(&self.x, 1, self.h, self.w, true, &mut self.out, dst, &mut self.ws);
        }
    }
}

/// The in-cache microkernel ceiling (`gemm::microkernel_peak`), `reps` times; returns the
/// flops done (2 per multiply-add).
#[wasm_bindgen(js_name = gemmPeak)]
pub fn gemm_peak(reps: usize) -> f64 {
    gemm::microkernel_peak(reps)
}

struct GemmProblem {
    shape: (usize, usize, usize),
    a: PackedA,
    bias: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    scratch: Vec<f32>,
}

thread_local! {
    /// Every shape `gemmShape` has seen (a few dozen: a list keeps the module smaller
    /// than a `HashMap` would).
    static GEMMS: RefCell<Vec<GemmProblem>> = const { RefCell::new(Vec::new()) };
}

/// `C[m×n] = relu(A[m×k]·B[k×n] + bias)` through `gemm::gemm`, `reps` times, with `B`
/// and `C` dense (row stride `n`), as a 1×1 convolution of a `k`-channel, `n`-pixel
/// input; returns the flops done. The operands are built on the first call with a shape
/// and kept (call once to warm up, then time).
#[wasm_bindgen(js_name = gemmShape)]
pub fn gemm_shape(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    GEMMS.with_borrow_mut(|problems| {
        let i = problems.iter().position(|p| p.shape == (m, k, n)).unwrap_or_else(|| {
            let (a, bias, b) = (values(m * k, 1), values(m, 2), values(k * n, 3));
            problems.push(GemmProblem { shape: (m, k, n), a: PackedA::pack(&a, m, k), bias, b, c: vec![0.0; m * n], scratch: Vec::new() });
            problems.len() - 1
        });
        let p = &mut problems[i];
        for _ in 0..reps {
            let ep = Epilogue { bias: Some(&p.bias), relu: true };
            gemm::gemm(&p.a, MatRef { data: &p.b, rows: k, cols: n, ld: n }, MatMut { data: &mut p.c, rows: m, cols: n, ld: n }, ep, &mut p.scratch);
        }
    });
    (2 * m * k * n * reps) as f64
}
