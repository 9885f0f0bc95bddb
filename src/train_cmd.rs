//! `retina-seg train`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use drive_data::write::write_synthetic;
use drive_data::{DatasetDir, Layout, Split, SynthConfig};
use seg_train::evaluate::evaluate_samples;
use seg_train::predict::PredictOptions;
use seg_train::train::config::{Preset, Weights};
use seg_train::{DeviceChoice, TrainConfig, TrainData, TrainError};
use serde::{Deserialize, Serialize};

use crate::choices::{
    arch_of, model_config, ArchArg, AugmentArg, BackboneArg, DeviceParser, LossArg,
    NormalizationArg, OutputStrideArg, PresetArg, SchedulerArg,
};
use crate::dataset_args::{fov_source, DatasetArgs};
use crate::evaluate_cmd::{predict_split, write_all};
use crate::model_args::{ModelArgs, ModelOptions};
use crate::ranges::{multiple_of_8, real, whole, End::Closed, End::Open};

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
    /// The recipe to start from; each flag below overrides its own setting and nothing else
    /// [default: r50-512].
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Dataset root (Kaggle split or original DRIVE layout).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Generate N synthetic retinas (Kaggle layout, in <out>/synthetic-data) and train on them
    /// [3 to 10000].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(3, 10_000))]
    synthetic: Option<usize>,
    /// Output folder: checkpoints/, metrics.csv, loss.png, accuracy.png, miou.png, overlays/, train.log.
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Epochs to train [preset: 100 (quick: 19); 1 to 100000].
    #[arg(long, value_parser = whole::<usize>(1, 100_000))]
    epochs: Option<usize>,
    /// Adam learning rate [preset: 1e-4 (quick: 1e-3); in (0, 1]]. With --resume: a new base
    /// rate (default: the checkpoint's schedule continues).
    #[arg(long, allow_hyphen_values = true, value_parser = real((0.0, Open), (1.0, Closed)))]
    lr: Option<f64>,
    /// Samples per batch [preset: 2 (quick: 6); 2 to 1024].
    #[arg(long, value_parser = whole::<usize>(2, 1024))]
    batch: Option<usize>,
    /// Square training size in pixels [preset: its resolution, e.g. 512 for r50-512; 32 to 4096].
    #[arg(long, value_parser = whole::<usize>(32, 4096))]
    imgsz: Option<usize>,
    /// Train on random N×N crops at native resolution instead of resized whole images (N a
    /// multiple of 8 from 32 to 4096, at most the smallest training image's side; also sets
    /// --imgsz); validation and predictions then use N×N sliding windows over whole images.
    #[arg(long, value_name = "N", value_parser = multiple_of_8(32, 4096))]
    crop: Option<usize>,
    /// Crops per training image and epoch (with --crop) [preset: 1 (quick: 32); 1 to 10000].
    #[arg(long, value_name = "K", value_parser = whole::<usize>(1, 10_000))]
    crops_per_image: Option<usize>,
    /// Architecture: torchvision's DeepLabV3 or segmentation_models_pytorch's DeepLabV3+
    /// [preset: deeplabv3 (quick: deeplabv3plus)].
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// ResNet backbone [preset: r50 (r101-* presets: r101)].
    #[arg(long, value_enum)]
    backbone: Option<BackboneArg>,
    /// Backbone output stride: 8, or 16 (DeepLabV3+ only) [default: 8 for deeplabv3, 16 for
    /// deeplabv3plus (quick)].
    #[arg(long, value_enum)]
    output_stride: Option<OutputStrideArg>,
    /// Initial DeepLabV3 weights: `coco` (torchvision's COCO checkpoint, from the torch hub cache
    /// or downloaded into it), `none` (from scratch) or a .pth file [preset: coco (quick: none)].
    #[arg(long, value_name = "coco|none|PATH", value_parser = parse_weights)]
    weights: Option<WeightsArg>,
    /// Initial backbone weights instead: `imagenet` (torchvision's ImageNet ResNet) or a .pth
    /// file; replaces the preset's --weights unless that is given too.
    #[arg(long, value_name = "imagenet|PATH", value_parser = parse_weights)]
    backbone_weights: Option<WeightsArg>,
    /// Learning-rate schedule [preset: multistep (quick: poly)].
    #[arg(long, value_enum)]
    scheduler: Option<SchedulerArg>,
    /// Weight of the aux head's loss (0 reproduces the original tutorial) [preset: 0.5; 0 to 100].
    #[arg(long, allow_hyphen_values = true, value_parser = real((0.0, Closed), (100.0, Closed)))]
    aux_weight: Option<f64>,
    /// Soft Dice loss weight (vessel/background imbalance) [preset: 0 (quick: 1); 0 to 100].
    #[arg(long, allow_hyphen_values = true, value_parser = real((0.0, Closed), (100.0, Closed)))]
    dice_weight: Option<f64>,
    /// Topology-aware loss term beside cross-entropy and Dice [preset: dice].
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Cross-entropy class weights `background,vessel` (e.g. `1,3`; each 0 to 1000, not both 0),
    /// or `none` for an unweighted loss [preset: none (quick: 1,8)].
    #[arg(long, value_name = "B,V|none", allow_hyphen_values = true,
          value_parser = parse_class_weights)]
    class_weights: Option<ClassWeights>,
    /// Compute the loss inside the field of view only (`--fov-loss` or `--fov-loss true`;
    /// `--fov-loss false` over whole inputs) [preset: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    fov_loss: Option<bool>,
    /// Training augmentation [preset: recipe].
    #[arg(long, value_enum)]
    augment: Option<AugmentArg>,
    /// Input normalisation [preset: imagenet, what torchvision's pretrained weights expect
    /// (quick: computed)].
    #[arg(long, value_enum)]
    normalization: Option<NormalizationArg>,
    #[command(flatten)]
    dataset: DatasetArgs,
    /// Where to train: auto, cpu, cuda[:N] (NVIDIA GPU N) or wgpu[:N] (the N-th discrete GPU
    /// through Vulkan/Metal/DX12).
    #[arg(long, default_value = "auto", value_parser = DeviceParser)]
    device: DeviceChoice,
    /// Data-loader worker threads [preset: 2; 0 to 256].
    #[arg(long, value_parser = whole::<usize>(0, 256))]
    workers: Option<usize>,
    /// Seconds between two writes of checkpoints/last (model and optimizer, ~0.5 GB for
    /// ResNet-50) [default: 60; 0: after every epoch]. It is also written after the first, the
    /// final and an interrupted (Ctrl-C) epoch; best-iou/best-loss are written with it. A killed
    /// run resumes from the last write.
    #[arg(long, value_name = "SECONDS", value_parser = whole::<u64>(0, 86_400))]
    checkpoint_every: Option<u64>,
    /// Seed of initialisation, shuffling and augmentation (and of --synthetic data) [preset: 42].
    #[arg(long, value_parser = whole::<u64>(0, u64::MAX))]
    seed: Option<u64>,
    /// Continue from <out>/checkpoints/last at the next epoch with the run's own settings (give
    /// --epochs to extend it; --lr sets a new base rate; --workers, --checkpoint-every, --device
    /// and --report apply;
    /// any flag that would change the recipe is refused).
    #[arg(long)]
    resume: bool,
    /// At the end, evaluate the best checkpoint on the validation split into the run folder
    /// (`evaluation-valid.json` and `evaluation-valid/report.html`, as `evaluate` writes them);
    /// `--report false` skips it.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    report: bool,
    /// Print the settings this command would train with (the preset with the flags applied) as
    /// JSON, and exit without reading data or writing anything.
    #[arg(long)]
    print_config: bool,
}

