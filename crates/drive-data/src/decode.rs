//! Reading fundus images and masks from disk: tif (incl. LZW), gif, png, jpg/jpeg, bmp; 8- or 16-bit;
//! grey, RGB or RGBA. Images become 8-bit RGB, masks 0/1 binarised at 128 (of 255).

use std::io::Cursor;
use std::path::Path;

use image::{GrayImage, ImageReader, RgbImage};

use crate::error::{DataError, Result};

/// File extensions read as images (lower case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["tif", "tiff", "gif", "png", "jpg", "jpeg", "bmp"];

/// Hidden and system files that are never data (`.DS_Store`, `Thumbs.db`, `desktop.ini`, `._*`).
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.eq_ignore_ascii_case("Thumbs.db")
        || name.eq_ignore_ascii_case("desktop.ini")
}

/// Checks that `path` has a supported image extension.
pub fn check_extension(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        Ok(())
    } else {
        Err(DataError::UnsupportedFormat {
            path: path.to_path_buf(),
            extension: ext,
        })
    }
}

fn decode(path: &Path) -> Result<image::DynamicImage> {
    check_extension(path)?;
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.is_empty() {
        return Err(DataError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let decode_err = |reason: String| DataError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    // The content decides the format (some downloads have misleading extensions).
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(decode_err("not an image file".into()));
    }
    reader.decode().map_err(|e| decode_err(e.to_string()))
}

/// Reads an image as 8-bit RGB (16-bit scaled, grey replicated, alpha dropped).
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    Ok(decode(path)?.to_rgb8())
}

/// Reads a vessel or FOV mask as 0/1: 1 where the (8-bit scaled) grey value is ≥ 128.
pub fn read_mask(path: &Path) -> Result<GrayImage> {
    let mut mask = decode(path)?.to_luma8();
    for v in mask.iter_mut() {
        *v = u8::from(*v >= 128);
    }
    Ok(mask)
}
