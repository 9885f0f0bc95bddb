//! An [`EvaluationReport`] as files and text: `evaluation-<split>.json`, its CSV twin and the
//! tables `evaluate` prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::TrainError;
use crate::evaluate::roc::level_probability;
use crate::evaluate::vessel_width::{ClassScores, WidthScores};
use crate::evaluate::{EvaluationReport, ImageReport, Scores};
use crate::metrics::MetricSummary;

fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.6}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("     -".to_string(), |v| format!("{:6.2}", 100.0 * v))
}

impl EvaluationReport {
    /// Column names of [`EvaluationReport::to_csv`] after `id,region`.
    fn columns() -> Vec<String> {
        let mut cols: Vec<String> = MetricSummary::NAMES.iter().map(|s| s.to_string()).collect();
        cols.extend(["auc", "average_precision", "tp", "fp", "fn", "tn"].map(String::from));
        cols
    }

    /// One row per image and region (`fov`, `image`, and the FOV's `thin` and `thick`
    /// vessels), then the aggregate rows (`id` = `all`).
    pub fn to_csv(&self) -> String {
        let mut out = format!("id,region,{}\n", Self::columns().join(","));
        let mut row = |id: &str,
                       region: &str,
                       m: &MetricSummary,
                       c: crate::metrics::Confusion,
                       auc: Option<f64>,
                       ap: Option<f64>| {
            let values: Vec<String> = m.values().iter().map(|v| cell(*v)).collect();
            writeln!(
                out,
                "{id},{region},{},{},{},{},{},{},{}",
                values.join(","),
                cell(auc),
                cell(ap),
                c.tp,
                c.fp,
                c.fn_,
                c.tn
            )
            .expect("writing to a String");
        };
        let mut rows = |id: &str, fov: &Scores, image: &Scores, widths: Option<&WidthScores>| {
            for (region, s) in [("fov", fov), ("image", image)] {
                row(
                    id,
                    region,
                    &s.metrics,
                    s.confusion,
                    s.auc,
                    s.average_precision,
                );
            }
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
            );
        }
        rows("all", &self.fov, &self.image, self.widths.as_ref());
        out
    }

    /// How the threshold was chosen, in words.
    pub fn threshold_text(&self) -> String {
        let p = level_probability(self.threshold);
        match &self.threshold_from {
            Some(from) => format!(
                "{p:.3} (level {}): the best-F1 threshold of {}",
                self.threshold,
                from.display()
            ),
            None => format!("{p:.3} (level {}), as given", self.threshold),
        }
    }

    /// A text table (percentages) of one region: per image, then all pixels.
    pub fn table(&self, fov: bool) -> String {
        let pick = |i: &ImageReport| if fov { i.fov.clone() } else { i.image.clone() };
        let mut out = format!(
            "{} split, {} ({}), threshold {}:\n{:>5}  {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}\n",
            self.split,
            if fov { "inside the FOV (DRIVE protocol)" } else { "whole image" },
            if self.probabilities { "probabilities" } else { "binary masks" },
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
