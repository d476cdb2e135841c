//! torchvision's ImageNet eval transform on an RGB image, exactly as torchvision 0.14 over
//! PIL 9.4 computes it: `Resize` (bilinear, `resample`), `CenterCrop` (padding with black
//! when the crop is larger, offsets rounded half to even as Python's `round`), `ToTensor`
//! (`x / 255` in float32) and `Normalize` (`(x − mean) / std` in float32), written CHW.

use crate::resample::{resize_rgb, Window};
use crate::{alloc, ImageError, Rgb};

/// The longest side a resize may make: 2^31 − 1, so that every coordinate fits a 32-bit
/// `isize` (only the kept window is computed, so a long side costs nothing by itself).
pub const MAX_SIDE: u64 = (1 << 31) - 1;
/// The most values an output may hold: 2^28 floats (1 GiB), far past any network input.
pub const MAX_OUTPUT: u64 = 1 << 28;

/// `transforms.Resize(size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// `Resize(n)`: the shorter side becomes `n`, the longer `int(n · long / short)`.
    ShortSide(usize),
    /// `Resize((height, width))`.
    Exact { height: usize, width: usize },
    /// No resize.
    Keep,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    pub resize: Resize,
    /// `CenterCrop((height, width))`, or none.
    pub crop: Option<(usize, usize)>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Transform {
    /// The size after `Resize`, `(width, height)`; [`ImageError::OutputTooLarge`] past
    /// [`MAX_SIDE`] on a side (a 1-pixel-high strip 17 million wide, resized to 256 high).
    pub fn resized(&self, width: usize, height: usize) -> Result<(usize, usize), ImageError> {
        let (w, h) = match self.resize {
            Resize::Keep => (width as u64, height as u64),
            Resize::Exact { height, width } => (width as u64, height as u64),
            Resize::ShortSide(n) => {
                // Python's `int(n * long / short)`: an exact product (< 2^53 here), one
                // float64 division, truncated.
                let long = |long: usize, short: usize| ((n as u64 * long as u64) as f64 / short as f64) as u64;
                if width <= height { (n as u64, long(height, width)) } else { (long(width, height), n as u64) }
            }
        };
        if w > MAX_SIDE || h > MAX_SIDE {
            return Err(ImageError::OutputTooLarge { width: w, height: h, what: "resized" });
        }
        Ok((w as usize, h as usize))
    }

    /// The output's `(height, width)` for an input of `width × height`; at most
    /// [`MAX_OUTPUT`] values.
    pub fn output(&self, width: usize, height: usize) -> Result<(usize, usize), ImageError> {
        let (w, h) = self.resized(width, height)?;
        let (oh, ow) = self.crop.unwrap_or((h, w));
        if 3 * oh as u64 * ow as u64 > MAX_OUTPUT {
            return Err(ImageError::OutputTooLarge { width: ow as u64, height: oh as u64, what: "output" });
        }
        Ok((oh, ow))
    }

    /// `Resize` then `CenterCrop`: the 8-bit image torchvision hands to `ToTensor`.
    pub fn crop(&self, image: &Rgb) -> Result<Rgb, ImageError> {
        let (rw, rh) = self.resized(image.width, image.height)?;
        let (ch, cw) = self.output(image.width, image.height)?;
        // Output (x, y) is resized pixel (x + sx, y + sy); outside the resized image, the
        // padding's black.
        let (sx, sy) = (crop_start(rw, cw), crop_start(rh, ch));
        let (x0, x1) = (sx.max(0) as usize, (sx + cw as isize).min(rw as isize) as usize);
        let (y0, y1) = (sy.max(0) as usize, (sy + ch as isize).min(rh as isize) as usize);
        let window = Window { x0, y0, w: x1 - x0, h: y1 - y0 };
        let pixels = resize_rgb(&image.data, image.width, image.height, rw, rh, &window)?;
        if (window.w, window.h) == (cw, ch) {
            return Ok(Rgb { width: cw, height: ch, data: pixels });
        }
        let mut data = alloc::<u8>(cw * ch * 3)?;
        let left = (x0 as isize - sx) as usize * 3;
        for (y, src) in pixels.chunks_exact(window.w * 3).enumerate() {
            let top = (y + y0) as isize - sy;
            data[top as usize * cw * 3 + left..][..src.len()].copy_from_slice(src);
        }
        Ok(Rgb { width: cw, height: ch, data })
    }

    /// The whole transform: `3 × out_h × out_w` floats (CHW) into `out`.
    pub fn apply(&self, image: &Rgb, out: &mut [f32]) -> Result<(), ImageError> {
        let cropped = self.crop(image)?;
        assert_eq!(out.len(), cropped.data.len(), "output buffer size");
        let lut = self.lookup();
        let plane = cropped.width * cropped.height;
        for (c, (plane_out, lut)) in out.chunks_exact_mut(plane).zip(&lut).enumerate() {
            for (o, px) in plane_out.iter_mut().zip(cropped.data.chunks_exact(3)) {
                *o = lut[usize::from(px[c])];
            }
        }
        Ok(())
    }

    /// `ToTensor` then `Normalize` of each byte value, per channel: float32 operations in
    /// torchvision's order (`x / 255`, `− mean`, `/ std`), so every value is bit-exact.
    fn lookup(&self) -> [[f32; 256]; 3] {
        core::array::from_fn(|c| core::array::from_fn(|v| (v as f32 / 255.0 - self.mean[c]) / self.std[c]))
    }
}

