//! Stand-alone activations (convolutions fuse theirs into the GEMM epilogue).

/// `x = max(x, 0)` in place; NaN stays NaN, as in PyTorch.
pub fn relu(x: &mut [f32]) {
    for v in x {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clamps_negatives_only() {
        let mut x = [-1.0, 0.0, 2.5, -0.0, f32::NAN];
        super::relu(&mut x);
        assert_eq!(&x[..4], &[0.0, 0.0, 2.5, -0.0]);
        assert!(x[4].is_nan());
    }
}
