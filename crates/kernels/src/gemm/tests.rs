use super::*;
use crate::reference;
use crate::testutil::{assert_close, data};
use proptest::prelude::*;

const SENTINEL: f32 = 12345.0;

/// An `m×k·k×n` problem with strided B and C (`ld = cols + pad`; the padding of B is NaN,
/// so reading it shows up), and the reference result.
struct Problem {
    m: usize,
    k: usize,
    n: usize,
    pad: usize,
    a: PackedA,
    b: Vec<f32>,
    bias: Vec<f32>,
    want_bias: bool,
    relu: bool,
    want: Vec<f32>,
}

impl Problem {
    fn new(m: usize, k: usize, n: usize, pad: usize, bias: bool, relu: bool) -> Self {
        let a = data(m * k, 1);
        let b_dense = data(k * n, 2);
        let bias_v = data(m, 3);
        let mut b = vec![f32::NAN; k * (n + pad)];
        for kk in 0..k {
            b[kk * (n + pad)..][..n].copy_from_slice(&b_dense[kk * n..(kk + 1) * n]);
        }
        let packed = PackedA::pack(&a, m, k);
        assert_eq!(packed.unpack().unwrap(), a, "unpack(pack(a)) == a");
        let want = reference::gemm(&a, &b_dense, m, k, n, bias.then_some(&bias_v[..]), relu);
        Self { m, k, n, pad, a: packed, b, bias: bias_v, want_bias: bias, relu, want }
    }

    fn b(&self) -> MatRef<'_> {
        MatRef { data: &self.b, rows: self.k, cols: self.n, ld: self.n + self.pad }
    }

    fn ep(&self) -> Epilogue<'_> {
        Epilogue { bias: self.want_bias.then_some(&self.bias[..]), relu: self.relu }
    }

    fn ldc(&self) -> usize {
        self.n + self.pad
    }

    /// `C` with its padding columns still holding the sentinel.
    fn fresh_c(&self) -> Vec<f32> {
        vec![SENTINEL; self.m * self.ldc()]
    }

    /// Compares the `m × n` view of `c` with the reference and checks the padding.
    fn assert_result(&self, c: &[f32], what: &str) {
        let ldc = self.ldc();
        let got: Vec<f32> = (0..self.m).flat_map(|i| c[i * ldc..i * ldc + self.n].to_vec()).collect();
        let (m, k, n, pad) = (self.m, self.k, self.n, self.pad);
        let what = format!("{what} m={m} k={k} n={n} pad={pad} bias={} relu={}", self.want_bias, self.relu);
        assert_close(&got, &self.want, k, &what);
        for i in 0..m {
            assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == SENTINEL), "{what}: wrote outside C's view");
        }
    }

    /// The whole product through `gemm`.
    fn gemm(&self, scratch: &mut Vec<f32>) -> Vec<f32> {
        let mut c = self.fresh_c();
        let (m, n, ldc) = (self.m, self.n, self.ldc());
        gemm(&self.a, self.b(), MatMut { data: &mut c, rows: m, cols: n, ld: ldc }, self.ep(), scratch);
        c
    }

    /// The product as a grid of `gemm_block`s: row panels split at `panel_cuts`, columns at
    /// `col_cuts` (both sorted, inside the ranges).
    fn blocks(&self, panel_cuts: &[usize], col_cuts: &[usize]) -> Vec<f32> {
        let mut c = self.fresh_c();
        let ldc = self.ldc();
        let mut scratch = Vec::new();
        for panels in ranges(panel_cuts, self.a.panels()) {
            for cols in ranges(col_cuts, self.n) {
                let at = panels.start * MR * ldc + cols.start;
                // SAFETY: the block's rows and columns lie inside `c` (m rows of ldc), and
                // blocks of the grid are disjoint.
                unsafe { gemm_block(&self.a, panels.clone(), self.b(), cols, c[at..].as_mut_ptr(), ldc, self.ep(), &mut scratch) };
            }
        }
        c
    }
}

/// The non-empty ranges between `0`, each of `cuts` (sorted) and `end`.
pub(crate) fn ranges(cuts: &[usize], end: usize) -> Vec<Range<usize>> {
    let bounds: Vec<usize> = [0].into_iter().chain(cuts.iter().copied()).chain([end]).collect();
    bounds.windows(2).filter(|w| w[0] < w[1]).map(|w| w[0]..w[1]).collect()
}

fn check(m: usize, k: usize, n: usize, pad: usize, bias: bool, relu: bool) {
    let p = Problem::new(m, k, n, pad, bias, relu);
    p.assert_result(&p.gemm(&mut Vec::new()), "gemm");
}

/// Bit-for-bit equality: the split must not change a single sum.
fn assert_same_bits(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}: element {i}: {x} vs {y}");
    }
}

#[test]
fn edge_shapes_around_the_tiles() {
    // m below / at / above MR, 2·MR (the tail tile's rows) and odd panel counts; n below /
    // at / above NR and the tail tile's 4 columns (n % 8 in 1..=4 takes the 8×4 kernel,
    // 5..=7 the clipped 4×8); k from 1 up.
    for m in [1, 3, 4, 5, 8, 9, 12, 13] {
        for n in [1, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17] {
            for k in [1, 2, 7, 8, 33] {
                check(m, k, n, 0, true, true);
                check(m, k, n, 3, false, false);
            }
        }
    }
}

#[test]
fn empty_dimensions_are_no_ops_or_bias_only() {
    check(0, 3, 5, 0, true, true);
    check(3, 0, 5, 0, true, true); // k = 0: C = relu(bias)
    check(3, 0, 5, 2, true, false);
    check(3, 4, 0, 0, true, true);
}

