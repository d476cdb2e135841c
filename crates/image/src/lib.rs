//! Images to network inputs, the way PyTorch users' pipelines make them: JPEG and PNG
//! decoded to 8-bit RGB as PIL's `Image.open(f).convert('RGB')` does, then torchvision's
//! ImageNet eval transform — `Resize(256)`, `CenterCrop(224)`, `ToTensor()`,
//! `Normalize(mean, std)` — with PIL's fixed-point bilinear resampling reproduced bit for
//! bit (`resample`).
//!
//! Pure Rust, no wasm-bindgen: `crates/image-wasm` is the binding, built into its own
//! `.wasm` so that the inference module does not carry two decoders.

pub mod decode;
mod error;
pub mod exif;
pub mod resample;
pub mod transform;

pub use error::ImageError;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (`HWC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    /// `width · height · 3` bytes.
    pub data: Vec<u8>,
}

impl Rgb {
    /// Pixels of `channels` (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) interleaved bytes,
    /// made RGB as PIL's `convert('RGB')` makes them: gray replicated, alpha dropped (not
    /// composited).
    pub fn from_pixels(data: &[u8], width: usize, height: usize, channels: usize) -> Result<Rgb, ImageError> {
        let pixels = width.checked_mul(height).ok_or(ImageError::TooLarge { width, height, max_pixels: usize::MAX as u64 })?;
        if !(1..=4).contains(&channels) || pixels.checked_mul(channels) != Some(data.len()) {
            return Err(ImageError::Corrupt(format!("{} bytes are not {width}×{height} pixels of {channels} channels", data.len())));
        }
        let mut out = alloc(pixels * 3)?;
        match channels {
            3 => out.copy_from_slice(data),
            _ => {
                for (rgb, px) in out.chunks_exact_mut(3).zip(data.chunks_exact(channels)) {
                    if channels <= 2 {
                        rgb.fill(px[0]);
                    } else {
                        rgb.copy_from_slice(&px[..3]);
                    }
                }
            }
        }
        Ok(Rgb { width, height, data: out })
    }
}

/// A zeroed buffer, or [`ImageError::OutOfMemory`] instead of an abort when the heap
/// cannot hold it (sizes come from the file).
pub fn alloc<T: Copy + Default>(len: usize) -> Result<Vec<T>, ImageError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| ImageError::OutOfMemory { bytes: len.saturating_mul(core::mem::size_of::<T>()) })?;
    v.resize(len, T::default());
    Ok(v)
}
