//! Shared by the kernel tests: deterministic data and a tolerance that scales with the
//! length of the dot products being compared.

/// `len` values in [-1, 1): tensor 0 of the weyl-fmix32 stream `salt` (the fixtures'
/// generator, `crate::weyl`), so every test and bench draws from one generator.
pub fn data(len: usize, salt: u32) -> Vec<f32> {
    let mut v = vec![0.0; len];
    crate::weyl::fill(salt, 0, crate::weyl::Rule { offset: 0.0, scale: 1.0, abs: false }, &mut v);
    v
}

/// `cases` random cases from a fixed seed: CI runs the same cases every time, and a
/// failure reproduces (proptest's default seed is random per run).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x1CE9_7104),
        // Failures become named regression tests by hand; no files written into src/.
        failure_persistence: None,
        ..Default::default()
    }
}

/// Elementwise `|got - want| ≤ 1e-6·(terms+1)·(1 + |want|)`: summation-order differences of
/// `terms` products of magnitude ≤ 1 stay far inside it; an indexing bug does not.
pub fn assert_close(got: &[f32], want: &[f32], terms: usize, what: &str) {
    assert_close_scaled(got, want, terms, 1.0, what);
}

/// [`assert_close`] with the tolerance multiplied by `scale` (for algorithms that round
/// more, like Winograd's transforms).
pub fn assert_close_scaled(got: &[f32], want: &[f32], terms: usize, scale: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = 1e-6 * (terms as f32 + 1.0) * scale;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: got {g}, want {w}");
    }
}

/// Installs (once per test process) a team of two threads, so that plan runs under the
/// `threads` feature really run threaded; returns the team's size.
#[cfg(feature = "threads")]
pub fn team() -> usize {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::plan::team::install(2, |work| {
            std::thread::spawn(work);
        })
    });
    crate::plan::threads()
}
