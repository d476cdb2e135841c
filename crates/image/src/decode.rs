//! Encoded bytes to 8-bit RGB, as PIL 9.4's `Image.open(f).convert('RGB')` gives them.
//!
//! - JPEG (baseline, progressive; gray, YCbCr at any subsampling, CMYK/YCCK) through
//!   `jpeg-decoder`, whose integer IDCT and "fancy" chroma upsampling land within a few
//!   levels of libjpeg-turbo's (PIL's): max 3, mean 0.12 after resize + crop.
//! - PNG (every colour type and bit depth, interlaced, with tRNS) through `png`: exact.
//!   16-bit samples become `round(v · 255 / 65535)`; PIL 9.4 differs there (it keeps the
//!   high byte of RGB16 and clips 16-bit gray to 255), a choice no model was trained on.
//!
//! Sizes are checked from the header before anything is allocated: a file declaring more
//! than `max_pixels` pixels is refused as PIL refuses decompression bombs.

use std::io::{self, Cursor};

use crate::{alloc, exif, ImageError, Rgb};

/// PIL's `Image.MAX_IMAGE_PIXELS`: the default `max_pixels`.
pub const PIL_MAX_IMAGE_PIXELS: u64 = 178_956_970;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Larger images are refused ([`ImageError::TooLarge`]) before decoding.
    pub max_pixels: u64,
    /// Apply the EXIF orientation tag (PIL's `ImageOps.exif_transpose`). Off by default:
    /// `Image.open` and torchvision ignore it, so models were trained without it.
    pub exif_orientation: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { max_pixels: PIL_MAX_IMAGE_PIXELS, exif_orientation: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The format the first bytes announce, or a description of what they are instead.
pub fn sniff(bytes: &[u8]) -> Result<Format, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(Format::Png);
    }
    Err(ImageError::UnknownFormat(describe(bytes)))
}

/// Names the common formats users hand a classifier by mistake, else shows the first bytes.
fn describe(bytes: &[u8]) -> String {
    let known: &[(&[u8], usize, &str)] = &[
        (b"GIF8", 0, "GIF"),
        (b"WEBP", 8, "WebP"),
        (b"BM", 0, "BMP"),
        (b"II*\0", 0, "TIFF"),
        (b"MM\0*", 0, "TIFF"),
        (b"ftypheic", 4, "HEIC"),
        (b"ftypavif", 4, "AVIF"),
        (b"\x1f\x8b", 0, "gzip"),
        (b"<", 0, "text or markup"),
    ];
    for &(magic, at, name) in known {
        if bytes.get(at..at + magic.len()) == Some(magic) {
            return format!("{name} data; only JPEG and PNG are read");
        }
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bytes {}", head.join(" "))
}

/// Decodes a JPEG or PNG file into RGB.
pub fn decode(bytes: &[u8], options: &Options) -> Result<Rgb, ImageError> {
    let (rgb, exif_data) = match sniff(bytes)? {
        Format::Jpeg => jpeg(bytes, options)?,
        Format::Png => png(bytes, options)?,
    };
    match exif_data.as_deref().and_then(exif::orientation) {
        Some(orientation) if options.exif_orientation => exif::apply(rgb, orientation),
        _ => Ok(rgb),
    }
}

fn check_pixels(width: usize, height: usize, options: &Options) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt(format!("the header declares a {width}×{height} image")));
    }
    if (width as u64).saturating_mul(height as u64) > options.max_pixels {
        return Err(ImageError::TooLarge { width, height, max_pixels: options.max_pixels });
    }
    Ok(())
}

type Decoded = (Rgb, Option<Vec<u8>>);

fn jpeg(bytes: &[u8], options: &Options) -> Result<Decoded, ImageError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(jpeg_error)?;
    let info = decoder.info().ok_or_else(|| ImageError::Corrupt("JPEG without a frame header".into()))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    check_pixels(width, height, options)?;
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let exif_data = decoder.exif_data().map(<[u8]>::to_vec);
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => Rgb { width, height, data: pixels },
        jpeg_decoder::PixelFormat::L8 => Rgb::from_pixels(&pixels, width, height, 1)?,
        jpeg_decoder::PixelFormat::CMYK32 => cmyk_to_rgb(&pixels, width, height)?,
        jpeg_decoder::PixelFormat::L16 => {
            return Err(ImageError::Unsupported("lossless or 12-bit JPEG (PIL does not read it either)".into()))
        }
    };
    Ok((rgb, exif_data))
}

/// PIL's `cmyk2rgb` (Convert.c): `R = (255 − K) − C·(255 − K)/255`, rounded as its
/// `MULDIV255`. `jpeg-decoder` returns 4-channel JPEGs in PIL's convention (both invert
/// the Adobe files that Photoshop writes).
fn cmyk_to_rgb(cmyk: &[u8], width: usize, height: usize) -> Result<Rgb, ImageError> {
    let mut data = alloc::<u8>(width * height * 3)?;
    for (rgb, px) in data.chunks_exact_mut(3).zip(cmyk.chunks_exact(4)) {
        let nk = 255 - i32::from(px[3]);
        for (out, &c) in rgb.iter_mut().zip(&px[..3]) {
            let t = i32::from(c) * nk + 128;
            *out = (nk - (((t >> 8) + t) >> 8)).clamp(0, 255) as u8;
        }
    }
    Ok(Rgb { width, height, data })
}

