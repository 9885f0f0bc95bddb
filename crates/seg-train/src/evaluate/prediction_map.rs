//! A prediction as `evaluate` scores it: a probability map of 8-bit or 16-bit levels (what
//! `predict` writes as `<stem>_prob.png`), a binary mask (`<stem>_mask.png`, or any map holding
//! only the lowest and highest level), or float probabilities held in memory (`evaluate
//! --checkpoint`, training's validation report).

use std::path::Path;

use image::DynamicImage;

use crate::error::TrainError;
use crate::evaluate::roc::threshold_level;

/// One image's prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum PredictionMap {
    /// Probability levels `0..=max_level` (255 or 65 535), row-major.
    Levels {
        /// The largest level.
        max_level: u32,
        /// One level per pixel.
        levels: Vec<u16>,
    },
    /// Vessel (non-zero) or background per pixel.
    Binary(Vec<u8>),
    /// Float probabilities per pixel.
    Float(Vec<f32>),
}

impl PredictionMap {
    /// Reads a prediction file: 8- or 16-bit grey (colour images are converted); a file named
    /// `*_mask` is a binary mask, one named `*_prob` a probability map, any other a probability
    /// map unless it holds only its depth's lowest and highest levels. Returns it with
    /// `[width, height]`.
    pub fn read(path: &Path) -> Result<(Self, [u32; 2]), TrainError> {
        let bad = |reason: String| TrainError::Output {
            path: path.to_path_buf(),
            reason,
        };
        let image = image::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let size = [image.width(), image.height()];
        let (max_level, levels): (u32, Vec<u16>) = match image {
            DynamicImage::ImageLuma16(map) => (65_535, map.into_raw()),
            other => (255, other.to_luma8().iter().map(|&v| v as u16).collect()),
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let top = max_level as u16;
        let binary = stem.ends_with("_mask")
            || (!stem.ends_with("_prob") && levels.iter().all(|&v| v == 0 || v == top));
        let map = if binary {
            PredictionMap::Binary(levels.iter().map(|&v| u8::from(v != 0)).collect())
        } else {
            PredictionMap::Levels { max_level, levels }
        };
        Ok((map, size))
    }

    /// Whether it holds probabilities (levels or floats), so that threshold-free scores apply.
    pub fn is_probability(&self) -> bool {
        !matches!(self, PredictionMap::Binary(_))
    }

    /// Vessel (1) or background (0) per pixel at the probability `threshold`: a level map's
    /// pixel is vessel when its level is at least [`threshold_level`], a float one when its
    /// probability is at least the threshold, a mask's when it is non-zero.
    pub fn binary(&self, threshold: f64) -> Vec<u8> {
        match self {
            PredictionMap::Levels { max_level, levels } => {
                let t = threshold_level(threshold, *max_level) as u16;
                levels.iter().map(|&v| u8::from(v >= t)).collect()
            }
            PredictionMap::Binary(mask) => mask.clone(),
            PredictionMap::Float(prob) => prob
                .iter()
                .map(|&p| u8::from(p >= threshold as f32))
                .collect(),
        }
    }
}
