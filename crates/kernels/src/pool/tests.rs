use super::*;
use crate::reference;
use crate::testutil::{assert_close, data};
use proptest::prelude::*;

fn check(p: Pool2dParams, planes: usize, h: usize, w: usize) {
    let x = data(planes * h * w, 7);
    let mut y = vec![0.0; planes * p.out_h(h) * p.out_w(w)];
    max_pool2d(&x, planes, h, w, &p, &mut y, &mut Vec::new());
    assert_eq!(y, reference::max_pool2d(&x, planes, h, w, &p), "max_pool2d {p:?} h={h} w={w}");
    for cip in [true, false] {
        avg_pool2d(&x, planes, h, w, &p, cip, &mut y);
        let want = reference::avg_pool2d(&x, planes, h, w, &p, cip);
        assert_close(&y, &want, p.kh * p.kw, &format!("avg_pool2d {p:?} cip={cip} h={h} w={w}"));
    }
}

fn pool(k: usize, s: usize, p: usize, ceil_mode: bool) -> Pool2dParams {
    Pool2dParams { kh: k, kw: k, sh: s, sw: s, ph: p, pw: p, ceil_mode }
}

#[test]
fn pytorch_output_sizes() {
    // The fixture cases (input 14×15 and 7×9) and GoogLeNet's pools at 224×224.
    assert_eq!((pool_out_size(14, 3, 2, 1, false), pool_out_size(15, 3, 2, 1, false)), (Some(7), Some(8)));
    assert_eq!((pool_out_size(14, 3, 2, 1, true), pool_out_size(15, 3, 2, 1, true)), (Some(8), Some(8)));
    assert_eq!((pool_out_size(14, 3, 2, 0, true), pool_out_size(15, 3, 2, 0, true)), (Some(7), Some(7)));
    assert_eq!((pool_out_size(7, 2, 2, 0, true), pool_out_size(9, 2, 2, 0, true)), (Some(4), Some(5)));
    assert_eq!(pool_out_size(112, 3, 2, 0, true), Some(56));
    assert_eq!(pool_out_size(14, 2, 2, 0, true), Some(7));
    // The ceil-mode correction: the last window would start at 4 = len + pad.
    assert_eq!(pool_out_size(4, 2, 2, 0, true), Some(2));
    assert_eq!(pool_out_size(5, 2, 3, 1, true), Some(2));
    assert_eq!(pool_out_size(1, 3, 1, 0, false), None);
}

#[test]
fn edge_shapes() {
    for (k, s, p) in [(3, 2, 1), (3, 2, 0), (2, 2, 0), (3, 1, 1), (1, 1, 0), (2, 3, 1)] {
        for ceil in [false, true] {
            for (h, w) in [(3, 3), (7, 9), (14, 15), (5, 2)] {
                if pool_out_size(h, k, s, p, ceil).is_some() && pool_out_size(w, k, s, p, ceil).is_some() {
                    check(pool(k, s, p, ceil), 3, h, w);
                }
            }
        }
    }
}

#[test]
fn many_planes_in_one_call() {
    // As a plan's task gets them (planes not a multiple of anything); the split itself is
    // tested in plan::tests (`pooling_split_into_tasks_of_planes_...`).
    check(pool(3, 1, 1, false), 261, 28, 28);
    check(pool(3, 2, 0, true), 261, 28, 28);
}

#[test]
fn adaptive_overlapping_windows() {
    for (h, w, oh, ow) in [(14, 14, 4, 4), (7, 7, 1, 1), (5, 3, 2, 3), (3, 4, 5, 6), (1, 1, 1, 1)] {
        let x = data(2 * h * w, 8);
        let mut y = vec![0.0; 2 * oh * ow];
        adaptive_avg_pool2d(&x, 2, h, w, oh, ow, &mut y);
        let want = reference::adaptive_avg_pool2d(&x, 2, h, w, oh, ow);
        assert_close(&y, &want, h * w, &format!("adaptive {h}x{w} -> {oh}x{ow}"));
    }
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(64))]
    #[test]
    fn random_shapes(kh in 1usize..5, kw in 1usize..5, sh in 1usize..4, sw in 1usize..4,
                     ph in 0usize..3, pw in 0usize..3, ceil_mode: bool, h in 1usize..16, w in 1usize..16) {
        // PyTorch requires pad ≤ kernel/2 for pooling.
        prop_assume!(2 * ph <= kh && 2 * pw <= kw);
        prop_assume!(pool_out_size(h, kh, sh, ph, ceil_mode).is_some() && pool_out_size(w, kw, sw, pw, ceil_mode).is_some());
        check(Pool2dParams { kh, kw, sh, sw, ph, pw, ceil_mode }, 2, h, w);
    }
}

/// Regression: `f32::max` skips NaN, so a window holding one returned the largest other
/// value (and an all-NaN window -inf); PyTorch propagates NaN.
#[test]
fn regression_max_pool_propagates_nan() {
    let x = [f32::NAN, 1.0, 2.0, 3.0, f32::NAN, f32::NAN, f32::NAN, f32::NAN];
    let mut y = [0.0; 2];
    max_pool2d(&x, 2, 2, 2, &pool(2, 2, 0, false), &mut y, &mut Vec::new());
    assert!(y[0].is_nan() && y[1].is_nan(), "got {y:?}");
}
