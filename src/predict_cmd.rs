//! `retina-seg predict`: a file, a folder (recursively) or a list of images, optionally one shard
//! of many (an array job's task), resumable, decoding and writing beside the model.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use seg_train::device::{dispatch, BackendJob};
use seg_train::predict::inputs::{
    check_outside_inputs, list_input_files, read_input_list, InputFile,
};
use seg_train::predict::manifest::{ManifestEntry, Status};
use seg_train::predict::run::{peak_rss_bytes, predict_run, RunOptions, RunSummary};
use seg_train::predict::shard::Shard;

use crate::model_args::{describe, InferenceArgs, ModelArgs, ModelOptions};
use crate::ranges::whole;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Our checkpoint (a checkpoint folder or a `train --out` folder: best-iou), or a PyTorch
    /// checkpoint with 2 classes — a torchvision DeepLabV3 or an SMP DeepLabV3+ `.pth` /
    /// safetensors (then --backbone and --normalization are required, --arch deeplabv3plus for
    /// DeepLabV3+).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    model: ModelOptions,
    /// An image file, or a folder of images (searched recursively; the outputs keep the
    /// folder's layout).
    #[arg(
        long,
        required_unless_present = "input_list",
        conflicts_with = "input_list"
    )]
    input: Option<PathBuf>,
    /// A text file naming one image per line (relative to the file's folder); the outputs keep
    /// the paths relative to the deepest folder holding them all.
    #[arg(long, value_name = "FILE")]
    input_list: Option<PathBuf>,
    /// Output folder: <stem>_mask.png, <stem>_prob.png, <stem>_overlay.png per image, and
    /// manifest-K-of-N.jsonl (one line per image, as it is done).
    #[arg(long)]
    out: PathBuf,
    /// Folder of FOV masks, matched to each image by its file name (`<stem>`, `<stem>_mask` or
    /// `<stem>_fov`, in the folder mirroring the image's; default: derived from each image).
    #[arg(long, value_name = "DIR")]
    fov_masks: Option<PathBuf>,
    /// Predict only shard K of N (K/N, 1 ≤ K ≤ N): the inputs whose relative path hashes to K,
    /// the same on every machine. `auto`: from a SLURM array task (SLURM_ARRAY_TASK_ID,
    /// SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN) or a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, with --shard-count or RETINA_SEG_SHARD_COUNT).
    #[arg(long, value_name = "K/N|auto")]
    shard: Option<String>,
    /// The number of shards for `--shard auto` in a Kubernetes Indexed Job (its completions).
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, 1_000_000))]
    shard_count: Option<usize>,
    /// Leave images whose three outputs exist (a rerun after preemption redoes only the rest)
    /// [default: true with --shard, else false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    skip_existing: Option<bool>,
    /// Decoding threads beside the model (the writer has its own); 0 reads, predicts and writes
    /// one image at a time [0 to 64].
    #[arg(long, default_value_t = 2, value_parser = whole::<usize>(0, 64))]
    workers: usize,
    /// Model inputs per forward pass: whole images, or sliding-window tiles of one image or of
    /// several [default: as many as make 2^18 pixels on the CPU (64 tiles of 64×64, one
    /// 512×512 input), 2^20 on a GPU; 1 to 256].
    #[arg(long, value_parser = whole::<usize>(1, 256))]
    batch: Option<usize>,
    #[command(flatten)]
    inference: InferenceArgs,
}

struct CohortJob {
    model: ModelArgs,
    inputs: Vec<InputFile>,
    out: PathBuf,
    options: RunOptions,
}

impl BackendJob for CohortJob {
    type Output = Result<RunSummary>;

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output {
        let mut predictor = self.model.predictor::<B::InnerBackend>(&device)?;
        let o = &self.options;
        predictor.batch = o.batch.or(predictor.batch);
        let setup = describe(&predictor, &o.predict, &device_name);
        println!(
            "predicting shard {} of {} image(s) with {setup}, {} decoding thread(s)",
            o.shard,
            self.inputs.len(),
            o.workers,
        );
        let mut progress = Progress::new();
        let summary = predict_run(
            &predictor,
            &self.inputs,
            &self.out,
            o,
            |entry, done, total| progress.update(entry, done, total),
        )?;
        Ok(summary)
    }
}

