//! CNN inference kernels for inception-wasm: packed GEMM, convolution, pooling,
//! activation and channel concatenation over NCHW `f32` data (a linear layer is a 1×1
//! convolution over one-pixel images).
//!
//! Pure Rust with no JavaScript dependency, so everything here is tested natively with
//! `cargo test`; the `simd128` microkernels are compiled only for
//! `wasm32 + target_feature = "simd128"` and are tested through the wasm build (vitest).
//!
//! Kernel names follow one formula, after XNNPACK:
//! `<dtype>_<op>[_<activation>]_<MR>x<NR>__<isa>`, e.g. `f32_gemm_4x8__simd128`.
//! Activations that are a run-time flag of the epilogue are not part of the name.
//!
//! Every public function checks its slice lengths once (`assert!`) and then runs the
//! inner loops unchecked; the callers (the wasm crate) validate shapes before that, so an
//! assertion failing here is a bug, not bad input.

// Graph and plan building run once per model, not per forward: compiled for size in the
// wasm builds (`#[optimize(size)]`, nightly-gated; the wasm build runs with
// RUSTC_BOOTSTRAP), so the threaded module keeps within its size budget.
#![cfg_attr(target_arch = "wasm32", feature(optimize_attribute))]

pub mod activation;
pub mod alloc;
pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod gemm;
pub mod plan;
pub mod pool;
pub mod reference;
pub mod split;
pub mod train;
mod transpose;
pub mod weyl;
pub mod workspace;

#[cfg(test)]
mod testutil;
