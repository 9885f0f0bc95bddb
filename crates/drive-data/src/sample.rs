//! Decoded samples kept in memory (DRIVE is 40 images: each file is decoded once).

use std::path::PathBuf;

use image::{GrayImage, RgbImage};
use rayon::prelude::*;

use crate::decode::{read_mask, read_rgb};
use crate::error::{DataError, Result};
use crate::fov::derive_fov;
use crate::layout::{DatasetDir, Entry, Split};

/// One fundus image with its ground truth, at its original resolution.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The DRIVE id from the file name.
    pub id: u32,
    /// The image file it was read from.
    pub image_path: PathBuf,
    /// The fundus image.
    pub image: RgbImage,
    /// Vessel ground truth, 0/1; `None` for unlabelled test images.
    pub vessels: Option<GrayImage>,
    /// Field of view, 0/1.
    pub fov: GrayImage,
    /// True when the FOV was derived from the image (no FOV file).
    pub fov_derived: bool,
}

impl Sample {
    /// Width and height.
    pub fn size(&self) -> [u32; 2] {
        [self.image.width(), self.image.height()]
    }

    /// Decodes one entry, checking that the masks have the image's size.
    pub fn load(entry: &Entry) -> Result<Self> {
        let image = read_rgb(&entry.image)?;
        let size = [image.width(), image.height()];
        let checked = |path: &PathBuf| -> Result<GrayImage> {
            let mask = read_mask(path)?;
            let mask_size = [mask.width(), mask.height()];
            if mask_size != size {
                return Err(DataError::SizeMismatch {
                    image: entry.image.clone(),
                    image_size: size,
                    mask: path.clone(),
                    mask_size,
                });
            }
            Ok(mask)
        };
        let vessels = entry.vessels.as_ref().map(checked).transpose()?;
        let (fov, fov_derived) = match &entry.fov {
            Some(path) => (checked(path)?, false),
            None => (derive_fov(&image), true),
        };
        Ok(Self {
            id: entry.id,
            image_path: entry.image.clone(),
            image,
            vessels,
            fov,
            fov_derived,
        })
    }

    /// Decodes entries in parallel; the first failing file in the order of `entries` (id order
    /// for a listed split) is the error, whichever thread finished first.
    pub fn load_all(entries: &[Entry]) -> Result<Vec<Self>> {
        let decoded: Vec<Result<Self>> = entries.par_iter().map(Self::load).collect();
        decoded.into_iter().collect()
    }
}

impl DatasetDir {
    /// Lists and decodes a split.
    pub fn load(&self, split: Split) -> Result<Vec<Sample>> {
        Sample::load_all(&self.entries(split)?)
    }
}
