//! `retina-seg predict` and `retina-seg evaluate`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use deeplab::DeepLabV3Config;
use drive_data::{DatasetDir, Normalization, NormalizationPreset, Split};
use seg_train::device::{dispatch, BackendJob};
use seg_train::evaluate::{evaluate, EvaluationReport};
use seg_train::infer::Tiling;
use seg_train::predict::{list_inputs, predict_files, PredictOptions, PredictReport, Predictor};
use seg_train::DeviceChoice;

/// How to read the checkpoint and where to run it (shared by `predict` and `evaluate`).
#[derive(Args, Debug, Clone)]
pub struct ModelOptions {
    /// For a torchvision `.pth`: r50 or r101.
    #[arg(long)]
    arch: Option<String>,
    /// For a torchvision `.pth`: drive or imagenet.
    #[arg(long)]
    normalization: Option<NormalizationPreset>,
    /// Model input size (default: the checkpoint's; 512 for a `.pth`).
    #[arg(long)]
    imgsz: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// Where the model comes from.
#[derive(Debug, Clone)]
struct ModelArgs {
    checkpoint: PathBuf,
    options: ModelOptions,
}

#[derive(Args, Debug, Clone)]
pub struct InferenceArgs {
    /// Horizontal-flip test-time augmentation (average of probabilities).
    #[arg(long)]
    tta: bool,
    /// Sliding windows of N×N original pixels (each resized to --imgsz), for large images.
    #[arg(long, value_name = "N")]
    tile: Option<usize>,
    /// Window overlap, a fraction of the tile.
    #[arg(long, default_value_t = 0.25)]
    overlap: f64,
    /// Vessel probability threshold.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Our checkpoint (a checkpoint folder or a `train --out` folder: best-iou), or a torchvision
    /// DeepLabV3 `.pth` with 2 classes (then --arch and --normalization are required).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    model: ModelOptions,
    /// An image file or a folder of images.
    #[arg(long)]
    input: PathBuf,
    /// Output folder: <stem>_mask.png, <stem>_prob.png, <stem>_overlay.png per image.
    #[arg(long)]
    out: PathBuf,
    /// FOV masks matched by id (default: derived from each image).
    #[arg(long)]
    fov: Option<PathBuf>,
    #[command(flatten)]
    inference: InferenceArgs,
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Folder of predictions (`*_prob.png` or `*_mask.png`, matched by id).
    #[arg(long, conflicts_with = "checkpoint")]
    predictions: Option<PathBuf>,
    /// Predict with this checkpoint first (into <out>'s folder /predictions), then evaluate.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[command(flatten)]
    model: ModelOptions,
    /// Dataset with ground truth (either layout).
    #[arg(long)]
    data: PathBuf,
    /// test or valid (or train).
    #[arg(long, default_value = "test")]
    split: Split,
    /// DRIVE layout: training images held out for validation.
    #[arg(long, default_value_t = drive_data::layout::DEFAULT_HOLDOUT)]
    holdout: usize,
    /// Print the table for inside the FOV only (the DRIVE protocol); without it both tables.
    #[arg(long)]
    fov: bool,
    /// JSON report path (a CSV is written next to it).
    #[arg(long, default_value = "evaluation.json")]
    out: PathBuf,
    #[command(flatten)]
    inference: InferenceArgs,
}

impl InferenceArgs {
    fn options(&self) -> Result<PredictOptions> {
        if !(0.0..1.0).contains(&self.overlap) {
            bail!("--overlap must be in [0, 1), got {}", self.overlap);
        }
        Ok(PredictOptions {
            threshold: self.threshold,
            tta: self.tta,
            tiling: self.tile.map(|tile| Tiling {
                tile,
                overlap: self.overlap,
            }),
        })
    }
}

struct PredictJob {
    model: ModelArgs,
    inputs: Vec<PathBuf>,
    fov: Option<PathBuf>,
    out: PathBuf,
    options: PredictOptions,
}

fn predictor<B: burn::prelude::Backend>(
    model: &ModelArgs,
    device: &B::Device,
) -> Result<Predictor<B>> {
    let is_pth = model.checkpoint.is_file()
        && model
            .checkpoint
            .extension()
            .is_some_and(|e| e == "pth" || e == "pt" || e == "safetensors");
    if !is_pth {
        let mut p = Predictor::from_checkpoint(&model.checkpoint, device)?;
        if let Some(size) = model.options.imgsz {
            p.imgsz = size;
        }
        return Ok(p);
    }
    let config = match model.options.arch.as_deref() {
        Some("r50") => DeepLabV3Config::deeplabv3_resnet50(2),
        Some("r101") => DeepLabV3Config::deeplabv3_resnet101(2),
        Some(other) => bail!("unknown --arch `{other}` (r50 or r101)"),
        None => bail!(
            "{} is a torchvision checkpoint: give --arch r50|r101",
            model.checkpoint.display()
        ),
    };
    let normalization = match model.options.normalization {
        Some(NormalizationPreset::Drive) => Normalization::DRIVE,
        Some(NormalizationPreset::Imagenet) => Normalization::IMAGENET,
        Some(NormalizationPreset::Computed) => {
            bail!("--normalization computed needs training images; use drive or imagenet")
        }
        None => bail!(
            "{} is a torchvision checkpoint: give --normalization drive|imagenet",
            model.checkpoint.display()
        ),
    };
    Ok(Predictor::from_torchvision(
        &model.checkpoint,
        &config,
        normalization,
        model.options.imgsz.unwrap_or(512),
        device,
    )?)
}

impl BackendJob for PredictJob {
    type Output = Result<PredictReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output {
        let predictor = predictor::<B::InnerBackend>(&self.model, &device)?;
        println!(
            "predicting {} image(s) on {device_name} at {}×{}{}{}",
            self.inputs.len(),
            predictor.imgsz,
            predictor.imgsz,
            if self.options.tta { ", flip TTA" } else { "" },
            self.options
                .tiling
                .map_or(String::new(), |t| format!(", tiles of {} px", t.tile))
        );
        let tty = std::io::stderr().is_terminal();
        let report = predict_files(
            &predictor,
            &self.inputs,
            self.fov.as_deref(),
            &self.out,
            &self.options,
            |done, total, file, result| {
                let status = match result {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("FAILED: {e}"),
                };
                if tty && result.is_ok() {
                    let width = 30;
                    let filled = done * width / total.max(1);
                    eprint!(
                        "\r[{}{}] {done}/{total} {}   ",
                        "#".repeat(filled),
                        "-".repeat(width - filled),
                        file.display()
                    );
                    if done == total {
                        eprintln!();
                    }
                } else {
                    if tty {
                        eprintln!();
                    }
                    println!("[{done}/{total}] {}: {status}", file.display());
                }
            },
        );
        Ok(report)
    }
}

fn run_predict(
    model: ModelArgs,
    inputs: Vec<PathBuf>,
    fov: Option<PathBuf>,
    out: &Path,
    options: PredictOptions,
) -> Result<PredictReport> {
    let device = model.options.device;
    let report = dispatch(
        device,
        PredictJob {
            model,
            inputs,
            fov,
            out: out.to_path_buf(),
            options,
        },
    )??;
    println!(
        "wrote {} prediction(s) to {}",
        report.written.len(),
        out.display()
    );
    for (file, reason) in &report.failed {
        eprintln!("failed: {}: {reason}", file.display());
    }
    Ok(report)
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let inputs = list_inputs(&args.input)?;
    let model = ModelArgs {
        checkpoint: args.checkpoint,
        options: args.model,
    };
    let report = run_predict(
        model,
        inputs,
        args.fov,
        &args.out,
        args.inference.options()?,
    )?;
    if !report.failed.is_empty() {
        bail!(
            "{} of {} image(s) failed",
            report.failed.len(),
            report.failed.len() + report.written.len()
        );
    }
    Ok(())
}

pub fn evaluate_cmd(args: EvaluateArgs) -> Result<()> {
    let data = DatasetDir::open(&args.data)?.with_holdout(args.holdout);
    let predictions = match (&args.predictions, &args.checkpoint) {
        (Some(dir), None) => dir.clone(),
        (None, Some(checkpoint)) => {
            let out_dir = args
                .out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("predictions");
            let inputs: Vec<PathBuf> = data
                .entries(args.split)?
                .into_iter()
                .map(|e| e.image)
                .collect();
            let model = ModelArgs {
                checkpoint: checkpoint.clone(),
                options: args.model.clone(),
            };
            // The dataset's own FOV masks are used through evaluation; predictions derive theirs.
            let report = run_predict(model, inputs, None, &out_dir, args.inference.options()?)?;
            if !report.failed.is_empty() {
                bail!("{} image(s) could not be predicted", report.failed.len());
            }
            out_dir
        }
        _ => bail!("give --predictions DIR or --checkpoint PATH"),
    };
    let threshold = (args.inference.threshold.clamp(0.0, 1.0) * 255.0).round() as u8;
    let report: EvaluationReport = evaluate(&predictions, &data, args.split, threshold.max(1))?;
    if !args.fov {
        println!("{}", report.table(false));
    }
    println!("{}", report.table(true));
    let csv = report.write(&args.out)?;
    println!("report: {} and {}", args.out.display(), csv.display());
    Ok(())
}
