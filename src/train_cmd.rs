//! `retina-seg train`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use drive_data::write::write_synthetic;
use drive_data::{AugmentConfig, DatasetDir, Layout, NormalizationPreset, Split, SynthConfig};
use seg_train::schedule::ScheduleKind;
use seg_train::{DeviceChoice, TrainConfig, TrainData};

/// Default dataset folder: the original tutorial's Kaggle split.
pub const DEFAULT_DATA: &str = "data/DRIVE_train_val_split";

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// r50-512, r50-768, r101-512, r101-640 or r101-768.
    #[arg(long, default_value = "r50-512")]
    preset: String,
    /// Dataset root (Kaggle split or original DRIVE layout).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Generate N synthetic retinas (Kaggle layout, in <out>/synthetic-data) and train on them.
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Output folder: checkpoints/, metrics.csv, loss.png, accuracy.png, miou.png, overlays/, train.log.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Epochs to train [preset: 100].
    #[arg(long)]
    epochs: Option<usize>,
    /// Adam learning rate [preset: 1e-4].
    #[arg(long)]
    lr: Option<f64>,
    /// Images per batch, at least 2 [preset: 2].
    #[arg(long)]
    batch: Option<usize>,
    /// Square training size in pixels [preset: its resolution, e.g. 512 for r50-512].
    #[arg(long)]
    imgsz: Option<usize>,
    /// torchvision DeepLabV3 checkpoint (.pth), e.g. deeplabv3_resnet50_coco-cd0a2569.pth.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// ImageNet ResNet checkpoint (.pth) for the backbone, e.g. resnet50-0676ba61.pth.
    #[arg(long)]
    backbone_weights: Option<PathBuf>,
    /// constant, multistep (×0.1 at epochs 25 and 50, the tutorial's) or poly [preset: multistep].
    #[arg(long)]
    scheduler: Option<ScheduleKind>,
    /// Weight of the aux head's loss (0 reproduces the original tutorial) [default: 0.5].
    #[arg(long)]
    aux_weight: Option<f64>,
    /// Soft Dice loss weight (vessel/background imbalance) [default: 0].
    #[arg(long)]
    dice_weight: Option<f64>,
    /// Cross-entropy class weights `background,vessel`, e.g. `1,3`.
    #[arg(long, value_parser = parse_pair)]
    class_weights: Option<[f32; 2]>,
    /// Compute the loss inside the field of view only.
    #[arg(long)]
    fov_loss: bool,
    /// recipe (hflip + rotate ±50°), strong (+ vflip, photometric, scale-crop) or none.
    #[arg(long, default_value = "recipe")]
    augment: String,
    /// drive (the tutorial's statistics), imagenet, or computed (from the training images)
    /// [default: imagenet, what torchvision's pretrained weights expect].
    #[arg(long)]
    normalization: Option<NormalizationPreset>,
    /// DRIVE layout: training images held out for validation.
    #[arg(long, default_value_t = drive_data::layout::DEFAULT_HOLDOUT)]
    holdout: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Data-loader worker threads [default: 2].
    #[arg(long)]
    workers: Option<usize>,
    /// Seed of initialisation, shuffling and augmentation [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Continue from <out>/checkpoints/last at the next epoch (give --epochs to extend the run).
    #[arg(long)]
    resume: bool,
}

fn parse_pair(s: &str) -> Result<[f32; 2], String> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    <[f32; 2]>::try_from(parts).map_err(|_| "expected two numbers: background,vessel".to_string())
}

pub fn run(args: TrainArgs) -> Result<()> {
    let mut config = TrainConfig::preset(&args.preset)?;
    config.out = args.out.clone();
    config.device = args.device;
    config.resume = args.resume;
    macro_rules! set {
        ($($field:ident = $value:expr),*) => {$(if let Some(v) = $value { config.$field = v; })*};
    }
    set!(
        epochs = args.epochs,
        lr = args.lr,
        batch_size = args.batch,
        imgsz = args.imgsz,
        schedule = args.scheduler,
        normalization = args.normalization,
        workers = args.workers,
        seed = args.seed
    );
    config.weights = args.weights;
    config.backbone_weights = args.backbone_weights;
    if let Some(w) = args.aux_weight {
        config.loss.aux_weight = w;
    }
    if let Some(w) = args.dice_weight {
        config.loss.dice_weight = w;
    }
    config.loss.class_weights = args.class_weights;
    config.loss.fov_only = args.fov_loss;
    config.augment = match args.augment.as_str() {
        "recipe" => AugmentConfig::recipe(),
        "strong" => AugmentConfig::strong(),
        "none" => AugmentConfig {
            hflip: 0.0,
            rotate: 0.0,
            ..AugmentConfig::recipe()
        },
        other => bail!("unknown --augment `{other}` (recipe, strong or none)"),
    };

    let root = match (args.synthetic, args.data) {
        (Some(_), Some(_)) => bail!("--synthetic and --data are exclusive"),
        (Some(count), None) => {
            let dir = args.out.join("synthetic-data");
            if !dir.join("train_images").is_dir() {
                println!("generating {count} synthetic retinas in {}", dir.display());
                write_synthetic(
                    &dir,
                    Layout::Kaggle,
                    count,
                    config.seed,
                    &SynthConfig::default(),
                )?;
            }
            dir
        }
        (None, Some(dir)) => dir,
        (None, None) => {
            let dir = PathBuf::from(DEFAULT_DATA);
            if !dir.is_dir() {
                bail!(
                    "no dataset at {DEFAULT_DATA}. Download DRIVE (https://drive.grand-challenge.org/, \
                     or the Kaggle \"DRIVE train/validation split\") and pass --data DIR (either \
                     layout works), or try the pipeline on generated data with --synthetic 20"
                );
            }
            dir
        }
    };
    let dir = DatasetDir::open(&root)?.with_holdout(args.holdout);
    let data = TrainData {
        train: dir
            .load(Split::Train)
            .context("loading the training split")?,
        valid: dir
            .load(Split::Valid)
            .context("loading the validation split")?,
    };
    println!(
        "{}: {} layout, {} training / {} validation images",
        root.display(),
        dir.layout,
        data.train.len(),
        data.valid.len()
    );
    let summary = seg_train::train(config, data)?;
    let best = match summary.best_epoch {
        Some(e) => format!(
            "best validation vessel IoU (FOV) {:.2}% at epoch {e}",
            100.0 * summary.best_vessel_iou
        ),
        None => "no best checkpoint".into(),
    };
    println!(
        "done: {} epochs on {}; {best}; outputs in {}",
        summary.last_epoch,
        summary.device,
        summary.out.display()
    );
    Ok(())
}
