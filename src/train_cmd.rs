//! `retina-seg train`.

use std::path::PathBuf;

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use drive_data::write::write_synthetic;
use drive_data::{DatasetDir, Layout, Split, SynthConfig};
use seg_train::config::Weights;
use seg_train::{DeviceChoice, TrainConfig, TrainData};
use serde::{Deserialize, Serialize};

use crate::choices::{AugmentArg, DeviceParser, NormalizationArg, PresetArg, SchedulerArg};

/// Default dataset folder: the original tutorial's Kaggle split.
pub const DEFAULT_DATA: &str = "data/DRIVE_train_val_split";

/// The README's main job (arguments after `retina-seg`): a short run that finishes on a CPU.
pub const QUICK_DEMO: &str = "train --preset quick --synthetic 10 --out runs/demo";

/// What `<out>/synthetic-data/synthetic.json` records: the data is regenerated when it differs.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SyntheticSet {
    count: usize,
    seed: u64,
    width: u32,
    height: u32,
}

/// A synthetic Kaggle-layout set of `count` retinas in `dir`, (re)generated unless `dir` already
/// holds exactly that set.
fn synthetic_data(dir: &Path, count: usize, seed: u64) -> Result<PathBuf> {
    let synth = SynthConfig::default();
    let wanted = SyntheticSet {
        count,
        seed,
        width: synth.width,
        height: synth.height,
    };
    let record = dir.join("synthetic.json");
    let existing: Option<SyntheticSet> = std::fs::read_to_string(&record)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    if existing.as_ref() == Some(&wanted) {
        println!("using the {count} synthetic retinas in {}", dir.display());
        return Ok(dir.to_path_buf());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the old synthetic set {}", dir.display()))?;
    }
    println!(
        "generating {count} synthetic retinas (seed {seed}) in {}",
        dir.display()
    );
    write_synthetic(dir, Layout::Kaggle, count, seed, &synth)?;
    std::fs::write(&record, serde_json::to_string_pretty(&wanted)?)
        .with_context(|| format!("writing {}", record.display()))?;
    Ok(dir.to_path_buf())
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The recipe to start from; the flags below override it.
    #[arg(long, value_enum, default_value_t = PresetArg::R50_512)]
    preset: PresetArg,
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
    /// Adam learning rate [preset: 1e-4]. With --resume: a new base rate (default: the
    /// checkpoint's schedule continues).
    #[arg(long)]
    lr: Option<f64>,
    /// Images per batch, at least 2 [preset: 2].
    #[arg(long)]
    batch: Option<usize>,
    /// Square training size in pixels [preset: its resolution, e.g. 512 for r50-512].
    #[arg(long)]
    imgsz: Option<usize>,
    /// Train on random N×N crops at native resolution instead of resized whole images;
    /// validation and predictions then use N×N sliding windows over whole images.
    #[arg(long, value_name = "N")]
    crop: Option<usize>,
    /// Crops per training image and epoch (with --crop) [default: 1].
    #[arg(long, value_name = "K")]
    crops_per_image: Option<usize>,
    /// Initial DeepLabV3 weights: `coco` (torchvision's COCO checkpoint, from the torch hub cache
    /// or downloaded into it), `none` (from scratch) or a .pth file [preset: coco].
    #[arg(long, value_name = "coco|none|PATH", value_parser = parse_weights)]
    weights: Option<WeightsArg>,
    /// Initial backbone weights instead: `imagenet` (torchvision's ImageNet ResNet) or a .pth file.
    #[arg(long, value_name = "imagenet|PATH", value_parser = parse_weights)]
    backbone_weights: Option<WeightsArg>,
    /// Learning-rate schedule [preset: multistep].
    #[arg(long, value_enum)]
    scheduler: Option<SchedulerArg>,
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
    /// Training augmentation [preset: recipe].
    #[arg(long, value_enum)]
    augment: Option<AugmentArg>,
    /// Input normalisation [preset: imagenet, what torchvision's pretrained weights expect].
    #[arg(long, value_enum)]
    normalization: Option<NormalizationArg>,
    /// DRIVE layout: training images held out for validation.
    #[arg(long, default_value_t = drive_data::layout::DEFAULT_HOLDOUT)]
    holdout: usize,
    /// Where to train.
    #[arg(long, default_value = "auto", value_parser = DeviceParser)]
    device: DeviceChoice,
    /// Data-loader worker threads [default: 2].
    #[arg(long)]
    workers: Option<usize>,
    /// Seed of initialisation, shuffling and augmentation (and of --synthetic data) [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Continue from <out>/checkpoints/last at the next epoch (give --epochs to extend the run).
    #[arg(long)]
    resume: bool,
}

