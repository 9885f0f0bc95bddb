//! Encoders for the file formats the datasets ship in: LZW TIFF (DRIVE, HRF), GIF and PNG masks,
//! JPEG (CHASE_DB1, HRF), gzipped PPM (STARE).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use image::{GrayImage, ImageFormat, RgbImage};

use crate::error::{DataError, Result};

pub(crate) fn create_parent(path: &Path) -> Result<()> {
    let dir = path.parent().expect("file paths have a parent");
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))
}

pub(crate) fn write_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        reason: format!("cannot write: {e}"),
    }
}

/// 0/1 mask → 0/255 file (GIF, PNG, TIFF, …; `.ppm.gz` names are written gzipped).
pub fn write_mask(path: &Path, mask: &GrayImage, format: ImageFormat) -> Result<()> {
    create_parent(path)?;
    let mut scaled = mask.clone();
    scaled
        .iter_mut()
        .for_each(|v| *v = if *v > 0 { 255 } else { 0 });
    let result = match format {
        // The GIF encoder takes RGB(A) frames and builds a palette (two colours here).
        ImageFormat::Gif => image::DynamicImage::ImageLuma8(scaled)
            .to_rgba8()
            .save_with_format(path, format),
        // STARE's labels are (gzipped) colour PPMs.
        ImageFormat::Pnm => {
            return write_ppm_gz(path, &image::DynamicImage::ImageLuma8(scaled).to_rgb8())
        }
        _ => scaled.save_with_format(path, format),
    };
    result.map_err(|e| write_err(path, e))
}

/// RGB image as an LZW-compressed TIFF (as in the DRIVE archive).
pub fn write_tiff_lzw(path: &Path, image: &RgbImage) -> Result<()> {
    use tiff::encoder::{colortype, Compression, TiffEncoder};
    create_parent(path)?;
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut encoder = TiffEncoder::new(BufWriter::new(file))
        .map_err(|e| write_err(path, e))?
        .with_compression(Compression::Lzw);
    encoder
        .write_image::<colortype::RGB8>(image.width(), image.height(), image.as_raw())
        .map_err(|e| write_err(path, e))
}

/// RGB image as a binary PPM, gzipped (STARE's `im0001.ppm.gz`).
pub fn write_ppm_gz(path: &Path, image: &RgbImage) -> Result<()> {
    create_parent(path)?;
    let mut ppm = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut ppm), ImageFormat::Pnm)
        .map_err(|e| write_err(path, e))?;
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    gz.write_all(&ppm).map_err(|e| DataError::io(path, e))?;
    gz.finish()
        .and_then(|mut w| w.flush())
        .map_err(|e| DataError::io(path, e))
}

/// RGB image as a JPEG of quality 95 (CHASE_DB1, HRF).
pub fn write_jpeg(path: &Path, image: &RgbImage) -> Result<()> {
    create_parent(path)?;
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut writer = BufWriter::new(file);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, 95)
        .encode_image(image)
        .map_err(|e| write_err(path, e))?;
    writer.flush().map_err(|e| DataError::io(path, e))
}

/// RGB image as a PNG (Kaggle split, FIVES).
pub fn write_png(path: &Path, image: &RgbImage) -> Result<()> {
    create_parent(path)?;
    image
        .save_with_format(path, ImageFormat::Png)
        .map_err(|e| write_err(path, e))
}
