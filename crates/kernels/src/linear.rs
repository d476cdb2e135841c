//! Fully connected layer `y[n, o] = bias[o] + Σ_k W[o, k]·x[n, k]` (`W` is PyTorch's
//! `[out, in]`). At batch 1 this is a matrix-vector product, bound by reading `W` once
//! (4 MB for GoogLeNet's fc), so a dot product per output is the right shape: no packing.

/// Dot product in four independent accumulators (lets the adds pipeline, and sums in a
/// fixed order whatever the ISA, so results match across builds).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// A fully connected layer: `W` is PyTorch's `[out, in]`, used as it is.
#[derive(Clone, Debug)]
pub struct Linear {
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
    inp: usize,
    out: usize,
}

impl Linear {
    pub fn new(weights: Vec<f32>, bias: Option<Vec<f32>>, inp: usize, out: usize) -> Self {
        assert_eq!(weights.len(), inp * out, "linear: weight length");
        if let Some(b) = &bias {
            assert_eq!(b.len(), out, "linear: bias length");
        }
        Self { weights, bias, inp, out }
    }

    pub fn in_features(&self) -> usize {
        self.inp
    }

    pub fn out_features(&self) -> usize {
        self.out
    }

    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// Outputs `outs` of one input row `x` into `y` (`outs.len()` floats).
    pub fn forward_row(&self, x: &[f32], outs: core::ops::Range<usize>, y: &mut [f32]) {
        assert_eq!(x.len(), self.inp, "linear: input length");
        assert!(outs.end <= self.out && y.len() == outs.len(), "linear: output range");
        for (o, yv) in outs.zip(y) {
            *yv = dot(&self.weights[o * self.inp..(o + 1) * self.inp], x) + self.bias.as_ref().map_or(0.0, |b| b[o]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{reference, testutil::{assert_close, data}};

    #[test]
    fn matches_reference_on_edge_sizes() {
        for &(n, inp, out) in &[(1, 1, 1), (1, 3, 5), (2, 4, 3), (3, 17, 9), (1, 1024, 10), (2, 0, 3)] {
            let (x, w, b) = (data(n * inp, 1), data(out * inp, 2), data(out, 3));
            let layer = Linear::new(w.clone(), Some(b.clone()), inp, out);
            let mut y = vec![0.0; n * out];
            // Each row in two output ranges, as a plan's tasks split it.
            for (i, ys) in y.chunks_exact_mut(out).enumerate() {
                let (row, half) = (&x[i * inp..(i + 1) * inp], out / 2);
                layer.forward_row(row, 0..half, &mut ys[..half]);
                layer.forward_row(row, half..out, &mut ys[half..]);
            }
            let r = reference::linear(&x, n, &w, inp, out, Some(&b));
            assert_close(&y, &r, inp, &format!("linear n={n} in={inp} out={out}"));
        }
    }
}
