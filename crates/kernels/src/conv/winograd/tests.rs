//! The filter transforms against the plain matrices of Lavin & Gray, and the input limit
//! against what the transforms really reach.

use super::block::*;
use super::filter::*;
use super::lanes::*;
use super::transform::*;
use super::{LANES, TMAX};
use crate::conv::Conv2dParams;
use crate::gemm::PackedA;
use crate::workspace::WinogradScratch;

mod filter {
    use super::*;
    use crate::testutil::data;

    /// `G` of each variant as the plain matrix of Lavin & Gray, t × 3.
    fn g_matrix(v: &Variant) -> Vec<[f64; 3]> {
        if v.t == 4 {
            vec![[1., 0., 0.], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0., 0., 1.]]
        } else {
            let (s, t, w) = (1. / 6., 1. / 12., 1. / 24.);
            vec![[0.25, 0., 0.], [-s, -s, -s], [-s, s, -s], [w, t, s], [w, -t, s], [0., 0., 1.]]
        }
    }

    #[test]
    fn factored_filter_transform_equals_g_g_gt() {
        for v in [&F2, &F4] {
            let (c_out, c_in) = (5, 3);
            let wt = data(c_out * c_in * 9, 17);
            let w = WinogradWeights::new(v, &PackedA::pack(&wt, c_out, c_in * 9), None).unwrap();
            let g = g_matrix(v);
            for (i, f) in wt.chunks_exact(9).enumerate() {
                let (oc, ic) = (i / c_in, i % c_in);
                for xi in 0..v.t * v.t {
                    let (r, c) = (xi / v.t, xi % v.t);
                    let want: f64 = (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).map(|(a, b)| g[r][a] * f[a * 3 + b] as f64 * g[c][b]).sum();
                    let got = w.u[xi].unpack().unwrap()[oc * c_in + ic];
                    // The factored order rounds differently in f64, never by an f32 ulp more.
                    assert!((got - want as f32).abs() <= f32::EPSILON * (want.abs() as f32).max(1e-3), "F{} U_{xi}[{oc}][{ic}]: {got} vs {want}", v.m);
                }
            }
        }
    }
}

mod limit {
    use super::*;
    use crate::testutil::data;

    /// The factored `bt` / `at` against the matrices written in `F23` / `F43`'s docs (unit
    /// vectors through the lanes), and each variant's gains against the largest row sums
    /// of |coefficients| of those matrices and of `G` (`F2` / `F4`'s docs).
    #[test]
    fn transform_gains_are_the_largest_row_sums_of_bt_and_at() {
        let bt4: [[f32; 6]; 6] = [[4., 0., -5., 0., 1., 0.], [0., -4., -4., 1., 1., 0.], [0., 4., -4., -1., 1., 0.], [0., -2., -1., 2., 1., 0.], [0., 2., -1., -2., 1., 0.], [0., 4., 0., -5., 0., 1.]];
        let at4: [[f32; 6]; 4] = [[1., 1., 1., 1., 1., 0.], [0., 1., -1., 2., -2., 0.], [0., 1., 1., 4., 4., 0.], [0., 1., -1., 8., -8., 1.]];
        let bt2: [[f32; 6]; 4] = [[1., 0., -1., 0., 0., 0.], [0., 1., 1., 0., 0., 0.], [0., -1., 1., 0., 0., 0.], [0., 1., 0., -1., 0., 0.]];
        let at2: [[f32; 6]; 2] = [[1., 1., 1., 0., 0., 0.], [0., 1., -1., -1., 0., 0.]];
        let (s, t, w) = (1. / 6., 1. / 12., 1. / 24.);
        let g2: [[f32; 6]; 4] = [[1., 0., 0., 0., 0., 0.], [0.5, 0.5, 0.5, 0., 0., 0.], [0.5, -0.5, 0.5, 0., 0., 0.], [0., 0., 1., 0., 0., 0.]];
        let g4: [[f32; 6]; 6] = [[0.25, 0., 0., 0., 0., 0.], [-s, -s, -s, 0., 0., 0.], [-s, s, -s, 0., 0., 0.], [w, t, s, 0., 0., 0.], [w, -t, s, 0., 0., 0.], [0., 0., 1., 0., 0., 0.]];
        type Transform = fn([L; TMAX]) -> Vec<L>;
        type Matrix<'a> = &'a [[f32; 6]];
        let column = |f: Transform, j: usize| -> Vec<f32> {
            f(core::array::from_fn(|i| L::splat(if i == j { 1.0 } else { 0.0 })))
                .iter()
                .map(|v| {
                    let mut lanes = [0.0f32; LANES];
                    // SAFETY: `lanes` holds 4 floats.
                    unsafe { v.store(lanes.as_mut_ptr()) };
                    lanes[0]
                })
                .collect()
        };
        let gain = |rows: &[[f32; 6]]| rows.iter().map(|r| r.iter().map(|c| c.abs() as f64).sum::<f64>()).fold(0.0, f64::max).powi(2);
        let variants: [(&Variant, Matrix, Matrix, Matrix, Transform, Transform); 2] = [
            (&F2, &bt2, &g2, &at2, |d| F23::bt(d)[..4].to_vec(), |m| F23::at(m)[..2].to_vec()),
            (&F4, &bt4, &g4, &at4, |d| F43::bt(d).to_vec(), |m| F43::at(m).to_vec()),
        ];
        for (v, bt, g, at, bt_fn, at_fn) in variants {
            for j in 0..v.t {
                assert_eq!(column(bt_fn, j), bt.iter().map(|r| r[j]).collect::<Vec<_>>(), "F{} Bᵀ column {j}", v.m);
                assert_eq!(column(at_fn, j), at.iter().map(|r| r[j]).collect::<Vec<_>>(), "F{} Aᵀ column {j}", v.m);
            }
            // The largest row sums (2, 3/2, 3; 10, 1, 19) are exact in f32.
            assert_eq!((v.b_gain, v.g_gain, v.a_gain), (gain(bt), gain(g), gain(at)), "F{} gains", v.m);
        }
    }

