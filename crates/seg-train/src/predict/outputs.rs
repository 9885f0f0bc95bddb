//! What `predict` writes for one image: the file names (`<stem>_mask.png`, `<stem>_prob.png`,
//! `<stem>_overlay.png`), the three images from a probability map, and their atomic writing.

use std::path::{Path, PathBuf};

use drive_data::Sample;
use image::{GrayImage, RgbImage};

use crate::error::TrainError;
use crate::predict::overlay::overlay;

/// The files written for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionFiles {
    /// The image read.
    pub input: PathBuf,
    /// `<stem>_mask.png`: 255 where vessel.
    pub mask: PathBuf,
    /// `<stem>_prob.png`: the vessel probability.
    pub probability: PathBuf,
    /// `<stem>_overlay.png`: the mask over the fundus.
    pub overlay: PathBuf,
}

impl PredictionFiles {
    /// The three outputs, mask first.
    pub fn outputs(&self) -> [&Path; 3] {
        [&self.mask, &self.probability, &self.overlay]
    }

    /// Whether all three outputs exist. Each is written under a temporary name and renamed when
    /// complete, so an existing output is a whole one; an input with some missing was stopped
    /// while being written and is predicted again.
    pub fn complete(&self) -> bool {
        self.outputs().iter().all(|p| p.is_file())
    }
}

/// Output file names for an input: `<stem>_mask.png`, `<stem>_prob.png`, `<stem>_overlay.png`
/// in `out_dir`.
pub fn output_paths(input: &Path, out_dir: &Path) -> PredictionFiles {
    let name = input.file_name().map(PathBuf::from).unwrap_or_default();
    output_paths_for(input, &name, out_dir)
}

/// Output file names for an input read from `path`, at `relative` below `out_dir`
/// (`out_dir/<relative folder>/<stem>_mask.png`, …).
pub fn output_paths_for(path: &Path, relative: &Path, out_dir: &Path) -> PredictionFiles {
    let stem = relative
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into());
    let dir = match relative.parent() {
        Some(parent) => out_dir.join(parent),
        None => out_dir.to_path_buf(),
    };
    PredictionFiles {
        input: path.to_path_buf(),
        mask: dir.join(format!("{stem}_mask.png")),
        probability: dir.join(format!("{stem}_prob.png")),
        overlay: dir.join(format!("{stem}_overlay.png")),
    }
}

/// The three output images of one prediction.
pub struct PredictionImages {
    /// 0 / 255.
    pub mask: GrayImage,
    /// The vessel probability × 255.
    pub probability: GrayImage,
    /// The mask over the fundus.
    pub overlay: RgbImage,
}

/// The output images of `sample` from its vessel probability; outside the sample's FOV
/// everything is background.
pub fn prediction_images(sample: &Sample, prob: &[f32], threshold: f32) -> PredictionImages {
    let (w, h) = sample.image.dimensions();
    let inside = sample.fov.as_raw();
    let prob_u8: Vec<u8> = prob
        .iter()
        .zip(inside)
        .map(|(&p, &f)| {
            if f == 0 {
                0
            } else {
                (p.clamp(0.0, 1.0) * 255.0).round() as u8
            }
        })
        .collect();
    let mask: Vec<u8> = prob
        .iter()
        .zip(inside)
        .map(|(&p, &f)| u8::from(f != 0 && p >= threshold))
        .collect();
    let mask = GrayImage::from_raw(w, h, mask).expect("size");
    let overlay = overlay(&sample.image, &mask, None, Some(&sample.fov));
    let mut binary = mask;
    binary.iter_mut().for_each(|v| *v *= 255);
    PredictionImages {
        mask: binary,
        probability: GrayImage::from_raw(w, h, prob_u8).expect("size"),
        overlay,
    }
}

/// Writes the images to `files`, each under a temporary name in its folder, renamed when
/// complete (a reader, or a rerun after a kill, never sees a partial PNG). The mask is renamed
/// last.
pub fn write_prediction(
    images: &PredictionImages,
    files: &PredictionFiles,
) -> Result<(), TrainError> {
    let fail = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = files.mask.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e.to_string()))?;
    }
    let save = |path: &Path, write: &dyn Fn(&Path) -> image::ImageResult<()>| {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let partial = path.with_file_name(format!(".{}.partial", name.unwrap_or_default()));
        write(&partial).map_err(|e| fail(&partial, e.to_string()))?;
        std::fs::rename(&partial, path).map_err(|e| fail(path, e.to_string()))
    };
    let png = image::ImageFormat::Png;
    save(&files.probability, &|p| {
        images.probability.save_with_format(p, png)
    })?;
    save(&files.overlay, &|p| images.overlay.save_with_format(p, png))?;
    save(&files.mask, &|p| images.mask.save_with_format(p, png))
}
