use super::*;
use crate::gemm::tests::ranges;
use crate::reference;
use crate::testutil::{assert_close_scaled, data};
use proptest::prelude::*;

/// Runs the layer on `n` images into channels `[off, off + c_out)` of a wider output and
/// compares with the loop-nest reference; the other channels must keep their sentinel.
fn check(spec: ConvSpec, n: usize, h: usize, w: usize, bias: bool, relu: bool, extra_channels: (usize, usize)) {
    for algorithm in [Algorithm::Gemm, Algorithm::Winograd2, Algorithm::Winograd4] {
        check_with(spec, n, h, w, bias, relu, extra_channels, algorithm);
    }
}

/// As [`check`] for one algorithm (Winograd falls back to the GEMM where it does not fit).
#[allow(clippy::too_many_arguments)]
fn check_with(spec: ConvSpec, n: usize, h: usize, w: usize, bias: bool, relu: bool, extra_channels: (usize, usize), algorithm: Algorithm) {
    let p = spec.with_input(h, w);
    let (oh, ow) = (p.out_h(), p.out_w());
    let x = data(n * spec.c_in * h * w, 4);
    let wt = data(spec.c_out * spec.k(), 5);
    let b = data(spec.c_out, 6);
    let layer = Conv2d::with_algorithm(spec, &wt, bias.then_some(&b[..]), algorithm);
    assert_eq!(layer.weights(), wt);
    let (before, after) = extra_channels;
    let channels = before + spec.c_out + after;
    let sentinel = -777.0;
    let mut out = vec![sentinel; n * channels * oh * ow];
    layer.forward(&x, n, h, w, relu, &mut out, ChannelSlice { channels, channel_offset: before }, &mut Workspace::default());
    let want = reference::conv2d(&x, n, &p, &wt, bias.then_some(&b[..]), relu);
    let hw = oh * ow;
    for img in 0..n {
        let at = (img * channels + before) * hw;
        let what = format!("conv2d {spec:?} {:?} n={n} h={h} w={w} image {img}", layer.algorithm());
        // Winograd's transforms scale by up to 5 (Bᵀ) and 8 (Aᵀ) for F(4×4), 1 for F(2×2).
        let scale = match layer.algorithm() {
            Algorithm::Winograd4 => 16.0,
            Algorithm::Winograd2 => 4.0,
            _ => 1.0,
        };
        assert_close_scaled(&out[at..at + spec.c_out * hw], &want[img * spec.c_out * hw..(img + 1) * spec.c_out * hw], spec.k(), scale, &what);
        let outside = out[img * channels * hw..at].iter().chain(&out[at + spec.c_out * hw..(img + 1) * channels * hw]);
        assert!(outside.clone().all(|&v| v == sentinel), "{what}: wrote outside its channel slice");
    }
}

fn square(c_in: usize, c_out: usize, k: usize, s: usize, p: usize) -> ConvSpec {
    ConvSpec { c_in, c_out, kh: k, kw: k, sh: s, sw: s, ph: p, pw: p }
}

#[test]
fn googlenet_kernel_sizes() {
    check(square(3, 8, 7, 2, 3), 1, 17, 16, true, true, (0, 0)); // conv1
    check(square(6, 9, 1, 1, 0), 2, 5, 7, true, true, (2, 3)); // 1×1 into a concat slice
    check(square(5, 7, 3, 1, 1), 1, 9, 6, true, false, (1, 0));
    check(square(4, 5, 5, 1, 2), 1, 7, 11, false, true, (0, 4));
}

#[test]
fn strides_and_padding_larger_than_half_the_kernel() {
    for (k, s, p) in [(3, 2, 0), (3, 3, 2), (1, 2, 0), (1, 1, 1), (3, 1, 3), (5, 2, 4), (2, 1, 0), (7, 3, 5)] {
        for (h, w) in [(1, 1), (2, 5), (8, 8), (9, 13)] {
            if conv_out_size(h, k, s, p).is_some() && conv_out_size(w, k, s, p).is_some() {
                check(square(3, 5, k, s, p), 2, h, w, true, true, (1, 1));
            }
        }
    }
}

#[test]
fn rectangular_kernels_and_strides() {
    let spec = ConvSpec { c_in: 2, c_out: 3, kh: 3, kw: 1, sh: 2, sw: 1, ph: 1, pw: 0 };
    check(spec, 1, 7, 5, true, false, (0, 0));
    let spec = ConvSpec { c_in: 2, c_out: 3, kh: 1, kw: 5, sh: 1, sw: 3, ph: 0, pw: 2 };
    check(spec, 1, 4, 10, false, false, (0, 0));
}

