//! Bench-only exports: a convolution run in a loop inside wasm, so that timings measure
//! the kernels and not the per-call costs of the public API (JS validation, a fresh
//! zero-filled output, wasm-bindgen crossings: 20–50 µs a call, comparable to a whole
//! 7×7 layer). Not part of the TypeScript API; scripts import the generated glue directly.

use inception_kernels::conv;
use wasm_bindgen::prelude::*;

/// One layer with its input, output and scratch, all allocated once.
#[wasm_bindgen]
pub struct ConvBench {
    layer: conv::Conv2d,
    x: Vec<f32>,
    out: Vec<f32>,
    ws: conv::Workspace,
    h: usize,
    w: usize,
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
            other => return Err(JsError::new(&format!("bench: unknown algorithm {other:?}"))),
        };
        let spec = conv::ConvSpec { c_in, c_out, kh: k, kw: k, sh: s, sw: s, ph: pad, pw: pad };
        let (Some(oh), Some(ow)) = (conv::conv_out_size(h, k, s, pad), conv::conv_out_size(w, k, s, pad)) else {
            return Err(JsError::new("bench: input smaller than the kernel"));
        };
        let wave = |len: usize, f: f32| (0..len).map(|i| (i as f32 * f).sin() * 0.1).collect::<Vec<f32>>();
        let layer = conv::Conv2d::with_algorithm(spec, &wave(c_out * spec.k(), 0.37), Some(&wave(c_out, 0.11)), algorithm);
        Ok(ConvBench { layer, x: wave(c_in * h * w, 1.0), out: vec![0.0; c_out * oh * ow], ws: conv::Workspace::default(), h, w })
    }

    /// The algorithm the layer runs.
    pub fn algorithm(&self) -> String {
        format!("{:?}", self.layer.algorithm())
    }

    /// Runs the layer `reps` times (with ReLU) into the same output.
    pub fn run(&mut self, reps: usize) {
        let dst = conv::ChannelSlice { channels: self.layer.spec().c_out, channel_offset: 0 };
        for _ in 0..reps {
            self.layer.forward(&self.x, 1, self.h, self.w, true, &mut self.out, dst, &mut self.ws);
        }
    }
}
