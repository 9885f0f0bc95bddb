//! Per-channel normalisation `(x/255 − mean) / std`, serialisable so a checkpoint records what its
//! model was trained with.

use serde::{Deserialize, Serialize};

use crate::sample::Sample;

/// Channel means and standard deviations on the `[0, 1]` scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Per-channel mean (RGB, in [0, 1] units).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB, in [0, 1] units).
    pub std: [f32; 3],
}

impl Normalization {
    /// The original tutorial's DRIVE statistics.
    pub const DRIVE: Self = Self {
        mean: [0.457_347_06, 0.433_382_75, 0.400_581_18],
        std: [0.239_652_94, 0.235_322_75, 0.239_849_8],
    };

    /// ImageNet statistics, what torchvision's pretrained weights expect.
    pub const IMAGENET: Self = Self {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Statistics of the given images over all their pixels.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut sum = [0f64; 3];
        let mut sq = [0f64; 3];
        let mut n = 0f64;
        for s in samples {
            for p in s.image.pixels() {
                for c in 0..3 {
                    let v = p.0[c] as f64 / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
            n += (s.image.width() * s.image.height()) as f64;
        }
        let n = n.max(1.0);
        let mean = sum.map(|s| s / n);
        let std: [f64; 3] =
            std::array::from_fn(|c| (sq[c] / n - mean[c] * mean[c]).max(1e-12).sqrt());
        Self {
            mean: mean.map(|m| m as f32),
            std: std.map(|s| s as f32),
        }
    }

    /// Look-up table mapping an 8-bit value of channel `c` to its normalised value.
    pub fn lut(&self, c: usize) -> [f32; 256] {
        std::array::from_fn(|v| (v as f32 / 255.0 - self.mean[c]) / self.std[c])
    }
}

/// Named normalisations, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalizationPreset {
    /// [`Normalization::DRIVE`].
    Drive,
    /// [`Normalization::IMAGENET`].
    Imagenet,
    /// Computed from the training images ([`Normalization::from_samples`]).
    Computed,
}

impl std::str::FromStr for NormalizationPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drive" => Ok(Self::Drive),
            "imagenet" => Ok(Self::Imagenet),
            "computed" => Ok(Self::Computed),
            other => Err(format!(
                "unknown normalisation `{other}` (drive, imagenet or computed)"
            )),
        }
    }
}

impl NormalizationPreset {
    /// Resolves the preset; `Computed` uses `train`.
    pub fn resolve(self, train: &[Sample]) -> Normalization {
        match self {
            Self::Drive => Normalization::DRIVE,
            Self::Imagenet => Normalization::IMAGENET,
            Self::Computed => Normalization::from_samples(train),
        }
    }
}
