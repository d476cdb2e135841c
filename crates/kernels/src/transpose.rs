//! Matrix transposes for the training backward's operands (`rows(X)` of a 1×1 conv is its
//! input transposed; a GEMM's packed `A` panel is `MR` rows interleaved): 4×4 blocks of
//! `i32x4_shuffle`s in simd128 builds, element by element at the edges and elsewhere.

/// Rows `a, b, c, d` → columns: the 4×4 transpose of four vectors (`i32x4_shuffle`s that V8
/// lowers to unpck/shufps).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) fn transpose4([a, b, c, d]: [core::arch::wasm32::v128; 4]) -> [core::arch::wasm32::v128; 4] {
    use core::arch::wasm32::i32x4_shuffle;
    let (ab_lo, ab_hi) = (i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let (cd_lo, cd_hi) = (i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    [
        i32x4_shuffle::<0, 1, 4, 5>(ab_lo, cd_lo),
        i32x4_shuffle::<2, 3, 6, 7>(ab_lo, cd_lo),
        i32x4_shuffle::<0, 1, 4, 5>(ab_hi, cd_hi),
        i32x4_shuffle::<2, 3, 6, 7>(ab_hi, cd_hi),
    ]
}

/// `dst[j·ld_dst + i] = src[i·ld_src + j]` for `i < rows`, `j < cols`.
pub(crate) fn transpose(src: &[f32], ld_src: usize, rows: usize, cols: usize, dst: &mut [f32], ld_dst: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src.len() >= (rows - 1) * ld_src + cols && dst.len() >= (cols - 1) * ld_dst + rows, "transpose: operand too short");
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (r4, c4) = (rows / 4 * 4, cols / 4 * 4);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let (r4, c4) = (0, 0);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    for i in (0..r4).step_by(4) {
        use core::arch::wasm32::{v128, v128_load, v128_store};
        for j in (0..c4).step_by(4) {
            // SAFETY: rows i..i+4 and columns j..j+4 are inside both, by the assert.
            unsafe {
                let v = transpose4(core::array::from_fn(|r| v128_load(src.as_ptr().add((i + r) * ld_src + j) as *const v128)));
                for (c, v) in v.into_iter().enumerate() {
                    v128_store(dst.as_mut_ptr().add((j + c) * ld_dst + i) as *mut v128, v);
                }
            }
        }
    }
    // The edges: columns past the last whole block in the block rows, then the rows past them.
    for i in 0..r4 {
        for j in c4..cols {
            dst[j * ld_dst + i] = src[i * ld_src + j];
        }
    }
    for i in r4..rows {
        for j in 0..cols {
            dst[j * ld_dst + i] = src[i * ld_src + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn transposes_every_shape_with_strides() {
        for (rows, cols, pad_s, pad_d) in [(1, 1, 0, 0), (4, 4, 0, 0), (5, 3, 2, 1), (8, 12, 0, 3), (7, 9, 5, 0), (3, 16, 1, 1)] {
            let (ld_s, ld_d) = (cols + pad_s, rows + pad_d);
            let src: Vec<f32> = (0..rows * ld_s).map(|v| v as f32).collect();
            let mut dst = vec![f32::NAN; cols * ld_d];
            transpose(&src, ld_s, rows, cols, &mut dst, ld_d);
            for j in 0..cols {
                for i in 0..ld_d {
                    let want = if i < rows { src[i * ld_s + j] } else { f32::NAN };
                    assert_eq!(dst[j * ld_d + i].to_bits(), want.to_bits(), "{rows}×{cols} at ({i}, {j})");
                }
            }
        }
    }
}