/// torchvision's `center_crop` along one axis of `size`: pad `(crop − size) // 2` before
/// when the crop is larger, then start at `int(round((padded − crop) / 2))`. Returns the
/// start in the unpadded image (negative inside the padding).
fn crop_start(size: usize, crop: usize) -> isize {
    let pad = if crop > size { (crop - size) / 2 } else { 0 };
    let padded = size.max(crop);
    // Python's round(n / 2): half to even.
    let n = padded - crop;
    let start = if n % 2 == 0 { n / 2 } else { let f = n / 2; f + (f % 2) };
    start as isize - pad as isize
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGENET: Transform = Transform {
        resize: Resize::ShortSide(256),
        crop: Some((224, 224)),
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    #[test]
    fn resized_sizes_truncate_like_python() {
        // (w, h) → int(256 · long / short) on the long side.
        for ((w, h), want) in [((451, 300), (384, 256)), ((300, 451), (256, 384)), ((1000, 872), (293, 256)), ((7, 5), (358, 256)), ((1200, 150), (2048, 256)), ((224, 224), (256, 256))] {
            assert_eq!(IMAGENET.resized(w, h).unwrap(), want, "{w}×{h}");
        }
    }

    #[test]
    fn refuses_sizes_past_the_caps_instead_of_wrapping() {
        // 256 · 16,777,217 wraps a 32-bit usize to 256: it must be refused, not squashed.
        assert!(matches!(IMAGENET.resized(16_777_217, 1), Err(ImageError::OutputTooLarge { width: 4_294_967_552, height: 256, .. })));
        assert_eq!(IMAGENET.resized(8_388_607, 1).unwrap(), (2_147_483_392, 256));
        let huge = Transform { resize: Resize::Exact { height: 65_536, width: 65_536 }, crop: None, ..IMAGENET };
        assert!(matches!(huge.output(10, 10), Err(ImageError::OutputTooLarge { what: "output", .. })));
        // A strip: only the kept window is computed, so this is cheap.
        let strip = Rgb { width: 1, height: 60_000, data: vec![128; 180_000] };
        let crop = IMAGENET.crop(&strip).unwrap();
        assert_eq!((crop.width, crop.height), (224, 224));
        assert!(crop.data.iter().all(|&v| v == 128));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // 293 − 224 = 69 → round(34.5) = 34 in Python (Math.round would say 35).
        assert_eq!(crop_start(293, 224), 34);
        assert_eq!(crop_start(295, 224), 36); // round(35.5) = 36
        assert_eq!(crop_start(256, 224), 16);
        assert_eq!(crop_start(224, 224), 0);
        // Larger crop: padded by (crop − size) // 2 before.
        assert_eq!(crop_start(100, 224), -62);
        assert_eq!(crop_start(101, 224), -61);
    }

    #[test]
    fn normalises_in_float32_like_torchvision() {
        let t = Transform { resize: Resize::Keep, crop: None, ..IMAGENET };
        let image = Rgb { width: 2, height: 1, data: vec![0, 128, 255, 7, 8, 9] };
        let mut out = [0.0f32; 6];
        t.apply(&image, &mut out).unwrap();
        let f = |v: u8, c: usize| (f32::from(v) / 255.0 - t.mean[c]) / t.std[c];
        assert_eq!(out, [f(0, 0), f(7, 0), f(128, 1), f(8, 1), f(255, 2), f(9, 2)]);
    }

    #[test]
    fn pads_with_black_when_the_crop_is_larger() {
        let t = Transform { resize: Resize::Keep, crop: Some((3, 4)), mean: [0.0; 3], std: [1.0; 3] };
        let image = Rgb { width: 1, height: 1, data: vec![255, 255, 255] };
        let mut out = [9.0f32; 36];
        t.apply(&image, &mut out).unwrap();
        // torchvision: pad left (4−1)//2 = 1, top (3−1)//2 = 1; the pixel lands at (1, 1).
        for c in 0..3 {
            for y in 0..3 {
                for x in 0..4 {
                    assert_eq!(out[c * 12 + y * 4 + x], if (x, y) == (1, 1) { 1.0 } else { 0.0 });
                }
            }
        }
    }
}
