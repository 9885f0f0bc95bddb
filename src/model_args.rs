//! The model and inference options `predict` and `evaluate` share, and predicting a split's
//! samples (what `evaluate --checkpoint` does).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use drive_data::{Normalization, Sample};
use seg_train::device::{dispatch, BackendJob};
use seg_train::model::Tiling;
use seg_train::predict::{
    check_imgsz, predict_sample, PredictOptions, PredictReport, PredictionFiles, Predictor,
};
use seg_train::{DeviceChoice, TrainError};

use crate::choices::{
    model_config, ArchArg, BackboneArg, DeviceParser, NormalizationArg, OutputStrideArg,
};
use crate::ranges::{real, whole, End::Closed};

/// How to read the checkpoint and where to run it (shared by `predict` and `evaluate`).
#[derive(Args, Debug, Clone)]
pub struct ModelOptions {
    /// For a PyTorch checkpoint: its architecture (torchvision's DeepLabV3 or SMP's DeepLabV3+).
    #[arg(long, value_enum, default_value_t = ArchArg::DeepLabV3)]
    arch: ArchArg,
    /// For a PyTorch checkpoint: its ResNet backbone (required).
    #[arg(long, value_enum)]
    backbone: Option<BackboneArg>,
    /// For a PyTorch DeepLabV3+ checkpoint: the output stride it was built with (SMP's
    /// `encoder_output_stride`) [default: 16].
    #[arg(long, value_enum)]
    output_stride: Option<OutputStrideArg>,
    /// For a torchvision `.pth`: the normalisation it was trained with (drive or imagenet).
    #[arg(long, value_enum)]
    normalization: Option<NormalizationArg>,
    /// Model input size (default: the checkpoint's; 512 for a `.pth`) [32 to 4096].
    #[arg(long, value_parser = whole::<usize>(32, 4096))]
    imgsz: Option<usize>,
    /// Where to run the model: auto, cpu, cuda[:N] (NVIDIA GPU N) or wgpu[:N] (the N-th discrete
    /// GPU through Vulkan/Metal/DX12).
    #[arg(long, default_value = "auto", value_parser = DeviceParser)]
    device: DeviceChoice,
}

impl ModelOptions {
    /// For one of this project's checkpoints (which carries its own settings), on `device`.
    pub fn for_checkpoint(device: DeviceChoice) -> Self {
        Self {
            arch: ArchArg::DeepLabV3,
            backbone: None,
            output_stride: None,
            normalization: None,
            imgsz: None,
            device,
        }
    }
}

/// Sliding windows, flip TTA and the threshold (shared by `predict` and `evaluate`).
#[derive(Args, Debug, Clone)]
pub struct InferenceArgs {
    /// Horizontal-flip test-time augmentation (average of probabilities).
    #[arg(long)]
    tta: bool,
    /// Sliding windows of N×N original pixels (each resized to --imgsz), for large images; a
    /// tile at least as large as an image predicts that image whole [32 to 65536].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(32, 65_536))]
    tile: Option<usize>,
    /// Window overlap, a fraction of the tile [0 to 0.9].
    #[arg(long, default_value_t = 0.25, allow_hyphen_values = true,
          value_parser = real((0.0, Closed), (0.9, Closed)))]
    overlap: f64,
    /// Vessel probability threshold [0 to 1].
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true,
          value_parser = real((0.0, Closed), (1.0, Closed)))]
    threshold: f64,
}

impl InferenceArgs {
    pub fn options(&self) -> Result<PredictOptions> {
        Ok(PredictOptions {
            threshold: self.threshold as f32,
            tta: self.tta,
            tiling: self.tile.map(|tile| Tiling {
                tile,
                overlap: self.overlap,
            }),
        })
    }

    /// The threshold as an 8-bit level of the written probability maps.
    pub fn threshold_level(&self) -> u8 {
        ((self.threshold * 255.0).round() as u8).max(1)
    }
}

/// Where the model comes from.
#[derive(Debug, Clone)]
pub struct ModelArgs {
    pub checkpoint: PathBuf,
    pub options: ModelOptions,
}

impl ModelArgs {
    pub fn new(checkpoint: PathBuf, options: ModelOptions) -> Self {
        Self {
            checkpoint,
            options,
        }
    }

    fn is_pytorch_file(&self) -> bool {
        self.checkpoint.is_file()
            && self
                .checkpoint
                .extension()
                .is_some_and(|e| e == "pth" || e == "pt" || e == "safetensors")
    }