#[test]
fn output_size_rule() {
    assert_eq!(conv_out_size(224, 7, 2, 3), Some(112));
    assert_eq!(conv_out_size(28, 5, 1, 2), Some(28));
    assert_eq!(conv_out_size(2, 7, 1, 2), None);
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(48))]
    #[test]
    fn random_shapes(c_in in 1usize..6, c_out in 1usize..11, kh in 1usize..6, kw in 1usize..6,
                     sh in 1usize..4, sw in 1usize..4, ph in 0usize..4, pw in 0usize..4,
                     h in 1usize..14, w in 1usize..14, n in 1usize..3, relu: bool, bias: bool,
                     before in 0usize..3, after in 0usize..3) {
        let spec = ConvSpec { c_in, c_out, kh, kw, sh, sw, ph, pw };
        prop_assume!(conv_out_size(h, kh, sh, ph).is_some() && conv_out_size(w, kw, sw, pw).is_some());
        check(spec, n, h, w, bias, relu, (before, after));
    }
}

/// Regression (found by `random_shapes`): a 2-wide kernel with stride 3 and padding 1 on a
/// 1-pixel-wide input leaves kernel column 0 with no valid output column; im2col indexed
/// the input at the (empty) run's start anyway and went out of bounds.
#[test]
fn regression_kernel_column_with_no_valid_output() {
    let spec = ConvSpec { c_in: 1, c_out: 1, kh: 1, kw: 2, sh: 1, sw: 3, ph: 0, pw: 1 };
    check(spec, 1, 1, 1, false, false, (0, 0));
}

#[test]
fn winograd_is_selected_for_3x3_stride_1_only() {
    let pick = |k, s, c_in| Algorithm::select(&ConvSpec { c_in, c_out: 16, kh: k, kw: k, sh: s, sw: s, ph: 1, pw: 1 });
    assert_eq!(pick(3, 1, 64), Algorithm::Winograd4);
    assert_eq!(pick(3, 2, 64), Algorithm::Gemm);
    assert_eq!(pick(5, 1, 64), Algorithm::Gemm);
    assert_eq!(pick(3, 1, 3), Algorithm::Gemm);
    assert_eq!(pick(3, 1, 32), Algorithm::Gemm);
    assert_eq!(pick(3, 1, 160), Algorithm::Winograd4);
    assert_eq!(pick(3, 1, 192), Algorithm::Winograd2);
}

/// Runs one image through `forward_gemm_block` as a grid of blocks (row panels cut at
/// `panel_cuts`, pixels at `pixel_cuts`) into channels `[2, 2 + c_out)` of a wider output,
/// and checks it against `forward` bit for bit (and so against the reference, which
/// `check` compares `forward` with).
fn check_blocks(spec: ConvSpec, h: usize, w: usize, panel_cuts: &[usize], pixel_cuts: &[usize]) {
    let p = spec.with_input(h, w);
    let ohw = p.out_h() * p.out_w();
    let x = data(spec.c_in * h * w, 4);
    let layer = Conv2d::with_algorithm(spec, &data(spec.c_out * spec.k(), 5), Some(&data(spec.c_out, 6)), Algorithm::Gemm);
    let (channels, offset) = (spec.c_out + 3, 2);
    let dst = ChannelSlice { channels, channel_offset: offset };
    let mut want = vec![-777.0; channels * ohw];
    layer.forward(&x, 1, h, w, true, &mut want, dst, &mut Workspace::default());
    let mut got = vec![-777.0; channels * ohw];
    let mut ws = Workspace::default();
    for panels in ranges(panel_cuts, spec.c_out.div_ceil(gemm::MR)) {
        for pixels in ranges(pixel_cuts, ohw) {
            // SAFETY: channels offset.. of the one image lie inside `got`; the blocks of
            // the grid are disjoint.
            unsafe { layer.forward_gemm_block(&x, h, w, true, panels.clone(), pixels, got[offset * ohw..].as_mut_ptr(), ohw, &mut ws) };
        }
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{spec:?} {h}×{w} panels {panel_cuts:?} pixels {pixel_cuts:?}: element {i}");
    }
}

