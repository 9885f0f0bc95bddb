//! DRIVE-protocol evaluation of predictions against ground truth: per image and aggregated over
//! all pixels of the split, inside the field of view (the DRIVE protocol) and on the whole image.
//!
//! Predictions are files matched to ground truth by the image id in their names, as the dataset
//! numbers its images ([`drive_data::layout::ids`]: DRIVE's first number, CHASE_DB1's `01L`, …):
//! `<stem>_prob.png` (a probability map, 8- or 16-bit: AUC is computed, vessel = probability ≥
//! threshold) is preferred over `<stem>_mask.png` (binary: AUC omitted); `*_overlay.*` files are
//! ignored; any other single image per id is used as a probability map unless it holds only its
//! lowest and highest level (see [`PredictionMap`]). Several candidates of one kind for an id
//! resolve to the one named after the image (`<image stem>_prob.png`: images of two datasets
//! predicted into one folder); otherwise (the same image predicted into two shard folders) they
//! are an error. Float probabilities held in memory
//! can be scored instead ([`evaluate_samples`]), as `evaluate --checkpoint` does.
//!
//! Threshold-free scores say how finely they saw the probabilities ([`Resolution`]): the exact
//! float values (sorted), or the levels of the maps with the most the ties within a level can
//! move the AUC ([`crate::evaluate::roc`]). With probabilities the report also holds the split's
//! per-level counts inside the FOV (the ROC and precision–recall curves, its own best-F1
//! threshold); every report splits the FOV's scores by vessel width
//! ([`crate::evaluate::vessel_width`]). [`threshold_from`] reads a validation evaluation's best
//! threshold. Files: [`crate::evaluate::files`] (JSON, CSV, tables); the HTML report is drawn
//! from them by the report part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drive_data::layout::Entry;
use drive_data::Layout;
use drive_data::{DatasetDir, Sample, Split};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::prediction_map::PredictionMap;
use crate::evaluate::roc::{threshold_level, ExactScores, RocHistogram, ThresholdPoint};
use crate::evaluate::topology::{TopologyCounts, TopologyScores};
use crate::evaluate::vessel_width::{width_classes, width_confusions, WidthScores};
use crate::metrics::{Confusion, MetricSummary};
use crate::predict::inputs::image_files_under;

/// How finely threshold-free scores saw the probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// The float probabilities themselves, sorted: exact.
    #[serde(rename = "exact")]
    Exact,
    /// 16-bit levels (`round(65535 p)`): ties within a level counted half.
    #[serde(rename = "16-bit")]
    Levels16,
    /// 8-bit levels (`round(255 p)`): ties within a level counted half.
    #[serde(rename = "8-bit")]
    Levels8,
}

impl Resolution {
    /// The resolution of level counts with this largest level.
    pub fn of_levels(max_level: u32) -> Self {
        if max_level > 255 {
            Self::Levels16
        } else {
            Self::Levels8
        }
    }

    /// In words, for tables: `exact`, `16-bit`, `8-bit`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Levels16 => "16-bit",
            Self::Levels8 => "8-bit",
        }
    }
}

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
    /// How finely `auc` and `average_precision` saw the probabilities (absent in files written
    /// before it was recorded: 8-bit).
    #[serde(default)]
    pub auc_resolution: Option<Resolution>,
    /// For scores from levels: `½ Σ_l P_l N_l / (P N)`, the most the ties within levels can
    /// move `auc` (the AUC of the probabilities themselves lies within it).
    #[serde(default)]
    pub auc_tie_bound: Option<f64>,
}

impl Scores {
    fn new(
        confusion: Confusion,
        levels: Option<&RocHistogram>,
        exact: Option<&mut ExactScores>,
    ) -> Self {
        let (auc, average_precision, auc_resolution, auc_tie_bound) = match (exact, levels) {
            (Some(exact), _) => (
                exact.auc(),
                exact.average_precision(),
                Some(Resolution::Exact),
                None,
            ),
            (None, Some(h)) => (
                h.auc(),
                h.average_precision(),
                Some(Resolution::of_levels(h.max_level)),
                h.tie_bound(),
            ),
            (None, None) => (None, None, None, None),
        };
        Self {
            confusion,
            metrics: confusion.summary(),
            auc,
            average_precision,
            auc_resolution,
            auc_tie_bound,
        }
    }

