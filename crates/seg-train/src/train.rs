//! Training configuration, the original experiments' presets, and the entry point [`train`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::data::dataloader::DataLoaderBuilder;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::LossMetric;
use burn::train::{FileApplicationLoggerInstaller, Learner, SupervisedTraining, TrainingStrategy};
use deeplab::{DeepLabV3, DeepLabV3Config};
use drive_data::{
    AugmentConfig, DriveDataset, Normalization, NormalizationPreset, Sample, SegBatcher, Transform,
};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, CheckpointMeta};
use crate::device::{dispatch, BackendJob, DeviceChoice};
use crate::error::TrainError;
use crate::history::{self, EpochRow};
use crate::loss::LossConfig;
use crate::model::{SegModel, VesselIouMetric};
use crate::optim::AdamConfig;
use crate::schedule::{Schedule, ScheduleKind};
use crate::strategy::{DriveStrategy, Optim, Outcome, ResumeState};

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
    /// Continue from `<out>/checkpoints/last` (model, optimizer, scheduler) at the next epoch.
    #[serde(skip)]
    pub resume: bool,
}

/// The original experiments (and one more): architecture and image size.
pub const PRESETS: [&str; 5] = ["r50-512", "r50-768", "r101-512", "r101-640", "r101-768"];

impl TrainConfig {
    /// The original recipe for a preset: DeepLabV3 R50/R101 (2 classes, aux head), Adam lr 1e-4,
    /// batch 2, 100 epochs, hflip + rotate ±50° augmentation, the tutorial's MultiStep schedule
    /// (×0.1 at epochs 25 and 50), aux weight 0.5, ImageNet normalisation (what torchvision's
    /// pretrained weights expect).
    pub fn preset(name: &str) -> Result<Self, TrainError> {
        let (model, imgsz) = match name {
            "r50-512" => (DeepLabV3Config::deeplabv3_resnet50(2), 512),
            "r50-768" => (DeepLabV3Config::deeplabv3_resnet50(2), 768),
            "r101-512" => (DeepLabV3Config::deeplabv3_resnet101(2), 512),
            "r101-640" => (DeepLabV3Config::deeplabv3_resnet101(2), 640),
            "r101-768" => (DeepLabV3Config::deeplabv3_resnet101(2), 768),
            other => {
                return Err(TrainError::Config(format!(
                    "unknown preset `{other}` (one of {})",
                    PRESETS.join(", ")
                )))
            }
        };
        Ok(Self {
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
        })
    }

