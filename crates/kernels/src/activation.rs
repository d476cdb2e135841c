//! Stand-alone activations (convolutions fuse theirs into the GEMM epilogue).

/// `y = max(x, 0)`; NaN stays NaN, as in PyTorch.
pub fn relu(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "relu: lengths");
    for (o, &v) in y.iter_mut().zip(x) {
        *o = if v < 0.0 { 0.0 } else { v };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clamps_negatives_only() {
        let x = [-1.0, 0.0, 2.5, -0.0, f32::NAN];
        let mut y = [9.0; 5];
        super::relu(&x, &mut y);
        assert_eq!(&y[..4], &[0.0, 0.0, 2.5, -0.0]);
        assert!(y[4].is_nan());
    }
}
