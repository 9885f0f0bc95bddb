//! Reading fundus images and masks from disk: tif (incl. LZW), gif, png, jpg/jpeg, bmp, ppm/pgm
//! (STARE), each also gzipped (`im0001.ppm.gz`, as STARE's download has them); 8- or 16-bit;
//! grey, RGB or RGBA. Images become 8-bit RGB, masks 0/1 binarised at 128 (of 255).

use std::io::{Cursor, Read};
use std::path::Path;

use image::{GrayImage, ImageReader, RgbImage};

use crate::error::{DataError, Result};

/// File extensions read as images (lower case, any case on disk), each also with `.gz` after it.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "tif", "tiff", "gif", "png", "jpg", "jpeg", "bmp", "ppm", "pgm",
];

/// Hidden and system files that are never data (`.DS_Store`, `Thumbs.db`, `desktop.ini`, `._*`).
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.eq_ignore_ascii_case("Thumbs.db")
        || name.eq_ignore_ascii_case("desktop.ini")
}

/// Whether the file is gzipped (its name ends in `.gz`, any case).
fn is_gzipped(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case("gz"))
}

/// The image extension of `path`, lower case, looking through a final `.gz`
/// (`im0001.ppm.gz` → `ppm`).
fn image_extension(path: &Path) -> String {
    let inner = if is_gzipped(path) {
        path.file_stem().map(Path::new)
    } else {
        Some(path)
    };
    inner
        .and_then(Path::extension)
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// The file name without its image extension (and `.gz`): `im0001.ppm.gz` → `im0001`,
/// `21_training.tif` → `21_training`. What outputs written for an image are named after.
pub fn image_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for _ in 0..2 {
        if let Some((head, ext)) = stem.rsplit_once('.') {
            let ext = ext.to_ascii_lowercase();
            if !head.is_empty() && (ext == "gz" || IMAGE_EXTENSIONS.contains(&ext.as_str())) {
                stem = head;
                if ext != "gz" {
                    break;
                }
            }
        }
    }
    stem.to_string()
}

/// Checks that `path` has a supported image extension (optionally followed by `.gz`).
pub fn check_extension(path: &Path) -> Result<()> {
    let ext = image_extension(path);
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
    let bytes = if is_gzipped(path) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut plain)
            .map_err(|e| decode_err(format!("named .gz but not a whole gzip file: {e}")))?;
        plain
    } else {
        bytes
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_extensions_look_through_gz() {
        assert_eq!(image_stem(Path::new("a/im0001.ppm.gz")), "im0001");
        assert_eq!(image_stem(Path::new("im0001.ah.ppm")), "im0001.ah");
        assert_eq!(image_stem(Path::new("01_dr.JPG")), "01_dr");
        assert_eq!(image_stem(Path::new("notes.txt")), "notes.txt");
        assert!(check_extension(Path::new("im0001.PPM.GZ")).is_ok());
        assert!(check_extension(Path::new("notes.txt.gz")).is_err());
    }

    #[test]
    fn masks_stored_as_zero_and_one_are_read_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        let mut mask = GrayImage::new(4, 1);
        mask.as_mut().copy_from_slice(&[0, 1, 1, 0]);
        mask.save(&path).unwrap();
        assert_eq!(read_mask(&path).unwrap().as_raw(), &[0, 1, 1, 0]);
        mask.as_mut().copy_from_slice(&[0, 255, 127, 128]);
        mask.save(&path).unwrap();
        assert_eq!(read_mask(&path).unwrap().as_raw(), &[0, 1, 0, 1]);
        // 16-bit: 0/1 values, and 0/65535.
        let mut wide = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::new(4, 1);
        wide.as_mut().copy_from_slice(&[0, 1, 1, 0]);
        wide.save(&path).unwrap();
        assert_eq!(read_mask(&path).unwrap().as_raw(), &[0, 1, 1, 0]);
        wide.as_mut().copy_from_slice(&[0, 65535, 0, 40000]);
        wide.save(&path).unwrap();
        assert_eq!(read_mask(&path).unwrap().as_raw(), &[0, 1, 0, 1]);
    }
}

/// Reads an image as 8-bit RGB (16-bit scaled, grey replicated, alpha dropped).
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    Ok(decode(path)?.to_rgb8())
}

/// Reads a vessel or FOV mask as 0/1: 1 where the (8-bit scaled) grey value is ≥ 128 — or,
/// for a mask stored as 0/1 values (some repackaged datasets), where it is 1.
pub fn read_mask(path: &Path) -> Result<GrayImage> {
    let image = decode(path)?;
    // 0/1 values are looked for in the file's own bit depth (a 16-bit 1 scales to 8-bit 0).
    if image.color().bytes_per_pixel() / image.color().channel_count() == 2 {
        let wide = image.to_luma16();
        if wide.iter().all(|&v| v <= 1) {
            let data = wide.iter().map(|&v| v as u8).collect();
            let (w, h) = wide.dimensions();
            return Ok(GrayImage::from_raw(w, h, data).expect("buffer size matches"));
        }
    }
    let mut mask = image.to_luma8();
    let threshold = if mask.iter().all(|&v| v <= 1) { 1 } else { 128 };
    for v in mask.iter_mut() {
        *v = u8::from(*v >= threshold);
    }
    Ok(mask)
}
