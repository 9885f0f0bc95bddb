//! `retina-seg evaluate`: DRIVE-protocol metrics of a folder of predictions, or of a checkpoint
//! (which first predicts the split, with the dataset's own FOV masks, next to the report).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use drive_data::{DatasetDir, Split};
use seg_train::evaluate::{evaluate_folders, EvaluationReport};

use crate::choices::SplitArg;
use crate::model_args::{run_predict, InferenceArgs, ModelArgs, ModelOptions};
use crate::ranges::whole;

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
    /// Dataset with ground truth (either layout).
    #[arg(long)]
    data: PathBuf,
    /// The split to evaluate.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// DRIVE layout: training images held out for validation [0 to 10000].
    #[arg(long, default_value_t = drive_data::layout::DEFAULT_HOLDOUT,
          value_parser = whole::<usize>(0, 10_000))]
    holdout: usize,
    /// Print only the table inside the FOV (the DRIVE protocol); by default both tables.
    #[arg(long)]
    fov_only: bool,
    /// JSON report path, a CSV is written next to it [default: evaluation-<split>.json in the
    /// checkpoint's run folder, or beside the predictions folder].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    inference: InferenceArgs,
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    let data = DatasetDir::open(&args.data)?.with_holdout(args.holdout);
    let split: Split = args.split.into();
    let report_name = format!("evaluation-{split}.json");
    let (predictions, out) = match (args.predictions.first(), &args.checkpoint) {
        (Some(dir), None) => {
            let beside = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from(&report_name), |p| p.join(&report_name));
            (args.predictions.clone(), args.out.clone().unwrap_or(beside))
        }
        (None, Some(checkpoint)) => {
            let model = ModelArgs::new(checkpoint.clone(), args.model.clone());
            let out = match &args.out {
                Some(out) => out.clone(),
                None => model.run_folder()?.join(&report_name),
            };
            let folder = out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(PathBuf::new, PathBuf::from);
            let predictions = folder.join(format!("predictions-{split}"));
            // The split's samples carry the FOV the evaluation uses (the dataset's masks, or
            // derived the same way): prediction and scoring see the same field of view.
            let samples = data.load(split)?;
            let report = run_predict(model, samples, &predictions, args.inference.options()?)?;
            if !report.failed.is_empty() {
                bail!("{} image(s) could not be predicted", report.failed.len());
            }
            (vec![predictions], out)
        }
        _ => bail!("give --predictions DIR or --checkpoint PATH"),
    };
    let report: EvaluationReport =
        evaluate_folders(&predictions, &data, split, args.inference.threshold_level())?;
    if !args.fov_only {
        println!("{}", report.table(false));
    }
    println!("{}", report.table(true));
    let csv = report.write(&out)?;
    println!("report: {} and {}", out.display(), csv.display());
    Ok(())
}
