//! `retina-seg evaluate`: DRIVE-protocol metrics of a folder of predictions, or of a checkpoint
//! (which first predicts the split, with the dataset's own FOV masks, next to the report).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use drive_data::{Sample, Split};
use seg_train::evaluate::evaluation::EXACT_PIXELS;
use seg_train::evaluate::{evaluate_samples, threshold_from, EvaluationReport};
use seg_train::predict::PredictOptions;
use seg_train::report::{report_dir, write_report};

use crate::choices::SplitArg;
use crate::dataset_args::{fov_source, DatasetArgs};
use crate::model_args::{run_predict, InferenceArgs, ModelArgs, ModelOptions};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Folder of predictions (`*_prob.png` or `*_mask.png` at any depth, matched by id); give
    /// several (the output folders of a sharded `predict`) for one split spread over them.
    #[arg(long, conflicts_with = "checkpoint", num_args = 1..)]
    predictions: Vec<PathBuf>,
    /// Predict the split with this checkpoint first (into `predictions-<split>/` beside the
    /// report), then evaluate.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[command(flatten)]
    model: ModelOptions,
    /// Dataset with ground truth: the folder DRIVE (either layout), STARE, CHASE_DB1, HRF or
    /// FIVES unpacked to (the checkpoint may have been trained on another).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    dataset: DatasetArgs,
    /// The split to evaluate.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// Print only the table inside the FOV (the DRIVE protocol); by default both tables.
    #[arg(long)]
    fov_only: bool,
    /// JSON report path, a CSV is written next to it [default: evaluation-<split>.json in the
    /// checkpoint's run folder, or beside the predictions folder].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Apply the best-F1 threshold of this evaluation of the validation split (its
    /// `evaluation-valid.json`) instead of --threshold.
    #[arg(
        long,
        value_name = "VALIDATION_EVAL.json",
        conflicts_with = "threshold"
    )]
    threshold_from: Option<PathBuf>,
    /// Write only the JSON and CSV, not the HTML report (`<report name>/report.html` with the
    /// curves and every image's overlay).
    #[arg(long)]
    no_report: bool,
    #[command(flatten)]
    inference: InferenceArgs,
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    let data = args.dataset.open(&args.data)?;
    let split: Split = args.split.into();
    println!(
        "{}: {}, {split} split",
        args.data.display(),
        data.describe()
    );
    let chosen = match &args.threshold_from {
        Some(path) => {
            let point = threshold_from(path, split)?;
            println!(
                "threshold {:.4}: the best F1 ({:.2} %) of {}",
                point.probability,
                100.0 * point.f1,
                path.display()
            );
            Some(point)
        }
        None => None,
    };
    let threshold = chosen.map_or_else(|| args.inference.threshold(), |p| p.probability);
    // Decoded once: predicted (with --checkpoint), scored and drawn in the report.
    let samples = data.load(split)?;
    println!("{} images, FOV {}", samples.len(), fov_source(&samples));
    let report_name = format!("evaluation-{split}.json");
    let (predictions, out, probabilities) = match (args.predictions.first(), &args.checkpoint) {
        (Some(dir), None) => {
            let beside = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from(&report_name), |p| p.join(&report_name));
            (
                args.predictions.clone(),
                args.out.clone().unwrap_or(beside),
                None,
            )
        }
        (None, Some(checkpoint)) => {
            let model = ModelArgs::new(checkpoint.clone(), args.model.clone());
            let out = match &args.out {
                Some(out) => out.clone(),
                None => model.run_folder()?.join(&report_name),
            };
            let mut options = args.inference.options()?;
            // The written masks agree with the threshold the evaluation applies.
            options.threshold = threshold as f32;
            let (predictions, probabilities) =
                predict_split(model, samples.clone(), split, options, &out)?;
            (vec![predictions], out, probabilities)
        }
        _ => bail!("give --predictions DIR or --checkpoint PATH"),
    };
    let probabilities = probabilities.as_deref();
    let mut report: EvaluationReport = evaluate_samples(
        &predictions,
        &data,
        split,
        &samples,
        threshold,
        probabilities,
    )?;
    report.threshold_from = args.threshold_from.clone();
    if !args.fov_only {
        println!("{}", report.table(false));
    }
    println!("{}", report.table(true));
    print!("{}{}", report.width_text(), report.topology_text());
    write_all(&report, &samples, &out, !args.no_report)
}

/// Predicts the `samples` of `split` with `model` into `predictions-<split>/` beside the report
/// `out`; returns that folder and, unless the split is too large to hold them
/// ([`EXACT_PIXELS`]), the float probabilities (scored exactly). The split's samples carry the
/// FOV the evaluation uses (the dataset's masks, or derived the same way): prediction and scoring
/// see the same field of view.
pub fn predict_split(
    model: ModelArgs,
    samples: Vec<Sample>,
    split: Split,
    options: PredictOptions,
    out: &Path,
) -> Result<(PathBuf, Option<Vec<Vec<f32>>>)> {
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(PathBuf::new, PathBuf::from);
    let predictions = folder.join(format!("predictions-{split}"));
    let pixels: usize = samples.iter().map(|s| s.fov.len()).sum();
    let keep = 2 * pixels <= EXACT_PIXELS;
    if !keep {
        println!(
            "the {split} split has {pixels} pixels: its AUC comes from the written maps' levels \
             (--prob-depth 16 for the finest), not the float probabilities"
        );
    }
    let predicted = run_predict(model, samples, &predictions, options, keep)?;
    if !predicted.report.failed.is_empty() {
        bail!(
            "{} image(s) could not be predicted",
            predicted.report.failed.len()
        );
    }
    Ok((predictions, keep.then_some(predicted.probabilities)))
}

/// Writes the report's JSON and CSV at `out` and, with `html`, its page in
/// [`report_dir`]`(out)`; prints where.
pub fn write_all(
    report: &EvaluationReport,
    samples: &[Sample],
    out: &Path,
    html: bool,
) -> Result<()> {
    let csv = report.write(out)?;
    println!("report: {} and {}", out.display(), csv.display());
    if html {
        let page = write_report(report, samples, &report_dir(out))?;
        println!("        {}", page.display());
    }
    Ok(())
}
