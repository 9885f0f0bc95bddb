//! An [`EvaluationReport`] as files and text: `evaluation-<split>.json`, its CSV twin and the
//! tables `evaluate` prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::TrainError;
use crate::evaluate::topology::TopologyScores;
use crate::evaluate::vessel_width::{ClassScores, WidthScores};
use crate::evaluate::{EvaluationReport, ImageReport, Resolution, Scores};
use crate::metrics::MetricSummary;

fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.6}"))
}

/// The CSV's topology columns (filled on `fov` rows).
const TOPOLOGY_COLUMNS: [&str; 11] = [
    "cldice",
    "tprec",
    "tsens",
    "skeleton_recall_thin",
    "skeleton_recall_thick",
    "betti0_pred",
    "betti0_truth",
    "betti0_error",
    "betti1_pred",
    "betti1_truth",
    "betti1_error",
];

fn pct(v: Option<f64>) -> String {
    v.map_or("     -".to_string(), |v| format!("{:6.2}", 100.0 * v))
}

impl EvaluationReport {
    /// Column names of [`EvaluationReport::to_csv`] after `id,region`.
    fn columns() -> Vec<String> {
        let mut cols: Vec<String> = MetricSummary::NAMES.iter().map(|s| s.to_string()).collect();
        cols.extend(
            [
                "auc",
                "average_precision",
                "auc_resolution",
                "auc_tie_bound",
                "tp",
                "fp",
                "fn",
                "tn",
            ]
            .map(String::from),
        );
        cols.extend(TOPOLOGY_COLUMNS.map(String::from));
        cols
    }

    /// One row per image and region (`fov`, `image`, and the FOV's `thin` and `thick`
    /// vessels), then the aggregate rows (`id` = `all`). The topology columns are filled on the
    /// `fov` rows.
    pub fn to_csv(&self) -> String {
        let mut out = format!("id,region,{}\n", Self::columns().join(","));
        let mut row = |id: &str,
                       region: &str,
                       m: &MetricSummary,
                       c: crate::metrics::Confusion,
                       scores: Option<&Scores>,
                       topology: Option<&TopologyScores>| {
            let values: Vec<String> = m.values().iter().map(|v| cell(*v)).collect();
            let resolution = scores
                .filter(|s| s.auc.is_some())
                .map(|s| s.auc_resolution.unwrap_or(Resolution::Levels8).name());
            let topology = topology.map_or(vec![String::new(); TOPOLOGY_COLUMNS.len()], |t| {
                let c = &t.counts;
                vec![
                    cell(t.cldice),
                    cell(t.tprec),
                    cell(t.tsens),
                    cell(t.skeleton_recall_thin),
                    cell(t.skeleton_recall_thick),
                    c.pred_components.to_string(),
                    c.truth_components.to_string(),
                    format!("{:.6}", t.betti0_error),
                    c.pred_holes.to_string(),
                    c.truth_holes.to_string(),
                    format!("{:.6}", t.betti1_error),
                ]
            });
            writeln!(
                out,
                "{id},{region},{},{},{},{},{},{},{},{},{},{}",
                values.join(","),
                cell(scores.and_then(|s| s.auc)),
                cell(scores.and_then(|s| s.average_precision)),
                resolution.unwrap_or(""),
                cell(scores.and_then(|s| s.auc_tie_bound)),
                c.tp,
                c.fp,
                c.fn_,
                c.tn,
                topology.join(",")
            )
            .expect("writing to a String");
        };
        let mut rows = |id: &str,
                        fov: &Scores,
                        image: &Scores,
                        widths: Option<&WidthScores>,
                        topology: Option<&TopologyScores>| {
            row(id, "fov", &fov.metrics, fov.confusion, Some(fov), topology);
            row(
                id,
                "image",
                &image.metrics,
                image.confusion,
                Some(image),
                None,
            );
            if let Some(w) = widths {
                for (region, s) in [("thin", &w.thin), ("thick", &w.thick)] {
                    row(id, region, &s.metrics, s.confusion, None, None);
                }
            }
        };
        for img in &self.images {
            rows(
                &img.id.to_string(),
                &img.fov,
                &img.image,
                img.widths.as_ref(),
                img.topology.as_ref(),
            );
        }
        rows(
            "all",
            &self.fov,
            &self.image,
            self.widths.as_ref(),
            self.topology.as_ref(),
        );
        out
    }

    /// clDice, skeleton recall and Betti errors inside the FOV over the split, in words (empty
    /// without them).
    pub fn topology_text(&self) -> String {
        let Some(t) = &self.topology else {
            return String::new();
        };
        let c = &t.counts;
        format!(
            "topology (FOV): clDice {} %, Tprec {} %, skeleton recall {} % (thin {} %, thick {} \
             %); components predicted {} vs {} true (mean |β0 error| {:.2}/image), loops {} vs {} \
             (mean |β1 error| {:.2}/image)\n",
            pct(t.cldice).trim(),
            pct(t.tprec).trim(),
            pct(t.tsens).trim(),
            pct(t.skeleton_recall_thin).trim(),
            pct(t.skeleton_recall_thick).trim(),
            c.pred_components,
            c.truth_components,
            t.betti0_error,
            c.pred_holes,
            c.truth_holes,
            t.betti1_error
        )
    }

