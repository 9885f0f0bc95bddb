//! `retina-seg`: retinal vessel segmentation with DeepLabV3 on Burn.
//!
//! Subcommands: `synth` (write a synthetic DRIVE-like set), `check-data` (inspect a dataset).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod data_cmd;

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
        /// `kaggle` (train_images/ …, PNG) or `drive` (training/, test/, TIFF + GIF).
        #[arg(long, default_value = "kaggle")]
        layout: drive_data::Layout,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Synth {
            out,
            layout,
            count,
            seed,
            width,
            height,
        } => data_cmd::synth(&out, layout, count, seed, width, height),
        Command::CheckData { data, holdout } => data_cmd::check_data(&data, holdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
