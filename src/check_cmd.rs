//! `retina-seg check-predictions`: after an array job, whether every input was predicted exactly
//! once with one model and settings, from the run's manifests.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use seg_train::predict::inputs::{list_input_files, read_input_list};
use seg_train::predict::manifest::coverage;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The prediction run's output folder (its `manifest-*.jsonl`).
    #[arg(long)]
    out: PathBuf,
    /// The run's input: an image file or a folder (searched recursively), as given to predict.
    #[arg(
        long,
        required_unless_present = "input_list",
        conflicts_with = "input_list"
    )]
    input: Option<PathBuf>,
    /// The run's input list (one path per line), as given to predict.
    #[arg(long, value_name = "FILE")]
    input_list: Option<PathBuf>,
}

/// At most this many names per category are printed.
const SHOWN: usize = 20;

pub fn run(args: CheckArgs) -> Result<()> {
    let inputs = match (&args.input, &args.input_list) {
        (Some(input), None) => list_input_files(input)?,
        (None, Some(list)) => read_input_list(list)?,
        _ => bail!("give --input DIR or --input-list FILE"),
    };
    let report = coverage(&inputs, &args.out)?;
    println!(
        "{}: {} of {} images predicted",
        args.out.display(),
        report.done,
        report.total
    );
    let list = |title: &str, names: Vec<String>| {
        if names.is_empty() {
            return;
        }
        println!("{title} ({}):", names.len());
        for name in names.iter().take(SHOWN) {
            println!("  {name}");
        }
        if names.len() > SHOWN {
            println!("  … and {} more", names.len() - SHOWN);
        }
    };
    list(
        "missing (no manifest entry, or outputs gone)",
        report.missing.clone(),
    );
    list(
        "failed",
        report
            .failed
            .iter()
            .map(|(input, why)| format!("{input}: {why}"))
            .collect(),
    );
    list(
        "predicted by more than one shard (tasks with different shard counts)",
        report
            .duplicates
            .iter()
            .map(|(input, manifests)| {
                let names: Vec<String> = manifests
                    .iter()
                    .map(|m| {
                        m.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .to_string()
                    })
                    .collect();
                format!("{input}: {}", names.join(", "))
            })
            .collect(),
    );
    list(
        "predicted with another model or settings than the rest",
        report.mixed.clone(),
    );
    if !report.is_complete() {
        bail!(
            "the run is incomplete: rerun the tasks of the missing and failed images (a rerun \
             skips what is done)"
        );
    }
    println!("complete: every image predicted exactly once, with one model and settings");
    Ok(())
}
