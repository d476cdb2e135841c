//! wasm `simd128` microkernel.

use super::{store_tile, MR, NR};
use core::arch::wasm32::*;

/// `MR × NR` (4×8) tile of `A_panel · B` in eight `f32x4` accumulators: per `kk`, two
/// vector loads of `B`, four `load32_splat`s of `A`, eight mul+add. Bias and ReLU are
/// applied in registers; full tiles are stored directly, edge tiles through `store_tile`.
///
/// # Safety
/// As [`super::scalar::f32_gemm_4x8__scalar`].
#[allow(non_snake_case, clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn f32_gemm_4x8__simd128(
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
    let zero = f32x4_splat(0.0);
    let mut acc = [[zero; 2]; MR];
    let mut a = a;
    let mut b = b;
    for _ in 0..k {
        let b0 = v128_load(b as *const v128);
        let b1 = v128_load(b.add(4) as *const v128);
        for (r, row) in acc.iter_mut().enumerate() {
            let av = v128_load32_splat(a.add(r) as *const u32);
            row[0] = f32x4_add(row[0], f32x4_mul(av, b0));
            row[1] = f32x4_add(row[1], f32x4_mul(av, b1));
        }
        a = a.add(MR);
        b = b.add(ldb);
    }
    for (r, row) in acc.iter_mut().enumerate() {
        let bv = f32x4_splat(bias[r]);
        for v in row.iter_mut() {
            *v = f32x4_add(*v, bv);
            if relu {
                // pmax(v, 0) = v < 0 ? 0 : v, exactly the scalar kernel's rule (NaN stays NaN).
                *v = f32x4_pmax(*v, zero);
            }
        }
    }
    if mr == MR && nr == NR {
        for (r, row) in acc.iter().enumerate() {
            v128_store(c.add(r * ldc) as *mut v128, row[0]);
            v128_store(c.add(r * ldc + 4) as *mut v128, row[1]);
        }
    } else {
        let mut tile = [[0.0f32; NR]; MR];
        for (r, row) in acc.iter().enumerate() {
            v128_store(tile[r].as_mut_ptr() as *mut v128, row[0]);
            v128_store(tile[r].as_mut_ptr().add(4) as *mut v128, row[1]);
        }
        store_tile(&tile, c, ldc, mr, nr);
    }
}
