//! The EXIF orientation tag (0x0112), and PIL's `ImageOps.exif_transpose` of it.

use crate::{alloc, ImageError, Rgb};

/// The orientation (1–8) recorded in EXIF data (a TIFF structure, with or without the
/// `Exif\0\0` prefix of a JPEG APP1 segment); `None` when absent or malformed.
pub fn orientation(exif: &[u8]) -> Option<u16> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| tiff.get(at..at + 2).map(|b| if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) });
    let u32_at = |at: usize| tiff.get(at..at + 4).map(|b| if big { u32::from_be_bytes([b[0], b[1], b[2], b[3]]) } else { u32::from_le_bytes([b[0], b[1], b[2], b[3]]) });
    let ifd = u32_at(4)? as usize;
    let entries = u16_at(ifd)?;
    (0..usize::from(entries)).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // Tag 0x0112, type SHORT: the value sits in the entry's first two value bytes.
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3).then(|| u16_at(entry + 8)).flatten()
    }).filter(|o| (1..=8).contains(o))
}

/// The image turned upright as `ImageOps.exif_transpose` turns it (2: mirror, 3: 180°,
/// 4: flip, 5: transpose, 6: 90° clockwise, 7: transverse, 8: 90° anticlockwise).
pub fn apply(rgb: Rgb, orientation: u16) -> Result<Rgb, ImageError> {
    if !(2..=8).contains(&orientation) {
        return Ok(rgb);
    }
    let (w, h) = (rgb.width, rgb.height);
    let swap = orientation >= 5;
    let (ow, oh) = if swap { (h, w) } else { (w, h) };
    let mut data = alloc::<u8>(rgb.data.len())?;
    for oy in 0..oh {
        for ox in 0..ow {
            // The source pixel of output (ox, oy).
            let (sx, sy) = match orientation {
                2 => (w - 1 - ox, oy),
                3 => (w - 1 - ox, h - 1 - oy),
                4 => (ox, h - 1 - oy),
                5 => (oy, ox),
                6 => (oy, h - 1 - ox),
                7 => (w - 1 - oy, h - 1 - ox),
                _ => (w - 1 - oy, ox),
            };
            let (o, s) = (3 * (oy * ow + ox), 3 * (sy * w + sx));
            data[o..o + 3].copy_from_slice(&rgb.data[s..s + 3]);
        }
    }
    Ok(Rgb { width: ow, height: oh, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff(big: bool, orientation: u16) -> Vec<u8> {
        let (u16b, u32b): (fn(u16) -> [u8; 2], fn(u32) -> [u8; 4]) =
            if big { (u16::to_be_bytes, u32::to_be_bytes) } else { (u16::to_le_bytes, u32::to_le_bytes) };
        let mut t = if big { b"MM\0*".to_vec() } else { b"II*\0".to_vec() };
        t.extend(u32b(8));
        t.extend(u16b(2)); // two entries: ImageWidth first, then Orientation
        for (tag, ty, value) in [(0x0100u16, 4u16, 640u32), (0x0112, 3, 0)] {
            t.extend(u16b(tag));
            t.extend(u16b(ty));
            t.extend(u32b(1));
            if ty == 3 { t.extend(u16b(orientation)); t.extend([0, 0]); } else { t.extend(u32b(value)); }
        }
        t
    }

    #[test]
    fn reads_orientation_in_both_byte_orders() {
        for o in 1..=8 {
            assert_eq!(orientation(&tiff(true, o)), Some(o));
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend(tiff(false, o));
            assert_eq!(orientation(&app1), Some(o));
        }
        assert_eq!(orientation(&tiff(true, 9)), None);
        assert_eq!(orientation(b"II*\0\xff\xff\xff\xff"), None);
        assert_eq!(orientation(&tiff(false, 6)[..20]), None);
    }

    #[test]
    fn turns_like_pil() {
        // A 3×2 image whose pixel values are its index; PIL's exif_transpose of each tag,
        // as flat indices (from `ImageOps.exif_transpose` on the same image).
        let rgb = Rgb { width: 3, height: 2, data: (0..6u8).flat_map(|i| [i, i, i]).collect() };
        let expect: [(u16, usize, &[u8]); 7] = [
            (2, 3, &[2, 1, 0, 5, 4, 3]),
            (3, 3, &[5, 4, 3, 2, 1, 0]),
            (4, 3, &[3, 4, 5, 0, 1, 2]),
            (5, 2, &[0, 3, 1, 4, 2, 5]),
            (6, 2, &[3, 0, 4, 1, 5, 2]),
            (7, 2, &[5, 2, 4, 1, 3, 0]),
            (8, 2, &[2, 5, 1, 4, 0, 3]),
        ];
        for (o, width, pixels) in expect {
            let out = apply(rgb.clone(), o).unwrap();
            assert_eq!(out.width, width, "orientation {o}");
            assert_eq!(out.data.iter().step_by(3).copied().collect::<Vec<_>>(), pixels, "orientation {o}");
        }
    }
}
