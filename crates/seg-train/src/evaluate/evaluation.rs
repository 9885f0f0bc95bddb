//! DRIVE-protocol evaluation of predictions against ground truth: per image and aggregated over
//! all pixels of the split, inside the field of view (the DRIVE protocol) and on the whole image.
//!
//! Predictions are files in one folder matched to ground truth by the numeric id in their names:
//! `<stem>_prob.png` (8-bit probabilities: AUC is computed, vessel = value ≥ threshold) is
//! preferred over `<stem>_mask.png` (binary: AUC omitted); `*_overlay.*` files are ignored; any
//! other single image per id is used as a probability map unless it holds only 0 and 255.
//!
//! With probability maps the report also holds the split's per-level counts inside the FOV
//! (exact ROC and precision–recall curves, AUC, average precision, its own best-F1 threshold:
//! [`crate::evaluate::roc`]); every report splits the FOV's scores by vessel width
//! ([`crate::evaluate::vessel_width`]). [`threshold_from`] reads a validation evaluation's best threshold.
//! Files: [`crate::evaluate::files`] (JSON, CSV, tables); the HTML report is drawn from them by
//! the report part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drive_data::layout::{numeric_id, Entry};
use drive_data::{DatasetDir, Sample, Split};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::roc::{level_probability, RocHistogram, ThresholdPoint};
use crate::evaluate::vessel_width::{width_classes, width_confusions, WidthScores};
use crate::metrics::{Confusion, MetricSummary};
use crate::predict::inputs::image_files_under;

/// Scores of one region (FOV or whole image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Pixel counts at the threshold.
    pub confusion: Confusion,
    /// Metrics of `confusion`.
    #[serde(flatten)]
    pub metrics: MetricSummary,
    /// Area under the ROC curve, when probabilities were given.
    pub auc: Option<f64>,
    /// Average precision (area under the precision–recall step curve), when probabilities were
    /// given.
    #[serde(default)]
    pub average_precision: Option<f64>,
}

impl Scores {
    fn new(confusion: Confusion, roc: Option<&RocHistogram>) -> Self {
        Self {
            confusion,
            metrics: confusion.summary(),
            auc: roc.and_then(RocHistogram::auc),
            average_precision: roc.and_then(RocHistogram::average_precision),
        }
    }
}

/// One image's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    /// The image's numeric id (what predictions and ground truth are matched by).
    pub id: u32,
    /// The fundus image.
    pub image_file: PathBuf,
    /// The vessel ground truth the prediction was scored against.
    pub vessel_mask: PathBuf,
    /// The FOV mask used; `None`: the FOV was derived from the image.
    pub fov_mask: Option<PathBuf>,
    /// The prediction file scored.
    pub prediction: PathBuf,
    /// Scores inside the field of view (the DRIVE protocol).
    pub fov: Scores,
    /// Scores on the whole image.
    pub image: Scores,
    /// Thin and thick vessels inside the FOV (see [`crate::evaluate::vessel_width`]).
    #[serde(default)]
    pub widths: Option<WidthScores>,
}

/// A split's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    /// The split evaluated.
    pub split: Split,
    /// The dataset's root folder.
    pub data: PathBuf,
    /// The (first) predictions folder.
    pub predictions: PathBuf,
    /// 8-bit level at or above which a probability counts as vessel.
    pub threshold: u8,
    /// The probability threshold the level stands for ([`level_probability`]; 0.5 for 128).
    #[serde(default)]
    pub threshold_probability: f64,
    /// The evaluation (of a validation split) whose best-F1 threshold was applied; `None`: the
    /// threshold was given.
    #[serde(default)]
    pub threshold_from: Option<PathBuf>,
    /// Whether every prediction was a probability map (so AUCs are given).
    pub probabilities: bool,
    /// This split's own best-F1 threshold inside the FOV, over all its pixels (with
    /// probabilities): what `--threshold-from` applies to another split.
    #[serde(default)]
    pub best_f1_threshold: Option<ThresholdPoint>,
    /// One entry per image, in id order.
    pub images: Vec<ImageReport>,
    /// Over all pixels of the split, inside the FOV.
    pub fov: Scores,
    /// Over all pixels of the split, whole images.
    pub image: Scores,
    /// Thin and thick vessels inside the FOV, over all pixels of the split.
    #[serde(default)]
    pub widths: Option<WidthScores>,
    /// Vessel and background pixels per probability level inside the FOV, over the split (with
    /// probabilities): the exact ROC and precision–recall curves.
    #[serde(default)]
    pub fov_levels: Option<RocHistogram>,
}

