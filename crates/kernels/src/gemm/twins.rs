//! The simd128 microkernels against their scalar twins, bit for bit, on the wasm target
//! itself (the native tests run only the scalar ones). Called by the wasm crate's
//! `testing` build (`microkernelTwins`, driven from `test/microkernels.test.ts`); nothing
//! in a shipped module references it, so it is not linked there.
//!
//! Cases, after XNNPACK's test specs: `k` below, at and above every unroll and block edge;
//! every `mr × nr` clip of both tiles; `B` read in place at a stride and from a packed
//! strip (`COPY_B`, whose copy is compared too); bias with and without ReLU; and inputs
//! with NaN, ±∞, −0, subnormals and values near the float range.

use super::{scalar, simd128, Tile, MR, NR, TAIL_MR, TAIL_NR};

const KS: [usize; 16] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 64, 255, 256, 257];
const SPECIAL: [f32; 8] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-40, -3e38, 3e38, 0.0];

/// Values in [-1, 1), with a special value at every 37th position after `salt`.
fn values(len: usize, salt: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| {
            let h = crate::weyl::fmix32(salt.wrapping_mul(0x9E37_79B9).wrapping_add(i));
            if (i + salt) % 37 == 0 {
                SPECIAL[(h % 8) as usize]
            } else {
                (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            }
        })
        .collect()
}

/// Equal bit for bit, except that any NaN equals any NaN (wasm leaves NaN payloads and
/// signs to the engine).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn compare(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
    match got.iter().zip(want).position(|(&g, &w)| !same(g, w)) {
        None => Ok(()),
        Some(i) => Err(format!("{what}: element {i}: simd128 {} ({:#010x}), scalar {} ({:#010x})", got[i], got[i].to_bits(), want[i], want[i].to_bits())),
    }
}

/// Runs every case; `fused` picks the scalar twin (`mul_add`, for relaxed-SIMD builds
/// whose engine fuses `relaxed_madd`) or the plain one. Returns the number of kernel calls
/// compared, or the first mismatch.
pub fn check(fused: bool) -> Result<usize, String> {
    let mut calls = 0;
    for (ki, &k) in KS.iter().enumerate() {
        for relu in [false, true] {
            let salt = (ki as u32) * 2 + relu as u32;
            let a0 = values(k.max(1) * MR, salt);
            let a1 = values(k.max(1) * MR, salt + 100);
            let bias = values(TAIL_MR, salt + 200);
            for ldb in [NR, NR + 3] {
                let b = values(k.max(1) * ldb + NR, salt + 300);
                for mr in 1..=MR {
                    for nr in 1..=NR {
                        let tile = Tile::<MR> { bias: bias[..MR].try_into().expect("MR values"), relu };
                        let ldc = nr + 5;
                        for copy in [false, true] {
                            let run = |simd: bool| {
                                let mut c = vec![7.0f32; mr * ldc];
                                let mut strip = vec![0.0f32; k.max(1) * NR];
                                // SAFETY: a0 holds k·MR floats, b + kk·ldb holds NR floats
                                // for kk < k, c holds mr rows of ldc ≥ nr, strip k·NR.
                                unsafe {
                                    let (a, b, cp, s) = (a0.as_ptr(), b.as_ptr(), c.as_mut_ptr(), strip.as_mut_ptr());
                                    match (simd, copy, fused) {
                                        (true, true, _) => simd128::f32_gemm_4x8__simd128::<true>(k, a, b, ldb, cp, ldc, mr, nr, &tile, s),
                                        (true, false, _) => simd128::f32_gemm_4x8__simd128::<false>(k, a, b, ldb, cp, ldc, mr, nr, &tile, s),
                                        (false, true, true) => scalar::f32_gemm_4x8__scalar::<true, true>(k, a, b, ldb, cp, ldc, mr, nr, &tile, s),
                                        (false, true, false) => scalar::f32_gemm_4x8__scalar::<true, false>(k, a, b, ldb, cp, ldc, mr, nr, &tile, s),
                                        (false, false, true) => scalar::f32_gemm_4x8__scalar::<false, true>(k, a, b, ldb, cp, ldc, mr, nr, &tile, s),
                                        (false, false, false) => scalar::f32_gemm_4x8__scalar::<false, false>(k, a, b, ldb, cp, ldc, mr, nr, &tile, s),
                                    }
                                }
                                (c, strip)
                            };
                            let ((c, strip), (want_c, want_strip)) = (run(true), run(false));
                            let what = format!("f32_gemm_4x8 k={k} mr={mr} nr={nr} ldb={ldb} copy_b={copy} relu={relu}");
                            compare(&what, &c, &want_c)?;
                            compare(&format!("{what} (strip)"), &strip, &want_strip)?;
                            calls += 1;
                        }
                    }
                }
                for mr in 1..=TAIL_MR {
                    for nr in 1..=TAIL_NR {
                        let tile = Tile::<TAIL_MR> { bias: bias[..TAIL_MR].try_into().expect("TAIL_MR values"), relu };
                        let ldc = nr + 3;
                        let run = |simd: bool| {
                            let mut c = vec![7.0f32; mr * ldc];
                            // SAFETY: a0 and a1 hold k·MR floats, b + kk·ldb holds NR ≥
                            // TAIL_NR floats for kk < k, c holds mr rows of ldc ≥ nr.
                            unsafe {
                                let (p0, p1, b, cp) = (a0.as_ptr(), a1.as_ptr(), b.as_ptr(), c.as_mut_ptr());
                                match (simd, fused) {
                                    (true, _) => simd128::f32_gemm_8x4__simd128(k, p0, p1, b, ldb, cp, ldc, mr, nr, &tile),
                                    (false, true) => scalar::f32_gemm_8x4__scalar::<true>(k, p0, p1, b, ldb, cp, ldc, mr, nr, &tile),
                                    (false, false) => scalar::f32_gemm_8x4__scalar::<false>(k, p0, p1, b, ldb, cp, ldc, mr, nr, &tile),
                                }
                            }
                            c
                        };
                        compare(&format!("f32_gemm_8x4 k={k} mr={mr} nr={nr} ldb={ldb} relu={relu}"), &run(true), &run(false))?;
                        calls += 1;
                    }
                }
            }
        }
    }
    Ok(calls)
}