    /// He-initialised 3×3 filters (uniform, bound √(6 / fan_in)), `c_out × c_in`.
    fn he_filters(c_out: usize, c_in: usize, salt: u32) -> PackedA {
        let bound = (6.0 / (9 * c_in) as f32).sqrt();
        let w: Vec<f32> = data(c_out * c_in * 9, salt).iter().map(|v| v * bound).collect();
        PackedA::pack(&w, c_out, c_in * 9)
    }

    /// Inputs up to the limit are accepted and, even all at ±limit, give finite outputs;
    /// the next float above it, ∞ and NaN are refused; so is every input when the filters
    /// or the bias could not give finite outputs anyway.
    #[test]
    fn input_limit_admits_exactly_the_inputs_the_transforms_take() {
        let (c_in, c_out, h, w) = (64, 8, 9, 10);
        let p = Conv2dParams { c_in, c_out, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, h, w };
        let bias = data(c_out, 3);
        for v in [&F2, &F4] {
            let filters = he_filters(c_out, c_in, 2);
            let wino = WinogradWeights::new(v, &filters, Some(&bias)).unwrap();
            let limit = wino.input_limit;
            assert!(limit > 1e30 && limit < f32::MAX, "F{}: limit {limit}", v.m);
            let (th, tw) = tile_grid(&p, v);
            let tiles = 0..th * tw;
            let signs = data(c_in * h * w, 4);
            let mut x: Vec<f32> = signs.iter().map(|s| if *s < 0.0 { -limit } else { limit }).collect();
            assert!(wino.accepts(&x, &p, &tiles), "F{}: ±limit refused", v.m);
            let mut out = vec![0.0; c_out * h * w];
            // SAFETY: `out` holds the c_out planes of h·w outputs (padding 1 keeps the size).
            unsafe { conv_block(&x, &p, &wino, tiles.clone(), 0..c_out, Some(&bias), false, out.as_mut_ptr(), h * w, &mut WinogradScratch::default()) };
            assert!(out.iter().all(|o| o.is_finite()), "F{}: inputs at ±limit overflowed", v.m);
            for bad in [limit.next_up(), -limit.next_up(), f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
                x[(5 * h + 4) * w + 7] = bad;
                assert!(!wino.accepts(&x, &p, &tiles), "F{}: {bad} accepted", v.m);
            }
            let zeros = vec![0.0; c_in * h * w];
            let mut broken = filters.unpack().unwrap();
            broken[17] = f32::INFINITY;
            let broken = PackedA::pack(&broken, c_out, c_in * 9);
            let huge_bias = vec![f32::MAX; c_out];
            for (filters, bias) in [(&broken, &bias[..]), (&filters, &huge_bias[..])] {
                assert!(!WinogradWeights::new(v, filters, Some(bias)).unwrap().accepts(&zeros, &p, &tiles), "F{}: accepted with a filter or bias out of range", v.m);
            }
        }
    }
}

