//! wasm-bindgen glue over `inception-kernels`: owns the memory (tensor buffers, packed
//! weights, scratch) and re-checks every length before a kernel runs, returning a
//! JavaScript `Error` instead of trapping. The TypeScript layer validates first and
//! names the layer; the checks here are the last line that keeps a bad call from
//! aborting the instance or touching another tensor's memory.
//!
//! No raw pointers cross this boundary except `Buffer::ptr`, which JavaScript uses only
//! to build `Float32Array` views over a buffer's own bytes.

use std::cell::RefCell;

use inception_kernels::{activation, concat, conv, linear, pool};
use wasm_bindgen::prelude::*;

mod bench;
#[cfg(feature = "threads")]
mod threads;

#[cfg(not(target_feature = "simd128"))]
compile_error!("inception-wasm must be built with `-C target-feature=+simd128` (see scripts/build-wasm.sh)");

thread_local! {
    /// im2col and GEMM scratch, shared by all layers (single-threaded build: one caller at
    /// a time). It only grows, to the largest layer's need.
    static WORKSPACE: RefCell<conv::Workspace> = RefCell::new(conv::Workspace::default());
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), JsError> {
    if ok {
        Ok(())
    } else {
        Err(JsError::new(&msg()))
    }
}

/// A float32 buffer in linear memory, the storage of a `Tensor`. Its address never
/// changes (the Vec is never resized), so views only go stale when the memory grows.
#[wasm_bindgen]
pub struct Buffer {
    data: Vec<f32>,
}

#[wasm_bindgen]
impl Buffer {
    /// A zero-filled buffer of `len` floats.
    #[wasm_bindgen(constructor)]
    pub fn new(len: usize) -> Buffer {
        Buffer { data: vec![0.0; len] }
    }

    /// Byte offset of the first float in linear memory.
    pub fn ptr(&self) -> usize {
        self.data.as_ptr() as usize
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    #[wasm_bindgen(js_name = isEmpty)]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A convolution layer with its weights packed once, here.
#[wasm_bindgen]
pub struct Conv2d {
    inner: conv::Conv2d,
}

#[wasm_bindgen]
impl Conv2d {
    /// `weights` in `OIHW` order, `bias` (optional) with `c_out` values; `algorithm` is
    /// `"auto"` (the kernel-selection table), `"gemm"`, `"winograd2"` or `"winograd4"`.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        weights: &[f32],
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
        check(weights.len() == c_out * spec.k(), || format!("conv2d: weights have {} values, expected {}", weights.len(), c_out * spec.k()))?;
        if let Some(b) = &bias {
            check(b.len() == c_out, || format!("conv2d: bias has {} values, expected {c_out}", b.len()))?;
        }
        Ok(Conv2d { inner: conv::Conv2d::with_algorithm(spec, weights, bias.as_deref(), algorithm) })
    }

    /// The algorithm this layer runs: `"gemm"`, `"winograd2"` or `"winograd4"`.
    pub fn algorithm(&self) -> String {
        match self.inner.algorithm() {
            conv::Algorithm::Winograd2 => "winograd2".into(),
            conv::Algorithm::Winograd4 => "winograd4".into(),
            _ => "gemm".into(),
        }
    }

    /// `n` images of `c_in × h × w` from `input` into channels `[offset, offset + c_out)`
    /// of `output` (`n × channels × oh × ow`).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, input: &Buffer, n: usize, h: usize, w: usize, relu: bool, output: &mut Buffer, channels: usize, offset: usize) -> Result<(), JsError> {
        let s = self.inner.spec();
        let (oh, ow) = match (conv::conv_out_size(h, s.kh, s.sh, s.ph), conv::conv_out_size(w, s.kw, s.sw, s.pw)) {
            (Some(oh), Some(ow)) => (oh, ow),
            _ => return Err(JsError::new(&format!("conv2d: {h}×{w} input is smaller than the {}×{} kernel", s.kh, s.kw))),
        };
        check(input.data.len() == n * s.c_in * h * w, || "conv2d: input length does not match its shape".into())?;
        check(offset + s.c_out <= channels, || "conv2d: output channel slice out of range".into())?;
        check(output.data.len() == n * channels * oh * ow, || "conv2d: output length does not match its shape".into())?;
        let dst = conv::ChannelSlice { channels, channel_offset: offset };
        WORKSPACE.with_borrow_mut(|ws| self.inner.forward(&input.data, n, h, w, relu, &mut output.data, dst, ws));
        Ok(())
    }

    /// The weights in `OIHW` order.
    pub fn weights(&self) -> Vec<f32> {
        self.inner.weights()
    }

    pub fn bias(&self) -> Option<Vec<f32>> {
        self.inner.bias().map(<[f32]>::to_vec)
    }
}

/// A fully connected layer; `weights` is PyTorch's `[out, in]`.
#[wasm_bindgen]
pub struct Linear {
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
    inp: usize,
    out: usize,
}