    /// The AUC with its resolution, e.g. `0.9712 (exact)` or `0.9705 (8-bit, ties ≤ 0.0031)`.
    pub fn auc_text(&self) -> String {
        let Some(auc) = self.auc else {
            return "–".into();
        };
        match (
            self.auc_resolution.unwrap_or(Resolution::Levels8),
            self.auc_tie_bound,
        ) {
            (Resolution::Exact, _) => format!("{auc:.4} (exact)"),
            (r, Some(bound)) => format!("{auc:.4} ({}, ties ≤ {bound:.4})", r.name()),
            (r, None) => format!("{auc:.4} ({})", r.name()),
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
    /// clDice, skeleton recall and Betti errors inside the FOV (see
    /// [`crate::evaluate::topology`]).
    #[serde(default)]
    pub topology: Option<TopologyScores>,
}

/// A split's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    /// The split evaluated.
    pub split: Split,
    /// The dataset's root folder.
    pub data: PathBuf,
    /// What was read there: dataset, layout, split scheme, observer
    /// ([`DatasetDir::describe`]).
    #[serde(default)]
    pub dataset: Option<String>,
    /// The (first) predictions folder.
    pub predictions: PathBuf,
    /// The level at or above which a probability counts as vessel, at the resolution of
    /// `fov_levels` (8-bit maps: 128 for 0.5; 16-bit maps and float probabilities: 32 768).
    pub threshold: u32,
    /// The probability threshold the level stands for (0.5 for 8-bit level 128); float
    /// probabilities are compared with it directly.
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
    /// clDice, skeleton recall and Betti errors inside the FOV over the split (skeleton counts
    /// summed over images, Betti errors averaged).
    #[serde(default)]
    pub topology: Option<TopologyScores>,
    /// Vessel and background pixels per probability level inside the FOV, over the split (with
    /// probabilities): the exact ROC and precision–recall curves.
    #[serde(default)]
    pub fov_levels: Option<RocHistogram>,
}

/// The prediction file of each id (as `layout` numbers images) in `dir`, at any depth (see the
/// module docs for the choice).
pub fn prediction_files(dir: &Path, layout: Layout) -> Result<BTreeMap<u32, PathBuf>, TrainError> {
    prediction_files_in(&[dir.to_path_buf()], layout)
}

/// The prediction file of each id (as `layout` numbers images) in the `dirs` together (the
/// folders of a sharded `predict` run, or one folder holding them), at any depth.
pub fn prediction_files_in(
    dirs: &[PathBuf],
    layout: Layout,
) -> Result<BTreeMap<u32, PathBuf>, TrainError> {
    prediction_candidates(dirs, layout)?
        .into_iter()
        .map(|(id, candidates)| Ok((id, candidates.choose(id, None, dirs)?)))
        .collect()
}

/// The prediction files of one id, before choosing among them.
#[derive(Debug, Default)]
struct Candidates {
    /// Every file with the id (sorted).
    files: Vec<PathBuf>,
}

impl Candidates {
    /// The probability map, else the mask, else the one file. When several remain (two images of
    /// different datasets predicted into one folder, the same image into two shard folders),
    /// the one whose stem is the image's (`<image stem>_prob.png`) if exactly one is, else the
    /// one of those under the image's own two folders (FIVES numbers `train/Original/` and
    /// `test/Original/` from 1 each: a whole-dataset prediction holds `1_A_prob.png` twice);
    /// else an error listing them.
    fn choose(
        &self,
        id: u32,
        image: Option<&Path>,
        dirs: &[PathBuf],
    ) -> Result<PathBuf, TrainError> {
        let files = &self.files;
        let err = |reason: String| TrainError::Output {
            path: dirs.first().cloned().unwrap_or_default(),
            reason,
        };
        let list = |files: &[&PathBuf]| {
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let stem = |f: &PathBuf| {
            f.file_stem()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let probs: Vec<&PathBuf> = files
            .iter()
            .filter(|f| stem(f).ends_with("_prob"))
            .collect();
        let masks: Vec<&PathBuf> = files
            .iter()
            .filter(|f| stem(f).ends_with("_mask"))
            .collect();
        let (candidates, suffix) = match (probs.len(), masks.len()) {
            (0, 0) => (files.iter().collect::<Vec<_>>(), ""),
            (0, _) => (masks, "_mask"),
            _ => (probs, "_prob"),
        };
        if let [one] = candidates.as_slice() {
            return Ok((*one).clone());
        }
        if let Some(image) = image {
            let named = format!("{}{suffix}", drive_data::decode::image_stem(image));
            let exact: Vec<&&PathBuf> = candidates.iter().filter(|f| stem(f) == named).collect();
            if let [one] = exact.as_slice() {
                return Ok((**one).clone());
            }
            let folders: Vec<&std::ffi::OsStr> = image
                .parent()
                .into_iter()
                .flat_map(|p| p.components().rev().take(2))
                .map(|c| c.as_os_str())
                .collect();
            let under: Vec<&&&PathBuf> = exact
                .iter()
                .filter(|f| {
                    folders
                        .iter()
                        .all(|d| f.components().any(|c| c.as_os_str() == *d))
                })
                .collect();
            if let [one] = under.as_slice() {
                return Ok((***one).clone());
            }
        }
        if suffix.is_empty() {
            return Err(err(format!(
                "several predictions for id {id} ({}); name them <stem>_prob.png or \
                 <stem>_mask.png",
                list(&candidates)
            )));
        }
        Err(err(format!(
            "two predictions of id {id}: {} — the image was predicted twice (e.g. into two \
             shard folders); keep one",
            list(&candidates)
        )))
    }
}

/// Every prediction file of the `dirs` by id (as `layout` numbers images); overlays skipped.
fn prediction_candidates(
    dirs: &[PathBuf],
    layout: Layout,
) -> Result<BTreeMap<u32, Candidates>, TrainError> {
    let mut by_id: BTreeMap<u32, Candidates> = BTreeMap::new();
    for dir in dirs {
        for path in image_files_under(dir)? {
            let overlay = path
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().ends_with("_overlay"));
            if let Some(id) = layout.id_of(&path).filter(|_| !overlay) {
                by_id.entry(id).or_default().files.push(path);
            }
        }
    }
    for candidates in by_id.values_mut() {
        candidates.files.sort();
    }
    Ok(by_id)
}

/// Evaluates the predictions in `predictions` (at any depth) against `split` of `data`, a pixel
/// being vessel when its probability is at least `threshold`.
pub fn evaluate(
    predictions: &Path,
    data: &DatasetDir,
    split: Split,
    threshold: f64,
) -> Result<EvaluationReport, TrainError> {
    evaluate_folders(&[predictions.to_path_buf()], data, split, threshold)
}

/// [`evaluate`] with the predictions of one split spread over several folders (the shards of
/// a `predict` run).
pub fn evaluate_folders(
    folders: &[PathBuf],
    data: &DatasetDir,
    split: Split,
    threshold: f64,
) -> Result<EvaluationReport, TrainError> {
    evaluate_samples(folders, data, split, &data.load(split)?, threshold, None)
}

/// Splits up to this many pixels (vessel and background, inside the FOV and on whole images
/// together) are scored exactly from float probabilities — four bytes each, 400 MB — and larger
/// ones from 16-bit levels with their tie bound.
pub const EXACT_PIXELS: usize = 100_000_000;

/// [`evaluate_folders`] with the split's samples already decoded (`truth` =
/// `data.load(split)`), for a caller that also predicts them or draws the report. With
/// `probabilities` (one per `truth` sample, row-major at its size — what was predicted, before
/// any file was written) those are scored instead of the files' levels: the AUC and average
/// precision of the values themselves ([`Resolution::Exact`]); the files still name the
/// predictions and draw the report's overlays.
pub fn evaluate_samples(
    folders: &[PathBuf],
    data: &DatasetDir,
    split: Split,
    truth: &[Sample],
    threshold: f64,
    probabilities: Option<&[Vec<f32>]>,
) -> Result<EvaluationReport, TrainError> {
    let predictions = folders.first().cloned().unwrap_or_default();
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
    if let Some(p) = probabilities.filter(|p| p.len() != truth.len()) {
        return Err(TrainError::Config(format!(
            "{} probability maps for {} images of the {split} split",
            p.len(),
            truth.len()
        )));
    }
    let files = prediction_candidates(folders, data.layout)?;
    let split_pixels: usize = truth.iter().map(|s| s.fov.len()).sum();
    let exact = probabilities.is_some() && 2 * split_pixels <= EXACT_PIXELS;
    let mut split_scores = SplitScores::default();
    let mut images = Vec::with_capacity(truth.len());
    for (i, sample) in truth.iter().enumerate() {
        let candidates = files.get(&sample.id).ok_or_else(|| TrainError::Output {
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
        let pred_path = &candidates.choose(sample.id, Some(&sample.image_path), folders)?;
        let size = sample.size();
        let map = match probabilities {
            Some(p) => PredictionMap::Float(p[i].clone()),
            None => {
                let (map, file_size) = PredictionMap::read(pred_path)?;
                if file_size != size {
                    return Err(TrainError::Output {
                        path: pred_path.clone(),
                        reason: format!(
                            "prediction is {file_size:?} but the ground truth image {} is {size:?}",
                            sample.image_path.display()
                        ),
                    });
                }
                map
            }
        };
        let scores =
            score_image(sample, &map, threshold, exact).map_err(|reason| TrainError::Output {
                path: pred_path.clone(),
                reason,
            })?;
        let entry = entries.get(&sample.id);
        images.push(ImageReport {
            id: sample.id,
            image_file: sample.image_path.clone(),
            vessel_mask: entry.and_then(|e| e.vessels.clone()).unwrap_or_default(),
            fov_mask: entry.and_then(|e| e.fov.clone()),
            prediction: pred_path.clone(),
            fov: scores.fov.scores(),
            image: scores.image.scores(),
            widths: Some(WidthScores::new(scores.widths)),
            topology: Some(scores.topology.scores()),
        });
        split_scores
            .add(scores)
            .map_err(|reason| TrainError::Output {
                path: pred_path.clone(),
                reason,
            })?;
    }
    let SplitScores {
        fov,
        image,
        widths,
        topology,
        all_probabilities,
    } = split_scores;
    let all_probabilities = all_probabilities.unwrap_or(false);
    let max_level = fov.levels.as_ref().map_or(255, |h| h.max_level);
    let best_f1_threshold = fov.levels.as_ref().and_then(RocHistogram::best_f1);
    let fov_levels = fov.levels.clone();
    Ok(EvaluationReport {
        split,
        data: data.root.clone(),
        dataset: Some(data.describe()),
        predictions,
        threshold: threshold_level(threshold, max_level),
        threshold_probability: threshold,
        threshold_from: None,
        probabilities: all_probabilities,
        best_f1_threshold: best_f1_threshold.filter(|_| all_probabilities),
        images,
        fov: fov.scores(),
        image: image.scores(),
        widths: Some(WidthScores::new(widths)),
        topology: Some(topology.scores()),
        fov_levels: fov_levels.filter(|_| all_probabilities),
    })
}

/// One region's counts: the confusion at the threshold and, with probabilities, the level
/// counts and (exact scoring) the float values.
#[derive(Debug, Clone, Default)]
struct RegionScores {
    confusion: Confusion,
    levels: Option<RocHistogram>,
    exact: Option<ExactScores>,
}

impl RegionScores {
    fn scores(&self) -> Scores {
        let mut exact = self.exact.clone();
        Scores::new(self.confusion, self.levels.as_ref(), exact.as_mut())
    }

    fn merge(&mut self, other: RegionScores) -> Result<(), String> {
        self.confusion += other.confusion;
        match (&mut self.levels, other.levels) {
            (Some(mine), Some(theirs)) if mine.max_level != theirs.max_level => {
                return Err(format!(
                    "its probability levels go to {} where the split's others go to {}: a split \
                     is scored at one depth (predict them all with the same --prob-depth)",
                    theirs.max_level, mine.max_level
                ))
            }
            (Some(mine), Some(theirs)) => mine.merge(&theirs),
            // A split with a binary mask among its maps has no threshold-free scores.
            _ => self.levels = None,
        }
        match (&mut self.exact, other.exact) {
            (Some(mine), Some(theirs)) => mine.merge(&theirs),
            _ => self.exact = None,
        }
        Ok(())
    }
}

/// One image's scores.
struct ImageScores {
    fov: RegionScores,
    image: RegionScores,
    widths: [Confusion; 2],
    topology: TopologyCounts,
    probability: bool,
}

/// The split's sums so far.
#[derive(Default)]
struct SplitScores {
    fov: RegionScores,
    image: RegionScores,
    widths: [Confusion; 2],
    topology: TopologyCounts,
    /// Whether every image so far had probabilities (`None` before the first).
    all_probabilities: Option<bool>,
}

impl SplitScores {
    fn add(&mut self, scores: ImageScores) -> Result<(), String> {
        let first = self.all_probabilities.is_none();
        self.all_probabilities = Some(self.all_probabilities.unwrap_or(true) && scores.probability);
        self.widths[0] += scores.widths[0];
        self.widths[1] += scores.widths[1];
        self.topology += scores.topology;
        if first {
            self.fov = scores.fov;
            self.image = scores.image;
            return Ok(());
        }
        self.fov.merge(scores.fov)?;
        self.image.merge(scores.image)
    }
}

/// Scores `sample` against `map` at `threshold`: confusions, vessel widths and, for
/// probabilities, level counts (16-bit for floats) and, with `exact`, the float values.
fn score_image(
    sample: &Sample,
    map: &PredictionMap,
    threshold: f64,
    exact: bool,
) -> Result<ImageScores, String> {
    let vessels = sample
        .vessels
        .as_ref()
        .expect("checked by the caller")
        .as_raw();
    let fov_mask = sample.fov.as_raw();
    let binary = map.binary(threshold);
    let (w, h) = sample.image.dimensions();
    let classes = width_classes(vessels, w as usize, h as usize);
    let region = |mask: Option<&[u8]>| {
        let mut r = RegionScores {
            confusion: Confusion::from_pixels(&binary, vessels, mask),
            ..RegionScores::default()
        };
        match map {
            PredictionMap::Levels { max_level, levels } => {
                let mut hist = RocHistogram::new(*max_level);
                hist.add_levels(levels, vessels, mask);
                r.levels = Some(hist);
            }
            PredictionMap::Float(prob) => {
                let mut hist = RocHistogram::new(65_535);
                hist.add_probabilities(prob, vessels, mask);
                r.levels = Some(hist);
                if exact {
                    let mut values = ExactScores::default();
                    values.add(prob, vessels, mask);
                    r.exact = Some(values);
                }
            }
            PredictionMap::Binary(_) => {}
        }
        r
    };
    Ok(ImageScores {
        fov: region(Some(fov_mask)),
        image: region(None),
        widths: width_confusions(&binary, vessels, Some(fov_mask), &classes),
        topology: TopologyCounts::of(&binary, vessels, fov_mask, &classes, w as usize, h as usize),
        probability: map.is_probability(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(files: &[&str]) -> Candidates {
        Candidates {
            files: files.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn several_predictions_of_an_id_resolve_by_the_image_s_name_then_its_folders() {
        let dirs = [PathBuf::from("pred")];
        // Two datasets predicted into one folder: the one named after the image.
        let c = candidates(&["pred/03_test_prob.png", "pred/im0003_prob.png"]);
        let image = Path::new("stare/stare-images/im0003.ppm.gz");
        assert_eq!(
            c.choose(3, Some(image), &dirs).unwrap(),
            PathBuf::from("pred/im0003_prob.png")
        );
        // FIVES predicted whole: train and test both hold `1_A`; the image's folders decide.
        let c = candidates(&[
            "pred/test/Original/1_A_prob.png",
            "pred/train/Original/1_A_prob.png",
        ]);
        for split in ["test", "train"] {
            let image = PathBuf::from(format!("fives/{split}/Original/1_A.png"));
            assert_eq!(
                c.choose(1, Some(&image), &dirs).unwrap(),
                PathBuf::from(format!("pred/{split}/Original/1_A_prob.png"))
            );
        }
        // The same image in two shard folders stays an error.
        let c = candidates(&["pred/a/01_test_prob.png", "pred/b/01_test_prob.png"]);
        let err = c
            .choose(1, Some(Path::new("drive/test/images/01_test.tif")), &dirs)
            .unwrap_err();
        assert!(err.to_string().contains("predicted twice"), "{err}");
    }
}
