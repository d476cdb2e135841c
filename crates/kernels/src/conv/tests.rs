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
    assert_eq!(layer.weights().unwrap(), wt);
    let (before, after) = extra_channels;
    let channels = before + spec.c_out + after;
    let sentinel = -777.0;
    let mut out = vec![sentinel; n * channels * oh * ow];
    layer.forward(&x, n, h, w, relu, &mut out, ChannelSlice { channels, channel_offset: before }, &mut Workspace::default());
    let want = reference::conv2d(&x, n, &p, &wt, bias.then_some(&b[..]), relu);
    let hw = oh * ow;
    for img in 0..n {
        let at = (img * channels + before) * hw;
        let what = format!("conv2d {spec:?} {:?} n={n} h={h} w={w} image {img}", layer.algorithm_for(h, w));
        // Winograd's transforms scale by up to 5 (Bᵀ) and 8 (Aᵀ) for F(4×4), 1 for F(2×2).
        let scale = match layer.algorithm_for(h, w) {
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
fn winograd_is_selected_for_3x3_stride_1_by_output_size() {
    let pick = |k, s, c_in, out| Algorithm::select(&ConvSpec { c_in, c_out: 16, kh: k, kw: k, sh: s, sw: s, ph: 1, pw: 1 }, out, out + 3);
    assert_eq!(pick(3, 1, 64, 56), Algorithm::Winograd4);
    assert_eq!(pick(3, 1, 64, 11), Algorithm::Winograd4);
    assert_eq!(pick(3, 1, 64, 10), Algorithm::Winograd2);
    assert_eq!(pick(3, 1, 160, 7), Algorithm::Winograd2);
    assert_eq!(pick(3, 1, 160, 3), Algorithm::Winograd2);
    assert_eq!(pick(3, 1, 160, 2), Algorithm::Gemm);
    assert_eq!(pick(3, 1, 7, 56), Algorithm::Gemm);
    assert_eq!(pick(3, 1, 8, 56), Algorithm::Winograd4);
    assert_eq!(pick(3, 2, 64, 56), Algorithm::Gemm);
    assert_eq!(pick(5, 1, 64, 56), Algorithm::Gemm);
}

/// A layer keeps its weights and makes each variant's packed form when an input size
/// first needs it: the same layer runs F(4×4) at 14×14 and F(2×2) at 7×7, both against
/// the reference, and its weights read back exactly.
#[test]
fn one_layer_runs_the_variant_each_input_size_picks() {
    let spec = square(12, 9, 3, 1, 1);
    let (wt, b) = (data(9 * spec.k(), 5), data(9, 6));
    let layer = Conv2d::new(spec, &wt, Some(&b));
    assert_eq!((layer.algorithm_for(14, 14), layer.algorithm_for(7, 7), layer.algorithm_for(2, 9)), (Algorithm::Winograd4, Algorithm::Winograd2, Algorithm::Gemm));
    for (h, w, scale) in [(14, 14, 16.0), (7, 7, 4.0), (2, 9, 1.0), (14, 15, 16.0)] {
        let x = data(spec.c_in * h * w, 4);
        let mut out = vec![0.0; spec.c_out * h * w];
        layer.forward(&x, 1, h, w, false, &mut out, ChannelSlice { channels: spec.c_out, channel_offset: 0 }, &mut Workspace::default());
        let want = reference::conv2d(&x, 1, &spec.with_input(h, w), &wt, Some(&b), false);
        assert_close_scaled(&out, &want, spec.k(), scale, &format!("{h}×{w}"));
    }
    assert_eq!(layer.weights().unwrap(), wt);
}

/// Runs one image through `forward_gemm_block` as a grid of blocks (row panels cut at
/// `panel_cuts`, pixels at `pixel_cuts`) into channels `[2, 2 + c_out)` of a wider output,
/// and checks it against `forward` bit for bit (and so against the reference, which
/// `check` compares `forward` with).
fn check_gemm_blocks(spec: ConvSpec, h: usize, w: usize, panel_cuts: &[usize], pixel_cuts: &[usize]) {
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
    check_gemm_blocks(square(37, 13, 1, 1, 0), 9, 11, &[1, 3], &[5, 8, 50, 93]);
    // im2col by pixels: a 7×7 map (every strip spans 2–3 output rows), 5×5 same padding.
    check_gemm_blocks(square(6, 9, 5, 1, 2), 7, 7, &[], &[3, 16, 17]);
    // conv1-like: 40×40 = 1600 output pixels, two im2col blocks of IM2COL_BLOCK; stride 2
    // within output rows (40 = 5 strips per row).
    check_gemm_blocks(square(3, 10, 7, 2, 3), 80, 80, &[], &[]);
    check_gemm_blocks(square(3, 10, 7, 2, 3), 80, 80, &[], &[100, 1020, 1031]);
    // stride 2 across output rows, stride 3, and a block split by panels too.
    check_gemm_blocks(square(4, 7, 3, 2, 1), 13, 9, &[1], &[11, 12]);
    check_gemm_blocks(square(2, 5, 3, 3, 2), 10, 17, &[], &[9]);
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

/// Layers on maps where every output sees the whole input (see `dense`) run their batch
/// as one fully connected GEMM: bit for bit what `forward` gives image by image, split
/// into column blocks anywhere; other sizes stay on the im2col batch.
#[test]
fn dense_tiny_maps_match_image_by_image_bit_for_bit() {
    let rect = ConvSpec { c_in: 3, c_out: 6, kh: 3, kw: 5, sh: 1, sw: 1, ph: 1, pw: 2 };
    let dense = [(square(5, 9, 3, 1, 1), 2, 2), (square(5, 9, 3, 1, 1), 1, 1), (square(5, 9, 3, 1, 1), 2, 1), (square(4, 7, 5, 1, 2), 3, 3), (square(4, 7, 5, 1, 2), 3, 1), (square(6, 5, 3, 2, 1), 2, 2), (square(3, 4, 7, 2, 3), 4, 4), (rect, 2, 3)];
    for (spec, h, w) in dense {
        for bias in [true, false] {
            let (n, p) = (3, spec.with_input(h, w));
            let ohw = p.out_h() * p.out_w();
            let x = data(n * spec.c_in * h * w, 4);
            let b = data(spec.c_out, 6);
            let layer = Conv2d::with_algorithm(spec, &data(spec.c_out * spec.k(), 5), bias.then_some(&b[..]), Algorithm::Gemm);
            assert!(layer.batches(n, h, w) && layer.batch_is_dense(h, w), "{spec:?} on {h}×{w} runs dense");
            assert_eq!(layer.batch_columns(n, h, w), n);
            layer.prepare_batch(h, w).unwrap();
            let mut got = vec![f32::NAN; spec.c_out * ohw * n];
            let mut ws = Workspace::default();
            let parts = layer.batch_parts(n, h, w, 2);
            for part in 0..parts {
                // SAFETY: `got` holds c_out·ohw rows of n columns; parts write disjoint columns.
                unsafe { layer.forward_batch_part(&x, n, h, w, true, got.as_mut_ptr(), part, parts, &mut ws) };
            }
            for img in 0..n {
                let mut want = vec![0.0; spec.c_out * ohw];
                let one = &x[img * spec.c_in * h * w..][..spec.c_in * h * w];
                layer.forward(one, 1, h, w, true, &mut want, ChannelSlice { channels: spec.c_out, channel_offset: 0 }, &mut ws);
                for (i, v) in want.iter().enumerate() {
                    assert_eq!(got[i * n + img].to_bits(), v.to_bits(), "{spec:?} {h}×{w} bias {bias}: image {img} element {i}");
                }
            }
        }
    }
    // Not dense: an output that misses an input pixel (3×3 on 3×3, 5×5 on 4×4), no fewer
    // multiplies (3×3 unpadded on 3×3), a 1×1 layer.
    for (spec, h, w) in [(square(2, 3, 3, 1, 1), 3, 3), (square(2, 3, 5, 1, 2), 4, 4), (square(2, 3, 3, 1, 0), 3, 3), (square(2, 3, 1, 1, 0), 1, 1)] {
        let layer = Conv2d::new(spec, &data(3 * spec.k(), 5), None);
        assert!(!layer.batch_is_dense(h, w), "{spec:?} on {h}×{w} does not run dense");
    }
    // Image by image: a Winograd layer whose image fills its GEMM strips (F(2×2) forced, on
    // 8×8: 16 tiles), and one image. Left to choose, a batch of 8×8 maps takes F(4×4).
    let forced = Conv2d::with_algorithm(conv3x3(16, 4, 1), &data(4 * 144, 5), None, Algorithm::Winograd2);
    assert!(!forced.batches(5, 8, 8) && forced.batches(5, 6, 6) && !forced.batches(1, 6, 6));
    let auto = Conv2d::new(conv3x3(16, 4, 1), &data(4 * 144, 5), None);
    assert_eq!((auto.algorithm_for(8, 8), auto.batch_algorithm_for(8, 8)), (Algorithm::Winograd2, Algorithm::Winograd4));
    assert!(auto.batches(5, 8, 8));
    // A GEMM layer likewise: 1×1 on 4×4 maps (16 pixels, two strips) image by image, on
    // 5×5 (25) batched.
    let pointwise = Conv2d::new(square(8, 4, 1, 1, 0), &data(32, 5), None);
    assert!(!pointwise.batches(5, 4, 4) && pointwise.batches(5, 5, 5));
}

/// A batch of small maps on Winograd takes blocks of tiles across images (a block may
/// start and end inside an image): bit for bit what `forward` gives image by image with
/// the batch's variant, for every split, with an image whose input Winograd refuses
/// (NaN, ∞) on the GEMM path.
#[test]
fn winograd_batches_bit_for_bit_as_image_by_image() {
    // F(4×4) (the batch's choice where images pick F(2×2)) on 4×4, 6×5 and 8×7 maps (1, 4
    // and 4 tiles), F(2×2) forced on 5×3 (6): 200 input channels make blocks of 16–24
    // tiles, which start and end inside images.
    let cases = [(9, 4, 4, Algorithm::Auto), (200, 6, 5, Algorithm::Auto), (200, 5, 3, Algorithm::Winograd2), (40, 8, 7, Algorithm::Winograd4)];
    for (c_in, h, w, algorithm) in cases {
        let (spec, n) = (conv3x3(c_in, 10, 1), 5);
        let p = spec.with_input(h, w);
        let ohw = p.out_h() * p.out_w();
        let (wt, b) = (data(10 * spec.k(), 5), data(10, 6));
        let layer = Conv2d::with_algorithm(spec, &wt, Some(&b), algorithm);
        let variant = layer.batch_algorithm_for(h, w);
        assert!(layer.batches(n, h, w) && variant == if algorithm == Algorithm::Auto { Algorithm::Winograd4 } else { algorithm }, "{c_in}×{h}×{w} batches on Winograd");
        let one_by_one = Conv2d::with_algorithm(spec, &wt, Some(&b), variant);
        let Packed::Winograd(wino, _) = layer.packed(variant) else { unreachable!() };
        let (tiles, block) = (layer.winograd_blocks(wino, h, w, n).1, winograd::block_tiles(&p, wino, n));
        let mut x = data(n * c_in * h * w, 4);
        for bad in [false, true] {
            if bad {
                x[(c_in + 1) * h * w + 2] = f32::NAN; // image 1
                x[(3 * c_in + 7) * h * w] = f32::INFINITY; // image 3
            }
            let mut ws = Workspace::default();
            let mut want = vec![0.0; n * 10 * ohw];
            one_by_one.forward(&x, n, h, w, true, &mut want, ChannelSlice { channels: 10, channel_offset: 0 }, &mut ws);
            if !bad {
                let r = reference::conv2d(&x, n, &p, &wt, Some(&b), true);
                assert_close_scaled(&want, &r, spec.k(), 16.0, &format!("{c_in}×{h}×{w} {variant:?}"));
            }
            for threads in [1, 2, 3, 8] {
                let parts = layer.batch_parts(n, h, w, threads);
                let mut got = vec![-777.0f32; n * 10 * ohw];
                for part in 0..parts {
                    // SAFETY: `got` holds the batch's output; parts write disjoint elements.
                    unsafe { layer.forward_batch_part(&x, n, h, w, true, got.as_mut_ptr(), part, parts, &mut ws) };
                }
                for (b, o, q) in (0..n).flat_map(|b| (0..10).flat_map(move |o| (0..ohw).map(move |q| (b, o, q)))) {
                    let (g, e) = (got[(o * n + b) * ohw + q], want[(b * 10 + o) * ohw + q]);
                    assert_eq!(g.to_bits(), e.to_bits(), "{c_in}×{h}×{w} {algorithm:?} bad {bad}, {threads} threads ({parts} parts, {tiles} tiles in blocks of {block}): image {b} channel {o} pixel {q}");
                }
            }
            assert!(!bad || want.iter().any(|v| v.is_nan()), "the NaN reached the output");
        }
    }
}

#[test]
fn layers_large_enough_to_split_over_threads() {
    // A GoogLeNet-sized 5×5 im2col layer into a channel slice, with ragged edges.
    let spec = ConvSpec { c_in: 64, c_out: 13, kh: 5, kw: 5, sh: 1, sw: 1, ph: 2, pw: 2 };
    check_with(spec, 1, 28, 28, true, true, (0, 3), Algorithm::Gemm);
}

/// Regression (found by `random_shapes`): F(4×4)'s transforms round more than the direct
/// sum; with one input channel (K = 9) its error passed the plain tolerance. The tests
/// now scale the tolerance per algorithm; this shape stays as the witness.
#[test]
fn regression_winograd4_rounding_with_one_input_channel() {
    let spec = ConvSpec { c_in: 1, c_out: 3, kh: 3, kw: 3, sh: 1, sw: 1, ph: 3, pw: 0 };
    check_with(spec, 2, 10, 10, false, false, (0, 0), Algorithm::Winograd4);
}

const WINOGRAD: [Algorithm; 2] = [Algorithm::Winograd2, Algorithm::Winograd4];

fn conv3x3(c_in: usize, c_out: usize, pad: usize) -> ConvSpec {
    square(c_in, c_out, 3, 1, pad)
}

#[test]
fn winograd_edge_tiles_and_lane_groups() {
    // (c_in, c_out, h, w, pad): 1×1 and 2×2 inputs; h, w not multiples of either tile
    // (partial edge tiles, clipped per lane); tile rows 1, 2, 3, 5, 6, 7 wide, so four-tile
    // lane groups cross the end of a tile row and the last group has phantom lanes; tile
    // counts below and above the GEMM's 8 columns; padding 0, 1, 2; c_out below, at and
    // above multiples of 4.
    for (c_in, c_out, h, w, pad) in [
        (3, 5, 1, 1, 1),
        (2, 4, 2, 2, 1),
        (4, 3, 1, 1, 2),
        (5, 9, 2, 2, 2),
        (3, 7, 3, 3, 0),
        (6, 1, 4, 4, 0),
        (4, 8, 5, 7, 1),
        (7, 6, 9, 10, 1),
        (2, 12, 11, 5, 2),
        (9, 13, 13, 22, 1),
        (5, 11, 19, 14, 0),
        (3, 4, 6, 23, 2),
    ] {
        for algorithm in WINOGRAD {
            check_with(conv3x3(c_in, c_out, pad), 2, h, w, true, true, (2, 1), algorithm);
        }
    }
}

#[test]
fn winograd_without_bias_and_relu() {
    for algorithm in WINOGRAD {
        check_with(conv3x3(6, 10, 1), 1, 9, 11, false, false, (0, 0), algorithm);
        check_with(conv3x3(6, 10, 1), 1, 9, 11, true, false, (1, 0), algorithm);
        check_with(conv3x3(6, 10, 1), 1, 9, 11, false, true, (0, 2), algorithm);
    }
}

#[test]
fn winograd_several_blocks_and_channel_passes() {
    // More tiles than one block (`block_tiles`), with blocks that start inside a tile row,
    // and more output channels than one pass (`CO_CHUNK` = 64), the last one ragged.
    for (c_in, c_out, h, w) in [(64, 70, 26, 26), (40, 24, 61, 37), (48, 131, 27, 26)] {
        let p = conv3x3(c_in, c_out, 1).with_input(h, w);
        for algorithm in WINOGRAD {
            let layer = Conv2d::with_algorithm(conv3x3(c_in, c_out, 1), &data(c_out * c_in * 9, 1), None, algorithm);
            let Packed::Winograd(wino, _) = layer.packed_for(h, w) else { unreachable!() };
            let (th, tw) = winograd::tile_grid(&p, wino.variant());
            let block = winograd::block_tiles(&p, wino, 1);
            assert!(th * tw > block && block % tw != 0, "{p:?} {algorithm:?}: want several blocks, starting mid-row");
            check_with(conv3x3(c_in, c_out, 1), 1, h, w, true, true, (3, 2), algorithm);
        }
    }
}

#[test]
fn winograd_on_googlenet_sized_layers() {
    // GoogLeNet's 3×3 shapes, scaled down in channels (the selection table's F4/F2 ranges)
    for (c_in, c_out, h, pad) in [(64, 24, 14, 1), (32, 20, 7, 1), (16, 9, 9, 0), (12, 5, 5, 2), (96, 32, 28, 1)] {
        for algorithm in WINOGRAD {
            check_with(conv3x3(c_in, c_out, pad), 2, h, h, true, true, (3, 1), algorithm);
        }
    }
}

/// Scratch grows to the largest layer and is then reused by smaller ones, whose blocks
/// must not read the stale tail of any buffer.
#[test]
fn winograd_scratch_reused_across_layer_sizes() {
    let mut ws = Workspace::default();
    for (c_in, c_out, h, w) in [(24, 40, 30, 26), (3, 5, 4, 6), (24, 40, 30, 26), (7, 9, 13, 3), (1, 2, 1, 1)] {
        for algorithm in WINOGRAD {
            let spec = conv3x3(c_in, c_out, 1);
            let p = spec.with_input(h, w);
            let (x, wt, b) = (data(c_in * h * w, 7), data(c_out * c_in * 9, 8), data(c_out, 9));
            let layer = Conv2d::with_algorithm(spec, &wt, Some(&b), algorithm);
            let mut out = vec![0.0; c_out * p.out_h() * p.out_w()];
            layer.forward(&x, 1, h, w, true, &mut out, ChannelSlice { channels: c_out, channel_offset: 0 }, &mut ws);
            let what = format!("{spec:?} {algorithm:?} h={h} w={w} after other layers");
            assert_close_scaled(&out, &reference::conv2d(&x, 1, &p, &wt, Some(&b), true), spec.k(), 16.0, &what);
        }
    }
}

/// Runs `conv_block` once per (tile range, channel range) of a partition into its own
/// sentinel-filled copy of a channel-sliced output: each part must write exactly the
/// pixels of its tiles in its channels (and match the reference there), and together the
/// parts must cover every output element exactly once.
fn check_blocks(spec: ConvSpec, h: usize, w: usize, algorithm: Algorithm, tile_cuts: &[usize], co_cuts: &[usize]) {
    let p = spec.with_input(h, w);
    let (oh, ow) = (p.out_h(), p.out_w());
    let (x, wt, b) = (data(spec.c_in * h * w, 11), data(spec.c_out * spec.k(), 12), data(spec.c_out, 13));
    let layer = Conv2d::with_algorithm(spec, &wt, Some(&b), algorithm);
    let Packed::Winograd(wino, _) = layer.packed_for(h, w) else { panic!("{algorithm:?} does not fit {spec:?}") };
    let m = wino.variant().m;
    let (th, tw) = winograd::tile_grid(&p, wino.variant());
    let want = reference::conv2d(&x, 1, &p, &wt, Some(&b), false);
    let (before, channels) = (2, spec.c_out + 3);
    let cuts = |inner: &[usize], end: usize| -> Vec<usize> { [0].into_iter().chain(inner.iter().copied()).chain([end]).collect() };
    let (tiles, cos) = (cuts(tile_cuts, th * tw), cuts(co_cuts, spec.c_out));
    let mut covered = vec![0u32; spec.c_out * oh * ow];
    let mut scratch = crate::workspace::WinogradScratch::default();
    let sentinel = f32::NAN;
    for t in tiles.windows(2) {
        for co in cos.windows(2) {
            let mut out = vec![sentinel; channels * oh * ow];
            // SAFETY: the layer's planes start at channel `before` of `out`, which holds all
            // of them; nothing else touches `out`.
            unsafe {
                let planes = out.as_mut_ptr().add(before * oh * ow);
                winograd::conv_block(&x, &p, wino, t[0]..t[1], co[0]..co[1], Some(&b), false, planes, oh * ow, &mut scratch);
            }
            let what = format!("{spec:?} {algorithm:?} h={h} w={w} tiles {}..{} channels {}..{}", t[0], t[1], co[0], co[1]);
            for (i, &got) in out.iter().enumerate() {
                let (c, pixel) = (i / (oh * ow), i % (oh * ow));
                let tile = (pixel / ow / m) * tw + pixel % ow / m;
                let mine = (before..before + spec.c_out).contains(&c) && (co[0]..co[1]).contains(&(c - before)) && (t[0]..t[1]).contains(&tile);
                if !mine {
                    assert!(got.is_nan(), "{what}: wrote channel {c} pixel {pixel}, outside its part");
                    continue;
                }
                let j = (c - before) * oh * ow + pixel;
                covered[j] += 1;
                let tol = 1e-6 * (spec.k() as f32 + 1.0) * 16.0 * (1.0 + want[j].abs());
                assert!((got - want[j]).abs() <= tol, "{what}: channel {} pixel {pixel}: got {got}, want {}", c - before, want[j]);
            }
        }
    }
    assert!(covered.iter().all(|&n| n == 1), "{spec:?} {algorithm:?}: parts do not cover the output exactly once");
}

#[test]
fn winograd_conv_block_parts_cover_the_output_once() {
    // F4 on 13×11 outputs: 4×3 tiles; F2: 7×6 tiles. Tile cuts inside rows, single-tile
    // parts, channel cuts at multiples of MR with a ragged last range.
    check_blocks(conv3x3(5, 14, 1), 13, 11, Algorithm::Winograd4, &[1, 2, 7, 11], &[4, 12]);
    check_blocks(conv3x3(5, 14, 1), 13, 11, Algorithm::Winograd2, &[3, 8, 9, 25, 40], &[8]);
    check_blocks(conv3x3(3, 6, 0), 9, 9, Algorithm::Winograd4, &[1, 3], &[4]);
    check_blocks(conv3x3(4, 4, 2), 1, 2, Algorithm::Winograd2, &[1], &[]);
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(48))]
    #[test]
    fn winograd_random_shapes(c_in in 1usize..20, c_out in 1usize..20, h in 1usize..30, w in 1usize..30, pad in 0usize..3,
                              f4: bool, n in 1usize..3, relu: bool, bias: bool, before in 0usize..3, after in 0usize..3) {
        prop_assume!(h + 2 * pad >= 3 && w + 2 * pad >= 3);
        let algorithm = if f4 { Algorithm::Winograd4 } else { Algorithm::Winograd2 };
        check_with(conv3x3(c_in, c_out, pad), n, h, w, bias, relu, (before, after), algorithm);
    }

    #[test]
    fn winograd_random_block_partitions(c_in in 1usize..8, c_out in 1usize..14, h in 1usize..20, w in 1usize..20, pad in 0usize..3,
                                        f4: bool, tile_cuts in proptest::collection::vec(0.0f64..1.0, 0..4),
                                        co_cuts in proptest::collection::vec(0usize..4, 0..3)) {
        prop_assume!(h + 2 * pad >= 3 && w + 2 * pad >= 3);
        let (algorithm, m) = if f4 { (Algorithm::Winograd4, 4) } else { (Algorithm::Winograd2, 2) };
        let tiles = (h + 2 * pad - 2).div_ceil(m) * (w + 2 * pad - 2).div_ceil(m);
        let mut tile_cuts: Vec<usize> = tile_cuts.iter().map(|f| 1 + (f * (tiles - 1) as f64) as usize).filter(|&t| t < tiles).collect();
        tile_cuts.sort_unstable();
        tile_cuts.dedup();
        let mut co_cuts: Vec<usize> = co_cuts.iter().map(|q| (q + 1) * gemm::MR).filter(|&c| c < c_out).collect();
        co_cuts.sort_unstable();
        co_cuts.dedup();
        check_blocks(conv3x3(c_in, c_out, pad), h, w, algorithm, &tile_cuts, &co_cuts);
    }
}

/// NaN, +∞, −∞ or finite: what the non-finite-pattern checks compare.
fn class(v: f32) -> &'static str {
    match v {
        _ if v.is_nan() => "NaN",
        f32::INFINITY => "+inf",
        f32::NEG_INFINITY => "-inf",
        _ => "finite",
    }
}

