//! The portable microkernel: the native build's kernel and the shape every SIMD kernel
//! must reproduce.

use super::{store_tile, MR, NR};

/// `MR × NR` tile of `A_panel · B`, plus bias, optional ReLU, clipped to `mr × nr`.
///
/// # Safety
/// `a` holds `k·MR` floats; `b + kk·ldb` holds `NR` floats for every `kk < k`;
/// `c + r·ldc` is writable for `nr` floats for every `r < mr`.
#[allow(non_snake_case, clippy::too_many_arguments)]
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
pub(super) unsafe fn f32_gemm_4x8__scalar(
    k: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    bias: &[f32; MR],
    relu: bool,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for kk in 0..k {
        let brow = core::slice::from_raw_parts(b.add(kk * ldb), NR);
        let acol = core::slice::from_raw_parts(a.add(kk * MR), MR);
        for r in 0..MR {
            for j in 0..NR {
                acc[r][j] += acol[r] * brow[j];
            }
        }
    }
    for r in 0..MR {
        for v in acc[r].iter_mut() {
            *v += bias[r];
            if relu && *v < 0.0 {
                *v = 0.0;
            }
        }
    }
    store_tile(&acc, c, ldc, mr, nr);
}
