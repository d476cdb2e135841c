//! wasm-bindgen glue over `inception-image`, built into its own `.wasm`
//! (`ts/wasm-image/`), which the TypeScript API loads on the first image call: the
//! inference module stays free of the decoders. Stateless between calls, so a trap here
//! never harms the inference module: the loader simply makes a new instance.
//!
//! Errors are `JsError`s whose message starts with `ImageError::code()` (`truncated: …`);
//! ts/image/module.ts turns that into `ImageError.reason`.

use inception_image::decode::{self, Options};
use inception_image::transform::{Resize, Transform};
use inception_image::{ImageError, Rgb};
use wasm_bindgen::prelude::*;

fn js(e: ImageError) -> JsError {
    JsError::new(&e.to_string())
}

/// A decoded (or handed-over) image, RGB, in this module's memory.
#[wasm_bindgen]
pub struct Image(Rgb);

#[wasm_bindgen]
impl Image {
    /// Decodes JPEG or PNG bytes to RGB; larger than `max_pixels` is refused from the header.
    pub fn decode(bytes: &[u8], max_pixels: f64, exif_orientation: bool) -> Result<Image, JsError> {
        let options = Options { max_pixels: max_pixels as u64, exif_orientation };
        decode::decode(bytes, &options).map(Image).map_err(js)
    }

    /// Raw interleaved pixels of 1–4 channels (gray, gray + alpha, RGB, RGBA), made RGB.
    /// Takes the buffer the glue copied the pixels into: RGB is kept as it is.
    #[wasm_bindgen(js_name = fromPixels)]
    pub fn from_pixels(data: Vec<u8>, width: usize, height: usize, channels: usize) -> Result<Image, JsError> {
        if channels == 3 && width.checked_mul(height).and_then(|p| p.checked_mul(3)) == Some(data.len()) {
            return Ok(Image(Rgb { width, height, data }));
        }
        Rgb::from_pixels(&data, width, height, channels).map(Image).map_err(js)
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.0.width
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.0.height
    }

    /// The RGB bytes (HWC), handed over: the glue copies them out once and frees them.
    #[wasm_bindgen(js_name = intoRgb)]
    pub fn into_rgb(self) -> Vec<u8> {
        self.0.data
    }

    /// torchvision's `Resize` → `CenterCrop` → `ToTensor` → `Normalize`, as CHW floats.
    /// `resize`: 0 none, 1 shorter side to `a`, 2 exactly `a` high and `b` wide; a crop of
    /// 0 × 0 is none. Sizes and statistics are validated by the caller (ts/image/preprocess.ts).
    #[allow(clippy::too_many_arguments)]
    pub fn transform(&self, resize: u32, a: usize, b: usize, crop_h: usize, crop_w: usize, mean: &[f32], std: &[f32]) -> Result<Transformed, JsError> {
        let resize = match resize {
            0 => Resize::Keep,
            1 => Resize::ShortSide(a),
            _ => Resize::Exact { height: a, width: b },
        };
        let crop = (crop_h > 0).then_some((crop_h, crop_w));
        let stat = |v: &[f32]| -> [f32; 3] { [v[0], v[1], v[2]] };
        let t = Transform { resize, crop, mean: stat(mean), std: stat(std) };
        let (height, width) = t.output(self.0.width, self.0.height).map_err(js)?;
        let mut data = inception_image::alloc::<f32>(3 * height * width).map_err(js)?;
        t.apply(&self.0, &mut data).map_err(js)?;
        Ok(Transformed { data, height, width })
    }
}

/// What [`Image::transform`] makes: `3 × height × width` floats, CHW.
#[wasm_bindgen]
pub struct Transformed {
    data: Vec<f32>,
    height: usize,
    width: usize,
}

#[wasm_bindgen]
impl Transformed {
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.height
    }

    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.width
    }

    /// The floats, handed over (copied out once, then freed).
    #[wasm_bindgen(js_name = intoData)]
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
}