    /// The folder a run's outputs belong in: the `train --out` folder of one of our checkpoints,
    /// or the folder holding a `.pth`.
    pub fn run_folder(&self) -> Result<PathBuf> {
        if self.is_pytorch_file() {
            return Ok(self
                .checkpoint
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default());
        }
        let dir = seg_train::model::checkpoint::find(&self.checkpoint)?;
        // <run>/checkpoints/<name>
        Ok(dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "checkpoints"))
            .and_then(Path::parent)
            .unwrap_or(&dir)
            .to_path_buf())
    }

    /// Where to run the model.
    pub fn device(&self) -> DeviceChoice {
        self.options.device
    }

    /// The model, ready to predict.
    pub fn predictor<B: burn::prelude::Backend>(&self, device: &B::Device) -> Result<Predictor<B>> {
        if !self.is_pytorch_file() {
            let mut p = Predictor::from_checkpoint(&self.checkpoint, device)?;
            if let Some(size) = self.options.imgsz {
                check_imgsz(size, &p.config).map_err(|e| anyhow::anyhow!("--imgsz {size}: {e}"))?;
                p.imgsz = size;
            }
            return Ok(p);
        }
        let Some(backbone) = self.options.backbone else {
            bail!(
                "{} is a PyTorch checkpoint: give --backbone r50|r101 (and --arch deeplabv3plus \
                 for an SMP DeepLabV3+)",
                self.checkpoint.display()
            );
        };
        let config = model_config(self.options.arch, backbone, self.options.output_stride)?;
        let normalization = match self.options.normalization {
            Some(NormalizationArg::Drive) => Normalization::DRIVE,
            Some(NormalizationArg::Imagenet) => Normalization::IMAGENET,
            Some(NormalizationArg::Computed) => {
                bail!("--normalization computed needs training images; use drive or imagenet")
            }
            None => bail!(
                "{} is a PyTorch checkpoint: give --normalization drive|imagenet",
                self.checkpoint.display()
            ),
        };
        Ok(Predictor::from_pretrained(
            &self.checkpoint,
            &config,
            normalization,
            self.options.imgsz.unwrap_or(512),
            device,
        )?)
    }
}

struct PredictJob {
    model: ModelArgs,
    samples: Vec<Sample>,
    out: PathBuf,
    options: PredictOptions,
}

/// One line per image (and a progress bar on a terminal).
fn report_progress(
    done: usize,
    total: usize,
    file: &Path,
    result: &Result<PredictionFiles, TrainError>,
) {
    let tty = std::io::stderr().is_terminal();
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
        return;
    }
    if tty {
        eprintln!();
    }
    match result {
        Ok(_) => println!("[{done}/{total}] {}: ok", file.display()),
        Err(e) => println!("[{done}/{total}] {}: FAILED: {e}", file.display()),
    }
}

/// The model, device, input size, TTA and sliding window of a prediction run, in words.
pub fn describe<B: burn::prelude::Backend>(
    predictor: &Predictor<B>,
    options: &PredictOptions,
    device_name: &str,
) -> String {
    let tta = if options.tta { ", flip TTA" } else { "" };
    let tiles = options
        .tiling
        .map_or(String::new(), |t| format!(", tiles of {} px", t.tile));
    let (model, size) = (predictor.config.describe(), predictor.imgsz);
    format!("{model} on {device_name} at {size}×{size}{tta}{tiles}")
}

impl BackendJob for PredictJob {
    type Output = Result<PredictReport>;

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output {
        let predictor = self.model.predictor::<B::InnerBackend>(&device)?;
        let setup = describe(&predictor, &self.options, &device_name);
        println!("predicting {} image(s) with {setup}", self.samples.len());
        let total = self.samples.len();
        let mut report = PredictReport::default();
        let mut record = |i: usize, path: &Path, result: Result<PredictionFiles, TrainError>| {
            report_progress(i + 1, total, path, &result);
            match result {
                Ok(files) => report.written.push(files),
                Err(e) => report.failed.push((path.to_path_buf(), e.to_string())),
            }
        };
        for (i, sample) in self.samples.iter().enumerate() {
            let result = predict_sample(&predictor, sample, &self.out, &self.options);
            record(i, &sample.image_path, result);
        }
        Ok(report)
    }
}

/// Predicts `inputs` into `out`, printing progress and failures.
pub fn run_predict(
    model: ModelArgs,
    samples: Vec<Sample>,
    out: &Path,
    options: PredictOptions,
) -> Result<PredictReport> {
    let device = model.options.device;
    let job = PredictJob {
        model,
        samples,
        out: out.to_path_buf(),
        options,
    };
    let report = dispatch(device, job)??;
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