/// `--class-weights`: a pair, or `none`.
#[derive(Debug, Clone, Copy)]
struct ClassWeights(Option<[f32; 2]>);

fn parse_class_weights(s: &str) -> Result<ClassWeights, String> {
    if s.trim() == "none" {
        return Ok(ClassWeights(None));
    }
    let expected = || {
        "expected `none` or two numbers `background,vessel`, each from 0 to 1000 and not both 0"
            .to_string()
    };
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>().map_err(|_| expected()))
        .collect::<Result<_, _>>()?;
    let [bg, vessel] = <[f64; 2]>::try_from(parts).map_err(|_| expected())?;
    let ok = |w: f64| w.is_finite() && (0.0..=1000.0).contains(&w);
    if !(ok(bg) && ok(vessel) && bg + vessel > 0.0) {
        return Err(expected());
    }
    Ok(ClassWeights(Some([bg as f32, vessel as f32])))
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

fn named(w: WeightsArg) -> Option<Weights> {
    match w {
        WeightsArg::None => None,
        WeightsArg::Named(w) => Some(w),
    }
}

/// The preset with the flags applied: each flag sets its own field (`--crop` also sets the input
/// size to the crop size; `--backbone-weights` alone also clears the preset's `--weights`).
fn settings(args: &TrainArgs) -> Result<TrainConfig> {
    let preset = args.preset.map_or(Preset::R50_512, Into::into);
    let mut config = TrainConfig::from_preset(preset);
    config.out = args.out.clone();
    config.device = args.device;
    config.resume = args.resume;
    if args.resume {
        config.resume_lr = args.lr;
    }
    macro_rules! set {
        ($($($field:ident).+ = $value:expr),*) => {
            $(if let Some(v) = $value { config.$($field).+ = v; })*
        };
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
        checkpoint_every_s = args.checkpoint_every,
        seed = args.seed,
        crops_per_image = args.crops_per_image
    );
    if args.arch.is_some() || args.backbone.is_some() || args.output_stride.is_some() {
        let (arch, backbone) = arch_of(&config.model);
        let backbone = args
            .backbone
            .or(backbone)
            .expect("every preset has a ResNet-50/101 backbone");
        config.model = model_config(args.arch.unwrap_or(arch), backbone, args.output_stride)?;
    }
    if let Some(crop) = args.crop {
        config.crop = Some(crop);
        config.imgsz = crop;
    }
    if let (Some(crop), Some(imgsz)) = (config.crop, args.imgsz) {
        if imgsz != crop {
            bail!(
                "--imgsz {imgsz} does not apply to training on {crop}×{crop} crops (the input \
                 size is the crop size): give --crop {imgsz} instead"
            );
        }
    }
    // Backbone weights replace the preset's COCO weights unless --weights is given too.
    match (args.weights.clone(), args.backbone_weights.clone()) {
        (weights, Some(backbone)) => {
            config.backbone_weights = named(backbone);
            config.weights = weights.and_then(named);
        }
        (Some(weights), None) => config.weights = named(weights),
        (None, None) => {}
    }
    set!(
        loss.aux_weight = args.aux_weight,
        loss.dice_weight = args.dice_weight,
        loss.class_weights = args.class_weights.map(|w| w.0),
        loss.fov_only = args.fov_loss,
        loss.topology = args.loss.map(Into::into)
    );
    config.validate()?;
    Ok(config)
}

