//! A prediction run over many images, as one task of an array job: the inputs of one
//! [`Shard`], decoded on worker threads, through the model in batches on the calling thread,
//! written on another thread — bounded queues between the stages, so memory stays flat whatever
//! the number of images. Every output is written under a temporary name and renamed when
//! complete. A manifest of JSON lines (`manifest-K-of-N.jsonl` in the output folder) records each
//! input as it is done, with the model's fingerprint and the settings that shape the outputs
//! ([`RunSettings`]); a rerun skips an input only when a manifest says it was completed with
//! the same model and settings and its outputs are there at the image's size, and predicts the
//! others again — so a task killed at any moment and run again leaves exactly the files of an
//! uninterrupted run, and a rerun with another model or threshold redoes everything.
//! [`coverage`](crate::predict::manifest::coverage) checks a run's manifests against its inputs.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use burn::prelude::*;
use drive_data::Sample;

use crate::error::TrainError;
use crate::predict::fov_masks::FovMasks;
use crate::predict::inputs::InputFile;
use crate::predict::manifest::{latest_entries, manifest_path, ManifestEntry, RunSettings, Status};
use crate::predict::shard::Shard;
use crate::predict::{
    output_paths_for, prediction_images, read_input, write_prediction, PredictOptions,
    PredictionFiles, Predictor,
};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Threshold, TTA, sliding window.
    pub predict: PredictOptions,
    /// A folder of FOV masks, matched to the images by file name (see
    /// [`crate::predict::fov_masks`]; default: each FOV derived from its image).
    pub fov_dir: Option<PathBuf>,
    /// The inputs this task takes.
    pub shard: Shard,
    /// Leave inputs whose three outputs exist as they are.
    pub skip_existing: bool,
    /// Decoding threads (the writer has its own); 0 reads, predicts and writes one image at a
    /// time on the calling thread.
    pub workers: usize,
    /// Model inputs per forward pass — whole images, or sliding windows of one image or of
    /// several — (`None`: the predictor's, [`Predictor::batch_size`]). Images go to the model
    /// together until their inputs fill a batch.
    pub batch: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            predict: PredictOptions::default(),
            fov_dir: None,
            shard: Shard::ALL,
            skip_existing: false,
            workers: 2,
            batch: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Inputs of this shard.
    pub total: usize,
    /// Inputs predicted and written.
    pub written: usize,
    /// Inputs whose outputs existed.
    pub skipped: usize,
    /// Inputs that failed, with the reason; the others were still processed.
    pub failed: Vec<(PathBuf, String)>,
    /// Wall time of the run.
    pub seconds: f64,
    /// The manifest's path.
    pub manifest: PathBuf,
}