/// `forward` of one image into a plain output.
fn run(layer: &Conv2d, x: &[f32], h: usize, w: usize, relu: bool) -> Vec<f32> {
    let s = layer.spec();
    let (oh, ow) = layer.out_size(h, w).unwrap();
    let mut out = vec![0.0; s.c_out * oh * ow];
    layer.forward(x, 1, h, w, relu, &mut out, ChannelSlice { channels: s.c_out, channel_offset: 0 }, &mut Workspace::default());
    out
}

/// Regression (issue 12): in F(4×4) one ∞ or NaN input turned a whole 4×4 output tile
/// into NaN (its transform mixes every input of the tile, and ∞ − ∞ = NaN), and a finite
/// 3e38 overflowed the transforms where the direct sum stays finite. With each value at
/// corner, edge and interior pixels (tile boundaries included), a Winograd layer's output
/// must be finite exactly where the reference's is, and its NaN / ±∞ exactly the GEMM
/// path's.
#[test]
fn winograd_non_finite_and_huge_inputs_stay_in_their_receptive_field() {
    for (c_in, c_out, h, w, pad, relu) in [(9, 6, 14, 13, 1, false), (8, 5, 11, 9, 0, true), (3, 4, 6, 7, 2, false)] {
        let spec = conv3x3(c_in, c_out, pad);
        let p = spec.with_input(h, w);
        let (wt, b) = (data(c_out * spec.k(), 21), data(c_out, 22));
        let gemm_layer = Conv2d::with_algorithm(spec, &wt, Some(&b), Algorithm::Gemm);
        let layers = WINOGRAD.map(|a| Conv2d::with_algorithm(spec, &wt, Some(&b), a));
        let pixels = [(0, 0, 0), (c_in - 1, h - 1, w - 1), (c_in / 2, 0, w / 2), (1, h / 2, 0), (c_in / 2, h / 2, w / 2), (0, 4, 3), (c_in - 1, 3, 4)];
        for value in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 3e38, -3e38] {
            for (c, y, xx) in pixels {
                let mut x = data(c_in * h * w, 23);
                x[(c * h + y) * w + xx] = value;
                let want = reference::conv2d(&x, 1, &p, &wt, Some(&b), relu);
                let gemm = run(&gemm_layer, &x, h, w, relu);
                for layer in &layers {
                    let got = run(layer, &x, h, w, relu);
                    let what = format!("{spec:?} {h}×{w} {:?} relu={relu}, x[{c}][{y}][{xx}] = {value}", layer.algorithm_for(h, w));
                    for (i, ((&g, &r), &e)) in got.iter().zip(&want).zip(&gemm).enumerate() {
                        assert_eq!(g.is_finite(), r.is_finite(), "{what}: output {i} is {g}, the reference's {r}");
                        assert_eq!(class(g), class(e), "{what}: output {i} is {g}, the GEMM path's {e}");
                        if r.is_finite() {
                            let tol = 1e-6 * (spec.k() as f32 + 1.0) * 16.0 * (1.0 + r.abs());
                            assert!((g - r).abs() <= tol, "{what}: output {i} is {g}, the reference's {r}");
                        }
                    }
                }
            }
        }
    }
}

