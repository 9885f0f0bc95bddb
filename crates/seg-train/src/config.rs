//! Training settings and the presets of the original experiments.

use std::path::PathBuf;

use deeplab::DeepLabV3Config;
use drive_data::{AugmentConfig, NormalizationPreset};
use serde::{Deserialize, Serialize};

use crate::device::DeviceChoice;
use crate::error::TrainError;
use crate::loss::LossConfig;
use crate::schedule::ScheduleKind;

/// Every training setting. [`TrainConfig::preset`] gives the original experiments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: DeepLabV3Config,
    /// Square training/validation input size.
    pub imgsz: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub schedule: ScheduleKind,
    pub loss: LossConfig,
    pub augment: AugmentConfig,
    pub normalization: NormalizationPreset,
    /// torchvision DeepLabV3 `.pth` (heads re-initialised when the class count differs).
    pub weights: Option<PathBuf>,
    /// ImageNet ResNet `.pth` for the backbone only.
    pub backbone_weights: Option<PathBuf>,
    pub seed: u64,
    /// Data-loader worker threads (0: load on the training thread).
    pub workers: usize,
    /// Output folder: checkpoints, metrics.csv, plots, overlays, train.log.
    pub out: PathBuf,
    #[serde(skip)]
    pub device: DeviceChoice,
    /// Continue from `<out>/checkpoints/last` (model, optimizer, learning-rate schedule) at the
    /// next epoch. The checkpoint's settings win, except `epochs`, `workers`, `device`, `out`.
    #[serde(skip)]
    pub resume: bool,
    /// With `resume`: a new base learning rate for the rest of the run (logged). `None` continues
    /// the checkpoint's schedule exactly; `lr` is then ignored.
    #[serde(skip)]
    pub resume_lr: Option<f64>,
}

/// The original experiments (and one more): architecture and image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    R50_512,
    R50_768,
    R101_512,
    R101_640,
    R101_768,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Self::R50_512,
        Self::R50_768,
        Self::R101_512,
        Self::R101_640,
        Self::R101_768,
    ];

    /// The preset's name, as the CLI spells it (`r50-512`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::R50_512 => "r50-512",
            Self::R50_768 => "r50-768",
            Self::R101_512 => "r101-512",
            Self::R101_640 => "r101-640",
            Self::R101_768 => "r101-768",
        }
    }
}

/// The presets' names.
pub const PRESETS: [&str; 5] = ["r50-512", "r50-768", "r101-512", "r101-640", "r101-768"];

impl TrainConfig {
    /// The original recipe for a preset: DeepLabV3 R50/R101 (2 classes, aux head), Adam lr 1e-4,
    /// batch 2, 100 epochs, hflip + rotate ±50° augmentation, the tutorial's MultiStep schedule
    /// (×0.1 at epochs 25 and 50), aux weight 0.5, ImageNet normalisation (what torchvision's
    /// pretrained weights expect).
    pub fn preset(name: &str) -> Result<Self, TrainError> {
        let preset = Preset::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "unknown preset `{name}` (one of {})",
                    PRESETS.join(", ")
                ))
            })?;
        Ok(Self::from_preset(preset))
    }

    /// See [`TrainConfig::preset`].
    pub fn from_preset(preset: Preset) -> Self {
        let (model, imgsz) = match preset {
            Preset::R50_512 => (DeepLabV3Config::deeplabv3_resnet50(2), 512),
            Preset::R50_768 => (DeepLabV3Config::deeplabv3_resnet50(2), 768),
            Preset::R101_512 => (DeepLabV3Config::deeplabv3_resnet101(2), 512),
            Preset::R101_640 => (DeepLabV3Config::deeplabv3_resnet101(2), 640),
            Preset::R101_768 => (DeepLabV3Config::deeplabv3_resnet101(2), 768),
        };
        Self {
            model,
            imgsz,
            epochs: 100,
            batch_size: 2,
            lr: 1e-4,
            schedule: ScheduleKind::tutorial_multistep(),
            loss: LossConfig::default(),
            augment: AugmentConfig::recipe(),
            normalization: NormalizationPreset::Imagenet,
            weights: None,
            backbone_weights: None,
            seed: 42,
            workers: 2,
            out: PathBuf::from("runs/train"),
            device: DeviceChoice::Auto,
            resume: false,
            resume_lr: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.batch_size < 2 {
            return bad(format!(
                "batch size {} < 2: BatchNorm in the ASPP pooling branch needs at least 2 images \
                 per batch in training",
                self.batch_size
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.imgsz < 32 {
            return bad(format!("imgsz {} is too small (at least 32)", self.imgsz));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!(
                "learning rate {} must be positive and finite",
                self.lr
            ));
        }
        if self.model.num_classes != 2 {
            return bad("vessel segmentation trains 2 classes (background, vessel)".into());
        }
        Ok(())
    }
}