/// Predicts this shard's `inputs` into `out` (mirroring their relative paths), calling
/// `progress(entry, done, total)` after each input; see the module docs.
pub fn predict_run<B: Backend>(
    predictor: &Predictor<B>,
    inputs: &[InputFile],
    out: &Path,
    options: &RunOptions,
    progress: impl FnMut(&ManifestEntry, usize, usize) + Send,
) -> Result<RunSummary, TrainError> {
    let start = Instant::now();
    let mine: Vec<&InputFile> = inputs
        .iter()
        .filter(|f| options.shard.owns(&f.key()))
        .collect();
    let settings = RunSettings::of(predictor, options);
    let done = if options.skip_existing {
        latest_entries(out)?
    } else {
        Default::default()
    };
    // Every input's FOV mask, matched once (an unmatched input fails on its own).
    let fov = match &options.fov_dir {
        Some(dir) => Some(FovMasks::match_inputs(dir, inputs)?),
        None => None,
    };
    let manifest = manifest_path(out, options.shard);
    let mut recorder = Recorder::open(&manifest, mine.len(), settings.clone(), progress)?;
    let mut todo = Vec::new();
    for file in mine {
        let files = output_paths_for(&file.path, &file.relative, out);
        match done
            .get(&file.key())
            .filter(|e| e.is_done_by(&settings, &files))
        {
            Some(previous) => recorder.record(
                entry(file, &files, previous.size, 0.0, Ok(None)),
                &file.path,
            )?,
            None => todo.push((file, files)),
        }
    }
    let batch = options
        .batch
        .unwrap_or_else(|| predictor.batch_size())
        .max(1);
    if options.workers == 0 {
        for (file, files) in &todo {
            let t = Instant::now();
            let mask = fov.as_ref().map(|f| f.mask_of(&file.path)).transpose();
            let result = mask
                .and_then(|mask| read_input(&file.path, mask))
                .and_then(|sample| {
                    let (tta, tiling) = (options.predict.tta, options.predict.tiling);
                    let mut probs = predictor.probabilities_in(&[&sample], tta, tiling, batch);
                    let prob = probs.pop().expect("one probability per sample");
                    let (threshold, depth) =
                        (options.predict.threshold, options.predict.prob_depth);
                    let images = prediction_images(&sample, &prob, threshold, depth);
                    write_prediction(&images, files).map(|()| sample.size())
                });
            let (size, result) = split(result);
            let seconds = t.elapsed().as_secs_f64();
            recorder.record(entry(file, files, size, seconds, result), &file.path)?;
        }
    } else {
        pipelined(
            predictor,
            &todo,
            fov.as_ref(),
            options,
            batch,
            &mut recorder,
        )?;
    }
    let mut summary = recorder.summary;
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// A decoded input on its way to the model, or why it could not be read.
type Decoded<'a> = (
    &'a InputFile,
    &'a PredictionFiles,
    f64,
    Result<Sample, TrainError>,
);
/// A predicted input on its way to the writer: its probability and the seconds so far.
type Predicted<'a> = (
    &'a InputFile,
    &'a PredictionFiles,
    f64,
    Result<(Sample, Vec<f32>), TrainError>,
);

/// Decoding workers → the model on this thread (`batch` model inputs per forward pass) → the
/// writer thread.
fn pipelined<B: Backend, P: FnMut(&ManifestEntry, usize, usize) + Send>(
    predictor: &Predictor<B>,
    todo: &[(&InputFile, PredictionFiles)],
    fov: Option<&FovMasks>,
    options: &RunOptions,
    batch: usize,
    recorder: &mut Recorder<P>,
) -> Result<(), TrainError> {
    // Enough decoded images queued to fill a batch of whole images (at most 16 held).
    let queue = batch.min(16).max(options.workers);
    let (to_model, decoded) = sync_channel::<Decoded>(2 * queue);
    let (to_writer, predicted) = sync_channel::<Predicted>(2 * queue);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..options.workers {
            let to_model = to_model.clone();
            let next = &next;
            scope.spawn(move || decode(todo, next, fov, to_model));
        }
        drop(to_model);
        let writer = scope.spawn(move || write(predicted, &options.predict, recorder));
        run_model(predictor, decoded, batch, &options.predict, to_writer);
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Reads the inputs not yet taken by another worker.
fn decode<'a>(
    todo: &'a [(&'a InputFile, PredictionFiles)],
    next: &AtomicUsize,
    fov: Option<&FovMasks>,
    to_model: SyncSender<Decoded<'a>>,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((file, files)) = todo.get(i) else {
            return;
        };
        let t = Instant::now();
        let mask = fov.map(|f| f.mask_of(&file.path)).transpose();
        let sample = mask.and_then(|mask| read_input(&file.path, mask));
        if to_model
            .send((file, files, t.elapsed().as_secs_f64(), sample))
            .is_err()
        {
            return;
        }
    }
}

/// Takes decoded images through the model, as many together as are ready until their model
/// inputs (whole images or windows) fill `batch`.
fn run_model<'a, B: Backend>(
    predictor: &Predictor<B>,
    decoded: Receiver<Decoded<'a>>,
    batch: usize,
    options: &PredictOptions,
    to_writer: SyncSender<Predicted<'a>>,
) {
    let mut pending: Vec<Decoded<'a>> = Vec::new();
    let inputs = |item: &Decoded| match &item.3 {
        Ok(sample) => predictor.inputs_of(sample, options.tiling),
        Err(_) => 0,
    };
    while let Ok(first) = decoded.recv() {
        let mut filled = inputs(&first);
        pending.push(first);
        while filled < batch {
            match decoded.try_recv() {
                Ok(item) => {
                    filled += inputs(&item);
                    pending.push(item);
                }
                Err(_) => break,
            }
        }
        let t = Instant::now();
        let samples: Vec<&Sample> = pending
            .iter()
            .filter_map(|(.., s)| s.as_ref().ok())
            .collect();
        let mut probs = predictor
            .probabilities_in(&samples, options.tta, options.tiling, batch)
            .into_iter();
        let share = t.elapsed().as_secs_f64() / samples.len().max(1) as f64;
        for (file, files, seconds, sample) in pending.drain(..) {
            let item = match sample {
                Ok(sample) => {
                    let prob = probs.next().expect("one probability per sample");
                    (file, files, seconds + share, Ok((sample, prob)))
                }
                Err(e) => (file, files, seconds, Err(e)),
            };
            if to_writer.send(item).is_err() {
                return;
            }
        }
    }
}

