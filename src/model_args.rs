//! The model and inference options `predict` and `evaluate` share, and predicting a split's
//! samples (what `evaluate --checkpoint` does).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use deeplab::DeepLabConfig;
use drive_data::{Normalization, Sample};
use seg_train::device::{dispatch, BackendJob};
use seg_train::model::pytorch::is_smp_pretrained;
use seg_train::model::Tiling;
use seg_train::predict::{
    check_imgsz, predict_sample_keeping, PredictOptions, PredictReport, PredictionFiles, Predictor,
};
use seg_train::{DeviceChoice, TrainError};

use crate::choices::{
    arch_of, ArchArg, BackboneArg, DeviceParser, NormalizationArg, OutputStrideArg, ProbDepthArg,
};
use crate::ranges::{real, whole, End::Closed};

/// How to read the checkpoint and where to run it (shared by `predict` and `evaluate`).
#[derive(Args, Debug, Clone)]
pub struct ModelOptions {
    /// For a PyTorch state_dict: the architecture it must be (read from the file's keys; a
    /// different one is an error).
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// For a PyTorch state_dict: the ResNet depth it must have (read from the file; a different
    /// one is an error).
    #[arg(long, value_enum)]
    backbone: Option<BackboneArg>,
    /// For an SMP DeepLabV3+ state_dict: the output stride it was built with (SMP's
    /// `encoder_output_stride`, which the file does not record) [default: 16].
    #[arg(long, value_enum)]
    output_stride: Option<OutputStrideArg>,
    /// For a PyTorch model: the normalisation it was trained with (drive or imagenet); required
    /// for a state_dict file [default for an SMP save_pretrained folder: imagenet, SMP's
    /// encoders'].
    #[arg(long, value_enum)]
    normalization: Option<NormalizationArg>,
    /// Model input size (default: the checkpoint's; 512 for a PyTorch model) [32 to 4096].
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
            arch: None,
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
    /// Bit depth of the probability maps written (`<stem>_prob.png`): 8 (levels round(255 p),
    /// what most tools read) or 16 (round(65535 p), for threshold-free scores at the
    /// literature's resolution).
    #[arg(long, value_enum, default_value_t = ProbDepthArg::Eight)]
    prob_depth: ProbDepthArg,
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
            prob_depth: self.prob_depth.into(),
        })
    }

    /// The vessel probability threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
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

    /// What `checkpoint` names.
    fn source(&self) -> Source {
        let path = &self.checkpoint;
        let state_dict = ["pth", "pt", "bin", "safetensors"];
        if path.is_file()
            && path
                .extension()
                .is_some_and(|e| state_dict.iter().any(|s| e == *s))
        {
            Source::StateDict
        } else if path.is_dir() && is_smp_pretrained(path) {
            Source::SmpFolder
        } else {
            Source::Ours
        }
    }

    /// The folder a run's outputs belong in: the `train --out` folder of one of our checkpoints,
    /// the folder holding a state_dict, or an SMP folder's parent.
    pub fn run_folder(&self) -> Result<PathBuf> {
        let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
        match self.source() {
            Source::StateDict | Source::SmpFolder => Ok(parent(&self.checkpoint)),
            Source::Ours => {
                let dir = seg_train::model::checkpoint::find(&self.checkpoint)?;
                // <run>/checkpoints/<name>
                Ok(dir
                    .parent()
                    .filter(|p| p.file_name().is_some_and(|n| n == "checkpoints"))
                    .and_then(Path::parent)
                    .unwrap_or(&dir)
                    .to_path_buf())
            }
        }
    }

    /// Where to run the model.
    pub fn device(&self) -> DeviceChoice {
        self.options.device
    }

    /// `--normalization` as a normalisation, or `default`; `None` when neither.
    fn normalization(&self, default: Option<Normalization>) -> Result<Option<Normalization>> {
        Ok(match self.options.normalization {
            Some(NormalizationArg::Drive) => Some(Normalization::DRIVE),
            Some(NormalizationArg::Imagenet) => Some(Normalization::IMAGENET),
            Some(NormalizationArg::Computed) => {
                bail!("--normalization computed needs training images; use drive or imagenet")
            }
            None => default,
        })
    }

    /// The model, ready to predict.
    pub fn predictor<B: burn::prelude::Backend>(&self, device: &B::Device) -> Result<Predictor<B>> {
        let path = &self.checkpoint;
        let imgsz = self.options.imgsz.unwrap_or(512);
        let predictor = match self.source() {
            Source::Ours => {
                let mut p = Predictor::from_checkpoint(path, device)?;
                if let Some(size) = self.options.imgsz {
                    check_imgsz(size, &p.config)
                        .map_err(|e| anyhow::anyhow!("--imgsz {size}: {e}"))?;
                    p.imgsz = size;
                }
                return Ok(p);
            }
            Source::StateDict => {
                let Some(normalization) = self.normalization(None)? else {
                    bail!(
                        "{} is a PyTorch state_dict: give --normalization drive|imagenet (what it                          was trained with)",
                        path.display()
                    );
                };
                let stride = self.options.output_stride.map(OutputStrideArg::value);
                Predictor::from_state_dict(path, stride, normalization, imgsz, device)?
            }
            Source::SmpFolder => {
                if self.options.output_stride.is_some() {
                    bail!(
                        "{}'s config.json gives the output stride: drop --output-stride",
                        path.display()
                    );
                }
                let normalization = self.normalization(Some(Normalization::IMAGENET))?;
                let normalization = normalization.unwrap_or(Normalization::IMAGENET);
                Predictor::from_smp_pretrained(path, normalization, imgsz, device)?
            }
        };
        self.check_flags(&predictor.config)?;
        Ok(predictor)
    }

    /// `--arch` and `--backbone`, when given, agree with the architecture read from the file.
    fn check_flags(&self, config: &DeepLabConfig) -> Result<()> {
        let (arch, backbone) = arch_of(config);
        let described = || {
            format!(
                "{} holds a {}",
                self.checkpoint.display(),
                config.describe()
            )
        };
        if self.options.arch.is_some_and(|a| a != arch) {
            bail!("{}, not what --arch says: drop --arch", described());
        }
        if self.options.backbone.is_some_and(|b| Some(b) != backbone) {
            bail!("{}, not what --backbone says: drop --backbone", described());
        }
        Ok(())
    }
}

