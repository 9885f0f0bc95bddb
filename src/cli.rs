//! Command-line interface: `synth`, `check-data`, `train`, `predict`, `check-predictions`,
//! `evaluate`, `compare`, `export`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::choices::LayoutArg;
use crate::dataset_args::DatasetArgs;
use crate::ranges::whole;
use crate::{check_cmd, compare_cmd, data_cmd, evaluate_cmd, export_cmd, predict_cmd, train_cmd};

#[derive(Parser)]
#[command(
    name = "retina-seg",
    version,
    about = "Retinal vessel segmentation (DeepLabV3 and DeepLabV3+, Burn)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Each subcommand takes negative numbers as values (`--epochs -1`), so that its flag's own
/// range check answers, naming the flag.
#[derive(Subcommand)]
enum Command {
    /// Write a synthetic dataset (exact ground truth) in the layout, names, formats and size of
    /// DRIVE (either layout), STARE, CHASE_DB1, HRF or FIVES.
    #[command(allow_negative_numbers = true)]
    Synth {
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Folder layout and file formats.
        #[arg(long, value_enum, default_value_t = LayoutArg::Kaggle)]
        layout: LayoutArg,
        /// Number of images over all splits [3 to 10000].
        #[arg(long, default_value_t = 20, value_parser = whole::<usize>(3, 10_000))]
        count: usize,
        /// Seed of the generator: the same seed gives the same images.
        #[arg(long, default_value_t = 0, value_parser = whole::<u64>(0, u64::MAX))]
        seed: u64,
        /// Image width in pixels [default: the dataset's (DRIVE 565, STARE 700, CHASE_DB1 999,
        /// HRF 3504, FIVES 2048); 32 to 8192].
        #[arg(long, value_parser = whole::<u32>(32, 8192))]
        width: Option<u32>,
        /// Image height in pixels [default: the dataset's (DRIVE 584, STARE 605, CHASE_DB1 960,
        /// HRF 2336, FIVES 2048); 32 to 8192].
        #[arg(long, value_parser = whole::<u32>(32, 8192))]
        height: Option<u32>,
    },
    /// Detect a dataset's layout, pair its files and decode them; report what was found
    /// (images, labels, FOV source, split) and sizes.
    #[command(allow_negative_numbers = true)]
    CheckData {
        /// Dataset root: the folder DRIVE, STARE, CHASE_DB1, HRF or FIVES unpacked to.
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        dataset: DatasetArgs,
        /// Also write every split as read (images, vessel labels, FOV masks — from files or
        /// derived — as PNG, masks 0/255) into this folder, listed in its `split.json`: the same
        /// images, labels, FOV and validation hold-out for another program, e.g. a PyTorch
        /// script.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
    },
    /// Train DeepLabV3 or DeepLabV3+ (presets: `quick` and the original experiments,
    /// overridable).
    #[command(allow_negative_numbers = true)]
    Train(train_cmd::TrainArgs),
    /// Predict vessel masks, probabilities and overlays at the images' original resolution.
    #[command(allow_negative_numbers = true)]
    Predict(predict_cmd::PredictArgs),
    /// After an array job: whether every input was predicted exactly once (from the run's
    /// manifests); non-zero exit when not.
    CheckPredictions(check_cmd::CheckArgs),
    /// DRIVE-protocol metrics of predictions (or of a checkpoint) against ground truth.
    #[command(allow_negative_numbers = true)]
    Evaluate(evaluate_cmd::EvaluateArgs),
    /// Runs or evaluations side by side: table with differences, overlaid ROC, PR and training
    /// curves (HTML, PNG, CSV).
    Compare(compare_cmd::CompareArgs),
    /// Write a trained model for PyTorch: a torchvision or segmentation_models_pytorch
    /// state_dict (safetensors), or SMP's save_pretrained folder.
    Export(export_cmd::ExportArgs),
}

/// Parses `args` (program name first) and runs the command; errors go to stderr.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    crate::console::install();
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
        Command::CheckData {
            data,
            dataset,
            export,
        } => data_cmd::check_data(&data, &dataset, export.as_deref()),
        Command::Train(args) => train_cmd::run(args),
        Command::Predict(args) => predict_cmd::predict(args),
        Command::Evaluate(args) => evaluate_cmd::run(args),
        Command::CheckPredictions(args) => check_cmd::run(args),
        Command::Compare(args) => compare_cmd::run(args),
        Command::Export(args) => export_cmd::run(args),
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