    fn validate(&self) -> Result<(), TrainError> {
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

/// Decoded training and validation samples.
pub struct TrainData {
    pub train: Vec<Sample>,
    pub valid: Vec<Sample>,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub out: PathBuf,
    pub device: String,
    /// All `metrics.csv` rows, including those of earlier runs when resuming.
    pub rows: Vec<EpochRow>,
    pub best_vessel_iou: f64,
    pub best_epoch: Option<usize>,
    pub last_epoch: usize,
}

/// Trains as configured; see the crate docs for the outputs.
pub fn train(config: TrainConfig, data: TrainData) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    if data.train.len() < config.batch_size {
        return Err(TrainError::Config(format!(
            "{} training images are fewer than one batch of {}",
            data.train.len(),
            config.batch_size
        )));
    }
    if data.valid.is_empty() {
        return Err(TrainError::Config("the validation split is empty".into()));
    }
    if let Some(s) = data
        .train
        .iter()
        .chain(&data.valid)
        .find(|s| s.vessels.is_none())
    {
        return Err(TrainError::Config(format!(
            "{} has no vessel mask: training and validation need ground truth",
            s.image_path.display()
        )));
    }
    std::fs::create_dir_all(&config.out).map_err(|e| TrainError::Output {
        path: config.out.clone(),
        reason: e.to_string(),
    })?;
    let device = config.device;
    dispatch(device, TrainJob { config, data })?
}

struct TrainJob {
    config: TrainConfig,
    data: TrainData,
}

impl BackendJob for TrainJob {
    type Output = Result<TrainSummary, TrainError>;

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output {
        let TrainJob { mut config, data } = self;
        println!("training on {device_name}");
        log::info!("training on {device_name}");
        let ckpt_root = checkpoint::checkpoints_dir(&config.out);

        // Resume: settings, model, optimizer and history from `last`.
        let resume = if config.resume {
            let dir = checkpoint::resolve(&ckpt_root, checkpoint::LAST).ok_or_else(|| {
                TrainError::Checkpoint {
                    path: ckpt_root.join(checkpoint::LAST),
                    reason: "nothing to resume (no completed epoch in this --out folder)".into(),
                }
            })?;
            let meta = checkpoint::read_meta(&dir)?;
            let saved: TrainConfig =
                serde_json::from_value(meta.settings.clone()).map_err(|e| {
                    TrainError::Checkpoint {
                        path: dir.clone(),
                        reason: format!("unreadable settings: {e}"),
                    }
                })?;
            // The checkpoint's settings win, except the run length and learning rate.
            config = TrainConfig {
                epochs: config.epochs,
                lr: config.lr,
                out: config.out.clone(),
                device: config.device,
                resume: true,
                workers: config.workers,
                ..saved
            };
            Some((dir, meta))
        } else {
            None
        };

        B::seed(&device, config.seed);
        let normalization = match &resume {
            Some((_, meta)) => meta.normalization,
            None => config.normalization.resolve(&data.train),
        };
        let net: DeepLabV3<B> = match &resume {
            Some((dir, _)) => checkpoint::load_model::<B>(dir, &device)?.0,
            None => initial_model::<B>(&config, &device)?,
        };
        let start_epoch = resume.as_ref().map_or(0, |(_, m)| m.epoch);
        if start_epoch >= config.epochs {
            return Err(TrainError::Config(format!(
                "the checkpoint is at epoch {start_epoch}; pass --epochs > {start_epoch} to continue"
            )));
        }

        let train_set = DriveDataset::new(
            data.train,
            Transform {
                size: [config.imgsz, config.imgsz],
                augment: Some(config.augment.clone()),
                normalization,
            },
            config.seed,
        )
        .shuffled()
        .drop_last(config.batch_size)
        .starting_at_epoch(start_epoch as u64);
        let valid_set = DriveDataset::new(
            data.valid,
            Transform::eval(config.imgsz, normalization),
            config.seed,
        );
        let overlay_sample = valid_set.samples()[0].clone();
        let iters_per_epoch = burn::data::dataset::Dataset::len(&train_set) / config.batch_size;
        let train_loader = DataLoaderBuilder::<B, _, _>::new(SegBatcher)
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .set_device(device.clone())
            .build(train_set);
        let valid_loader = DataLoaderBuilder::<B::InnerBackend, _, _>::new(SegBatcher)
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .set_device(device.clone())
            .build(valid_set);

        let model = SegModel {
            net,
            loss: config.loss.clone(),
        };
        // PyTorch's Adam (betas 0.9/0.999, eps 1e-8), fused on the CPU.
        let optim: Optim<B> = AdamConfig::default().init();
        let mut schedule = Schedule::new(
            config.schedule.clone(),
            config.lr,
            iters_per_epoch,
            config.epochs,
        );
        let mut history_rows = Vec::new();
        let mut resume_state = ResumeState::default();
        if let Some((dir, meta)) = &resume {
            schedule.iteration = meta.scheduler_iteration;
            let csv = config.out.join("metrics.csv");
            if csv.is_file() {
                history_rows = history::read_csv(&csv)?;
                history_rows.retain(|r| r.epoch <= meta.epoch);
            }
            resume_state = ResumeState {
                best_vessel_iou: meta.best_vessel_iou,
                best_valid_loss: meta.best_valid_loss,
                best_epoch: best_epoch_of(&ckpt_root),
                optimizer_dir: Some(dir.clone()),
            };
            println!("resuming after epoch {} from {}", meta.epoch, dir.display());
        }
        let mut learner = Learner::new(model, optim, schedule);
        if let Some(dir) = &resume_state.optimizer_dir {
            learner.load_optim(checkpoint::load_optimizer::<B, _>(dir, &device)?);
        }

        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let strategy = DriveStrategy {
            device: device.clone(),
            config: config.clone(),
            normalization,
            overlay_sample,
            start_epoch,
            rows: Mutex::new(history_rows),
            resume: resume_state,
            outcome: outcome.clone(),
        };
        let mut training = SupervisedTraining::new(&config.out, train_loader, valid_loader)
            .metrics((LossMetric::new(),))
            .metric_train_numeric(VesselIouMetric::default())
            .metric_valid_numeric(VesselIouMetric::default())
            .num_epochs(config.epochs)
            // metrics.csv holds the epoch metrics: no per-epoch folders of burn's file logger.
            .with_metric_logger(InMemoryMetricLogger::new())
            .with_application_logger(Some(Box::new(FileApplicationLoggerInstaller::new(
                config.out.join("train.log"),
            ))))
            .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)));
        if !std::io::stdout().is_terminal() {
            training =
                training.renderer(crate::renderer::PlainRenderer::new(Duration::from_secs(10)));
        }
        let _ = training.launch(learner);

        let outcome = std::mem::take(&mut *outcome.lock().expect("outcome lock"));
        if let Some(error) = outcome.error {
            return Err(error);
        }
        Ok(TrainSummary {
            out: config.out.clone(),
            device: device_name,
            rows: outcome.rows,
            best_vessel_iou: outcome.best_vessel_iou,
            best_epoch: outcome.best_epoch,
            last_epoch: outcome.last_epoch,
        })
    }
}

