//! Folding an inference-mode BatchNorm into the convolution before it, once at load:
//! `w' = w·γ/√(σ²+ε)` per output channel, `b' = β − μ·γ/√(σ²+ε)`, in f64 and rounded
//! once, so inference runs no BatchNorm op and keeps no BatchNorm tensors.

/// Scales `weights` (`c_out` rows, OIHW) in place and returns the folded bias.
pub fn fold(weights: &mut [f32], gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f64) -> Vec<f32> {
    let c_out = gamma.len();
    assert!(c_out > 0 && weights.len() % c_out == 0, "batchnorm: weights are not c_out rows");
    assert!([beta.len(), mean.len(), var.len()].iter().all(|&l| l == c_out), "batchnorm: parameter lengths");
    let per_channel = weights.len() / c_out;
    (0..c_out)
        .map(|o| {
            let scale = gamma[o] as f64 / (var[o] as f64 + eps).sqrt();
            for w in &mut weights[o * per_channel..(o + 1) * per_channel] {
                *w = (*w as f64 * scale) as f32;
            }
            (beta[o] as f64 - mean[o] as f64 * scale) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn folds_per_output_channel() {
        // γ = 2, σ² + ε = 4 → scale 1; γ = 1, σ² + ε = 0.25 → scale 2.
        let mut w = [1.0, -2.0, 0.5, 3.0];
        let b = super::fold(&mut w, &[2.0, 1.0], &[0.5, 1.0], &[1.0, -1.0], &[3.75, 0.0], 0.25);
        assert_eq!(w, [1.0, -2.0, 1.0, 6.0]);
        assert_eq!(b, [-0.5, 3.0]);
    }
}