/// Writes each prediction and records it.
fn write<P: FnMut(&ManifestEntry, usize, usize)>(
    predicted: Receiver<Predicted>,
    options: &PredictOptions,
    recorder: &mut Recorder<P>,
) -> Result<(), TrainError> {
    for (file, files, seconds, result) in predicted {
        let t = Instant::now();
        let result = result.and_then(|(sample, prob)| {
            let images = prediction_images(&sample, &prob, options.threshold, options.prob_depth);
            write_prediction(&images, files).map(|()| sample.size())
        });
        let (size, result) = split(result);
        let seconds = seconds + t.elapsed().as_secs_f64();
        recorder.record(entry(file, files, size, seconds, result), &file.path)?;
    }
    Ok(())
}

/// `Ok(Some(size))`: predicted and written; `Ok(None)`: outputs found; `Err`: failed.
type Outcome = Result<Option<()>, TrainError>;

fn split(result: Result<[u32; 2], TrainError>) -> (Option<[u32; 2]>, Outcome) {
    match result {
        Ok(size) => (Some(size), Ok(Some(()))),
        Err(e) => (None, Err(e)),
    }
}

fn entry(
    file: &InputFile,
    files: &PredictionFiles,
    size: Option<[u32; 2]>,
    seconds: f64,
    result: Outcome,
) -> ManifestEntry {
    let (status, error) = match &result {
        Ok(None) => (Status::Skipped, None),
        Ok(Some(())) => (Status::Ok, None),
        Err(e) => (Status::Failed, Some(e.to_string())),
    };
    ManifestEntry {
        input: file.key(),
        outputs: match status {
            Status::Failed => Vec::new(),
            _ => files.outputs().map(Path::to_path_buf).to_vec(),
        },
        size,
        seconds,
        status,
        error,
        run: None,
        recorded: 0.0,
    }
}

/// Appends manifest lines, counts, and reports progress.
struct Recorder<P> {
    manifest: File,
    summary: RunSummary,
    settings: RunSettings,
    progress: P,
}

impl<P: FnMut(&ManifestEntry, usize, usize)> Recorder<P> {
    fn open(
        path: &Path,
        total: usize,
        settings: RunSettings,
        progress: P,
    ) -> Result<Self, TrainError> {
        let fail = |e: std::io::Error| TrainError::Output {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let manifest = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        Ok(Self {
            manifest,
            summary: RunSummary {
                total,
                manifest: path.to_path_buf(),
                ..RunSummary::default()
            },
            settings,
            progress,
        })
    }

    fn record(&mut self, mut entry: ManifestEntry, input: &Path) -> Result<(), TrainError> {
        entry.run = Some(self.settings.clone());
        entry.recorded = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        match entry.status {
            Status::Ok => self.summary.written += 1,
            Status::Skipped => self.summary.skipped += 1,
            Status::Failed => {
                let reason = entry.error.clone().unwrap_or_default();
                self.summary.failed.push((input.to_path_buf(), reason));
            }
        }
        let mut line = serde_json::to_string(&entry).expect("manifest entries serialise");
        line.push('\n');
        self.manifest
            .write_all(line.as_bytes())
            .map_err(|e| TrainError::Output {
                path: self.summary.manifest.clone(),
                reason: e.to_string(),
            })?;
        let s = &self.summary;
        let done = s.written + s.skipped + s.failed.len();
        (self.progress)(&entry, done, s.total);
        Ok(())
    }
}

/// The process's peak resident memory so far (`VmHWM`, Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
