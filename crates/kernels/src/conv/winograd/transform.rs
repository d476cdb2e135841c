//! The 1-D input and output transforms `Bᵀ·d` and `Aᵀ·m` of each variant, on lanes.

use super::lanes::{Lanes, L};
use super::TMAX;

/// The 1-D transforms of one variant, on the first `T` entries of `TMAX`-arrays of lanes
/// (`Bᵀ·d` for one row or column of an input tile, `Aᵀ·m` for one of a product tile).
pub(super) trait Tile {
    const M: usize;
    const T: usize;
    /// Floats one lane's row read may cover ([`Lanes::gather`]); staged rows are padded
    /// so that the last tile column's read stays inside.
    const ROW_LOAD: usize;
    fn bt(d: [L; TMAX]) -> [L; TMAX];
    fn at(m: [L; TMAX]) -> [L; 4];
}

/// F(2×2, 3×3): `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`, `Aᵀ = [1 1 1 0; 0 1 −1 −1]`.
pub(super) struct F23;

impl Tile for F23 {
    const M: usize = 2;
    const T: usize = 4;
    const ROW_LOAD: usize = 4;

    #[inline(always)]
    fn bt([d0, d1, d2, d3, ..]: [L; TMAX]) -> [L; TMAX] {
        [d0.sub(d2), d1.add(d2), d2.sub(d1), d1.sub(d3), d3, d3]
    }

    #[inline(always)]
    fn at([m0, m1, m2, m3, ..]: [L; TMAX]) -> [L; 4] {
        let s = m1.add(m2);
        [m0.add(s), m1.sub(m2).sub(m3), s, s]
    }
}

/// F(4×4, 3×3), points 0, ±1, ±2, ∞:
/// `Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]`,
/// `Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]`, factored so that rows
/// sharing terms compute them once: 18 operations per 6 inputs for `Bᵀ`, 13 for `Aᵀ` (their
/// nonzeros alone take 28 and 20).
pub(super) struct F43;

impl Tile for F43 {
    const M: usize = 4;
    const T: usize = 6;
    const ROW_LOAD: usize = 8;

    #[inline(always)]
    fn bt([d0, d1, d2, d3, d4, d5]: [L; TMAX]) -> [L; TMAX] {
        let (two, four) = (L::splat(2.0), L::splat(4.0));
        let a = d4.sub(four.mul(d2)); // rows 1, 2: ±(d3 − 4·d1) + (d4 − 4·d2)
        let b = d3.sub(four.mul(d1));
        let c = d4.sub(d2); // rows 0, 3, 4
        let e = two.mul(d3.sub(d1));
        [four.mul(d0.sub(d2)).add(c), a.add(b), a.sub(b), c.add(e), c.sub(e), four.mul(d1.sub(d3)).add(d5.sub(d3))]
    }

    #[inline(always)]
    fn at([m0, m1, m2, m3, m4, m5]: [L; TMAX]) -> [L; 4] {
        let (s12, d12, s34, d34) = (m1.add(m2), m1.sub(m2), m3.add(m4), m3.sub(m4));
        [m0.add(s12).add(s34), d12.add(L::splat(2.0).mul(d34)), s12.add(L::splat(4.0).mul(s34)), d12.add(L::splat(8.0).mul(d34)).add(m5)]
    }
}