#[test]
fn long_k_and_a_scratch_that_only_grows() {
    // One scratch across problems: a k = 4096 strip (128 KiB) first, then smaller ones
    // that reuse the larger buffer, then a larger one again.
    let mut scratch = Vec::new();
    for (m, k, n) in [(5, 4096, 41), (9, 3, 17), (4, 1200, 49), (13, 5000, 12)] {
        let p = Problem::new(m, k, n, 1, true, false);
        p.assert_result(&p.gemm(&mut scratch), "gemm (shared scratch)");
    }
    assert!(scratch.len() >= 5000 * NR);
}

#[test]
fn relu_keeps_nan() {
    let a = PackedA::pack(&[f32::NAN, 1.0], 2, 1);
    let mut c = [0.0; 2];
    gemm(&a, MatRef { data: &[1.0], rows: 1, cols: 1, ld: 1 }, MatMut { data: &mut c, rows: 2, cols: 1, ld: 1 }, Epilogue { bias: None, relu: true }, &mut Vec::new());
    assert!(c[0].is_nan() && c[1] == 1.0);
}

#[test]
fn blocks_that_split_panels_and_strips_match_the_whole_product_exactly() {
    // 13 rows = 4 panels (the last of one row), 45 columns = 5 strips + 5; cuts inside a
    // strip, at strip edges, at odd panels (the 8×4 tail pairs panels from each block's
    // first), and one-column blocks.
    let p = Problem::new(13, 37, 45, 2, true, true);
    let whole = p.gemm(&mut Vec::new());
    p.assert_result(&whole, "gemm");
    for (panels, cols) in [
        (&[][..], &[3, 8, 12, 16, 17, 41, 44][..]),
        (&[1][..], &[][..]),
        (&[1, 3][..], &[20, 21][..]),
        (&[2][..], &[4, 40][..]),
        (&[1, 2, 3][..], &(1..45).collect::<Vec<_>>()[..]),
    ] {
        let c = p.blocks(panels, cols);
        p.assert_result(&c, &format!("blocks panels {panels:?} cols {cols:?}"));
        assert_same_bits(&c, &whole, &format!("blocks panels {panels:?} cols {cols:?}"));
    }
}

#[test]
fn gemm_panels_writes_only_its_rows() {
    // As Winograd calls it: the rows of panels 1..3 of a 14-row A, into a C that starts
    // at row 4.
    let p = Problem::new(14, 20, 19, 1, true, false);
    let ldc = p.ldc();
    let rows = 8;
    let mut c = vec![SENTINEL; rows * ldc];
    gemm_panels(&p.a, 1..3, p.b(), MatMut { data: &mut c, rows, cols: p.n, ld: ldc }, p.ep(), &mut Vec::new());
    let whole = p.gemm(&mut Vec::new());
    assert_same_bits(&c, &whole[4 * ldc..12 * ldc], "gemm_panels(1..3)");
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(64))]
    #[test]
    fn random_shapes(m in 1usize..40, k in 1usize..70, n in 1usize..60, pad in 0usize..5, bias: bool, relu: bool) {
        check(m, k, n, pad, bias, relu);
    }

    #[test]
    fn random_block_grids(m in 1usize..30, k in 1usize..40, n in 1usize..50, pad in 0usize..3,
                          panel_cut in 0usize..8, col_a in 0usize..50, col_b in 0usize..50) {
        let p = Problem::new(m, k, n, pad, true, true);
        let whole = p.gemm(&mut Vec::new());
        let panel_cuts: Vec<usize> = [panel_cut].into_iter().filter(|&c| c > 0 && c < p.a.panels()).collect();
        let mut col_cuts: Vec<usize> = [col_a, col_b].into_iter().filter(|&c| c > 0 && c < n).collect();
        col_cuts.sort_unstable();
        col_cuts.dedup();
        let c = p.blocks(&panel_cuts, &col_cuts);
        assert_same_bits(&c, &whole, &format!("m={m} k={k} n={n} panels {panel_cuts:?} cols {col_cuts:?}"));
    }
}

#[test]
fn pack_transposed_packs_the_transpose_into_a_reused_buffer() {
    for (k, m) in [(1, 1), (3, 5), (7, 4), (9, 13), (16, 2)] {
        let a: Vec<f32> = (0..k * m).map(|i| i as f32 + 0.5).collect();
        let t: Vec<f32> = (0..m * k).map(|i| a[(i % k) * m + i / k]).collect();
        // A dirty buffer: padding rows must come out zero all the same.
        let packed = PackedA::pack_transposed(&a, k, m, vec![f32::NAN; PackedA::packed_len(m, k)]);
        assert_eq!(packed.unpack().unwrap(), t, "{k}×{m}");
        assert_eq!(packed.panel_data(packed.panels() - 1).iter().filter(|v| v.is_nan()).count(), 0, "{k}×{m}: padding");
        assert_eq!(packed.into_data(), PackedA::pack(&t, m, k).into_data(), "{k}×{m}: same layout as pack(aᵀ)");
    }
}

#[test]
fn pack_reusing_packs_into_a_dirty_buffer_of_any_length() {
    for (m, k) in [(1, 1), (5, 3), (4, 7), (13, 9), (2, 16)] {
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 + 0.5).collect();
        for len in [0, PackedA::packed_len(m, k) - 1, PackedA::packed_len(m, k) + 9] {
            let packed = PackedA::pack_reusing(&a, m, k, vec![f32::NAN; len]);
            assert_eq!(packed.unpack().unwrap(), a, "{m}×{k}, buffer of {len}");
            let data = packed.into_data();
            assert_eq!(data.len(), PackedA::packed_len(m, k), "{m}×{k}, buffer of {len}");
            assert_eq!(data.iter().filter(|v| v.is_nan()).count(), 0, "{m}×{k}, buffer of {len}: padding");
        }
    }
}
