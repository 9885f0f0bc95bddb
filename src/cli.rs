//! Command-line interface: `synth`, `check-data`, `train`, `predict`, `evaluate`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::choices::LayoutArg;
use crate::{data_cmd, evaluate_cmd, predict_cmd, train_cmd};

#[derive(Parser)]
#[command(
    name = "retina-seg",
    version,
    about = "Retinal vessel segmentation (DeepLabV3, Burn)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic DRIVE-like dataset (exact ground truth) in either layout.
    Synth {
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Folder layout and file formats.
        #[arg(long, value_enum, default_value_t = LayoutArg::Kaggle)]
        layout: LayoutArg,
        /// Number of images over all splits.
        #[arg(long, default_value_t = 20)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 565)]
        width: u32,
        #[arg(long, default_value_t = 584)]
        height: u32,
    },
    /// Detect a dataset's layout, pair its files and decode them; report counts and sizes.
    CheckData {
        /// Dataset root (Kaggle split or original DRIVE layout).
        #[arg(long)]
        data: PathBuf,
        /// DRIVE layout: training images held out for validation.
        #[arg(long, default_value_t = drive_data::layout::DEFAULT_HOLDOUT)]
        holdout: usize,
    },
    /// Train DeepLabV3 (the original experiments' presets, overridable).
    Train(train_cmd::TrainArgs),
    /// Predict vessel masks, probabilities and overlays at the images' original resolution.
    Predict(predict_cmd::PredictArgs),
    /// DRIVE-protocol metrics of predictions (or of a checkpoint) against ground truth.
    Evaluate(evaluate_cmd::EvaluateArgs),
}

/// Parses `args` (program name first) and runs the command; errors go to stderr.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Synth {
            out,
            layout,
            count,
            seed,
            width,
            height,
        } => data_cmd::synth(&out, layout.into(), count, seed, width, height),
        Command::CheckData { data, holdout } => data_cmd::check_data(&data, holdout),
        Command::Train(args) => train_cmd::run(args),
        Command::Predict(args) => predict_cmd::predict(args),
        Command::Evaluate(args) => evaluate_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `retina-seg train --preset <preset>` with the process's own arguments appended: what the
/// `train_*` examples do.
pub fn train_preset(preset: &str) -> ExitCode {
    let mut args: Vec<OsString> = vec![
        "retina-seg".into(),
        "train".into(),
        "--preset".into(),
        preset.into(),
    ];
    args.extend(std::env::args_os().skip(1));
    main(args)
}