/// The epoch of the committed best-IoU checkpoint, if any.
fn best_epoch_of(root: &Path) -> Option<usize> {
    let dir = checkpoint::resolve(root, checkpoint::BEST_IOU)?;
    checkpoint::read_meta(&dir).ok().map(|m| m.epoch)
}

/// A fresh model, with torchvision weights when given.
fn initial_model<B: Backend>(
    config: &TrainConfig,
    device: &B::Device,
) -> Result<DeepLabV3<B>, TrainError> {
    let model = config.model.init::<B>(device);
    match (&config.weights, &config.backbone_weights) {
        (Some(_), Some(_)) => Err(TrainError::Config(
            "--weights and --backbone-weights are exclusive (a DeepLabV3 checkpoint has a backbone)"
                .into(),
        )),
        (Some(path), None) | (None, Some(path)) => {
            let (model, report) = model.load_torchvision(path)?;
            print!("{report}");
            log::info!("{report}");
            Ok(model)
        }
        (None, None) => {
            let msg = "no --weights or --backbone-weights: training from random initialisation; \
                       expect results far below those of COCO/ImageNet-pretrained weights";
            eprintln!("warning: {msg}");
            log::warn!("{msg}");
            Ok(model)
        }
    }
}

/// Everything a checkpoint records, from the run's state.
pub(crate) fn checkpoint_meta(
    kind: &str,
    config: &TrainConfig,
    normalization: Normalization,
    epoch: usize,
    rows: (&EpochRow, &EpochRow),
    best: (f64, f64),
    scheduler_iteration: u64,
) -> CheckpointMeta {
    CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind: kind.to_string(),
        model: config.model.clone(),
        normalization,
        imgsz: config.imgsz,
        epoch,
        train: rows.0.metrics,
        valid: rows.1.metrics,
        loss: config.loss.clone(),
        best_vessel_iou: best.0,
        best_valid_loss: best.1,
        scheduler_iteration,
        settings: serde_json::to_value(config).unwrap_or_default(),
    }
}
