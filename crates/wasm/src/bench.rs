//! Bench-only exports: a convolution run in a loop inside wasm, so that timings measure
//! the kernels and not the per-call costs of the public API (JS validation, a fresh
//! zero-filled output, wasm-bindgen crossings: 20–50 µs a call, comparable to a whole
//! 7×7 layer). Not part of the TypeScript API; scripts import the generated glue directly.
//! Kept small (no formatting, no libm): it ships in the module, ≈ 2.5 KB.

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

/// `len` values in [-0.1, 0.1) from an LCG (different `salt`s, unrelated streams).
fn values(len: usize, salt: u32) -> Vec<f32> {
    let mut s = salt.wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
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
        Ok(ConvBench { layer, x: values(c_in * h * w, 3), out: vec![0.0; c_out * oh * ow], ws: conv::Workspace::default(), h, w })
    }

    /// The algorithm the layer runs: `"gemm"`, `"winograd2"` or `"winograd4"`.
    pub fn algorithm(&self) -> String {
        match self.layer.algorithm() {
            conv::Algorithm::Winograd2 => "winograd2",
            conv::Algorithm::Winograd4 => "winograd4",
            _ => "gemm",
        }
        .into()
    }

    /// Runs the layer `reps` times (with ReLU) into the same output.
    pub fn run(&mut self, reps: usize) {
        let dst = conv::ChannelSlice { channels: self.layer.spec().c_out, channel_offset: 0 };
        for _ in 0..reps {
            self.layer.forward(&self.x, 1, self.h, self.w, true, &mut self.out, dst, &mut self.ws);
        }
    }
}
