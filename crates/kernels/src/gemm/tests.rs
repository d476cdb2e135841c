use super::*;
use crate::reference;
use crate::testutil::{assert_close, data};
use proptest::prelude::*;

/// Runs `gemm` on an `m×k·k×n` problem with strided B and C (`ld = cols + pad`) and
/// compares with the reference; the padding columns of C must stay untouched.
fn check(m: usize, k: usize, n: usize, pad: usize, bias: bool, relu: bool) {
    let a = data(m * k, 1);
    let b_dense = data(k * n, 2);
    let bias_v = data(m, 3);
    let ld_b = n + pad;
    let mut b = vec![f32::NAN; k * ld_b];
    for kk in 0..k {
        b[kk * ld_b..kk * ld_b + n].copy_from_slice(&b_dense[kk * n..(kk + 1) * n]);
    }
    let ld_c = n + pad;
    let sentinel = 12345.0;
    let mut c = vec![sentinel; m * ld_c];
    let packed = PackedA::pack(&a, m, k);
    assert_eq!(packed.unpack(), a, "unpack(pack(a)) == a");
    let ep = Epilogue { bias: bias.then_some(&bias_v[..]), relu };
    let c_len = c.len();
    gemm(&packed, MatRef { data: &b, rows: k, cols: n, ld: ld_b }, MatMut { data: &mut c[..c_len], rows: m, cols: n, ld: ld_c }, ep, &mut Vec::new());
    let want = reference::gemm(&a, &b_dense, m, k, n, ep.bias, relu);
    let got: Vec<f32> = (0..m).flat_map(|i| c[i * ld_c..i * ld_c + n].to_vec()).collect();
    assert_close(&got, &want, k, &format!("gemm m={m} k={k} n={n} pad={pad} bias={bias} relu={relu}"));
    for i in 0..m {
        assert!(c[i * ld_c + n..(i + 1) * ld_c].iter().all(|&v| v == sentinel), "gemm wrote outside C's view");
    }
}

#[test]
fn edge_shapes_around_the_tile() {
    // m, n below / at / above MR, NR and their multiples; k from 1 up past any unroll.
    for m in [1, 3, 4, 5, 8, 9] {
        for n in [1, 7, 8, 9, 16, 17] {
            for k in [1, 2, 7, 8, 33] {
                check(m, k, n, 0, true, true);
                check(m, k, n, 3, false, false);
            }
        }
    }
}

#[test]
fn column_blocking_crosses_the_b_block() {
    // k = 4096 makes the column block 16 wide, so n = 41 spans three blocks plus a tail.
    check(5, 4096, 41, 1, true, false);
}

#[test]
fn large_enough_to_split_over_threads() {
    // m·n·k ≥ MIN_PARALLEL_WORK, with edge tiles in both dimensions: with the `threads`
    // feature this runs on the pool, split by row panels.
    check(70, 150, 131, 2, true, true);
}

#[test]
fn empty_dimensions_are_no_ops() {
    check(0, 3, 5, 0, true, true);
    check(3, 0, 5, 0, true, true);
    check(3, 4, 0, 0, true, true);
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(64))]
    #[test]
    fn random_shapes(m in 1usize..40, k in 1usize..70, n in 1usize..60, pad in 0usize..5, bias: bool, relu: bool) {
        check(m, k, n, pad, bias, relu);
    }
}
