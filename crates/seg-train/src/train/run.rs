//! The entry point [`train`]: data loaders, model, optimizer and schedule (fresh or resumed), and
//! burn-train's `Learner` driven by this project's epoch loop ([`crate::train::strategy`]).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::data::dataloader::DataLoaderBuilder;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};
use deeplab::DeepLab;
use drive_data::{DriveDataset, Sample, SegBatcher, Transform};

use crate::device::{dispatch, BackendJob};
use crate::error::TrainError;
use crate::metrics::history;
use crate::model::checkpoint;
use crate::model::SegModel;
use crate::train::config::{resumed, TrainConfig, Weights};
use crate::train::optim::AdamConfig;
use crate::train::progress::VesselIouMetric;
use crate::train::run_log::RunLog;
use crate::train::schedule::Schedule;
use crate::train::strategy::{DriveStrategy, Optim};
use crate::train::summary::TrainSummary;

/// Decoded training and validation samples.
pub struct TrainData {
    /// Training images with their vessel masks.
    pub train: Vec<Sample>,
    /// Validation images with their vessel masks.
    pub valid: Vec<Sample>,
}

/// Trains as configured; see the crate docs for the outputs.
pub fn train(config: TrainConfig, data: TrainData) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    let per_image = if config.crop.is_some() {
        config.crops_per_image
    } else {
        1
    };
    if data.train.len() * per_image < config.batch_size {
        return Err(TrainError::Config(format!(
            "{} training images × {per_image} sample(s) per image are fewer than one batch of {}: \
             lower --batch{}",
            data.train.len(),
            config.batch_size,
            if config.crop.is_some() {
                " or raise --crops-per-image"
            } else {
                " or train on crops (--crop N --crops-per-image K)"
            }
        )));
    }
    if let Some(crop) = config.crop {
        if let Some(s) = data
            .train
            .iter()
            .find(|s| s.size().iter().any(|&v| (v as usize) < crop))
        {
            let [w, h] = s.size();
            return Err(TrainError::Config(format!(
                "crop {crop} is larger than the training image {} ({w}×{h}): crops must fit \
                 every training image",
                s.image_path.display()
            )));
        }
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
        let log = RunLog::new(&config.out);
        log.info(&format!("training on {device_name}"));
        let ckpt_root = checkpoint::checkpoints_dir(&config.out);

        // Resume: settings, model, optimizer and history from `last`.
        let resume = if config.resume {
            let (resumed, dir) = resumed(&config)?;
            let meta = checkpoint::read_meta(&dir)?;
            if let Some(lr) = config.resume_lr {
                let saved = meta.settings.get("lr").and_then(serde_json::Value::as_f64);
                let msg = match saved {
                    Some(saved) => format!(
                        "resuming with base learning rate {lr:e} instead of the checkpoint's \
                         {saved:e}"
                    ),
                    None => format!("resuming with base learning rate {lr:e}"),
                };
                log.info(&msg);
            }
            config = resumed;
            Some((dir, meta))
        } else {
            None
        };

        B::seed(&device, config.seed);
        let normalization = match &resume {
            Some((_, meta)) => meta.normalization,
            None => config.normalization.resolve(&data.train),
        };
        let net: DeepLab<B> = match &resume {
            Some((dir, _)) => checkpoint::load_model::<B>(dir, &device)?.0,
            None => initial_model::<B>(&config, &device, &log)?,
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
                crop: config.crop,
            },
            config.seed,
        )
        .shuffled()
        .crops_per_image(if config.crop.is_some() {
            config.crops_per_image
        } else {
            1
        })
        .drop_last(config.batch_size)
        .starting_at_epoch(start_epoch as u64);
        let valid_samples = Arc::new(data.valid);
        let valid_set = DriveDataset::from_shared(
            valid_samples.clone(),
            Transform::eval(config.imgsz, normalization),
            config.seed,
        );
        let iters_per_epoch = burn::data::dataset::Dataset::len(&train_set) / config.batch_size;
        // The labels' tubed skeletons, for the Skeleton Recall loss, on the loader's threads.
        let batcher = if config.loss.needs_skeletons() {
            SegBatcher::with_skeletons()
        } else {
            SegBatcher::default()
        };
        let train_loader = DataLoaderBuilder::<B, _, _>::new(batcher)
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .set_device(device.clone())
            .build(train_set);
        // One image per validation step: the validation loss is the training loss of each
        // input, averaged (as with the sliding window's tiles when training on crops).
        let valid_loader = DataLoaderBuilder::<B::InnerBackend, _, _>::new(batcher)
            .batch_size(1)
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
        let mut summary = TrainSummary {
            out: config.out.clone(),
            device: device_name,
            rows: Vec::new(),
            best_vessel_iou: f64::NEG_INFINITY,
            best_epoch: None,
            last_epoch: start_epoch,
            train_images_per_s: Vec::new(),
        };
        let mut best_valid_loss = f64::INFINITY;
        if let Some((dir, meta)) = &resume {
            schedule.iteration = meta.scheduler_iteration;
            let csv = config.out.join("metrics.csv");
            if csv.is_file() {
                summary.rows = history::read_csv(&csv)?;
                summary.rows.retain(|r| r.epoch <= meta.epoch);
            }
            summary.best_vessel_iou = meta.best_vessel_iou;
            summary.best_epoch = best_epoch_of(&ckpt_root);
            best_valid_loss = meta.best_valid_loss;
            let msg = format!("resuming after epoch {} from {}", meta.epoch, dir.display());
            log.info(&msg);
        }
        let mut learner = Learner::new(model, optim, schedule);
        if let Some((dir, _)) = &resume {
            learner.load_optim(checkpoint::load_optimizer::<B, _>(dir, &device)?);
        }

        let outcome = Arc::new(Mutex::new(None));
        let strategy = DriveStrategy {
            device: device.clone(),
            config: config.clone(),
            normalization,
            valid_samples,
            start_epoch,
            iters_per_epoch,
            summary,
            best_valid_loss,
            outcome: outcome.clone(),
        };
        let mut training = SupervisedTraining::new(&config.out, train_loader, valid_loader)
            .metrics((LossMetric::new(),))
            .metric_train_numeric(VesselIouMetric::default())
            .metric_valid_numeric(VesselIouMetric::default())
            .num_epochs(config.epochs)
            // metrics.csv holds the epoch metrics: no per-epoch folders of burn's file logger.
            .with_metric_logger(InMemoryMetricLogger::new())
            // train.log is written per run by `RunLog`: burn's installer binds a process-wide
            // logger to the first run's folder.
            .with_application_logger(None)
            .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)));
        if !std::io::stdout().is_terminal() {
            training = training.renderer(crate::train::renderer::PlainRenderer::new(
                Duration::from_secs(10),
            ));
        }
        let _ = training.launch(learner);

        let outcome = outcome.lock().expect("outcome lock").take();
        outcome.unwrap_or_else(|| {
            Err(TrainError::Interrupted(
                "the training loop ended without a result".into(),
            ))
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
    log: &RunLog,
) -> Result<DeepLab<B>, TrainError> {
    let model = config.model.init::<B>(device);
    let source = match (&config.weights, &config.backbone_weights) {
        (Some(_), Some(_)) => {
            return Err(TrainError::Config(
                "--weights and --backbone-weights are exclusive (a DeepLabV3 checkpoint has a \
                 backbone): pass --weights none with --backbone-weights"
                    .into(),
            ))
        }
        (Some(Weights::Imagenet), None) => {
            return Err(TrainError::Config(
                "ImageNet weights are backbone weights: use --backbone-weights imagenet".into(),
            ))
        }
        (None, Some(Weights::Coco)) => {
            return Err(TrainError::Config(
                "COCO weights are a whole DeepLabV3: use --weights coco".into(),
            ))
        }
        (Some(w), None) | (None, Some(w)) => w,
        (None, None) => {
            let msg = "no --weights or --backbone-weights: training from random initialisation; \
                       expect results far below those of COCO/ImageNet-pretrained weights";
            log.warn(msg);
            return Ok(model);
        }
    };
    let path = source.resolve(&config.model)?;
    let (model, report) = model.load_pretrained(&path)?;
    log.info(report.to_string().trim_end());
    Ok(model)
}