/// A progress bar with images/s and the time left on a terminal; in a log, a line at most every
/// ten seconds and one per failure.
struct Progress {
    tty: bool,
    start: Instant,
    last_line: Option<Instant>,
    predicted: usize,
}

impl Progress {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last_line: None,
            predicted: 0,
        }
    }

    fn update(&mut self, entry: &ManifestEntry, done: usize, total: usize) {
        if entry.status == Status::Ok {
            self.predicted += 1;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = self.predicted as f64 / elapsed.max(1e-9);
        let eta = match rate > 0.0 {
            true => format_duration((total - done) as f64 / rate),
            false => "-".into(),
        };
        let status = format!("{done}/{total}, {rate:.2} img/s, {eta} left");
        if let (Status::Failed, Some(error)) = (entry.status, &entry.error) {
            if self.tty {
                eprintln!();
            }
            println!("[{done}/{total}] {}: FAILED: {error}", entry.input);
        }
        if self.tty {
            let width = 30;
            let filled = done * width / total.max(1);
            let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
            eprint!("\r[{bar}] {status}   ");
            if done == total {
                eprintln!();
            }
        } else if done == total
            || self
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            println!("[{status}]");
            self.last_line = Some(Instant::now());
        }
    }
}

fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The shard of `--shard`: `K/N`, `auto` (from the scheduler's environment), or all.
fn shard(args: &PredictArgs) -> Result<Shard> {
    match args.shard.as_deref() {
        None => {
            if args.shard_count.is_some() {
                bail!("--shard-count is for --shard auto");
            }
            Ok(Shard::ALL)
        }
        Some("auto") => Ok(Shard::from_env(
            |v| std::env::var(v).ok(),
            args.shard_count,
        )?),
        Some(k_of_n) => {
            if args.shard_count.is_some() {
                bail!("--shard-count is for --shard auto; --shard {k_of_n} already says N");
            }
            Ok(k_of_n.parse::<Shard>()?)
        }
    }
}

fn inputs(args: &PredictArgs) -> Result<Vec<InputFile>> {
    Ok(match (&args.input, &args.input_list) {
        (Some(input), None) => list_input_files(input)?,
        (None, Some(list)) => read_input_list(list)?,
        _ => bail!("give --input (a file or folder) or --input-list FILE"),
    })
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let shard = shard(&args)?;
    let inputs = inputs(&args)?;
    check_outside_inputs(&args.out, &inputs)?;
    let options = RunOptions {
        predict: args.inference.options()?,
        fov_dir: args.fov_masks.clone(),
        shard,
        skip_existing: args.skip_existing.unwrap_or(args.shard.is_some()),
        workers: args.workers,
        batch: args.batch,
    };
    let model = ModelArgs::new(args.checkpoint, args.model);
    let job = CohortJob {
        inputs,
        out: args.out.clone(),
        options,
        model: model.clone(),
    };
    let summary = dispatch(model.device(), job)??;
    report(&summary, &args.out)
}

fn report(summary: &RunSummary, out: &Path) -> Result<()> {
    let memory = peak_rss_bytes().map_or(String::new(), |b| {
        format!(", peak memory {:.0} MiB", b as f64 / (1024.0 * 1024.0))
    });
    println!(
        "wrote {} prediction(s) to {} ({} already there, {} failed) in {:.1} s, {:.2} img/s{memory}; \
         manifest {}",
        summary.written,
        out.display(),
        summary.skipped,
        summary.failed.len(),
        summary.seconds,
        summary.written as f64 / summary.seconds.max(1e-9),
        summary.manifest.display()
    );
    for (file, reason) in &summary.failed {
        eprintln!("failed: {}: {reason}", file.display());
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} of {} image(s) failed",
            summary.failed.len(),
            summary.total
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(42.4), "42 s");
        assert_eq!(format_duration(209.0), "3 min 29 s");
        assert_eq!(format_duration(7_380.0), "2 h 3 min");
    }
}
