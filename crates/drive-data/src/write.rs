//! Writing datasets in either layout with the real DRIVE formats: the DRIVE layout gets LZW TIFF
//! images and GIF masks named like the archive (`21_training.tif`, `21_manual1.gif`,
//! `21_training_mask.gif`); the Kaggle layout gets PNG images and masks under the same base names.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat, RgbImage};
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::layout::{Layout, Split};
use crate::synth::{generate, SynthConfig, SynthRetina};

/// How many images of each split a synthetic set of `count` images has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitCounts {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub valid: usize,
    /// Test images.
    pub test: usize,
}

impl SplitCounts {
    /// Kaggle: 20% validation and 20% test (at least one each). DRIVE: half training (the
    /// validation split is held out of it when loading), half test.
    pub fn for_layout(layout: Layout, count: usize) -> Self {
        match layout {
            Layout::Kaggle => {
                let valid = ((count as f64 * 0.2).round() as usize).max(1);
                let test = ((count as f64 * 0.2).round() as usize).max(1);
                Self {
                    train: count.saturating_sub(valid + test),
                    valid,
                    test,
                }
            }
            Layout::Drive => Self {
                train: count.div_ceil(2),
                valid: 0,
                test: count / 2,
            },
        }
    }
}

/// One image to write: where, and which generated retina.
struct Job {
    split: Split,
    id: u32,
    seed: u64,
}

/// The generator seed of image `id` in a set written with `seed`.
pub fn synth_seed(seed: u64, id: u32) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(id as u64)
}

/// Writes `count` synthetic retinas under `out` in `layout`. Ids follow DRIVE: test images are
/// 1, 2, …, training images start at 21 (or after the test ids when there are more than 20), and
/// the Kaggle split's validation images follow the training images.
pub fn write_synthetic(
    out: &Path,
    layout: Layout,
    count: usize,
    seed: u64,
    config: &SynthConfig,
) -> Result<SplitCounts> {
    let counts = SplitCounts::for_layout(layout, count);
    if counts.train == 0 {
        return Err(DataError::Invalid {
            path: out.to_path_buf(),
            reason: format!("{count} images are too few for a {layout} split; use at least 3"),
        });
    }
    let mut jobs = Vec::new();
    let mut id = 0u32;
    for (split, n) in [
        (Split::Test, counts.test),
        (Split::Train, counts.train),
        (Split::Valid, counts.valid),
    ] {
        if split == Split::Train {
            id = id.max(20);
        }
        for _ in 0..n {
            id += 1;
            jobs.push(Job {
                split,
                id,
                seed: synth_seed(seed, id),
            });
        }
    }
    jobs.par_iter().try_for_each(|job| {
        let retina = generate(config, job.seed);
        write_one(out, layout, job.split, job.id, &retina)
    })?;
    Ok(counts)
}

/// Paths of one image's files: (image, vessel mask, FOV mask).
pub fn file_paths(
    out: &Path,
    layout: Layout,
    split: Split,
    id: u32,
) -> (PathBuf, PathBuf, PathBuf) {
    let kind = if split == Split::Test {
        "test"
    } else {
        "training"
    };
    let base = format!("{id:02}_{kind}");
    let manual = format!("{id:02}_manual1");
    match layout {
        Layout::Drive => {
            let dir = out.join(kind);
            (
                dir.join("images").join(format!("{base}.tif")),
                dir.join("1st_manual").join(format!("{manual}.gif")),
                dir.join("mask").join(format!("{base}_mask.gif")),
            )
        }
        Layout::Kaggle => (
            out.join(format!("{split}_images"))
                .join(format!("{base}.png")),
            out.join(format!("{split}_masks"))
                .join(format!("{manual}.png")),
            out.join(format!("{split}_fov"))
                .join(format!("{base}_mask.png")),
        ),
    }
}

fn write_one(
    out: &Path,
    layout: Layout,
    split: Split,
    id: u32,
    retina: &SynthRetina,
) -> Result<()> {
    let (image, vessels, fov) = file_paths(out, layout, split, id);
    match layout {
        Layout::Drive => {
            write_tiff_lzw(&image, &retina.image)?;
            write_mask(&vessels, &retina.vessels, ImageFormat::Gif)?;
            write_mask(&fov, &retina.fov, ImageFormat::Gif)?;
        }
        Layout::Kaggle => {
            create_parent(&image)?;
            retina
                .image
                .save_with_format(&image, ImageFormat::Png)
                .map_err(|e| write_err(&image, e))?;
            write_mask(&vessels, &retina.vessels, ImageFormat::Png)?;
            // The Kaggle split has no FOV masks: they are derived from the images when loading.
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    let dir = path.parent().expect("file paths have a parent");
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        reason: format!("cannot write: {e}"),
    }
}

/// 0/1 mask → 0/255 file.
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