/// `--weights` / `--backbone-weights`.
#[derive(Debug, Clone)]
enum WeightsArg {
    None,
    Named(Weights),
}

fn parse_weights(s: &str) -> Result<WeightsArg, String> {
    Ok(match s {
        "none" => WeightsArg::None,
        "coco" => WeightsArg::Named(Weights::Coco),
        "imagenet" => WeightsArg::Named(Weights::Imagenet),
        path => WeightsArg::Named(Weights::File(PathBuf::from(path))),
    })
}

fn parse_pair(s: &str) -> Result<[f32; 2], String> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    <[f32; 2]>::try_from(parts).map_err(|_| "expected two numbers: background,vessel".to_string())
}

fn named(w: WeightsArg) -> Option<Weights> {
    match w {
        WeightsArg::None => None,
        WeightsArg::Named(w) => Some(w),
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let mut config = TrainConfig::from_preset(args.preset.into());
    config.out = args.out.clone();
    config.device = args.device;
    config.resume = args.resume;
    if args.resume {
        config.resume_lr = args.lr;
    }
    macro_rules! set {
        ($($field:ident = $value:expr),*) => {$(if let Some(v) = $value { config.$field = v; })*};
    }
    set!(
        epochs = args.epochs,
        lr = args.lr,
        batch_size = args.batch,
        imgsz = args.imgsz,
        schedule = args.scheduler.map(Into::into),
        normalization = args.normalization.map(Into::into),
        augment = args.augment.map(Into::into),
        workers = args.workers,
        seed = args.seed,
        crops_per_image = args.crops_per_image
    );
    if let Some(crop) = args.crop {
        config.crop = Some(crop);
        config.imgsz = crop;
    }
    // Backbone weights replace the preset's COCO weights unless --weights is given too.
    match (args.weights, args.backbone_weights) {
        (weights, Some(backbone)) => {
            config.backbone_weights = named(backbone);
            config.weights = weights.and_then(named);
        }
        (Some(weights), None) => config.weights = named(weights),
        (None, None) => {}
    }
    if let Some(w) = args.aux_weight {
        config.loss.aux_weight = w;
    }
    if let Some(w) = args.dice_weight {
        config.loss.dice_weight = w;
    }
    config.loss.class_weights = args.class_weights;
    config.loss.fov_only = args.fov_loss;

    let root = match (args.synthetic, args.data) {
        (Some(_), Some(_)) => bail!("--synthetic and --data are exclusive"),
        (Some(count), None) => {
            synthetic_data(&args.out.join("synthetic-data"), count, config.seed)?
        }
        (None, Some(dir)) => dir,
        (None, None) => {
            let dir = PathBuf::from(DEFAULT_DATA);
            if !dir.is_dir() {
                bail!(
                    "no dataset at {DEFAULT_DATA}. Download DRIVE (https://drive.grand-challenge.org/, \
                     or the Kaggle \"DRIVE train/validation split\") and pass --data DIR (either \
                     layout works), or try the whole pipeline on generated data in a few minutes: \
                     cargo run --release -- {QUICK_DEMO}"
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