fn jpeg_error(e: jpeg_decoder::Error) -> ImageError {
    match e {
        jpeg_decoder::Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated("the JPEG data ends before the image does".into())
        }
        jpeg_decoder::Error::Unsupported(what) => ImageError::Unsupported(format!("JPEG feature not supported: {what:?}")),
        e => ImageError::Corrupt(format!("malformed JPEG: {e}")),
    }
}

/// Width and height from the IHDR chunk, which the PNG standard puts first.
fn png_size(bytes: &[u8]) -> Result<(usize, usize), ImageError> {
    let ihdr = bytes.get(8..24).ok_or_else(|| ImageError::Truncated("the PNG ends inside its header".into()))?;
    if &ihdr[4..8] != b"IHDR" {
        return Err(ImageError::Corrupt("the PNG does not start with an IHDR chunk".into()));
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    Ok((be(&ihdr[8..12]), be(&ihdr[12..16])))
}

fn png(bytes: &[u8], options: &Options) -> Result<Decoded, ImageError> {
    let (width, height) = png_size(bytes)?;
    check_pixels(width, height, options)?;
    // The crate's default limits (64 MiB) bound what it allocates besides the image: line
    // buffers and the chunks it decompresses. Colour profiles and text are not needed
    // (PIL's convert ignores them) and are skipped: a 200 KB file can hold an iCCP chunk
    // that inflates to gigabytes.
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_ignore_text_chunk(true);
    // Palette to RGB, tRNS to alpha, 1/2/4-bit to 8; 16-bit stays 16 (reduced below).
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let size = reader.output_buffer_size().ok_or(ImageError::OutOfMemory { bytes: usize::MAX })?;
    let mut buf = alloc::<u8>(size)?;
    let frame = reader.next_frame(&mut buf).map_err(png_error)?;
    buf.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    if frame.bit_depth == png::BitDepth::Sixteen {
        buf = reduce_16_bit(&buf);
    }
    let exif_data = reader.info().exif_metadata.as_ref().map(|e| e.to_vec());
    let rgb = if channels == 3 { Rgb { width, height, data: buf } } else { Rgb::from_pixels(&buf, width, height, channels)? };
    Ok((rgb, exif_data))
}

/// Big-endian 16-bit samples to 8 bits, `round(v · 255 / 65535)` (never a tie: 65535 is odd).
fn reduce_16_bit(samples: &[u8]) -> Vec<u8> {
    samples
        .chunks_exact(2)
        .map(|s| ((u32::from(u16::from_be_bytes([s[0], s[1]])) * 510 + 65535) / 131070) as u8)
        .collect()
}

fn png_error(e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated("the PNG data ends before the image does".into())
        }
        png::DecodingError::LimitsExceeded => ImageError::OutOfMemory { bytes: usize::MAX },
        e => ImageError::Corrupt(format!("malformed PNG: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bits_round_to_nearest() {
        let reduced = reduce_16_bit(&[0, 0, 0, 128, 0, 129, 0xFF, 0xFF, 0x80, 0x00, 0x7F, 0xFF]);
        let expect: Vec<u8> = [0u32, 128, 129, 65535, 32768, 32767].iter().map(|&v| (f64::from(v) * 255.0 / 65535.0).round() as u8).collect();
        assert_eq!(reduced, expect);
        for v in 0..=65535u32 {
            let got = reduce_16_bit(&(v as u16).to_be_bytes())[0];
            assert_eq!(got, (f64::from(v) * 255.0 / 65535.0).round() as u8, "v = {v}");
        }
    }

    #[test]
    fn cmyk_matches_pil_convert() {
        // PIL: Image.new('CMYK', (1, 1), cmyk).convert('RGB'); jpeg-decoder returns CMYK in
        // PIL's convention (both invert Adobe files): white, black, cyan, and a mix that
        // exercises MULDIV255's rounding.
        let cases = [([0u8, 0, 0, 0], [255u8, 255, 255]), ([0, 0, 0, 255], [0, 0, 0]), ([255, 0, 0, 0], [0, 255, 255]), ([100, 50, 200, 30], [137, 181, 49])];
        for (cmyk, rgb) in cases {
            assert_eq!(cmyk_to_rgb(&cmyk, 1, 1).unwrap().data, rgb, "{cmyk:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_image() {
        assert_eq!(decode(&[], &Options::default()), Err(ImageError::Empty));
        let gif = decode(b"GIF89a\0\0\0\0", &Options::default()).unwrap_err();
        assert_eq!(gif.to_string(), "unknown-format: not a JPEG or PNG file (it starts with GIF data; only JPEG and PNG are read)");
        assert!(matches!(decode(&[1, 2, 3], &Options::default()), Err(ImageError::UnknownFormat(_))));
        assert!(matches!(decode(&PNG_SIGNATURE[..], &Options::default()), Err(ImageError::Truncated(_))));
        assert!(matches!(decode(&[0xFF, 0xD8, 0xFF], &Options::default()), Err(ImageError::Truncated(_) | ImageError::Corrupt(_))));
    }
}
