//! The portable microkernels: the native build's kernels and the arithmetic every SIMD
//! kernel reproduces (each output is `Σ_kk a·b` in `kk` order, one multiply and one add
//! per term, then `+ bias`, then ReLU) — bit for bit in simd128 builds; relaxed-SIMD
//! builds fuse each multiply-add (one rounding per term instead of two), which the
//! `FUSED` twins reproduce with `mul_add` (`twins.rs` compares them on wasm).

use super::{store_tile, Tile, MR, NR, TAIL_MR, TAIL_NR};

/// `MR × NR` tile of `A_panel · B` plus bias and optional ReLU, clipped to `mr × nr`.
/// With `COPY_B`, also copies the `k × NR` strip of `B` it reads to `b_copy` (packed,
/// row stride `NR`), so the next panels read it from L1 (see `gemm::gemm_block`).
///
/// # Safety
/// `a` holds `k·MR` floats; `b + kk·ldb` holds `NR` floats for every `kk < k`;
/// `c + r·ldc` is writable for `nr` floats for every `r < mr`; with `COPY_B`, `b_copy`
/// is writable for `k·NR` floats and overlaps none of the others.
#[allow(non_snake_case, clippy::too_many_arguments)]
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
pub(super) unsafe fn f32_gemm_4x8__scalar<const COPY_B: bool, const FUSED: bool>(
    k: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    tile: &Tile<MR>,
    b_copy: *mut f32,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for kk in 0..k {
        let brow = core::slice::from_raw_parts(b.add(kk * ldb), NR);
        if COPY_B {
            core::ptr::copy_nonoverlapping(brow.as_ptr(), b_copy.add(kk * NR), NR);
        }
        let acol = core::slice::from_raw_parts(a.add(kk * MR), MR);
        for r in 0..MR {
            for j in 0..NR {
                acc[r][j] = madd::<FUSED>(acol[r], brow[j], acc[r][j]);
            }
        }
    }
    finish(&mut acc, tile);
    store_tile(&acc, c, ldc, mr, nr);
}

/// `TAIL_MR × TAIL_NR` (8×4) tile: two row panels (`a0`, `a1`) against the first four
/// columns of a packed strip, for the last `≤ 4` columns of a product.
///
/// # Safety
/// `a0` and `a1` hold `k·MR` floats; `b + kk·ldb` holds `TAIL_NR` floats for every
/// `kk < k`; `c + r·ldc` is writable for `nr ≤ TAIL_NR` floats for every `r < mr ≤ TAIL_MR`.
#[allow(non_snake_case, clippy::too_many_arguments)]
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
pub(super) unsafe fn f32_gemm_8x4__scalar<const FUSED: bool>(
    k: usize,
    a0: *const f32,
    a1: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    tile: &Tile<TAIL_MR>,
) {
    let mut acc = [[0.0f32; TAIL_NR]; TAIL_MR];
    for kk in 0..k {
        let brow = core::slice::from_raw_parts(b.add(kk * ldb), TAIL_NR);
        let (lo, hi) = (core::slice::from_raw_parts(a0.add(kk * MR), MR), core::slice::from_raw_parts(a1.add(kk * MR), MR));
        for r in 0..TAIL_MR {
            let av = if r < MR { lo[r] } else { hi[r - MR] };
            for j in 0..TAIL_NR {
                acc[r][j] = madd::<FUSED>(av, brow[j], acc[r][j]);
            }
        }
    }
    finish(&mut acc, tile);
    store_tile(&acc, c, ldc, mr, nr);
}

/// `acc + a·b`, with one rounding when `FUSED`.
#[inline(always)]
fn madd<const FUSED: bool>(a: f32, b: f32, acc: f32) -> f32 {
    if FUSED {
        a.mul_add(b, acc)
    } else {
        acc + a * b
    }
}

/// Bias, then ReLU (`v < 0 → 0`, so NaN stays NaN, like the simd128 kernels' `pmax`).
fn finish<const R: usize, const C: usize>(acc: &mut [[f32; C]; R], tile: &Tile<R>) {
    for (row, &bias) in acc.iter_mut().zip(&tile.bias) {
        for v in row.iter_mut() {
            *v += bias;
            if tile.relu && *v < 0.0 {
                *v = 0.0;
            }
        }
    }
}
