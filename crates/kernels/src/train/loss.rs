//! Cross-entropy over `[n, classes]` logits against class indices (PyTorch's
//! `F.cross_entropy` with mean reduction), in f64 for the reductions.

/// The mean over rows of `logsumexp(z) − z[target]`.
pub fn cross_entropy(logits: &[f32], n: usize, classes: usize, targets: &[u32]) -> f64 {
    assert!(logits.len() == n * classes && targets.len() == n && n > 0, "cross_entropy: lengths");
    let mut total = 0f64;
    for (r, &t) in targets.iter().enumerate() {
        let z = &logits[r * classes..(r + 1) * classes];
        total += log_sum_exp(z) - z[t as usize] as f64;
    }
    total / n as f64
}

fn log_sum_exp(z: &[f32]) -> f64 {
    let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

/// Adds `scale · (softmax(z) − onehot(target)) / n` to `dlogits`: the gradient of
/// `scale · cross_entropy`.
pub fn cross_entropy_backward(logits: &[f32], n: usize, classes: usize, targets: &[u32], scale: f64, dlogits: &mut [f32]) {
    assert!(logits.len() == n * classes && dlogits.len() == logits.len() && targets.len() == n && n > 0, "cross_entropy_backward: lengths");
    let k = scale / n as f64;
    for (r, &t) in targets.iter().enumerate() {
        let z = &logits[r * classes..(r + 1) * classes];
        let lse = log_sum_exp(z);
        for (i, (d, &v)) in dlogits[r * classes..(r + 1) * classes].iter_mut().zip(z).enumerate() {
            let p = (v as f64 - lse).exp() - if i == t as usize { 1.0 } else { 0.0 };
            *d += (k * p) as f32;
        }
    }
}