/// The prediction file of each id in `dir`, at any depth (see the module docs for the choice).
pub fn prediction_files(dir: &Path) -> Result<BTreeMap<u32, PathBuf>, TrainError> {
    prediction_files_in(&[dir.to_path_buf()])
}

/// The prediction file of each id in the `dirs` together (the folders of a sharded `predict`
/// run, or one folder holding them), at any depth.
pub fn prediction_files_in(dirs: &[PathBuf]) -> Result<BTreeMap<u32, PathBuf>, TrainError> {
    let mut by_id: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
    for dir in dirs {
        for path in image_files_under(dir)? {
            let overlay = path
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().ends_with("_overlay"));
            if let Some(id) = numeric_id(&path).filter(|_| !overlay) {
                by_id.entry(id).or_default().push(path);
            }
        }
    }
    let err = |reason: String| TrainError::Output {
        path: dirs.first().cloned().unwrap_or_default(),
        reason,
    };
    let mut out = BTreeMap::new();
    for (id, mut files) in by_id {
        files.sort();
        let stem_ends = |f: &PathBuf, s: &str| {
            f.file_stem()
                .is_some_and(|n| n.to_string_lossy().ends_with(s))
        };
        let chosen = files
            .iter()
            .find(|f| stem_ends(f, "_prob"))
            .or_else(|| files.iter().find(|f| stem_ends(f, "_mask")))
            .cloned();
        let chosen = match (chosen, files.len()) {
            (Some(f), _) => f,
            (None, 1) => files.remove(0),
            (None, _) => {
                return Err(err(format!(
                    "several predictions for id {id} ({}); name them <stem>_prob.png or <stem>_mask.png",
                    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        out.insert(id, chosen);
    }
    Ok(out)
}

/// Evaluates the predictions in `predictions` (at any depth) against `split` of `data`.
pub fn evaluate(
    predictions: &Path,
    data: &DatasetDir,
    split: Split,
    threshold: u8,
) -> Result<EvaluationReport, TrainError> {
    evaluate_folders(&[predictions.to_path_buf()], data, split, threshold)
}

/// [`evaluate`] with the predictions of one split spread over several folders (the shards of
/// a `predict` run).
pub fn evaluate_folders(
    folders: &[PathBuf],
    data: &DatasetDir,
    split: Split,
    threshold: u8,
) -> Result<EvaluationReport, TrainError> {
    evaluate_samples(folders, data, split, &data.load(split)?, threshold)
}

/// [`evaluate_folders`] with the split's samples already decoded (`truth` =
/// `data.load(split)`), for a caller that also predicts them or draws the report.
pub fn evaluate_samples(
    folders: &[PathBuf],
    data: &DatasetDir,
    split: Split,
    truth: &[Sample],
    threshold: u8,
) -> Result<EvaluationReport, TrainError> {
    let predictions = folders.first().cloned().unwrap_or_default();
    let predictions = predictions.as_path();
    let entries: BTreeMap<u32, Entry> = data
        .entries(split)?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    if let Some(s) = truth.iter().find(|s| s.vessels.is_none()) {
        return Err(TrainError::Config(format!(
            "{} has no vessel ground truth: the {split} split cannot be evaluated",
            s.image_path.display()
        )));
    }
    let files = prediction_files_in(folders)?;
    let mut images = Vec::with_capacity(truth.len());
    let (mut fov_total, mut image_total) = (Confusion::default(), Confusion::default());
    let (mut fov_roc, mut image_roc) = (RocHistogram::default(), RocHistogram::default());
    let mut width_total = [Confusion::default(); 2];
    let mut all_probabilities = true;
    for sample in truth {
        let pred_path = files.get(&sample.id).ok_or_else(|| TrainError::Output {
            path: sample.image_path.clone(),
            reason: format!(
                "no prediction with id {} in {} (expected e.g. <stem>_prob.png)",
                sample.id,
                folders
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        let bad = |reason: String| TrainError::Output {
            path: pred_path.clone(),
            reason,
        };
        let pred = image::open(pred_path)
            .map_err(|e| bad(format!("cannot read: {e}")))?
            .to_luma8();
        if pred.dimensions() != sample.image.dimensions() {
            return Err(bad(format!(
                "prediction is {:?} but the ground truth image {} is {:?}",
                pred.dimensions(),
                sample.image_path.display(),
                sample.image.dimensions()
            )));
        }
        let named_prob = pred_path
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("_prob"));
        let named_mask = pred_path
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("_mask"));
        let is_prob = named_prob || (!named_mask && pred.iter().any(|&v| v != 0 && v != 255));
        all_probabilities &= is_prob;
        let binary: Vec<u8> = pred.iter().map(|&v| u8::from(v >= threshold)).collect();
        let vessels = sample.vessels.as_ref().expect("checked above").as_raw();
        let fov = sample.fov.as_raw();
        let c_fov = Confusion::from_pixels(&binary, vessels, Some(fov));
        let c_image = Confusion::from_pixels(&binary, vessels, None);
        let (w, h) = sample.image.dimensions();
        let classes = width_classes(vessels, w as usize, h as usize);
        let c_widths = width_confusions(&binary, vessels, Some(fov), &classes);
        width_total[0] += c_widths[0];
        width_total[1] += c_widths[1];
        let (mut r_fov, mut r_image) = (RocHistogram::default(), RocHistogram::default());
        if is_prob {
            r_fov.add_pixels(pred.as_raw(), vessels, Some(fov));
            r_image.add_pixels(pred.as_raw(), vessels, None);
            fov_roc.merge(&r_fov);
            image_roc.merge(&r_image);
        }
        fov_total += c_fov;
        image_total += c_image;
        images.push(ImageReport {
            id: sample.id,
            image_file: sample.image_path.clone(),
            vessel_mask: entries
                .get(&sample.id)
                .and_then(|e| e.vessels.clone())
                .unwrap_or_default(),
            fov_mask: entries.get(&sample.id).and_then(|e| e.fov.clone()),
            prediction: pred_path.clone(),
            fov: Scores::new(c_fov, is_prob.then_some(&r_fov)),
            image: Scores::new(c_image, is_prob.then_some(&r_image)),
            widths: Some(WidthScores::new(c_widths)),
        });
    }
    Ok(EvaluationReport {
        split,
        data: data.root.clone(),
        predictions: predictions.to_path_buf(),
        threshold,
        threshold_probability: level_probability(threshold),
        threshold_from: None,
        probabilities: all_probabilities,
        best_f1_threshold: all_probabilities.then(|| fov_roc.best_f1()).flatten(),
        images,
        fov: Scores::new(fov_total, all_probabilities.then_some(&fov_roc)),
        image: Scores::new(image_total, all_probabilities.then_some(&image_roc)),
        widths: Some(WidthScores::new(width_total)),
        fov_levels: all_probabilities.then_some(fov_roc),
    })
}

/// The best-F1 threshold of the evaluation in `path` (a validation split's
/// `evaluation-valid.json`), to apply to another split as the literature does.
pub fn threshold_from(path: &Path, evaluated: Split) -> Result<ThresholdPoint, TrainError> {
    let bad = |reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let report = EvaluationReport::read(path)?;
    if report.split == evaluated {
        return Err(bad(format!(
            "it evaluates the {evaluated} split itself; take the threshold from another split's \
             evaluation (e.g. evaluation-valid.json)"
        )));
    }
    if report.split == Split::Test {
        return Err(bad(
            "it evaluates the test split; a threshold chosen on test data \
                        makes the test score optimistic — take it from the validation split"
                .into(),
        ));
    }
    report.best_f1_threshold.ok_or_else(|| {
        bad(
            "it has no best-F1 threshold: its predictions were binary masks, not \
             probability maps (predict writes <stem>_prob.png)"
                .into(),
        )
    })
}
