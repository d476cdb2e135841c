//! Bench-only exports (EXPERIMENT).

use std::cell::RefCell;

use inception_kernels::conv;
use inception_kernels::gemm::{self, Epilogue, MatMut, MatRef, PackedA};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(js_name = gemmPeak)]
pub fn gemm_peak(reps: usize) -> f64 {
    gemm::microkernel_peak(reps)
}

struct Problem {
    key: (usize, usize, usize),
    a: PackedA,
    bias: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    scratch: Vec<f32>,
}

thread_local! {
    static PROBLEM: RefCell<Option<Problem>> = const { RefCell::new(None) };
    static CONV: RefCell<Option<((usize, usize, usize, usize, usize, usize, usize), conv::Conv2d, Vec<f32>, Vec<f32>, conv::Workspace)>> = const { RefCell::new(None) };
}

fn fill(len: usize, salt: usize) -> Vec<f32> {
    (0..len).map(|i| (((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5) - 1.0).collect()
}

#[wasm_bindgen(js_name = gemmShape)]
pub fn gemm_shape(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    PROBLEM.with_borrow_mut(|slot| {
        if slot.as_ref().map(|p| p.key) != Some((m, k, n)) {
            *slot = Some(Problem { key: (m, k, n), a: PackedA::pack(&fill(m * k, 1), m, k), bias: fill(m, 2), b: fill(k * n, 3), c: vec![0.0; m * n], scratch: Vec::new() });
        }
        let p = slot.as_mut().unwrap();
        for _ in 0..reps {
            let ep = Epilogue { bias: Some(&p.bias), relu: true };
            gemm::gemm(&p.a, MatRef { data: &p.b, rows: k, cols: n, ld: n }, MatMut { data: &mut p.c, rows: m, cols: n, ld: n }, ep, &mut p.scratch);
        }
    });
    (2 * m * k * n * reps) as f64
}

#[wasm_bindgen(js_name = convShape)]
#[allow(clippy::too_many_arguments)]
pub fn conv_shape(c_in: usize, c_out: usize, k: usize, s: usize, pad: usize, h: usize, w: usize, reps: usize) -> f64 {
    let key = (c_in, c_out, k, s, pad, h, w);
    let spec = conv::ConvSpec { c_in, c_out, kh: k, kw: k, sh: s, sw: s, ph: pad, pw: pad };
    let p = spec.with_input(h, w);
    let ohw = p.out_h() * p.out_w();
    CONV.with_borrow_mut(|slot| {
        if slot.as_ref().map(|c| c.0) != Some(key) {
            let layer = conv::Conv2d::new(spec, &fill(c_out * spec.k(), 1), Some(&fill(c_out, 2)));
            *slot = Some((key, layer, fill(c_in * h * w, 3), vec![0.0; c_out * ohw], conv::Workspace::default()));
        }
        let (_, layer, x, y, ws) = slot.as_mut().unwrap();
        for _ in 0..reps {
            layer.forward(x, 1, h, w, true, y, conv::ChannelSlice { channels: c_out, channel_offset: 0 }, ws);
        }
    });
    (2 * c_out * spec.k() * ohw * reps) as f64
}

#[wasm_bindgen(js_name = setKnob)]
pub fn set_knob(which: usize, value: usize) {
    use core::sync::atomic::Ordering::Relaxed;
    match which {
        0 => gemm::TAIL.store(value, Relaxed),
        1 => conv::IM2COL_COLS.store(value, Relaxed),
        _ => {}
    }
}
