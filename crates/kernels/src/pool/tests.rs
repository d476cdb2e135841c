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
    // Inputs smaller than the kernel (torchvision's GoogLeNet at 15×15: 3×3/2 ceil pools
    // on 2×2 maps, 2×2/2 on 1×1): one window in ceil mode when short by less than the
    // stride, none otherwise (all from PyTorch 1.13).
    assert_eq!((pool_out_size(2, 3, 2, 0, true), pool_out_size(1, 2, 2, 0, true), pool_out_size(1, 3, 1, 1, true)), (Some(1), Some(1), Some(1)));
    assert_eq!((pool_out_size(2, 3, 2, 0, false), pool_out_size(1, 3, 2, 0, true), pool_out_size(1, 4, 2, 1, true)), (None, None, Some(1)));
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
    // Outputs past one tile of windows (32 × 32) both ways.
    check(pool(3, 1, 1, false), 2, 40, 70);
}

#[test]
fn adaptive_overlapping_windows() {
    for (h, w, oh, ow) in [(14, 14, 4, 4), (7, 7, 1, 1), (5, 3, 2, 3), (3, 4, 5, 6), (1, 1, 1, 1), (50, 45, 33, 40)] {
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

/// test/fixtures/pool_geometries.json, written by its generator (pool_geometries.py) with
/// PyTorch 1.13.
const TORCH_POOLS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/pool_geometries.json"));

/// The numbers of the JSON value after `"key":` in `line` (an array, or a single number
/// or `true`/`false`, read as 1/0; `null` as NaN).
fn field(line: &str, key: &str) -> Vec<f64> {
    let rest = &line[line.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len() + 3..];
    let value = if rest.starts_with('[') { &rest[1..rest.find(']').unwrap()] } else { &rest[..rest.find([',', '}']).unwrap()] };
    value.split(',').map(|v| match v.trim() {
        "true" => 1.0,
        "false" => 0.0,
        "null" => f64::NAN,
        v => v.parse().unwrap_or_else(|_| panic!("{key}: {v}")),
    }).collect()
}

/// Regression (issue 12): pool_out_size refused every input smaller than the kernel
/// (padded), which PyTorch runs in ceil mode (torchvision's GoogLeNet below 31 px). Every
/// (len, k, s, pad, ceil) of the fixture — len 1–12, k 1–6, s 1–4, pad 0–3 — is accepted
/// by a plan's max and average pools exactly when PyTorch accepts it, with its size.
#[test]
fn plans_accept_exactly_the_geometries_pytorch_accepts() {
    let rows = TORCH_POOLS.split("\"rows\": [").nth(1).unwrap().split("]},").next().unwrap();
    let mut n = 0;
    for row in rows.lines().map(str::trim).filter(|l| l.starts_with('[')) {
        let f: Vec<&str> = row.trim_end_matches(',').trim_matches(['[', ']']).split(',').collect();
        let [len, k, s, pad, ceil] = core::array::from_fn(|i| f[i].parse::<usize>().unwrap());
        let want = f[5].parse::<usize>().ok();
        let p = Pool2dParams { kh: k, kw: 1, sh: s, sw: 1, ph: pad, pw: 0, ceil_mode: ceil == 1 };
        for avg in [false, true] {
            let mut pb = crate::plan::PlanBuilder::new(len);
            let dst = pb.value(want.unwrap_or(0));
            let (src, planes, h, w) = (crate::plan::INPUT, 1, len, 1);
            let op = if avg { crate::plan::Op::AvgPool { p, count_include_pad: true, planes, h, w, src, dst } } else { crate::plan::Op::MaxPool { p, planes, h, w, src, dst } };
            let got = pb.push(op);
            assert_eq!(got.is_ok(), want.is_some(), "{row} avg={avg}: {got:?}");
        }
        if 2 * pad <= k {
            assert_eq!(pool_out_size(len, k, s, pad, ceil == 1), want, "{row}");
        }
        n += 1;
    }
    assert_eq!(n, 2304);
}

/// The kernels on the fixture's 2-D cases (weyl-fmix32 inputs, PyTorch's outputs in
/// float64): max pooling exactly, average pooling (both divisors) within rounding.
#[test]
fn kernels_compute_what_pytorch_computes() {
    let cases = TORCH_POOLS.split("\"cases\": [").nth(1).unwrap();
    let mut n = 0;
    for case in cases.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let pair = |key| -> [usize; 2] { let v = field(case, key); [v[0] as usize, v[1] as usize] };
        let (x, [kh, kw], [sh, sw], [ph, pw]) = (field(case, "x"), pair("k"), pair("s"), pair("p"));
        let (planes, h, w) = (x[0] as usize * x[1] as usize, x[2] as usize, x[3] as usize);
        let p = Pool2dParams { kh, kw, sh, sw, ph, pw, ceil_mode: field(case, "ceil")[0] == 1.0 };
        let mut input = vec![0.0; planes * h * w];
        crate::weyl::fill(field(case, "seed")[0] as u32, 0, crate::weyl::Rule { offset: 0.0, scale: 1.0, abs: false }, &mut input);
        let mut y = vec![0.0; planes * p.out_h(h) * p.out_w(w)];
        max_pool2d(&input, planes, h, w, &p, &mut y, &mut Vec::new());
        assert_eq!(y, field(case, "max").iter().map(|&v| v as f32).collect::<Vec<_>>(), "max {case}");
        for (cip, key) in [(true, "avg"), (false, "avgExcludePad")] {
            avg_pool2d(&input, planes, h, w, &p, cip, &mut y);
            for (g, want) in y.iter().zip(field(case, key)) {
                assert!((*g as f64 - want).abs() <= 4e-6 * (1.0 + want.abs()), "{key}: {g} vs {want} in {case}");
            }
        }
        n += 1;
    }
    assert!(n >= 70, "{n} cases");
}
