//! The photo fixtures, natively: this project's copies of the shared set
//! (`test/fixtures/images`, from `make_images.py`) and its own cases
//! (`test/fixtures/images-extra`) — what torchvision 0.14 + PIL 9.4 make of each photo,
//! within each case's tolerance in 8-bit levels; PIL's full-size decode of the lossless
//! ones exactly; the error cases refused. `FIXTURES_DIR` (its `images/`) and
//! `IMAGE_FIXTURES=dir1:dir2` add folders of the same layout (e.g. the hidden set that
//! `make_images.py OUT --set hidden` writes).

use std::path::{Path, PathBuf};

use inception_image::decode::{decode, Options};
use inception_image::transform::{Resize, Transform};
use inception_image::Rgb;

const IMAGENET: Transform = Transform { resize: Resize::ShortSide(256), crop: Some((224, 224)), mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

fn folders() -> Vec<PathBuf> {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures");
    let mut dirs = vec![project.join("images"), project.join("images-extra")];
    if let Ok(dir) = std::env::var("FIXTURES_DIR") {
        dirs.push(Path::new(&dir).join("images"));
    }
    if let Ok(extra) = std::env::var("IMAGE_FIXTURES") {
        dirs.extend(extra.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    dirs.into_iter().filter(|d| d.join("index.json").exists()).collect()
}

/// The case's transform: the ImageNet one, or its `options` (preprocess's `resize` and
/// `crop`: a number, `[height, width]`, or null).
fn transform(options: &serde_json::Value) -> Transform {
    let pair = |v: &serde_json::Value| v.as_array().map(|a| (a[0].as_u64().unwrap() as usize, a[1].as_u64().unwrap() as usize));
    let resize = match &options["resize"] {
        serde_json::Value::Null if options.get("resize").is_some() => Resize::Keep,
        serde_json::Value::Null => IMAGENET.resize,
        v => v.as_u64().map(|n| Resize::ShortSide(n as usize)).unwrap_or_else(|| {
            let (height, width) = pair(v).unwrap();
            Resize::Exact { height, width }
        }),
    };
    let crop = match &options["crop"] {
        serde_json::Value::Null if options.get("crop").is_some() => None,
        serde_json::Value::Null => IMAGENET.crop,
        v => v.as_u64().map(|n| (n as usize, n as usize)).or_else(|| pair(v)),
    };
    Transform { resize, crop, ..IMAGENET }
}

fn png_rgb(path: &Path) -> Rgb {
    decode(&std::fs::read(path).unwrap(), &Options::default()).unwrap()
}

#[test]
fn photos_match_torchvision() {
    let dirs = folders();
    assert!(dirs.len() >= 2, "the project's photo fixtures (test/fixtures/images, images-extra) are missing");
    let mut checked = 0;
    for dir in dirs {
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        for case in index["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let bytes = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
            let exif_orientation = case["options"]["exifOrientation"].as_bool().unwrap_or(false);
            let decoded = decode(&bytes, &Options { exif_orientation, ..Options::default() });
            if case["expect_error"].as_bool() == Some(true) {
                let e = decoded.expect_err(name);
                println!("{name}: refused ({e})");
                checked += 1;
                continue;
            }
            let image = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((image.width as u64, image.height as u64), (case["width"].as_u64().unwrap(), case["height"].as_u64().unwrap()), "{name}");
            if let Some(full) = case["decoded"].as_str() {
                assert!(png_rgb(&dir.join(full)) == image, "{name}: the full-size decode differs from PIL's");
            }
            let got = transform(&case["options"]).crop(&image).unwrap();
            let want = png_rgb(&dir.join(case["expected"].as_str().unwrap()));
            assert_eq!((got.width, got.height), (want.width, want.height), "{name}");
            let diffs: Vec<u32> = got.data.iter().zip(&want.data).map(|(&a, &b)| u32::from(a.abs_diff(b))).collect();
            let max = *diffs.iter().max().unwrap();
            let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
            println!("{name}: max {max} mean {mean:.4} levels");
            let tol = &case["tolerance"];
            assert!(f64::from(max) <= tol["max_levels"].as_f64().unwrap(), "{name}: max {max} levels");
            assert!(mean <= tol["mean_levels"].as_f64().unwrap(), "{name}: mean {mean} levels");
            checked += 1;
        }
    }
    assert!(checked > 0);
}
