//! The manifests of a prediction run: one JSON line per input as it is done
//! (`manifest-K-of-N.jsonl` in the output folder, one file per shard), with the model's
//! fingerprint and the settings that shape the outputs — what a rerun reads to skip finished
//! inputs, and what [`coverage`] checks against the inputs after an array job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::model::Tiling;
use crate::predict::inputs::InputFile;
use crate::predict::run::RunOptions;
use crate::predict::shard::Shard;
use crate::predict::{output_paths_for, PredictionFiles, Predictor, ProbDepth};

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Predicted and written.
    Ok,
    /// Its outputs existed (`skip_existing`).
    Skipped,
    /// Unreadable, or its outputs could not be written; see `error`.
    Failed,
}

/// What shapes a run's outputs: the model (its fingerprint) and the prediction settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// SHA-256 of the model's weight files ([`Predictor::fingerprint`]).
    pub model: String,
    /// Square model input size.
    pub imgsz: usize,
    /// Vessel threshold of the masks.
    pub threshold: f32,
    /// Flip test-time augmentation.
    pub tta: bool,
    /// The sliding window, when one was used.
    pub tiling: Option<Tiling>,
    /// Bit depth of the probability maps.
    pub prob_depth: ProbDepth,
    /// The FOV masks folder, when one was given.
    pub fov_dir: Option<PathBuf>,
}

impl RunSettings {
    /// The settings of `predictor` run with `options`.
    pub fn of<B: Backend>(predictor: &Predictor<B>, options: &RunOptions) -> Self {
        Self {
            model: predictor.fingerprint.clone(),
            imgsz: predictor.imgsz,
            threshold: options.predict.threshold,
            tta: options.predict.tta,
            tiling: options.predict.tiling.or(predictor.tiling),
            prob_depth: options.predict.prob_depth,
            fov_dir: options.fov_dir.clone(),
        }
    }
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The input's path relative to the input root (`/`-separated).
    pub input: String,
    /// The outputs written (or found), mask first.
    pub outputs: Vec<PathBuf>,
    /// `[width, height]`, when the image was read.
    pub size: Option<[u32; 2]>,
    /// Time spent on this input: decoding, its share of the batch's forward pass, writing.
    pub seconds: f64,
    /// What happened to it.
    pub status: Status,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The model and settings of the run that wrote (or found) the outputs; absent in manifests
    /// written before they were recorded, whose outputs are then predicted again.
    #[serde(default)]
    pub run: Option<RunSettings>,
    /// When the entry was recorded, seconds since 1970 (the newest entry of an input counts).
    #[serde(default)]
    pub recorded: f64,
}

/// The manifest of `shard` in `out`.
pub fn manifest_path(out: &Path, shard: Shard) -> PathBuf {
    out.join(format!(
        "manifest-{}-of-{}.jsonl",
        shard.index(),
        shard.count()
    ))
}

impl ManifestEntry {
    /// Whether this entry says `files` hold a finished prediction of `settings`: the input was
    /// predicted (or found done) with the same model and settings, and its outputs exist at the
    /// image's recorded size.
    pub fn is_done_by(&self, settings: &RunSettings, files: &PredictionFiles) -> bool {
        let finished = matches!(self.status, Status::Ok | Status::Skipped);
        let Some(size) = self.size.filter(|_| finished) else {
            return false;
        };
        self.run.as_ref() == Some(settings)
            && files
                .outputs()
                .iter()
                .all(|path| image::image_dimensions(path).is_ok_and(|(w, h)| [w, h] == size))
    }
}

