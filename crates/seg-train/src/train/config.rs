//! Training settings and the presets of the original experiments.

use std::path::PathBuf;

use deeplab::pretrained::{Hub, Pretrained};
use deeplab::{DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig};
use drive_data::{AugmentConfig, NormalizationPreset};
use serde::{Deserialize, Serialize};

use crate::device::DeviceChoice;
use crate::error::TrainError;
use crate::model::checkpoint;
use crate::model::loss::{LossConfig, TopologyLoss};
use crate::train::schedule::ScheduleKind;

/// Every training setting. [`TrainConfig::preset`] gives the original experiments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The architecture (DeepLabV3 or DeepLabV3+) and its sizes.
    pub model: DeepLabConfig,
    /// Square training/validation input size (the crop size with `crop`).
    pub imgsz: usize,
    /// Train on random `N×N` crops at the native resolution (`crops_per_image` per image and
    /// epoch); validation, overlays and `predict` then run the sliding window of `N×N` tiles over
    /// whole images. `None`: whole images resized to `imgsz` (the original experiments).
    #[serde(default)]
    pub crop: Option<usize>,
    /// Crops per training image and epoch (with `crop`).
    #[serde(default = "one")]
    pub crops_per_image: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Samples per batch (at least 2).
    pub batch_size: usize,
    /// Base learning rate of Adam.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: ScheduleKind,
    /// The training loss.
    pub loss: LossConfig,
    /// Training augmentation.
    pub augment: AugmentConfig,
    /// Input normalisation (fixed, or computed from the training images).
    pub normalization: NormalizationPreset,
    /// Initial torchvision DeepLabV3 weights: COCO by name or a `.pth` (the final 1×1 convs keep a
    /// fresh init when the class count differs); `None` trains from scratch.
    pub weights: Option<Weights>,
    /// Initial ImageNet ResNet weights for the backbone only (exclusive with `weights`).
    pub backbone_weights: Option<Weights>,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Data-loader worker threads (0: load on the training thread).
    pub workers: usize,
    /// Output folder: checkpoints, metrics.csv, plots, overlays, train.log.
    pub out: PathBuf,
    /// Seconds between two writes of `checkpoints/last` (model and optimizer state, ~0.5 GB for
    /// a ResNet-50): it is written after the first epoch, the last one, an interrupted one, and
    /// otherwise after the first epoch that ends this long after the previous write. `best-iou`
    /// and `best-loss` are kept in memory when they improve and written with it. 0: after every
    /// epoch. A killed run resumes from the last write, so it loses at most this much training.
    #[serde(default = "default_checkpoint_every_s")]
    pub checkpoint_every_s: u64,
    /// Where to train (not recorded: a checkpoint trains anywhere).
    #[serde(skip)]
    pub device: DeviceChoice,
    /// Continue from `<out>/checkpoints/last` (model, optimizer, learning-rate schedule) at the
    /// next epoch. The checkpoint's settings win, except `epochs`, `workers`,
    /// `checkpoint_every_s`, `device`, `out`.
    #[serde(skip)]
    pub resume: bool,
    /// With `resume`: a new base learning rate for the rest of the run (logged). `None` continues
    /// the checkpoint's schedule exactly; `lr` is then ignored.
    #[serde(skip)]
    pub resume_lr: Option<f64>,
}

fn one() -> usize {
    1
}

/// [`TrainConfig::checkpoint_every_s`]'s default: a minute.
pub const DEFAULT_CHECKPOINT_EVERY_S: u64 = 60;

fn default_checkpoint_every_s() -> u64 {
    DEFAULT_CHECKPOINT_EVERY_S
}

/// Where initial weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// torchvision's COCO DeepLabV3 checkpoint for the model's ResNet depth, from the torch hub
    /// cache or downloaded into it ([`deeplab::pretrained`]).
    Coco,
    /// torchvision's ImageNet ResNet for the model's depth (backbone weights).
    Imagenet,
    /// A checkpoint file (`.pth` or safetensors with torchvision's keys).
    File(PathBuf),
}

impl Weights {
    /// The checkpoint file, fetched into the torch hub cache for a named one. For DeepLabV3+,
    /// `Coco` is torchvision's COCO DeepLabV3, whose backbone fills the encoder.
    pub fn resolve(&self, model: &DeepLabConfig) -> Result<PathBuf, TrainError> {
        let depth = model.resnet_depth();
        let named = match self {
            Weights::File(path) => return Ok(path.clone()),
            Weights::Coco => depth.and_then(Pretrained::coco),
            Weights::Imagenet => depth.and_then(Pretrained::imagenet),
        };
        let named = named.ok_or_else(|| {
            TrainError::Config(format!(
                "torchvision publishes {self:?} weights for ResNet-50 and ResNet-101 only; this \
                 model has blocks {:?}",
                model.backbone().blocks
            ))
        })?;
        Ok(Hub::from_env()?.fetch(named.file_name())?)
    }
}