    /// How the threshold was chosen, in words.
    pub fn threshold_text(&self) -> String {
        let p = self.threshold_probability;
        let at = match self.fov.auc_resolution {
            Some(Resolution::Exact) => String::new(),
            Some(r @ Resolution::Levels16) => {
                format!(" (level {} of {})", self.threshold, r.name())
            }
            _ => format!(" (level {})", self.threshold),
        };
        match &self.threshold_from {
            Some(from) => format!("{p:.4}{at}: the best-F1 threshold of {}", from.display()),
            None => format!("{p:.4}{at}, as given"),
        }
    }

    /// The split's AUC inside the FOV with its resolution and tie bound, in words (empty without
    /// probabilities), e.g. `AUC (FOV) 0.9712: from the float probabilities, exactly`.
    pub fn auc_text(&self) -> String {
        if self.fov.auc.is_none() {
            return String::new();
        }
        let how = match self.fov.auc_resolution.unwrap_or(Resolution::Levels8) {
            Resolution::Exact => "the float probabilities, exactly".to_string(),
            r => format!(
                "{} probability levels; ties within a level move it by at most {:.4}",
                r.name(),
                self.fov.auc_tie_bound.unwrap_or(0.0)
            ),
        };
        format!(
            "AUC (FOV) {}: from {how}\n",
            self.fov.auc_text().split(' ').next().unwrap_or("")
        )
    }

    /// A text table (percentages) of one region: per image, then all pixels.
    pub fn table(&self, fov: bool) -> String {
        let pick = |i: &ImageReport| if fov { i.fov.clone() } else { i.image.clone() };
        let region = if fov { &self.fov } else { &self.image };
        let scored = match (self.probabilities, region.auc_resolution) {
            (false, _) => "binary masks".to_string(),
            (true, r) => format!(
                "probabilities; AUC and AP from {}",
                match r.unwrap_or(Resolution::Levels8) {
                    Resolution::Exact => "the float values".to_string(),
                    r => format!(
                        "{} levels, ties ≤ {:.4}",
                        r.name(),
                        region.auc_tie_bound.unwrap_or(0.0)
                    ),
                }
            ),
        };
        let mut out = format!(
            "{} split, {} ({scored}), threshold {}:\n{:>5}  {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}\n",
            self.split,
            if fov { "inside the FOV (DRIVE protocol)" } else { "whole image" },
            self.threshold_text(),
            "id", "Acc", "Sens", "Spec", "Prec", "F1", "IoU", "mIoU", "MCC", "AUC", "AP"
        );
        let mut line = |id: String, s: &Scores| {
            let m = s.metrics;
            writeln!(
                out,
                "{id:>5}  {} {} {} {} {} {} {} {:6.4} {} {}",
                pct(m.accuracy),
                pct(m.sensitivity),
                pct(m.specificity),
                pct(m.precision),
                pct(m.f1),
                pct(m.vessel_iou),
                pct(m.miou),
                m.mcc,
                s.auc.map_or("     -".into(), |a| format!("{a:6.4}")),
                s.average_precision
                    .map_or("     -".into(), |a| format!("{a:6.4}"))
            )
            .expect("writing to a String");
        };
        for img in &self.images {
            line(img.id.to_string(), &pick(img));
        }
        line("all".into(), if fov { &self.fov } else { &self.image });
        out
    }

    /// Thin and thick vessels inside the FOV over the split, in words (empty without them).
    pub fn width_text(&self) -> String {
        let Some(w) = &self.widths else {
            return String::new();
        };
        let one = |name: &str, s: &ClassScores| {
            format!(
                "{name} vessels: F1 {} %, sensitivity {} % ({} vessel pixels)",
                pct(s.metrics.f1).trim(),
                pct(s.metrics.sensitivity).trim(),
                s.confusion.tp + s.confusion.fn_
            )
        };
        format!(
            "{}\n{}\n",
            one("thin (≤ 2 px)", &w.thin),
            one("thick (≥ 3 px)", &w.thick)
        )
    }

    /// Writes `<path>` (JSON) and the same name with `.csv`.
    pub fn write(&self, json_path: &Path) -> Result<PathBuf, TrainError> {
        let err = |path: &Path, e: String| TrainError::Output {
            path: path.to_path_buf(),
            reason: e,
        };
        if let Some(dir) = json_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| err(json_path, e.to_string()))?;
        std::fs::write(json_path, json).map_err(|e| err(json_path, e.to_string()))?;
        let csv = json_path.with_extension("csv");
        std::fs::write(&csv, self.to_csv()).map_err(|e| err(&csv, e.to_string()))?;
        Ok(csv)
    }

    /// Reads an `evaluation-<split>.json` written by [`EvaluationReport::write`].
    pub fn read(json_path: &Path) -> Result<Self, TrainError> {
        let err = |reason: String| TrainError::Output {
            path: json_path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(json_path)
            .map_err(|e| err(format!("cannot read the evaluation: {e}")))?;
        serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "not an evaluation written by `retina-seg evaluate` ({e})"
            ))
        })
    }
}