#[test]
fn gemm_blocks_match_forward_exactly() {
    // 1×1 (B read in place): any grid of panels × pixels, cuts inside strips.
    check_blocks(square(37, 13, 1, 1, 0), 9, 11, &[1, 3], &[5, 8, 50, 93]);
    // im2col by pixels: a 7×7 map (every strip spans 2–3 output rows), 5×5 same padding.
    check_blocks(square(6, 9, 5, 1, 2), 7, 7, &[], &[3, 16, 17]);
    // conv1-like: 40×40 = 1600 output pixels, two im2col blocks of IM2COL_BLOCK; stride 2
    // within output rows (40 = 5 strips per row).
    check_blocks(square(3, 10, 7, 2, 3), 80, 80, &[], &[]);
    check_blocks(square(3, 10, 7, 2, 3), 80, 80, &[], &[100, 1020, 1031]);
    // stride 2 across output rows, stride 3, and a block split by panels too.
    check_blocks(square(4, 7, 3, 2, 1), 13, 9, &[1], &[11, 12]);
    check_blocks(square(2, 5, 3, 3, 2), 10, 17, &[], &[9]);
}

#[test]
fn im2col_layers_across_blocks_and_strip_plans() {
    // Against the reference: more than one im2col block (1600 pixels), output widths
    // 1 (8 runs per strip), 3, 7 and 8 (one run), strides 1, 2 (one row / across rows), 3.
    check_with(square(3, 6, 7, 2, 3), 1, 80, 80, true, true, (1, 2), Algorithm::Gemm);
    for (k, s, p, h, w) in [(3, 1, 1, 9, 1), (3, 1, 1, 5, 3), (5, 1, 2, 7, 7), (5, 1, 2, 3, 8), (3, 2, 1, 9, 16), (3, 2, 1, 9, 13), (3, 3, 1, 10, 26)] {
        check_with(square(3, 5, k, s, p), 2, h, w, true, false, (0, 1), Algorithm::Gemm);
    }
}

#[test]
fn layers_large_enough_to_split_over_threads() {
    // Winograd above MIN_PARALLEL_WORK (both of its regions, with the `threads` feature),
    // and a GoogLeNet-sized 5×5 im2col layer, each with ragged edges.
    let spec = ConvSpec { c_in: 64, c_out: 42, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    check_with(spec, 1, 27, 29, true, true, (1, 2), Algorithm::Winograd4);
    check_with(spec, 1, 27, 29, true, false, (0, 0), Algorithm::Winograd2);
    let spec = ConvSpec { c_in: 64, c_out: 13, kh: 5, kw: 5, sh: 1, sw: 1, ph: 2, pw: 2 };
    check_with(spec, 1, 28, 28, true, true, (0, 3), Algorithm::Gemm);
    // Enough tile blocks (≥ 2 per thread on 2 cores) for Winograd's one-region split,
    // where tasks own whole blocks and write their pixels through the shared sink.
    let spec = ConvSpec { c_in: 40, c_out: 24, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    check_with(spec, 1, 95, 63, true, true, (2, 1), Algorithm::Winograd4);
    let spec = ConvSpec { c_in: 40, c_out: 40, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    check_with(spec, 1, 63, 64, true, false, (0, 1), Algorithm::Winograd2);
}

#[test]
fn winograd_on_googlenet_sized_layers() {
    // odd output sizes (clipped last tile), padding 0 and 2, many channels
    for (c_in, c_out, h, w, pad) in [(64, 24, 14, 14, 1), (32, 20, 7, 7, 1), (16, 9, 9, 6, 0), (12, 5, 5, 8, 2)] {
        let spec = ConvSpec { c_in, c_out, kh: 3, kw: 3, sh: 1, sw: 1, ph: pad, pw: pad };
        check_with(spec, 2, h, w, true, true, (3, 1), Algorithm::Winograd2);
        check_with(spec, 2, h, w, true, true, (3, 1), Algorithm::Winograd4);
    }
}

/// Regression (found by `random_shapes`): F(4×4)'s transforms round more than the direct
/// sum; with one input channel (K = 9) its error passed the plain tolerance. The tests
/// now scale the tolerance per algorithm; this shape stays as the witness.
#[test]
fn regression_winograd4_rounding_with_one_input_channel() {
    let spec = ConvSpec { c_in: 1, c_out: 3, kh: 3, kw: 3, sh: 1, sw: 1, ph: 3, pw: 0 };
    check_with(spec, 2, 10, 10, false, false, (0, 0), Algorithm::Winograd4);
}