/// The fallback for such inputs is per tile block and bit-exact: on a layer of several
/// blocks with one NaN, every block's outputs equal bit for bit either the GEMM path's
/// (blocks that read the NaN) or the Winograd outputs of the same input without it (all
/// others, whose inputs are the same) — both kinds occur — and every split into parts
/// (`forward_part` for 1 to 4 threads) gives the same bits as `forward`.
#[test]
fn winograd_falls_back_to_the_gemm_per_block_with_the_same_bits_for_any_split() {
    let (c_in, c_out, h, w) = (40, 24, 61, 37);
    let spec = conv3x3(c_in, c_out, 1);
    let p = spec.with_input(h, w);
    let (wt, b) = (data(c_out * spec.k(), 31), data(c_out, 32));
    let clean = data(c_in * h * w, 33);
    let mut x = clean.clone();
    x[(7 * h + 30) * w + 20] = f32::NAN;
    let gemm = run(&Conv2d::with_algorithm(spec, &wt, Some(&b), Algorithm::Gemm), &x, h, w, true);
    for algorithm in WINOGRAD {
        let layer = Conv2d::with_algorithm(spec, &wt, Some(&b), algorithm);
        let (got, before) = (run(&layer, &x, h, w, true), run(&layer, &clean, h, w, true));
        let Packed::Winograd(wino, _) = layer.packed_for(h, w) else { unreachable!() };
        let m = wino.variant().m;
        let (th, tw) = winograd::tile_grid(&p, wino.variant());
        let block = winograd::block_tiles(&p, wino, 1);
        let mut kinds = (0, 0);
        for t0 in (0..th * tw).step_by(block) {
            let pixels: Vec<usize> = (t0..(t0 + block).min(th * tw))
                .flat_map(|t| (0..m * m).map(move |i| ((t / tw) * m + i / m, (t % tw) * m + i % m)))
                .filter(|&(oy, ox)| oy < p.out_h() && ox < p.out_w())
                .map(|(oy, ox)| oy * p.out_w() + ox)
                .collect();
            let same = |other: &[f32]| (0..c_out).all(|o| pixels.iter().all(|&q| got[o * h * w + q].to_bits() == other[o * h * w + q].to_bits()));
            match (same(&gemm), same(&before)) {
                (true, _) => kinds.0 += 1,
                (false, true) => kinds.1 += 1,
                (false, false) => panic!("{algorithm:?}: block at tile {t0} matches neither the GEMM nor the clean Winograd bits"),
            }
        }
        assert!(kinds.0 >= 1 && kinds.1 >= 1, "{algorithm:?}: blocks that fell back / did not: {kinds:?}");
        for threads in 1..=4 {
            let parts = layer.parts(h, w, threads);
            let mut split = vec![0.0; c_out * h * w];
            let mut ws = Workspace::default();
            for part in 0..parts {
                // SAFETY: `split` holds the layer's c_out planes; parts run one at a time.
                unsafe { layer.forward_part(&x, h, w, true, split.as_mut_ptr(), part, parts, &mut ws) };
            }
            assert!(split.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "{algorithm:?}: {parts} parts for {threads} threads differ from forward");
        }
    }
}