/// Every `manifest-*.jsonl` in `out` (in name order), line by line.
pub fn read_manifests(out: &Path) -> Result<Vec<(PathBuf, ManifestEntry)>, TrainError> {
    let fail = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(out) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("manifest-") && n.ends_with(".jsonl")
                })
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail(out, e.to_string())),
    };
    paths.sort();
    let mut entries = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| fail(&path, e.to_string()))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // A line cut by a kill mid-write is the last one and is ignored; any other that
            // does not parse is an error.
            match serde_json::from_str::<ManifestEntry>(line) {
                Ok(e) => entries.push((path.clone(), e)),
                Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => {}
                Err(e) => {
                    return Err(fail(
                        &path,
                        format!("line {}: not a manifest entry: {e}", i + 1),
                    ))
                }
            }
        }
    }
    Ok(entries)
}

/// The newest manifest entry of each input in `out`'s manifests.
pub(crate) fn latest_entries(out: &Path) -> Result<BTreeMap<String, ManifestEntry>, TrainError> {
    let mut latest: BTreeMap<String, ManifestEntry> = BTreeMap::new();
    for (_, e) in read_manifests(out)? {
        if latest
            .get(&e.input)
            .is_none_or(|l| e.recorded >= l.recorded)
        {
            latest.insert(e.input.clone(), e);
        }
    }
    Ok(latest)
}

/// What a run's manifests say about its inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    /// Inputs listed.
    pub total: usize,
    /// Inputs whose newest entry says done and whose outputs are there.
    pub done: usize,
    /// Inputs without any entry, or whose outputs are gone.
    pub missing: Vec<String>,
    /// Inputs whose newest entry says failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Inputs predicted by more than one shard's manifest (tasks run with different shard
    /// counts), with those manifests.
    pub duplicates: Vec<(String, Vec<PathBuf>)>,
    /// Done inputs whose model or settings differ from those of most of the run.
    pub mixed: Vec<String>,
}

impl Coverage {
    /// Every input done exactly once, with one model and settings.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
            && self.failed.is_empty()
            && self.duplicates.is_empty()
            && self.mixed.is_empty()
    }
}

/// Checks the manifests in `out` against `inputs` (what the run was given).
pub fn coverage(inputs: &[InputFile], out: &Path) -> Result<Coverage, TrainError> {
    let entries = read_manifests(out)?;
    let mut newest: BTreeMap<&str, &ManifestEntry> = BTreeMap::new();
    let mut predicted_in: BTreeMap<&str, BTreeSet<&Path>> = BTreeMap::new();
    for (path, e) in &entries {
        if newest
            .get(e.input.as_str())
            .is_none_or(|n| e.recorded >= n.recorded)
        {
            newest.insert(&e.input, e);
        }
        if e.status == Status::Ok {
            predicted_in.entry(&e.input).or_default().insert(path);
        }
    }
    // The settings most done inputs were predicted with.
    let mut votes: Vec<(&RunSettings, usize)> = Vec::new();
    for e in newest.values().filter(|e| e.status != Status::Failed) {
        if let Some(run) = &e.run {
            match votes.iter_mut().find(|(r, _)| *r == run) {
                Some((_, n)) => *n += 1,
                None => votes.push((run, 1)),
            }
        }
    }
    let majority = votes.iter().max_by_key(|(_, n)| *n).map(|(r, _)| *r);
    let mut report = Coverage {
        total: inputs.len(),
        ..Coverage::default()
    };
    for file in inputs {
        let key = file.key();
        let Some(e) = newest.get(key.as_str()) else {
            report.missing.push(key);
            continue;
        };
        if e.status == Status::Failed {
            report
                .failed
                .push((key, e.error.clone().unwrap_or_default()));
            continue;
        }
        let files = output_paths_for(&file.path, &file.relative, out);
        if !files.complete() {
            report.missing.push(key);
            continue;
        }
        report.done += 1;
        if let Some(shards) = predicted_in.get(key.as_str()).filter(|s| s.len() > 1) {
            let shards = shards.iter().map(|p| p.to_path_buf()).collect();
            report.duplicates.push((key.clone(), shards));
        }
        if e.run.as_ref() != majority {
            report.mixed.push(key);
        }
    }
    Ok(report)
}