/// Where a model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// One of this project's checkpoints (or a training run folder).
    Ours,
    /// A torchvision or SMP state_dict file.
    StateDict,
    /// SMP's `save_pretrained` folder.
    SmpFolder,
}

struct PredictJob {
    model: ModelArgs,
    samples: Vec<Sample>,
    out: PathBuf,
    options: PredictOptions,
    /// Keep each image's float probability (for exact threshold-free scores).
    keep: bool,
}

/// What [`run_predict`] did: the report, and the probabilities it kept (one per sample, in
/// order; empty when not kept or when an image failed).
pub struct Predicted {
    /// Outputs written and failures.
    pub report: PredictReport,
    /// The float vessel probabilities, when kept.
    pub probabilities: Vec<Vec<f32>>,
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
    let batch = predictor.batch_size();
    format!(
        "{model} on {device_name} at {size}×{size}{tta}{tiles}, {batch} input(s) per forward pass"
    )
}

impl BackendJob for PredictJob {
    type Output = Result<Predicted>;

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output {
        let predictor = self.model.predictor::<B::InnerBackend>(&device)?;
        let setup = describe(&predictor, &self.options, &device_name);
        println!("predicting {} image(s) with {setup}", self.samples.len());
        let total = self.samples.len();
        let mut report = PredictReport::default();
        let mut probabilities = Vec::new();
        for (i, sample) in self.samples.iter().enumerate() {
            let result = predict_sample_keeping(&predictor, sample, &self.out, &self.options);
            let (result, prob) = match result {
                Ok((files, prob)) => (Ok(files), Some(prob)),
                Err(e) => (Err(e), None),
            };
            report_progress(i + 1, total, &sample.image_path, &result);
            match result {
                Ok(files) => report.written.push(files),
                Err(e) => report
                    .failed
                    .push((sample.image_path.clone(), e.to_string())),
            }
            if let Some(prob) = prob.filter(|_| self.keep) {
                probabilities.push(prob);
            }
        }
        if !report.failed.is_empty() {
            probabilities.clear();
        }
        Ok(Predicted {
            report,
            probabilities,
        })
    }
}

/// Predicts `samples` into `out`, printing progress and failures; with `keep`, also returns
/// their float probabilities.
pub fn run_predict(
    model: ModelArgs,
    samples: Vec<Sample>,
    out: &Path,
    options: PredictOptions,
    keep: bool,
) -> Result<Predicted> {
    let device = model.options.device;
    let job = PredictJob {
        model,
        samples,
        out: out.to_path_buf(),
        options,
        keep,
    };
    let predicted = dispatch(device, job)??;
    println!(
        "wrote {} prediction(s) to {}",
        predicted.report.written.len(),
        out.display()
    );
    for (file, reason) in &predicted.report.failed {
        eprintln!("failed: {}: {reason}", file.display());
    }
    Ok(predicted)
}
