//! The `weyl-fmix32` generator of `../shared/fixtures/README.md` §1: a counter-based
//! stream of exact uniform floats. The deterministic initialisation runs here, in wasm,
//! rather than in JavaScript: GoogLeNet's 7 M values are generated straight into the
//! buffers the layers pack from (≈ 4× faster than the JavaScript loop, and no 28 MB of
//! JavaScript arrays to copy in and collect).

const GOLDEN: u32 = 0x9E37_79B9;

/// MurmurHash3's 32-bit finaliser.
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h
}

/// Key of the stream of tensor number `t` under `seed`.
pub fn stream_key(seed: u32, t: u32) -> u32 {
    fmix32(fmix32(seed).wrapping_add(t.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// How stream values become floats: `offset + scale·(abs ? |u| : u)`, each operation
/// rounded once to f32 (README §1.3).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub offset: f32,
    pub scale: f32,
    pub abs: bool,
}

/// Fills `out` with values `0..out.len()` of tensor `t` under `seed`.
pub fn fill(seed: u32, t: u32, rule: Rule, out: &mut [f32]) {
    let key = stream_key(seed, t);
    for (i, v) in out.iter_mut().enumerate() {
        let x = fmix32(key.wrapping_add((i as u32).wrapping_add(1).wrapping_mul(GOLDEN)));
        // (m − 2^23)·2^-23 for a 24-bit m: exact in f32.
        let u = ((x >> 8) as i32 - (1 << 23)) as f32 * (1.0 / (1 << 23) as f32);
        let s = rule.scale * if rule.abs { u.abs() } else { u };
        *v = if rule.offset == 0.0 { s } else { rule.offset + s };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by the JavaScript reference (`../shared/fixtures/gen.mjs`'s rule).
    #[test]
    fn matches_the_reference_generator() {
        assert_eq!((stream_key(0, 0), stream_key(7, 3)), (2462723854, 2454355783));
        let mut v = [0.0; 4];
        fill(0, 0, Rule { offset: 0.0, scale: (6.0f64 / 27.0).sqrt() as f32, abs: false }, &mut v);
        assert_eq!(v, [0.3087064027786255, -0.01899125799536705, 0.36039915680885315, -0.1939898133277893]);
        fill(3, 5, Rule { offset: 0.5, scale: 1.0, abs: true }, &mut v);
        assert_eq!(v, [0.6269509792327881, 1.1601639986038208, 1.3558344841003418, 0.8363085985183716]);
        let mut v = [0.0; 3];
        fill(1, 2, Rule { offset: 1.0, scale: 0.25, abs: false }, &mut v);
        assert_eq!(v, [1.2317498922348022, 0.9144277572631836, 1.105421781539917]);
    }
}
