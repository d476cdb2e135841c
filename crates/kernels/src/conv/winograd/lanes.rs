//! Four tiles side by side ([`Lanes`]): the only ISA-specific part, a scalar twin
//! (compiled everywhere, the native build's and the oracle of the simd128 one) and simd128.

/// Four tiles side by side: lane `l` of every value belongs to tile `l` of a group.
use super::{LANES, TMAX};

pub(super) trait Lanes: Copy {
    fn splat(x: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `v < 0 ? 0 : v` (NaN stays NaN, like the GEMM's epilogue).
    fn relu(self) -> Self;
    /// # Safety
    /// `p` is valid for reading 4 floats.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` is valid for writing 4 floats.
    unsafe fn store(self, p: *mut f32);
    /// Element `j` of the result has `p[l][j]` in lane `l`, for `j < t` (t = 4 or 6).
    ///
    /// # Safety
    /// Each `p[l]` is valid for reading 4 floats when t = 4, 8 when t = 6.
    unsafe fn gather(p: [*const f32; LANES], t: usize) -> [Self; TMAX];
    /// Writes lane `l` of `y[0..cols[l]]` to `q[l][0..cols[l]]`, for `m` (2 or 4) values.
    ///
    /// # Safety
    /// Each `q[l]` is valid for writing `cols[l] ≤ m` floats.
    unsafe fn scatter(y: &[Self; 4], m: usize, q: [*mut f32; LANES], cols: [usize; LANES]);
}

/// The lanes of this build: simd128 in wasm builds with `+simd128`, the scalar twin
/// elsewhere.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) type L = simd128::F32x4;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub(super) type L = scalar::F32x4;

/// The portable lanes: the native build's and the shape simd128 must reproduce.
#[cfg_attr(all(target_arch = "wasm32", target_feature = "simd128"), allow(dead_code))]
mod scalar {
    use super::{Lanes, LANES, TMAX};

    #[derive(Clone, Copy, Debug)]
    pub struct F32x4([f32; LANES]);

    impl F32x4 {
        #[inline(always)]
        fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
            Self(core::array::from_fn(|l| f(self.0[l], o.0[l])))
        }
    }

    impl Lanes for F32x4 {
        #[inline(always)]
        fn splat(x: f32) -> Self {
            Self([x; LANES])
        }

        #[inline(always)]
        fn add(self, o: Self) -> Self {
            self.zip(o, |a, b| a + b)
        }

        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            self.zip(o, |a, b| a - b)
        }

        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            self.zip(o, |a, b| a * b)
        }

        #[inline(always)]
        fn relu(self) -> Self {
            Self(self.0.map(|v| if v < 0.0 { 0.0 } else { v }))
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(core::ptr::read_unaligned(p as *const [f32; LANES]))
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            core::ptr::write_unaligned(p as *mut [f32; LANES], self.0);
        }

        #[inline(always)]
        unsafe fn gather(p: [*const f32; LANES], t: usize) -> [Self; TMAX] {
            core::array::from_fn(|j| Self(p.map(|q| if j < t { *q.add(j) } else { 0.0 })))
        }

        #[inline(always)]
        unsafe fn scatter(y: &[Self; 4], _m: usize, q: [*mut f32; LANES], cols: [usize; LANES]) {
            for l in 0..LANES {
                for (b, v) in y.iter().enumerate().take(cols[l]) {
                    *q[l].add(b) = v.0[l];
                }
            }
        }
    }
}

/// simd128 lanes: rows of four tiles become lane vectors by 4×4 transposes
/// (`i32x4_shuffle`s that V8 lowers to unpck/shufps), and back for the outputs.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::{Lanes, LANES, TMAX};
    use crate::transpose::transpose4;
    use core::arch::wasm32::*;

    #[derive(Clone, Copy, Debug)]
    pub struct F32x4(v128);

    /// Lanes `0..cols` of `v` to `q`.
    #[inline(always)]
    unsafe fn store_cols(q: *mut f32, v: v128, cols: usize) {
        match cols {
            4 => v128_store(q as *mut v128, v),
            3 => {
                v128_store64_lane::<0>(v, q as *mut u64);
                v128_store32_lane::<2>(v, q.add(2) as *mut u32);
            }
            2 => v128_store64_lane::<0>(v, q as *mut u64),
            1 => v128_store32_lane::<0>(v, q as *mut u32),
            _ => {}
        }
    }

    impl Lanes for F32x4 {
        #[inline(always)]
        fn splat(x: f32) -> Self {
            Self(f32x4_splat(x))
        }

        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Self(f32x4_add(self.0, o.0))
        }

        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Self(f32x4_sub(self.0, o.0))
        }

        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            Self(f32x4_mul(self.0, o.0))
        }

        #[inline(always)]
        fn relu(self) -> Self {
            // pmax(v, 0) = v < 0 ? 0 : v, exactly the scalar rule.
            Self(f32x4_pmax(self.0, f32x4_splat(0.0)))
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(v128_load(p as *const v128))
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            v128_store(p as *mut v128, self.0);
        }

        #[inline(always)]
        unsafe fn gather(p: [*const f32; LANES], t: usize) -> [Self; TMAX] {
            let [d0, d1, d2, d3] = transpose4(p.map(|q| v128_load(q as *const v128)));
            if t == 4 {
                return [d0, d1, d2, d3, d3, d3].map(Self);
            }
            // Elements 4 and 5: the low halves of each lane's second vector, transposed.
            let [e0, e1, e2, e3] = p.map(|q| v128_load(q.add(4) as *const v128));
            let (lo01, lo23) = (i32x4_shuffle::<0, 4, 1, 5>(e0, e1), i32x4_shuffle::<0, 4, 1, 5>(e2, e3));
            [d0, d1, d2, d3, i32x4_shuffle::<0, 1, 4, 5>(lo01, lo23), i32x4_shuffle::<2, 3, 6, 7>(lo01, lo23)].map(Self)
        }

        #[inline(always)]
        unsafe fn scatter(y: &[Self; 4], m: usize, q: [*mut f32; LANES], cols: [usize; LANES]) {
            if m == 4 {
                let r = transpose4(y.map(|v| v.0));
                for l in 0..LANES {
                    store_cols(q[l], r[l], cols[l]);
                }
                return;
            }
            // m = 2: lanes 0, 1 of `lo` are tile 0's two values, lanes 2, 3 tile 1's.
            let (lo, hi) = (i32x4_shuffle::<0, 4, 1, 5>(y[0].0, y[1].0), i32x4_shuffle::<2, 6, 3, 7>(y[0].0, y[1].0));
            store_cols(q[0], lo, cols[0]);
            store_cols(q[1], i32x4_shuffle::<2, 3, 2, 3>(lo, lo), cols[1]);
            store_cols(q[2], hi, cols[2]);
            store_cols(q[3], i32x4_shuffle::<2, 3, 2, 3>(hi, hi), cols[3]);
        }
    }
}