/// The flags a resumed run cannot honour, as the user wrote them: everything that would change
/// the recipe the checkpoint was trained with.
fn refused_on_resume(args: &TrainArgs) -> Vec<&'static str> {
    let given = [
        ("--preset", args.preset.is_some()),
        ("--batch", args.batch.is_some()),
        ("--imgsz", args.imgsz.is_some()),
        ("--crop", args.crop.is_some()),
        ("--crops-per-image", args.crops_per_image.is_some()),
        ("--arch", args.arch.is_some()),
        ("--backbone", args.backbone.is_some()),
        ("--output-stride", args.output_stride.is_some()),
        ("--weights", args.weights.is_some()),
        ("--backbone-weights", args.backbone_weights.is_some()),
        ("--scheduler", args.scheduler.is_some()),
        ("--aux-weight", args.aux_weight.is_some()),
        ("--dice-weight", args.dice_weight.is_some()),
        ("--loss", args.loss.is_some()),
        ("--class-weights", args.class_weights.is_some()),
        ("--fov-loss", args.fov_loss.is_some()),
        ("--augment", args.augment.is_some()),
        ("--normalization", args.normalization.is_some()),
        ("--seed", args.seed.is_some()),
    ];
    given
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| flag)
        .collect()
}

/// What the run will use: the preset with the flags applied, or for `--resume` the checkpoint's
/// settings with the flags a resumed run honours (others are refused, naming them).
fn run_settings(args: &TrainArgs) -> Result<TrainConfig> {
    if !args.resume {
        return settings(args);
    }
    let refused = refused_on_resume(args);
    if !refused.is_empty() {
        bail!(
            "--resume continues the run in {} with the settings it was trained with; {} would \
             change them: drop {}, or start a new run in another --out",
            args.out.display(),
            refused.join(", "),
            if refused.len() == 1 { "it" } else { "them" }
        );
    }
    let mut requested = settings(args)?;
    if args.epochs.is_none() || args.workers.is_none() || args.checkpoint_every.is_none() {
        // Unset: the checkpoint's own.
        let (saved, _) = seg_train::train::config::resumed(&requested)?;
        requested.epochs = args.epochs.unwrap_or(saved.epochs);
        requested.workers = args.workers.unwrap_or(saved.workers);
        requested.checkpoint_every_s = args.checkpoint_every.unwrap_or(saved.checkpoint_every_s);
    }
    Ok(seg_train::train::config::resumed(&requested)?.0)
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.dataset.holdout == Some(0) {
        bail!(
            "--holdout 0: training keeps its best checkpoint by validation; hold out 1 or more \
             training images"
        );
    }
    let config = run_settings(&args)?;
    if args.print_config {
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
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
    let dir = args.dataset.open(&root)?;
    println!("{}: {}", root.display(), dir.describe());
    let data = TrainData {
        train: dir
            .load(Split::Train)
            .context("loading the training split")?,
        valid: dir
            .load(Split::Valid)
            .context("loading the validation split")?,
    };
    if data.valid.is_empty() {
        bail!(
            "{}: the validation split is empty; hold out training images for it with \
             --holdout N (N ≥ 1)",
            root.display()
        );
    }
    if let Some(crop) = config.crop {
        check_crop(crop, &data.train)?;
    }
    println!(
        "{} training / {} validation images, FOV {}",
        data.train.len(),
        data.valid.len(),
        fov_source(data.train.iter().chain(&data.valid))
    );
    let summary = seg_train::train(config, data).map_err(|e| match e {
        TrainError::Hub(_) => anyhow!(
            "{e}: give that path with --weights PATH (a DeepLabV3 checkpoint) or \
             --backbone-weights PATH (a ResNet)"
        ),
        e => e.into(),
    })?;
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
    if summary.best_epoch.is_some() && args.report {
        validation_report(&summary.out, &dir, args.device)?;
    }
    Ok(())
}

/// The evaluation report of the best checkpoint on the validation split, in the run folder
/// (`evaluation-valid.json`, `evaluation-valid/report.html`, `predictions-valid/`), as
/// `evaluate --checkpoint <out>/checkpoints/best-iou --split valid` writes it.
fn validation_report(out: &Path, data: &DatasetDir, device: DeviceChoice) -> Result<()> {
    let model = ModelArgs::new(
        out.join("checkpoints").join("best-iou"),
        ModelOptions::for_checkpoint(device),
    );
    let json = out.join("evaluation-valid.json");
    println!("evaluating the best checkpoint on the validation split");
    let samples = data.load(Split::Valid)?;
    let options = PredictOptions::default();
    let (predictions, probabilities) =
        predict_split(model, samples.clone(), Split::Valid, options, &json)?;
    let probabilities = probabilities.as_deref();
    let report = evaluate_samples(
        &[predictions],
        data,
        Split::Valid,
        &samples,
        f64::from(options.threshold),
        probabilities,
    )?;
    let best = report.best_f1_threshold.map_or(String::new(), |b| {
        format!(
            "; best-F1 threshold {:.3} (F1 {:.2} %)",
            b.probability,
            100.0 * b.f1
        )
    });
    println!(
        "validation (FOV, threshold 0.5): F1 {:.2} %, AUC {}, AP {}{best}",
        100.0 * report.fov.metrics.f1.unwrap_or(0.0),
        report.fov.auc_text(),
        report
            .fov
            .average_precision
            .map_or("–".into(), |a| format!("{a:.4}")),
    );
    print!("{}{}", report.width_text(), report.topology_text());
    write_all(&report, &samples, &json, true)
}

/// `--crop` fits every training image.
fn check_crop(crop: usize, train: &[drive_data::Sample]) -> Result<()> {
    let Some(smallest) = train.iter().min_by_key(|s| s.size()[0].min(s.size()[1])) else {
        return Ok(());
    };
    let [w, h] = smallest.size();
    let side = w.min(h) as usize;
    if crop <= side {
        return Ok(());
    }
    let fix = if side >= 32 {
        format!("give --crop {} or less", side / 8 * 8)
    } else {
        "crops need images of at least 32×32: train on whole images (a preset without --crop)"
            .to_string()
    };
    bail!(
        "--crop {crop} is larger than the training image {} ({w}×{h}): {fix}",
        smallest.image_path.display()
    )
}