/// The original experiments (and one more): architecture and image size; and `Quick`, a short
/// from-scratch run for a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `quick`: DeepLabV3+ from scratch on crops, for a CPU.
    Quick,
    /// `r50-512`: DeepLabV3-ResNet50 at 512×512.
    R50_512,
    /// `r50-768`: DeepLabV3-ResNet50 at 768×768.
    R50_768,
    /// `r101-512`: DeepLabV3-ResNet101 at 512×512.
    R101_512,
    /// `r101-640`: DeepLabV3-ResNet101 at 640×640.
    R101_640,
    /// `r101-768`: DeepLabV3-ResNet101 at 768×768.
    R101_768,
}

impl Preset {
    /// Every preset, in the CLI's order.
    pub const ALL: [Preset; 6] = [
        Self::Quick,
        Self::R50_512,
        Self::R50_768,
        Self::R101_512,
        Self::R101_640,
        Self::R101_768,
    ];

    /// What the preset trains, in one line (the CLI's help).
    pub fn description(self) -> &'static str {
        match self {
            Self::Quick => {
                "a short from-scratch run for a CPU: DeepLabV3+ ResNet-50 on 64×64 crops at \
                 native resolution, batch 6"
            }
            Self::R50_512 => "DeepLabV3-ResNet50 at 512×512 (the original experiment)",
            Self::R50_768 => "DeepLabV3-ResNet50 at 768×768",
            Self::R101_512 => "DeepLabV3-ResNet101 at 512×512",
            Self::R101_640 => "DeepLabV3-ResNet101 at 640×640",
            Self::R101_768 => "DeepLabV3-ResNet101 at 768×768",
        }
    }

    /// The preset's name, as the CLI spells it (`r50-512`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::R50_512 => "r50-512",
            Self::R50_768 => "r50-768",
            Self::R101_512 => "r101-512",
            Self::R101_640 => "r101-640",
            Self::R101_768 => "r101-768",
        }
    }
}