#[wasm_bindgen]
impl Linear {
    #[wasm_bindgen(constructor)]
    pub fn new(weights: Vec<f32>, bias: Option<Vec<f32>>, inp: usize, out: usize) -> Result<Linear, JsError> {
        check(weights.len() == inp * out, || format!("linear: weights have {} values, expected {}", weights.len(), inp * out))?;
        if let Some(b) = &bias {
            check(b.len() == out, || format!("linear: bias has {} values, expected {out}", b.len()))?;
        }
        Ok(Linear { weights, bias, inp, out })
    }

    pub fn forward(&self, input: &Buffer, n: usize, output: &mut Buffer) -> Result<(), JsError> {
        check(input.data.len() == n * self.inp, || "linear: input length does not match its shape".into())?;
        check(output.data.len() == n * self.out, || "linear: output length does not match its shape".into())?;
        linear::linear(&input.data, n, &self.weights, self.inp, self.out, self.bias.as_deref(), &mut output.data);
        Ok(())
    }

    pub fn weights(&self) -> Vec<f32> {
        self.weights.clone()
    }

    pub fn bias(&self) -> Option<Vec<f32>> {
        self.bias.clone()
    }
}

fn pool_shape(planes: usize, h: usize, w: usize, p: &pool::Pool2dParams, input: &Buffer, output: &Buffer, op: &str) -> Result<(), JsError> {
    check(p.sh > 0 && p.sw > 0 && p.kh > 0 && p.kw > 0, || format!("{op}: kernel and stride must be positive"))?;
    let oh = pool::pool_out_size(h, p.kh, p.sh, p.ph, p.ceil_mode);
    let ow = pool::pool_out_size(w, p.kw, p.sw, p.pw, p.ceil_mode);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        return Err(JsError::new(&format!("{op}: {h}×{w} input is smaller than the {}×{} kernel", p.kh, p.kw)));
    };
    check(2 * p.ph <= p.kh && 2 * p.pw <= p.kw, || format!("{op}: padding must be at most half the kernel"))?;
    check(input.data.len() == planes * h * w, || format!("{op}: input length does not match its shape"))?;
    check(output.data.len() == planes * oh * ow, || format!("{op}: output length does not match its shape"))
}

#[allow(clippy::too_many_arguments)]
#[wasm_bindgen(js_name = maxPool2d)]
pub fn max_pool2d(input: &Buffer, planes: usize, h: usize, w: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool, output: &mut Buffer) -> Result<(), JsError> {
    let p = pool::Pool2dParams { kh, kw, sh, sw, ph, pw, ceil_mode };
    pool_shape(planes, h, w, &p, input, output, "max_pool2d")?;
    pool::max_pool2d(&input.data, planes, h, w, &p, &mut output.data);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
#[wasm_bindgen(js_name = avgPool2d)]
pub fn avg_pool2d(input: &Buffer, planes: usize, h: usize, w: usize, kh: usize, kw: usize, sh: usize, sw: usize, ph: usize, pw: usize, ceil_mode: bool, count_include_pad: bool, output: &mut Buffer) -> Result<(), JsError> {
    let p = pool::Pool2dParams { kh, kw, sh, sw, ph, pw, ceil_mode };
    pool_shape(planes, h, w, &p, input, output, "avg_pool2d")?;
    pool::avg_pool2d(&input.data, planes, h, w, &p, count_include_pad, &mut output.data);
    Ok(())
}

#[wasm_bindgen(js_name = adaptiveAvgPool2d)]
pub fn adaptive_avg_pool2d(input: &Buffer, planes: usize, h: usize, w: usize, oh: usize, ow: usize, output: &mut Buffer) -> Result<(), JsError> {
    check(h > 0 && w > 0 && oh > 0 && ow > 0, || "adaptive_avg_pool2d: sizes must be positive".into())?;
    check(input.data.len() == planes * h * w, || "adaptive_avg_pool2d: input length does not match its shape".into())?;
    check(output.data.len() == planes * oh * ow, || "adaptive_avg_pool2d: output length does not match its shape".into())?;
    pool::adaptive_avg_pool2d(&input.data, planes, h, w, oh, ow, &mut output.data);
    Ok(())
}

/// In-place ReLU.
#[wasm_bindgen]
pub fn relu(buffer: &mut Buffer) {
    activation::relu(&mut buffer.data);
}

/// Copies `n × c_src × hw` from `src` into channels `[offset, offset + c_src)` of `dst`.
#[wasm_bindgen(js_name = copyChannels)]
pub fn copy_channels(src: &Buffer, n: usize, c_src: usize, hw: usize, dst: &mut Buffer, c_dst: usize, offset: usize) -> Result<(), JsError> {
    check(src.data.len() == n * c_src * hw, || "concat: source length does not match its shape".into())?;
    check(dst.data.len() == n * c_dst * hw, || "concat: destination length does not match its shape".into())?;
    check(offset + c_src <= c_dst, || "concat: channel slice out of range".into())?;
    concat::copy_channels(&src.data, n, c_src, hw, &mut dst.data, c_dst, offset);
    Ok(())
}
