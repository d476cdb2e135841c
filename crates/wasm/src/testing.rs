//! Test-only exports (feature `testing`; never shipped): kernel checks that must run on
//! the wasm target itself.

use wasm_bindgen::prelude::*;

/// The simd128 (or relaxed-SIMD) microkernels against their scalar twins, bit for bit
/// (`inception_kernels::gemm::twins`); `fused` compares with the `mul_add` twins. Returns
/// the number of kernel calls compared; the first mismatch is the error.
#[wasm_bindgen(js_name = microkernelTwins)]
pub fn microkernel_twins(fused: bool) -> Result<usize, JsError> {
    inception_kernels::gemm::twins::check(fused).map_err(|e| JsError::new(&e))
}

/// Whether this build has relaxed SIMD (`f32x4.relaxed_madd` in its microkernels).
#[wasm_bindgen(js_name = relaxedBuild)]
pub fn relaxed_build() -> bool {
    cfg!(target_feature = "relaxed-simd")
}