impl TrainConfig {
    /// The original recipe for a preset: DeepLabV3 R50/R101 (2 classes, aux head) from torchvision's
    /// COCO weights, Adam lr 1e-4,
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
                    Preset::ALL.map(Preset::name).join(", ")
                ))
            })?;
        Ok(Self::from_preset(preset))
    }

    /// See [`TrainConfig::preset`].
    pub fn from_preset(preset: Preset) -> Self {
        let (model, imgsz) = match preset {
            Preset::Quick => return Self::quick(),
            Preset::R50_512 => (DeepLabV3Config::deeplabv3_resnet50(2), 512),
            Preset::R50_768 => (DeepLabV3Config::deeplabv3_resnet50(2), 768),
            Preset::R101_512 => (DeepLabV3Config::deeplabv3_resnet101(2), 512),
            Preset::R101_640 => (DeepLabV3Config::deeplabv3_resnet101(2), 640),
            Preset::R101_768 => (DeepLabV3Config::deeplabv3_resnet101(2), 768),
        };
        Self {
            model: model.into(),
            imgsz,
            crop: None,
            crops_per_image: 1,
            epochs: 100,
            batch_size: 2,
            lr: 1e-4,
            schedule: ScheduleKind::tutorial_multistep(),
            loss: LossConfig::default(),
            augment: AugmentConfig::recipe(),
            normalization: NormalizationPreset::Imagenet,
            weights: Some(Weights::Coco),
            backbone_weights: None,
            seed: 42,
            workers: 2,
            out: PathBuf::from("runs/train"),
            checkpoint_every_s: DEFAULT_CHECKPOINT_EVERY_S,
            device: DeviceChoice::Auto,
            resume: false,
            resume_lr: None,
        }
    }

    /// The `quick` recipe: DeepLabV3+-ResNet50 (segmentation_models_pytorch's, output stride 16)
    /// from scratch on random 64 × 64 crops at native resolution (32 per image and epoch) in
    /// batches of 6, Adam 1e-3 with the poly schedule, cross-entropy with class weights 1/8
    /// (background/vessel) + Dice, 19 epochs, normalisation computed from the training images;
    /// validation and prediction by sliding windows over whole images. DeepLabV3+ rather than the
    /// seed presets' DeepLabV3: its decoder predicts at 1/4 of the input instead of 1/8, which
    /// thin vessels need, and it trains twice as fast on a CPU (see the README's "DeepLabV3+"
    /// comparison). Batches of 6 rather than the seed presets' 2: the ASPP image-pooling
    /// BatchNorm normalises over the batch alone (one value per image and channel), and with 2
    /// images its training-mode output is ±1, far from what the running statistics give at
    /// validation. Chosen by experiment on a CPU (see the README's "quick preset" table).
    pub fn quick() -> Self {
        let base = Self::from_preset(Preset::R50_512);
        Self {
            model: DeepLabV3PlusConfig::deeplabv3plus_resnet50(2).into(),
            imgsz: 64,
            crop: Some(64),
            crops_per_image: 32,
            batch_size: 6,
            epochs: 19,
            lr: 1e-3,
            schedule: ScheduleKind::poly(),
            loss: LossConfig {
                dice_weight: 1.0,
                class_weights: Some([1.0, 8.0]),
                ..LossConfig::default()
            },
            normalization: NormalizationPreset::Computed,
            weights: None,
            ..base
        }
    }

    /// Checks the settings that do not depend on the data (batch size, sizes, learning rate,
    /// loss weights, class count); [`crate::train()`](crate::train::train) runs it first.
    pub fn validate(&self) -> Result<(), TrainError> {
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
        let multiple = self.model.input_multiple();
        if self.imgsz % multiple != 0 {
            return bad(format!(
                "imgsz {} is not a multiple of {multiple}: {} takes input sides that are \
                 multiples of its output stride",
                self.imgsz,
                self.model.describe()
            ));
        }
        if let Some(crop) = self.crop {
            let step = multiple.max(8);
            if crop < 32 || crop % step != 0 {
                return bad(format!(
                    "crop {crop} must be a multiple of {step}, at least 32 (for {})",
                    self.model.describe()
                ));
            }
            if self.crops_per_image == 0 {
                return bad("crops per image must be at least 1".into());
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!(
                "learning rate {} must be positive and finite",
                self.lr
            ));
        }
        let weight_ok = |w: f64| w.is_finite() && w >= 0.0;
        if !weight_ok(self.loss.aux_weight) || !weight_ok(self.loss.dice_weight) {
            return bad(format!(
                "loss weights must be finite and at least 0 (aux {}, Dice {})",
                self.loss.aux_weight, self.loss.dice_weight
            ));
        }
        if self.loss.topology == TopologyLoss::ClDice && self.loss.dice_weight == 0.0 {
            return bad(
                "the clDice loss replaces the Dice term by (1 − α)·Dice + α·clDice, and the Dice \
                 weight is 0: give a Dice weight above 0 (--dice-weight 1)"
                    .into(),
            );
        }
        let alpha = self.loss.cldice_alpha;
        if !(alpha.is_finite() && (0.0..=1.0).contains(&alpha)) {
            return bad(format!("clDice's α {alpha} must be from 0 to 1"));
        }
        if !weight_ok(self.loss.skeleton_recall_weight) {
            return bad(format!(
                "the Skeleton Recall weight {} must be finite and at least 0",
                self.loss.skeleton_recall_weight
            ));
        }
        if let Some([bg, vessel]) = self.loss.class_weights {
            if !(weight_ok(bg as f64) && weight_ok(vessel as f64) && bg + vessel > 0.0) {
                return bad(format!(
                    "class weights {bg},{vessel} must be finite, at least 0 and not both 0"
                ));
            }
        }
        if self.model.num_classes() != 2 {
            return bad("vessel segmentation trains 2 classes (background, vessel)".into());
        }
        Ok(())
    }
}

/// The settings a `--resume` of `requested` runs with: the checkpoint's (`<out>/checkpoints/last`,
/// its learning-rate schedule included), except the run length (`epochs`), the loader threads,
/// the checkpoint interval, the device and the output folder, which `requested` gives, and a new base learning rate when
/// `requested.resume_lr` is set. Also returns the checkpoint's folder.
pub fn resumed(requested: &TrainConfig) -> Result<(TrainConfig, PathBuf), TrainError> {
    let root = checkpoint::checkpoints_dir(&requested.out);
    let dir =
        checkpoint::resolve(&root, checkpoint::LAST).ok_or_else(|| TrainError::Checkpoint {
            path: root.join(checkpoint::LAST),
            reason: "nothing to resume (no completed epoch in this --out folder)".into(),
        })?;
    let meta = checkpoint::read_meta(&dir)?;
    let saved: TrainConfig =
        serde_json::from_value(meta.settings.clone()).map_err(|e| TrainError::Checkpoint {
            path: dir.clone(),
            reason: format!("unreadable settings: {e}"),
        })?;
    let config = TrainConfig {
        epochs: requested.epochs,
        lr: requested.resume_lr.unwrap_or(saved.lr),
        out: requested.out.clone(),
        device: requested.device,
        resume: true,
        resume_lr: requested.resume_lr,
        workers: requested.workers,
        checkpoint_every_s: requested.checkpoint_every_s,
        ..saved
    };
    Ok((config, dir))
}