/// Regression (issue 12): a 1×1 layer with 0 output channels panicked when a plan split it
/// into parts (`clamp(1, 0)`: no row panels). The TypeScript API refuses such a layer
/// (PyTorch 1.13 builds `Conv2d(3, 0, 1)` but its forward raises), but the kernels must
/// not panic on one: every kind of layer gives no parts and an empty output, for any
/// thread count, alone and in a plan.
#[test]
fn regression_zero_output_channels() {
    for (k, algorithm) in [(1, Algorithm::Auto), (3, Algorithm::Gemm), (3, Algorithm::Winograd2), (3, Algorithm::Winograd4), (5, Algorithm::Auto)] {
        let spec = ConvSpec { c_in: 6, c_out: 0, kh: k, kw: k, sh: 1, sw: 1, ph: k / 2, pw: k / 2 };
        let layer = std::sync::Arc::new(Conv2d::with_algorithm(spec, &[], None, algorithm));
        let (n, h, w) = (2, 14, 13);
        for threads in 1..=8 {
            assert_eq!(layer.parts(h, w, threads), 0, "k={k} {algorithm:?}, {threads} threads");
        }
        let x = data(n * 6 * h * w, 1);
        layer.forward(&x, n, h, w, true, &mut [], ChannelSlice { channels: 0, channel_offset: 0 }, &mut Workspace::default());
        for threads in [1, 4] {
            let mut pb = crate::plan::PlanBuilder::new(x.len());
            let y = pb.value(0);
            pb.push(crate::plan::Op::Conv { layer: layer.clone(), n, h, w, relu: false, src: crate::plan::INPUT, dst: crate::plan::Slice::whole(y, 0) }).unwrap();
            pb.build(y, threads).unwrap().run(&x, &mut [], &mut crate::plan::Context::default()).unwrap();
        }
    }
}
