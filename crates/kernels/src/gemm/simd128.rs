//! wasm `simd128` microkernels (the scalar ones in `scalar.rs` define the arithmetic).

use super::{store_tile, Tile, MR, NR, TAIL_MR, TAIL_NR};
use core::arch::wasm32::*;

/// `MR × NR` (4×8) tile of `A_panel · B` in eight `f32x4` accumulators: per `kk`, two
/// vector loads of `B`, four `load32_splat`s of `A`, eight [`madd`]s (and, with `COPY_B`,
/// two stores of the `B` row into the packed strip). Bias and ReLU are applied in
/// registers; full tiles are stored directly, edge tiles through `store_tile`.
///
/// # Safety
/// As [`super::scalar::f32_gemm_4x8__scalar`].
#[allow(non_snake_case, clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn f32_gemm_4x8__simd128<const COPY_B: bool>(
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
    let zero = f32x4_splat(0.0);
    let mut acc = [[zero; 2]; MR];
    let (mut a, mut b, mut b_copy) = (a, b, b_copy);
    for _ in 0..k {
        let b0 = v128_load(b as *const v128);
        let b1 = v128_load(b.add(4) as *const v128);
        if COPY_B {
            v128_store(b_copy as *mut v128, b0);
            v128_store(b_copy.add(4) as *mut v128, b1);
            b_copy = b_copy.add(NR);
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = v128_load32_splat(a.add(r) as *const u32);
            row[0] = madd(av, b0, row[0]);
            row[1] = madd(av, b1, row[1]);
        }
        a = a.add(MR);
        b = b.add(ldb);
    }
    finish(&mut acc, tile);
    if mr == MR && nr == NR {
        for (r, row) in acc.iter().enumerate() {
            v128_store(c.add(r * ldc) as *mut v128, row[0]);
            v128_store(c.add(r * ldc + 4) as *mut v128, row[1]);
        }
    } else {
        let mut t = [[0.0f32; NR]; MR];
        for (r, row) in acc.iter().enumerate() {
            v128_store(t[r].as_mut_ptr() as *mut v128, row[0]);
            v128_store(t[r].as_mut_ptr().add(4) as *mut v128, row[1]);
        }
        store_tile(&t, c, ldc, mr, nr);
    }
}

/// `TAIL_MR × TAIL_NR` (8×4) tile in eight `f32x4` accumulators: per `kk`, one vector
/// load of `B`, eight `load32_splat`s of `A` (four from each panel), eight [`madd`]s —
/// twice the rows of the 4×8 kernel for half its columns, for the last `≤ 4` columns.
///
/// # Safety
/// As [`super::scalar::f32_gemm_8x4__scalar`].
#[allow(non_snake_case, clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn f32_gemm_8x4__simd128(
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
    let zero = f32x4_splat(0.0);
    let mut acc = [[zero; 1]; TAIL_MR];
    let (mut a0, mut a1, mut b) = (a0, a1, b);
    for _ in 0..k {
        let bv = v128_load(b as *const v128);
        for (r, row) in acc.iter_mut().enumerate() {
            let src = if r < MR { a0.add(r) } else { a1.add(r - MR) };
            row[0] = madd(v128_load32_splat(src as *const u32), bv, row[0]);
        }
        a0 = a0.add(MR);
        a1 = a1.add(MR);
        b = b.add(ldb);
    }
    finish(&mut acc, tile);
    let mut t = [[0.0f32; TAIL_NR]; TAIL_MR];
    for (r, row) in acc.iter().enumerate() {
        v128_store(t[r].as_mut_ptr() as *mut v128, row[0]);
    }
    store_tile(&t, c, ldc, mr, nr);
}

/// `acc + a·b`: a multiply and an add, or in builds with `+relaxed-simd` one
/// `f32x4.relaxed_madd` (fused on x64 with FMA: one instruction and one rounding instead
/// of two). Every kernel uses this one helper, so blocks stay bit-identical within a build.
#[inline(always)]
fn madd(a: v128, b: v128, acc: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, acc);
    #[cfg(not(target_feature = "relaxed-simd"))]
    f32x4_add(acc, f32x4_mul(a, b))
}

/// Bias, then ReLU: `pmax(v, 0) = v < 0 ? 0 : v`, exactly the scalar kernels' rule (NaN
/// stays NaN).
#[inline(always)]
fn finish<const R: usize, const V: usize>(acc: &mut [[v128; V]; R], tile: &Tile<R>) {
    let zero = f32x4_splat(0.0);
    for (row, &bias) in acc.iter_mut().zip(&tile.bias) {
        let bv = f32x4_splat(bias);
        for v in row.iter_mut() {
            *v = f32x4_add(*v, bv);
            if tile.relu {
                *v = f32x4_pmax(*v, zero);
            }
        }
    }
}
